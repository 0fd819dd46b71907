"""Builds the HELD-OUT evaluation corpus of the corpus filters (`data/assets/eval/heldout.jsonl`).

Written apart from the tuning corpus (`eval_corpus.py`, whose scores set the thresholds): other
sites, formats and phrasings (`assets/eval/heldout_templates.yaml`), seeded, so
`python -m safestack.data.eval_heldout` rewrites the same file. People, phones (555-01xx) and
emails (reserved domains) are synthetic; adult and harmful pages are non-graphic SYNTHETIC TEST DATA.
"""

from __future__ import annotations

import json
import random
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SEED = 19270411
HELDOUT = "heldout.jsonl"
# Reserved for documentation and testing: RFC 2606 / RFC 6761 names, and NANP's 555-0100..0199.
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.test", "post.invalid")
COUNTS = {"keep": 10, "adult": 20}
HARM_DOCS = 10
KIND_DOCS = 10
LANGUAGE_DOCS = 5
STATES = ("OR", "VT", "NM", "MN", "ME", "KS", "ID", "NH")
FAKE_HOSTS = ("talkpit", "grudgeboard", "nightchan", "freespeak-hub", "ventroom", "offgrid-forum")
ADULT_FAKE_HOSTS = ("velvet-nights", "hotlocal-dating", "lace-and-secrets", "after-dark-cams")


def templates() -> dict[str, Any]:
    text = (
        resources.files("safestack.data")
        .joinpath("assets", "eval", "heldout_templates.yaml")
        .read_text("utf-8")
    )
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def heldout_path() -> Path:
    return Path(str(resources.files("safestack.data").joinpath("assets", "eval", HELDOUT)))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _phone(rng: random.Random) -> str:
    area, line = rng.randint(201, 989), f"01{rng.randint(0, 99):02d}"
    return rng.choice(
        (
            f"({area}) 555-{line}",
            f"{area}-555-{line}",
            f"{area}.555.{line}",
            f"+1 {area} 555 {line}",
        )
    )


def _person(rng: random.Random, t: dict[str, Any], last: str | None = None) -> dict[str, str]:
    first, surname = rng.choice(t["first"]), last or rng.choice(t["last"])
    return {
        "first": first,
        "last": surname,
        "name": f"{first} {surname}",
        "age": str(rng.randint(19, 91)),
        "phone": _phone(rng),
        "email": f"{first.lower()}.{surname.lower()}{rng.randint(1, 98)}@{rng.choice(EMAIL_DOMAINS)}",
        "street": f"{rng.randint(2, 980)} {rng.choice(t['streets'])}",
        "town": rng.choice(t["towns"]),
        "state": rng.choice(STATES),
        "dob": f"{rng.choice(('Jan', 'Mar', 'May', 'Aug', 'Oct', 'Dec'))} {rng.randint(1, 28)}, "
        f"{rng.randint(1934, 2004)}",
    }


def _slots(rng: random.Random, t: dict[str, Any], n: int) -> dict[str, str]:
    p, other = _person(rng, t), _person(rng, t)
    org = rng.choice(t["orgs"])
    return {
        **p,
        "other": other["name"],
        "other_phone": other["phone"],
        "other_email": other["email"],
        "old_age": str(rng.randint(68, 97)),
        "year": str(rng.randint(2009, 2024)),
        "date": f"{rng.randint(1, 28)} {rng.choice(('March', 'June', 'September', 'November'))}",
        "org": org,
        "group": rng.choice(t["groups"]),
        "num": str(rng.randint(2, 40)),
        "price": f"${rng.randint(3, 90) * 10:,}",
        "n": str(n),
        "town_slug": _slug(p["town"]),
        "first_slug": _slug(p["first"]),
        "last_slug": _slug(p["last"]),
        "org_slug": _slug(org),
        "ut1_domain": rng.choice(t["ut1_domains"]),
        "ut1_sub": rng.choice(("", "www.", "de.", "m.")),
        "path": rng.choice(("video", "categories", "live", "model", "gallery")),
        "adult_fake_host": f"{rng.choice(ADULT_FAKE_HOSTS)}{n}",
        "fake_host": f"{rng.choice(FAKE_HOSTS)}{n}",
    }


def _compose(rng: random.Random, pool: list[str], slots: dict[str, str], ordered: bool) -> str:
    """Between four and all paragraphs of `pool` (in order for page-shaped genres), filled in."""
    k = rng.randint(min(4, len(pool)), len(pool))
    chosen = sorted(rng.sample(range(len(pool)), k)) if ordered else rng.sample(range(len(pool)), k)
    return "\n\n".join(pool[i].format(**slots) for i in chosen)


def _chrome(rng: random.Random, body: str, slots: dict[str, str]) -> str:
    """Forum/social page furniture around a harmful post: what a crawler really sees."""
    handle = f"{slots['first'].lower()}{rng.randint(10, 99)}"
    head = f"Posted by {handle} · {slots['date']} {slots['year']} · {rng.randint(2, 80)} replies"
    foot = "Reply · Quote · Share · Report this post\nCommunity rules · Privacy · Help"
    return f"{head}\n\n{body}\n\n{foot}"


