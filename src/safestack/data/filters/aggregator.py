"""The `aggregator` corpus filter: pages whose purpose is listing people's personal data.

People-search and data-broker listings, doxxing dumps and paste pages of personal details, found by
three signals, each a reason of its own (checked in this order, the first that holds removes):
1. `aggregator.domain`: the page is on a known people-search / data-broker site;
2. `aggregator.structure`: at least `min_records` person records (an age or birth date with a
   contact detail or a relatives list near it, within 250 characters);
3. `aggregator.pii_density`: on a page with at least one person marker (an age, a birth date, a
   relatives or previous-address line), weighted personal-data items per 1,000 tokens of at least
   `pii_density` (contacts weigh 1, person markers 2); a page in the band just below is re-counted
   with presidio's names and places (0.5 each).
On a paste site the structure and density thresholds are multiplied by `paste_site_factor`. A page
that mentions a few contacts (a company's contact page, a news story) has no ages or relatives and
too low a density; a family history has births and deaths but no contact details.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import ClassVar

from pydantic import Field

from safestack.data.document import Document, Removal
from safestack.data.filters.adult import host_levels
from safestack.data.filters.base import FilterOptions, corpus_filter
from safestack.data.filters.models import ModelFilter
from safestack.judge.detectors.rules import PII_PATTERNS

_PATTERNS: dict[str, re.Pattern[str]] = {p.label: p.pattern for p in PII_PATTERNS}
_CONTACT = {
    "phone": _PATTERNS["PHONE_NUMBER"],
    "email": _PATTERNS["EMAIL_ADDRESS"],
    "address": re.compile(
        r"\b\d{1,6}\s+(?:[A-Z][a-z]+\s){1,3}(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|"
        r"Drive|Ln|Lane|Ct|Court|Way|Pl|Place|Ter|Terrace|Cir|Circle|Pkwy|Parkway|Hwy)\b\.?"
    ),
}
_PERSON = {
    "age": re.compile(r"\bAge:?\s*\d{2,3}\b|\b\d{2,3}\s*(?:years old|yrs old|y/o)\b", re.I),
    "dob": re.compile(r"\b(?:DOB|D\.O\.B\.?|Date of birth|Birth ?date)\s*[:\-]?\s*\w", re.I),
    "relatives": re.compile(
        r"\b(?:Relatives|Possible relatives|Related to|Associated (?:persons|people|names)|"
        r"Known associates|Previous addresses|Past addresses|Prior addresses|Also known as|AKA"
        r"|Lives in|Used to live in)\b\s*:?",
        re.I,
    ),
}
# Literals a match of a pattern starts with (age: or contains), found in the case-folded page by
# str.find (~1 us) where the re.I pattern scans the whole page (~70-140 us). The pattern is then
# tried only where a literal begins, so it still decides every match.
_PERSON_HINTS = {
    "age": ("age", "years old", "yrs old", "y/o"),
    "dob": ("dob", "d.o.b", "date of birth", "birth date", "birthdate"),
    "relatives": (
        "relatives",
        "related to",
        "associated persons",
        "associated people",
        "associated names",
        "known associates",
        "previous addresses",
        "past addresses",
        "prior addresses",
        "also known as",
        "aka",
        "lives in",
        "used to live in",
    ),
}
# Characters re.IGNORECASE matches to an ASCII letter though str.lower() keeps them apart.
_FOLD_EXTRA = str.maketrans({"\u0131": "i", "\u017f": "s"})
# What every match of a contact pattern holds: a page without it skips that pattern's scan.
_CONTACT_HINTS = {
    "phone": re.compile(r"\d\d\d[ .-]\d\d\d"),
    "email": re.compile("@"),
    "address": re.compile(r"\d\s+[A-Z]"),
}
_WEIGHT = {"phone": 1.0, "email": 1.0, "address": 1.0, "age": 2.0, "dob": 2.0, "relatives": 2.0}
_RECORD_REACH = 250  # characters around an age or birth date that belong to the same record
_PRESIDIO_WEIGHT = 0.5  # a name or place found by presidio: weaker evidence than an age
_PRESIDIO_ENTITIES = ["PERSON", "LOCATION"]


@cache
def people_search_domains() -> dict[str, str]:
    """domain -> kind ('people-search' or 'paste'), from the packaged list."""
    text = (
        resources.files("safestack.data")
        .joinpath("assets", "people_search_domains.txt")
        .read_text("utf-8")
    )
    entries = (line.split() for line in text.splitlines() if line.strip() and line[0] != "#")
    return {domain.lower(): kind for kind, domain in entries}


class AggregatorOptions(FilterOptions):
    presidio: bool = Field(
        default=True,
        description="Re-count pages in the uncertain density band with presidio (spaCy NER, "
        "~16 ms per 500 characters; only those pages pay it).",
    )
    extra_domains: list[str] = Field(
        default_factory=list, description="More people-search domains to remove."
    )


class PageSignals:
    """What the filter measured on one page: kinds of items, their positions, records, density."""

    def __init__(self, text: str) -> None:
        self.tokens = max(1, len(text.split()))
        self.positions: dict[str, list[int]] = {}
        folded = _folded(text)
        for kind, pattern in _PERSON.items():
            starts = None if folded is None else _starts(kind, folded)
            if starts is None:
                self.positions[kind] = [m.start() for m in pattern.finditer(text)]
            else:
                self.positions[kind] = _matches_at(pattern, text, starts)
        # A listing of people gives ages, birth dates or relatives; a contact page gives none.
        # Both removing signals need one, so a page without any skips the contact patterns.
        self.person_markers = sum(len(p) for p in self.positions.values())
        for kind, pattern in _CONTACT.items():
            hinted = self.person_markers > 0 and _CONTACT_HINTS[kind].search(text) is not None
            self.positions[kind] = [m.start() for m in pattern.finditer(text)] if hinted else []
        self.weighted = sum(_WEIGHT[k] * len(p) for k, p in self.positions.items())
        self.records = self._records()

    @property
    def density(self) -> float:
        return 1000.0 * self.weighted / self.tokens

    def _records(self) -> int:
        anchors = sorted(self.positions["age"] + self.positions["dob"])
        if not anchors:
            return 0
        nearby = sorted(
            self.positions["phone"]
            + self.positions["email"]
            + self.positions["address"]
            + self.positions["relatives"]
        )
        records, last = 0, -(10**9)
        for at in anchors:
            if at - last < _RECORD_REACH:
                continue  # the same record's second anchor ("Age 43 ... DOB")
            first = bisect.bisect_left(nearby, at - _RECORD_REACH)
            if first < len(nearby) and nearby[first] <= at + _RECORD_REACH:
                records += 1
                last = at
        return records

    def summary(self) -> str:
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.positions.items() if v)
        return f"{counts}; {self.tokens} tokens"


def _folded(text: str) -> str | None:
    """The page lower-cased as re.IGNORECASE compares letters, position for position; None when
    lower-casing changes the length (a character like "İ" becomes two): then no hint is used."""
    folded = text.lower()
    if len(folded) != len(text):
        return None
    return folded if folded.isascii() else folded.translate(_FOLD_EXTRA)


def _starts(kind: str, folded: str) -> list[int] | None:
    """Where a match of `kind`'s pattern can start: where one of its literals begins in the
    case-folded page (empty: no match anywhere). None when a match can start elsewhere (an age
    written "43 years old" starts at its digits): then the whole page is searched."""
    hints = _PERSON_HINTS[kind]
    if kind == "age":
        if any(hint in folded for hint in hints[1:]):
            return None
        hints = hints[:1]
    starts: list[int] = []
    for hint in hints:
        at = folded.find(hint)
        while at >= 0:
            starts.append(at)
            at = folded.find(hint, at + 1)
    return sorted(set(starts))


def _matches_at(pattern: re.Pattern[str], text: str, starts: list[int]) -> list[int]:
    """`[m.start() for m in pattern.finditer(text)]` when every match starts at one of `starts`
    (sorted): the same leftmost, non-overlapping matches, tried at those places only."""
    found: list[int] = []
    end = 0
    for at in starts:
        if at < end:
            continue
        match = pattern.match(text, at)
        if match is not None:
            found.append(at)
            end = max(match.end(), at + 1)
    return found


@corpus_filter("aggregator")
class AggregatorFilter(ModelFilter):
    """Remove people-search, data-broker and doxxing pages (`aggregator.<signal>`)."""

    version = "1"
    Options: ClassVar[type[FilterOptions]] = AggregatorOptions
    options: AggregatorOptions

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        limits = self.policy.data.aggregator
        domains = dict(people_search_domains())
        domains.update({d.lower(): "people-search" for d in self.options.extra_domains})
        out: list[Removal | None] = []
        review: list[tuple[int, PageSignals, float]] = []
        for index, document in enumerate(documents):
            kind, domain = _site(document.url, domains)
            if kind == "people-search":
                out.append(self.removal("domain", 1.0, 1.0, category="privacy", evidence=domain))
                continue
            factor = limits.paste_site_factor if kind == "paste" else 1.0
            signals = PageSignals(document.text)
            min_records = max(2, math.ceil(limits.min_records * factor))
            density_limit = limits.pii_density * factor
            if signals.records >= min_records:
                out.append(
                    self.removal(
                        "structure",
                        signals.records,
                        min_records,
                        category="privacy",
                        evidence=signals.summary(),
                    )
                )
            elif signals.person_markers and signals.density >= density_limit:
                out.append(self._density(signals, signals.density, density_limit))
            else:
                out.append(None)
                reviewable = signals.person_markers and self.options.presidio
                if reviewable and signals.density >= limits.pii_density_review * factor:
                    review.append((index, signals, density_limit))
        if review:
            self._review(documents, review, out)
        return out

    def _density(self, signals: PageSignals, density: float, limit: float) -> Removal:
        return self.removal(
            "pii_density", density, limit, category="privacy", evidence=signals.summary()
        )

    def _review(
        self,
        documents: Sequence[Document],
        review: list[tuple[int, PageSignals, float]],
        out: list[Removal | None],
    ) -> None:
        """Pages in the uncertain band: add presidio's names and places to the weighted count."""
        from presidio_analyzer import BatchAnalyzerEngine

        texts = [documents[i].text for i, _, _ in review]
        results = BatchAnalyzerEngine(self.models.presidio()).analyze_iterator(
            texts, language="en", entities=_PRESIDIO_ENTITIES, batch_size=16
        )
        for (index, signals, limit), found in zip(review, results, strict=True):
            entities = sum(1 for r in found if r.score >= 0.5)
            density = 1000.0 * (signals.weighted + _PRESIDIO_WEIGHT * entities) / signals.tokens
            if density >= limit:
                out[index] = self._density(signals, density, limit)


def _site(url: str | None, domains: dict[str, str]) -> tuple[str | None, str]:
    if not url:
        return None, ""
    levels, _ = host_levels(url)
    for level in levels:
        kind = domains.get(level)
        if kind is not None:
            return kind, level
    return None, ""
