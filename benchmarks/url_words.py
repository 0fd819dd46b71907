"""Adult words in URLs: safestack's adult filter (URL rules only) against datatrove 0.10.1's URLFilter.

Two kinds of URL, decided by both tools, side by side:
(a) adult-looking URLs whose hosts are *not* on the UT1 list: a team-written adult vocabulary (not
    datatrove's lists) joined to ordinary English words in seven shapes (word-adult.com,
    adult-word.com, wordadult.com, adult.word.com, word.com/adult/1, Word-Adult.com,
    word.com/search?q=word%20adult), seeded; the share caught.
(b) ordinary URLs, the share dropped (false drops): every URL in the text files of the packages
    installed in this venv (package metadata, docs, source comments), the URLs of the `keep`
    documents of both evaluation corpora, synthetic ordinary hosts made of two ordinary words
    (hyphenated and run together, where a substring rule misfires), hand-picked real names
    that hold an adult word inside them (Essex, Scunthorpe, Cockburn, ...), and hand-written
    health, news, law and nature pages about sex, the body or abuse (where word rules misfire).
Agreement is the share of URLs on which both make the same keep/drop decision.

    .venv/bin/python benchmarks/url_words.py --peer-python .venv-bench-corpus/bin/python
    .venv/bin/python benchmarks/url_words.py --skip-peer --json

datatrove runs from its own venv (`make bench-url-words` reuses the corpus benchmark's venv), with
tldextract's bundled suffix list and a temporary HF_HOME where it unpacks its UT1 archive.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

SEED = 20261207
ROOT = Path(__file__).resolve().parents[1]
# Team-written: words an adult site puts in its host name. Not datatrove's lists, so set (a) does
# not grade datatrove's lists against themselves.
ADULT_WORDS = (  # noqa: SIM905 (a word list reads better as words)
    "porn porno xxx sex sexy nude nudes naked milf camgirl camgirls sexcam livesex webcam hentai "
    "erotic erotica fetish bdsm escort escorts hookup hardcore boobs tits pussy cock dick dildo "
    "orgasm stripper slut horny nsfw threesome gangbang blowjob cumshot anal freeporn pornstar "
    "xxxvideos"
).split()
TLDS = ("com", "net", "org", "xyz", "club", "tv")
SHAPES = ("word-adult", "adult-word", "wordadult", "adult.word", "word/adult")
# Where safestack differs on purpose from datatrove: case, and percent-encoded separators.
SHAPES += ("Word-Adult", "?q=word%20adult")
# Real names holding an adult word (or one across a '.'): a substring rule removes them.
TRICKY = """
https://www.essex.ac.uk/ https://example.com/sussex-county https://docs.python.org/3/
https://www.middlesex.edu/ https://www.scunthorpe-united.co.uk/ https://www.penistone.example/
https://penisland.net/ https://www.expertsexchange.com/ https://therapistfinder.com/
https://www.cockburn.wa.gov.au/ https://www.analytics.example.com/dashboard
https://example.com/recipes/cucumber-cocktails https://www.whorepresents.com/
https://institute.example.org/titles/ https://en.wikipedia.org/wiki/Dick_Van_Dyke
https://example.org/grape-harvest/documents https://www.sextant-navigation.example/
https://example.com/wessex-archaeology/butterfly-survey https://bass-fishing.example.net/lures
https://example.com/blog/assassins-creed-review https://speedofart.com/
https://molestationnursery.com/ https://www.dickssportinggoods.com/ https://www.hitchcock.example/
https://www.cumbria.gov.uk/ https://www.titlecompany.example/ https://superbowl.example.com/
https://en.wikipedia.org/wiki/Sexual_health https://www.who.int/health-topics/sexual-health
""".split()  # noqa: SIM905
# Ordinary pages whose subject is sex, the body or abuse (health, news, law, art, nature): where
# word rules on URLs are expected to misfire. Hand-written, on example hosts.
SENSITIVE = """
https://health.example.org/conditions/sexually-transmitted-infections/
https://news.example.org/2025/03/teen-sex-education-bill-passes
https://news.example.org/crime/rape-trial-jury-verdict
https://health.example.org/anal-cancer-screening
https://www.example.edu/art-history/the-nude-in-renaissance-painting
https://news.example.org/sex-abuse-inquiry-report-published
https://www.example.gov/sexual-assault-support-services
https://health.example.org/breast-cancer/nipple-reconstruction
https://news.example.org/porn-age-verification-law-explained
https://law.example.org/obscenity/pornography-cases
https://www.example.org/breastfeeding/nipple-pain
https://health.example.org/erectile-dysfunction-treatment
https://health.example.org/penis-cancer-symptoms
https://health.example.org/vagina/thrush-treatment
https://travel.example.org/naturist-and-nudist-beaches
https://nature.example.org/naked-mole-rat-facts
https://farm.example.org/how-to-sex-chicks
https://books.example.org/moby-dick-analysis
https://news.example.org/cock-fighting-ring-broken-up
https://health.example.org/child-sexual-abuse-prevention
https://news.example.org/revenge-porn-victims-new-law
https://www.example.org/sex-workers-rights-report
https://health.example.org/masturbation-myths-teens
https://news.example.org/strip-club-licence-refused
https://health.example.org/sexual-health/condoms-and-lube
""".split()  # noqa: SIM905
_URL = re.compile(rb"https?://[A-Za-z0-9][^\s\"'<>(){}\[\]`\\|^]*")
_TEXT_SUFFIXES = (".py", ".txt", ".md", ".rst", ".html", ".json", ".cfg", ".toml", "METADATA")


# --- the URL sets (main venv) ---------------------------------------------------------------------


def ordinary_words(limit: int = 3000) -> list[str]:
    """Lower-case words of 4-10 letters from the `keep` documents of the held-out corpus."""
    words: Counter[str] = Counter()
    path = ROOT / "src/safestack/data/assets/eval/heldout.jsonl"
    for line in path.read_text("utf-8").splitlines():
        doc = json.loads(line)
        if doc["label"] == "keep":
            words.update(w for w in re.findall(r"\b[a-z]{4,10}\b", doc["text"]) if w.isascii())
    return sorted(w for w, _ in words.most_common(limit))


def adult_hosts(n: int, seed: int = SEED) -> list[tuple[str, str]]:
    """(shape, URL) pairs, `n` per shape, none on the UT1 list (host or any parent domain)."""
    from safestack.data.filters.adult import host_levels, ut1_list

    listed = ut1_list()
    rng = random.Random(seed)
    words = ordinary_words()
    out: list[tuple[str, str]] = []
    for shape in SHAPES:
        seen: set[str] = set()
        while len(seen) < n:
            word, adult, tld = rng.choice(words), rng.choice(ADULT_WORDS), rng.choice(TLDS)
            url = (
                "https://"
                + {
                    "word-adult": f"{word}-{adult}.{tld}/",
                    "adult-word": f"{adult}-{word}.{tld}/",
                    "wordadult": f"{word}{adult}.{tld}/",
                    "adult.word": f"{adult}.{word}.{tld}/",
                    "word/adult": f"www.{word}.{tld}/{adult}/{rng.randint(1, 999)}",
                    "Word-Adult": f"{word.title()}-{adult.title()}.{tld}/",
                    "?q=word%20adult": f"www.{word}.{tld}/search?q={word}%20{adult}",
                }[shape]
            )
            levels, _ = host_levels(url)
            if url not in seen and not any(listed.has_domain(level) for level in levels):
                seen.add(url)
                out.append((shape, url))
    return out


def package_urls() -> list[str]:
    """Every distinct http(s) URL in the text files of this venv's installed packages."""
    found: set[str] = set()
    for dirpath, _, files in os.walk(sysconfig.get_paths()["purelib"]):
        for name in files:
            if name.endswith(_TEXT_SUFFIXES):
                try:
                    data = Path(dirpath, name).read_bytes()
                except OSError:
                    continue
                for match in _URL.findall(data):
                    url = match.decode("utf-8", "replace").rstrip(".,;:")
                    found.add(url)
    return sorted(found)