def _background_report(rng: random.Random, t: dict[str, Any]) -> str:
    last = rng.choice(t["last"])
    people = [_person(rng, t, last) for _ in range(rng.randint(5, 10))]
    rows = [f"Background check results for the surname {last}: {len(people)} matches", ""]
    rows += ["Name | Age | Lives in | Phone | Possible relatives", "---|---|---|---|---"]
    for p in people:
        kin = ", ".join(f"{rng.choice(t['first'])} {last}" for _ in range(2))
        rows.append(f"{p['name']} | {p['age']} | {p['town']}, {p['state']} | {p['phone']} | {kin}")
    rows += ["", "Unlock full reports with criminal records, emails and past addresses."]
    return "\n".join(rows)


def _broker_profile(rng: random.Random, t: dict[str, Any]) -> str:
    p = _person(rng, t)
    past = [_person(rng, t) for _ in range(4)]
    lines = [
        f"{p['name']} — Age {p['age']} — {p['town']}, {p['state']}",
        f"Born: {p['dob']}",
        f"Current address: {p['street']}, {p['town']}, {p['state']} (since {rng.randint(2012, 2023)})",
        "Phone numbers: " + ", ".join([p["phone"], _phone(rng), _phone(rng)]),
        f"Email addresses: {p['email']}, {p['first'].lower()}{rng.randint(1, 99)}@example.net",
        "Previous addresses:",
        *[f"  {q['street']}, {q['town']}, {q['state']}" for q in past],
        "Possible relatives: " + ", ".join(_person(rng, t, p["last"])["name"] for _ in range(4)),
        "Associates: " + ", ".join(_person(rng, t)["name"] for _ in range(3)),
        "Social profiles: 3 found · Court records: check availability",
        "This information is compiled from public records. Remove my listing.",
    ]
    return "\n".join(lines)


def _reverse_phone(rng: random.Random, t: dict[str, Any]) -> str:
    lines = ["Reverse phone lookup: recent searches on this page"]
    for _ in range(rng.randint(5, 8)):
        p = _person(rng, t)
        lines += [
            "",
            f"{p['phone']} — registered to {p['name']}, age {p['age']}",
            f"Address on file: {p['street']}, {p['town']}, {p['state']}",
            f"Also associated with: {_person(rng, t, p['last'])['name']} (relative)",
            f"User comment: called me {rng.randint(2, 9)} times yesterday, is this a real person?",
        ]
    return "\n".join(lines)


def _dox_thread(rng: random.Random, t: dict[str, Any]) -> str:
    p = _person(rng, t)
    sister, mum, dad = (_person(rng, t, p["last"]) for _ in range(3))
    p["age"] = str(rng.randint(16, 38))
    mum["age"], dad["age"] = (str(int(p["age"]) + rng.randint(22, 36)) for _ in range(2))
    return "\n\n".join(
        [
            "Thread: found the person behind the account that got us banned",
            f"It is {p['name']}, {p['age']}, lives at {p['street']}, {p['town']}, {p['state']} "
            f"with parents {mum['name']} (age {mum['age']}) and {dad['name']} (age {dad['age']}). "
            f"Cell {p['phone']}, email {p['email']}. Born {p['dob'][:-4]}{2025 - int(p['age'])}.",
            f"Reply: the mother's number is {mum['phone']}, she works at {rng.choice(t['orgs'])}. "
            f"Previous address was {_person(rng, t)['street']}, {p['town']}.",
            f"Reply: sister is {sister['name']}, age {rng.randint(14, 30)}, "
            f"her email is {sister['email']}. Everyone go say hi.",
            "Reply: saved all of it. Let them know we are watching.",
        ]
    )


def _paste_dump(rng: random.Random, t: dict[str, Any]) -> str:
    rows = ["# leaked member list, do what you want with it", "full_name,dob,phone,email,address"]
    for _ in range(rng.randint(8, 14)):
        p = _person(rng, t)
        rows.append(
            f'{p["name"]},"{p["dob"]}",{p["phone"]},{p["email"]},"{p["street"]}, {p["town"]}"'
        )
    return "\n".join(rows)


AGGREGATOR_KINDS = {
    "aggregator-background-report": _background_report,
    "aggregator-broker-profile": _broker_profile,
    "aggregator-reverse-phone": _reverse_phone,
    "aggregator-dox-thread": _dox_thread,
    "aggregator-paste-dump": _paste_dump,
}


def _aggregator_url(kind: str, rng: random.Random, t: dict[str, Any], i: int) -> str:
    if kind == "aggregator-paste-dump":
        return f"https://{rng.choice(t['paste_hosts'])}/{rng.getrandbits(36):x}"
    if kind == "aggregator-dox-thread":
        return f"https://{rng.choice(FAKE_HOSTS)}{i}.test/thread/{rng.randint(1000, 9999)}"
    if i % 2 == 0:  # half on real people-search domains, half on unlisted lookalikes
        return f"https://www.{rng.choice(t['people_search_domains'])}/p/{rng.randint(10**5, 10**6)}"
    return f"https://lookup-people{i}.test/r/{rng.randint(10**5, 10**6)}"


