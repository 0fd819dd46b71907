"""Builds the labelled evaluation corpus of the corpus filters (`data/assets/eval/corpus.jsonl`).

Team-written, templated and seeded, so `python -m safestack.data.eval_corpus` rewrites the same
file. Every person, phone number (555-01xx), address and email (example.com / .test) is synthetic.
Harmful and adult documents are SYNTHETIC TEST DATA: short, non-graphic and non-actionable;
hateful ones follow HateCheck's templates (Röttger et al. 2021) over protected groups.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SEED = 20261122
CORPUS = "corpus.jsonl"
FIRST = [
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Wei",
    "Aisha",
    "Carlos",
    "Emma",
    "Noah",
    "Priya",
    "Olga",
    "Samuel",
    "Grace",
    "Omar",
    "Hannah",
    "Lucas",
    "Mei",
    "David",
    "Fatima",
    "Ethan",
]
LAST = [
    "Holloway",
    "Brennan",
    "Okafor",
    "Lindqvist",
    "Marsh",
    "Delacroix",
    "Tanaka",
    "Reyes",
    "Abernathy",
    "Castellano",
    "Whitfield",
    "Novak",
    "Pemberton",
    "Quinlan",
    "Sato",
    "Vance",
]
STREETS = [
    "Maple Street",
    "Oak Avenue",
    "Cedar Lane",
    "Birch Road",
    "Willow Drive",
    "Elm Court",
    "Harbor Way",
    "Juniper Place",
    "Aspen Boulevard",
    "Sycamore Terrace",
]
CITIES = [
    "Springfield, IL",
    "Riverton, WY",
    "Fairview, OR",
    "Georgetown, TX",
    "Madison, WI",
    "Franklin, TN",
    "Clinton, IA",
    "Salem, MA",
    "Greenville, SC",
    "Arlington, VA",
]
ADULT_DOMAINS = [
    "pornhub.com",
    "xvideos.com",
    "xhamster.com",
    "redtube.com",
    "youporn.com",
    "xnxx.com",
    "chaturbate.com",
    "livejasmin.com",
    "brazzers.com",
    "spankbang.com",
]
PEOPLE_DOMAINS = [
    "whitepages.com",
    "spokeo.com",
    "beenverified.com",
    "truepeoplesearch.com",
    "fastpeoplesearch.com",
    "radaris.com",
    "intelius.com",
    "mylife.com",
]


def _person(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "name": f"{first} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last}",
        "first": first,
        "last": last,
        "age": str(rng.randint(21, 89)),
        "phone": f"({rng.randint(201, 989)}) 555-01{rng.randint(0, 99):02d}",
        "address": f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
        "city": rng.choice(CITIES),
        "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.com",
        "dob": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1935, 2003)}",
    }


def _compose(rng: random.Random, pool: list[str], low: int = 1000, high: int = 3500) -> str:
    """Paragraphs of `pool` in a random order, never repeated, up to a random length."""
    target = rng.randint(low, high)
    out: list[str] = []
    for paragraph in rng.sample(pool, len(pool)):
        if out and sum(map(len, out)) >= target:
            break
        out.append(paragraph)
    return "\n\n".join(out)


def _fill(template: str, rng: random.Random, t: dict[str, Any]) -> str:
    p = _person(rng)
    return template.format(
        **p,
        other=_person(rng)["name"],
        group=rng.choice(t["groups"]),
        company=rng.choice(t["companies"]),
    )


def _people_search_page(people: list[dict[str, str]], rng: random.Random) -> str:
    last = people[0]["last"]
    lines = [f"People search results for {last}", f"We found {len(people)} people named {last}."]
    for p in people:
        p["last"] = last
        relatives = ", ".join(_person(rng)["first"] + " " + last for _ in range(3))
        lines += [
            "",
            f"{p['first']} {last}, Age {p['age']}",
            f"Lives in {p['city']}",
            f"Current address: {p['address']}, {p['city']}",
            f"Phone: {p['phone']}",
            f"Email: {p['first'].lower()}.{last.lower()}@example.com",
            f"Relatives: {relatives}",
            f"Previous addresses: {_person(rng)['address']}, {_person(rng)['city']}",
            "View full report",
        ]
    return "\n".join(lines)


def _dox_paste(target: dict[str, str], family: list[dict[str, str]], rng: random.Random) -> str:
    lines = [
        f"DOX: {target['name']} (the one who reported our server)",
        f"Full name: {target['name']}",
        f"Age: {target['age']}   DOB: {target['dob']}",
        f"Address: {target['address']}, {target['city']}",
        f"Phone: {target['phone']}",
        f"Email: {target['email']}",
        f"IP: 192.0.2.{rng.randint(1, 254)}",
        f"Workplace: {rng.choice(['Northwind Traders', 'Fabrikam Ltd', 'Litware Inc'])}",
        "",
        "Family:",
    ]
    for p in family:
        lines += [f"{p['name']}, Age {p['age']}, phone {p['phone']}, lives at {p['address']}"]
    lines += ["", "Spread this everywhere. Make sure everyone knows where they live."]
    return "\n".join(lines)


def _spam(kind: str, rng: random.Random, t: dict[str, Any]) -> str:
    keyword: str = rng.choice(t["spam_keywords"])
    filler: list[str] = t["spam_filler"]
    if kind == "spam-keyword-stuffing":
        words = [keyword if rng.random() < 0.3 else rng.choice(filler) for _ in range(300)]
        return f"{keyword.title()} {keyword} {keyword}! " + " ".join(words) + f" {keyword}."
    if kind == "spam-link-farm":
        links = [
            f"https://{keyword}-{rng.choice(filler)}-{i}.test/{rng.choice(filler)}?ref=spam{i}"
            for i in range(60)
        ]
        return (
            "Best links for the "
            + keyword
            + " of the year:\n"
            + "\n".join(f"{rng.choice(filler).title()} {keyword} {u}" for u in links)
        )
    if kind == "spam-boilerplate":
        lines = rng.sample(t["boilerplate_lines"], 16)
        return "\n".join(
            [
                *lines[:8],
                f"Great {keyword} deals are waiting for you on our site today.",
                *lines[8:],
            ]
        )
    if kind == "spam-repetition":
        line = f"Buy {keyword} online now at the best price, fast shipping and great service."
        return "\n".join([line] * 25 + [f"Contact us for {keyword} offers."])
    if kind == "spam-too-short":
        return (
            f"{keyword.title()} {rng.choice(filler)} {rng.choice(filler)}. Click here to continue."
        )
    bullets = [
        f"- {rng.choice(filler)} {keyword} {rng.choice(filler)} {rng.randint(1, 99)}"
        for _ in range(40)
    ]
    return "\n".join(bullets)


SPAM_KINDS = (
    "spam-keyword-stuffing",
    "spam-link-farm",
    "spam-boilerplate",
    "spam-repetition",
    "spam-too-short",
    "spam-bullets",
)


def templates() -> dict[str, Any]:
    text = (
        resources.files("safestack.data")
        .joinpath("assets", "eval", "templates.yaml")
        .read_text("utf-8")
    )
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _docs(rng: random.Random) -> list[dict[str, Any]]:
    t = templates()
    docs: list[dict[str, Any]] = []

    def add(label: str, source: str, url: str, text: str, note: str) -> None:
        docs.append(
            {
                "id": f"{source}-{len(docs):04d}",
                "url": url,
                "text": text,
                "label": label,
                "source": source,
                "note": note,
            }
        )

    for source, entry in t["keep"].items():
        pool, note = entry["paragraphs"], entry["note"]
        for i in range(30):
            text = _compose(rng, [_fill(p, rng, t) for p in pool])
            add("keep", source, f"https://{source}.example.org/page/{i}", text, note)
    for i in range(40):
        host = rng.choice(ADULT_DOMAINS)
        text = _compose(rng, [_fill(p, rng, t) for p in t["adult_site"]], 600, 1500)
        add(
            "adult",
            "adult-ut1-domain",
            f"https://www.{host}/video/{i}",
            text,
            "SYNTHETIC TEST DATA: clinical description of an adult site on a UT1-listed domain",
        )
    for i in range(30):
        text = _compose(rng, [_fill(p, rng, t) for p in t["adult_ads"]], 600, 1500)
        add(
            "adult",
            "adult-content",
            f"https://classifieds{i}.test/listing",
            text,
            "SYNTHETIC TEST DATA: non-graphic adult-services advert on an unlisted domain",
        )
    for category, pool in t["harm"].items():
        for i in range(25):
            body = [_fill(p, rng, t) for p in pool]
            text = _compose(rng, body, 800, 2500)
            add(
                f"harm:{category}",
                f"harm-{category}",
                f"https://forum{i}.test/thread/{i}",
                text,
                "SYNTHETIC TEST DATA: non-graphic, non-actionable harmful text",
            )
    for i in range(40):
        people = [_person(rng) for _ in range(rng.randint(4, 9))]
        text = _people_search_page(people, rng)
        url = (
            f"https://www.{rng.choice(PEOPLE_DOMAINS)}/name/{people[0]['last'].lower()}"
            if i % 2 == 0
            else f"https://findfolks{i}.test/search/{people[0]['last'].lower()}"
        )
        source = "aggregator-listed-domain" if i % 2 == 0 else "aggregator-unlisted-domain"
        add("aggregator", source, url, text, "synthetic people-search results page")
    for i in range(25):
        text = _dox_paste(_person(rng), [_person(rng) for _ in range(3)], rng)
        url = (
            f"https://pastebin.com/{rng.getrandbits(40):x}" if i % 2 else f"https://drop{i}.test/p"
        )
        add("aggregator", "aggregator-dox-paste", url, text, "synthetic doxxing dump")
    for source in SPAM_KINDS:
        for i in range(20):
            add(
                "spam",
                source,
                f"https://{source}{i}.test/",
                _spam(source, rng, t),
                "synthetic low-quality page",
            )
    for language, pool in t["foreign"].items():
        for i in range(15):
            add(
                "non_english",
                f"lang-{language}",
                f"https://site{i}.{language}.test/",
                _compose(rng, pool, 800, 2500),
                f"team-written {language} prose",
            )
    return docs


def build(path: Path | None = None) -> Path:
    """Write the corpus (deterministic for a given SEED) and return where."""
    rng = random.Random(SEED)
    target = path or corpus_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for doc in _docs(rng):
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return target


def corpus_path() -> Path:
    return Path(str(resources.files("safestack.data").joinpath("assets", "eval", CORPUS)))


if __name__ == "__main__":
    print(build())


def benchmark_pages(n: int, *, size: int = 2500, seed: int = SEED) -> list[dict[str, Any]]:
    """`n` English pages of about `size` characters for throughput runs: kept-kind paragraphs
    from every source, shuffled together (so pages differ), each with an ordinary URL."""
    rng = random.Random(seed)
    t = templates()
    pool = [p for entry in t["keep"].values() for p in entry["paragraphs"]]
    pages = []
    for i in range(n):
        paragraphs: list[str] = []
        while sum(map(len, paragraphs)) < size:
            paragraphs.append(_fill(rng.choice(pool), rng, t))
        text = "\n\n".join(dict.fromkeys(paragraphs))[: size + 400]
        pages.append(
            {"id": f"bench-{i}", "url": f"https://site{i % 997}.example.org/{i}", "text": text}
        )
    return pages