def corpus_urls() -> list[str]:
    urls: set[str] = set()
    for name in ("heldout.jsonl", "corpus.jsonl"):
        path = ROOT / "src/safestack/data/assets/eval" / name
        for line in path.read_text("utf-8").splitlines():
            doc = json.loads(line)
            if doc["label"] == "keep" and doc.get("url"):
                urls.add(doc["url"])
    return sorted(urls)


def ordinary_hosts(n: int, seed: int = SEED) -> list[str]:
    """Hosts of two ordinary words, half hyphenated, half run together, with a path word."""
    rng = random.Random(seed + 1)
    words = ordinary_words()
    urls: set[str] = set()
    while len(urls) < n:
        a, b, c = rng.sample(words, 3)
        joint = "-" if len(urls) % 2 else ""
        urls.add(f"https://www.{a}{joint}{b}.{rng.choice(TLDS)}/{c}")
    return sorted(urls)


def url_sets(n_adult: int, n_ordinary: int) -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    for shape, url in adult_hosts(n_adult):
        sets.setdefault(f"adult: {shape}", []).append(url)
    sets["ordinary: installed packages"] = package_urls()
    sets["ordinary: eval corpora (keep)"] = corpus_urls()
    sets["ordinary: two-word hosts"] = ordinary_hosts(n_ordinary)
    sets["ordinary: tricky names"] = TRICKY
    sets["ordinary: sensitive topics"] = SENSITIVE
    return sets


# --- deciding (each tool in its own process) -------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decide_safestack(urls: list[str]) -> tuple[list[str | None], float]:
    """The adult filter's URL rules (UT1 domains, then the word rules; no content model)."""
    from safestack.data.document import Document
    from safestack.data.filters.adult import AdultFilter, AdultOptions
    from safestack.policy import default_policy

    adult = AdultFilter(default_policy(), AdultOptions(content=False))
    started = _cpu()
    decisions = [
        None if r is None else f"{r.reason.split('.', 1)[1]}:{r.evidence}"
        for r in adult.apply([Document(str(i), "", url=u) for i, u in enumerate(urls)])
    ]
    return decisions, _cpu() - started