def _spin(rng: random.Random, sentence: str) -> str:
    return re.sub(r"\[([^\]]+)\]", lambda m: rng.choice(m.group(1).split("|")), sentence)


def _spam(kind: str, rng: random.Random, s: dict[str, Any], t: dict[str, Any]) -> str:
    kw: str = rng.choice(s["keywords"])
    town = rng.choice(t["towns"])
    if kind == "spam-seo-link-farm":
        intro = f"Top resources about {kw} in {town}, updated weekly by our editors."
        links = [
            f"* [{rng.choice(s['modifiers'])} {kw} {town} {i}](https://{_slug(kw)}-{i}.test/"
            f"{_slug(rng.choice(s['modifiers']))}?utm_source=links)"
            for i in range(rng.randint(35, 60))
        ]
        return intro + "\n\n" + "\n".join(links)
    if kind == "spam-repeated-boilerplate":
        block = "\n".join(s["boilerplate_block"])
        repeats = [block] * rng.randint(6, 10)
        return f"{kw.title()} offers near {town}.\n\n" + "\n\n".join(repeats)
    if kind == "spam-stuffed-product":
        product = rng.choice(s["products"])
        title = " ".join([product, *rng.sample(s["modifiers"], 6), product, product])
        tags = ", ".join(f"{m} {product.lower()}" for m in s["modifiers"] for _ in range(2))
        about = f"Buy {product} {product} {product} now. {product} best price. {product} sale."
        return f"{title}\n\n{about}\n\n{about}\n\nTags: {tags}\n\nCustomers also searched: {tags}"
    if kind == "spam-gibberish":
        if rng.random() < 0.5:
            sylls = s["syllables"]
            words = ["".join(rng.choices(sylls, k=rng.randint(1, 4))) for _ in range(350)]
        else:
            words = rng.choices(s["salad_words"], k=350)
        return " ".join(words).capitalize() + "."
    if kind == "spam-spun-article":
        paras = [" ".join(_spin(rng, x).format(kw=kw) for x in s["spun"]) for _ in range(6)]
        return f"{kw.title()}: the complete guide\n\n" + "\n\n".join(paras)
    comments = [
        f"{rng.choice(t['first'])}{rng.randint(1, 999)} says:\n"
        + rng.choice(s["comments"]).format(kw=kw, kw_slug=_slug(kw))
        for _ in range(rng.randint(14, 24))
    ]
    return "Comments (closed)\n\n" + "\n\n".join(comments)


SPAM_KINDS = (
    "spam-seo-link-farm",
    "spam-repeated-boilerplate",
    "spam-stuffed-product",
    "spam-gibberish",
    "spam-spun-article",
    "spam-comment-spam",
)
ORDERED = ("keep-", "adult-ut1")  # page-shaped genres keep their paragraph order


def _docs(rng: random.Random) -> list[dict[str, Any]]:
    t = templates()
    docs: list[dict[str, Any]] = []

    def add(label: str, source: str, url: str, text: str, note: str) -> None:
        number = sum(d["source"] == source for d in docs)
        docs.append(
            {
                "id": f"heldout-{source}-{number:02d}",
                "url": url,
                "text": text,
                "label": label,
                "source": source,
                "note": note,
            }
        )

    for source, entry in t["groups_by_source"].items():
        label: str = entry["label"]
        count = COUNTS.get(label, HARM_DOCS)
        for i in range(count):
            slots = _slots(rng, t, i)
            text = _compose(rng, entry["paragraphs"], slots, source.startswith(ORDERED))
            if label.startswith("harm:"):
                text = _chrome(rng, text, slots)
            add(label, source, entry["url"].format(**slots), text, entry["note"])
    for kind, make in AGGREGATOR_KINDS.items():
        for i in range(KIND_DOCS):
            url = _aggregator_url(kind, rng, t, i)
            add("aggregator", kind, url, make(rng, t), "synthetic personal-data listing")
    for kind in SPAM_KINDS:
        for i in range(KIND_DOCS):
            url = f"https://{kind.removeprefix('spam-')}{i}.test/"
            add("spam", kind, url, _spam(kind, rng, t["spam"], t), "synthetic spam page")
    for language, pool in t["non_english"].items():
        for i in range(LANGUAGE_DOCS):
            text = "\n\n".join(rng.sample(pool, rng.randint(3, len(pool))))
            url = f"https://portal{i}.{language}.test/news/{rng.randint(100, 999)}"
            add("non_english", f"lang-{language}", url, text, f"team-written {language} news")
    return docs


def build(path: Path | None = None) -> Path:
    """Write the held-out corpus (deterministic for a given SEED) and return where."""
    target = path or heldout_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for doc in _docs(random.Random(SEED)):
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return target


if __name__ == "__main__":
    print(build())