def decide_datatrove(urls: list[str]) -> tuple[list[str | None], float]:
    """datatrove 0.10.1's URLFilter.filter() on each URL, offline."""
    import tldextract
    from datatrove.data import Document  # type: ignore[import-untyped]
    from datatrove.pipeline.filters import URLFilter  # type: ignore[import-untyped]

    url_filter = URLFilter()
    url_filter.tldextractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    url_filter.download_data()
    started = _cpu()
    decisions: list[str | None] = []
    for i, url in enumerate(urls):
        kept = url_filter.filter(Document(text="", id=str(i), metadata={"url": url}))
        decisions.append(None if kept is True else str(kept[1]))
    return decisions, _cpu() - started


def _child(tool: str) -> None:
    urls = json.loads(sys.stdin.read())
    decide = decide_safestack if tool == "safestack" else decide_datatrove
    decisions, cpu = decide(urls)
    print(json.dumps({"decisions": decisions, "cpu": cpu}))


def _run(python: str, tool: str, urls: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--child", tool],
        input=json.dumps(urls),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"{tool} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def compare(sets: dict[str, list[str]], peer_python: str | None) -> dict[str, Any]:
    everything = sorted({u for urls in sets.values() for u in urls})
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    home = tempfile.mkdtemp(prefix="bench-url-words-")
    env["HF_HOME"] = home  # datatrove unpacks its UT1 archive under it
    try:
        runs = {"safestack": _run(sys.executable, "safestack", everything, env)}
        if peer_python:
            runs["datatrove"] = _run(peer_python, "datatrove", everything, env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    decided = {
        tool: dict(zip(everything, run["decisions"], strict=True)) for tool, run in runs.items()
    }
    report: dict[str, Any] = {
        "urls": len(everything),
        "us_per_url": {t: 1e6 * r["cpu"] / len(everything) for t, r in runs.items()},
        "sets": [],
    }
    for name, urls in sets.items():
        row: dict[str, Any] = {"set": name, "urls": len(urls)}
        for tool, decisions in decided.items():
            dropped = [u for u in urls if decisions[u] is not None]
            row[f"{tool}_dropped"] = len(dropped)
            row[f"{tool}_reasons"] = dict(
                Counter(str(decisions[u]).split(":", 1)[0] for u in dropped).most_common()
            )
            row[f"{tool}_examples"] = [f"{u} ({decisions[u]})" for u in dropped[:5]]
        if "datatrove" in decided:
            ours, theirs = decided["safestack"], decided["datatrove"]
            differ = [u for u in urls if (ours[u] is None) != (theirs[u] is None)]
            row["agreement"] = 1 - len(differ) / max(1, len(urls))
            row["differ"] = [f"{u} (safestack {ours[u]}, datatrove {theirs[u]})" for u in differ]
        report["sets"].append(row)
    return report


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    peer = any("datatrove_dropped" in row for row in report["sets"])
    table = Table(title=f"URL rules on {report['urls']:,} distinct URLs (share dropped)")
    for column in ("set", "URLs", "safestack", *(("datatrove", "agreement") if peer else ())):
        table.add_column(column, justify="left" if column == "set" else "right")
    for row in report["sets"]:
        cells = [row["set"], f"{row['urls']:,}"]
        for tool in ("safestack", "datatrove") if peer else ("safestack",):
            cells.append(f"{row[f'{tool}_dropped'] / row['urls']:.1%} ({row[f'{tool}_dropped']:,})")
        if peer:
            cells.append(f"{row['agreement']:.2%}")
        table.add_row(*cells)
    console.print(table)
    console.print(
        "CPU per URL (domain lists + word rules): "
        + ", ".join(f"{t} {us:.1f} us" for t, us in report["us_per_url"].items())
    )
    for row in report["sets"]:
        for tool in ("safestack", "datatrove"):
            if row.get(f"{tool}_reasons") and row["set"].startswith("ordinary"):
                console.print(f"{row['set']}, dropped by {tool}: {row[f'{tool}_reasons']}")
                for example in row[f"{tool}_examples"]:
                    console.print(f"    {example}", highlight=False, soft_wrap=True)
        for line in row.get("differ", [])[:8]:
            console.print(f"  differ in {row['set']}: {line}", highlight=False, soft_wrap=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", help="python of a venv with datatrove 0.10.1's URLFilter")
    parser.add_argument("--skip-peer", action="store_true", help="safestack only")
    parser.add_argument("--adult", type=int, default=400, help="adult-looking URLs per shape")
    parser.add_argument("--ordinary", type=int, default=5000, help="synthetic two-word hosts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", choices=["safestack", "datatrove"])
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    if not args.skip_peer and not args.peer_python:
        parser.error("--peer-python is required (or --skip-peer); `make bench-url-words` sets it")
    report = compare(url_sets(args.adult, args.ordinary), args.peer_python)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)


if __name__ == "__main__":
    main()
