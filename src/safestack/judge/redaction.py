"""Personal identifiers in free text replaced by typed placeholders (`[EMAIL]`, `[SSN]`).

The judge's fast PII patterns (`judge/detectors/rules.py`: email, card with Luhn check, SSN, IBAN
with its checksum, phone, IP address) find the spans; callers may add presidio's (spaCy NER) and
rewrite with `redact_text`. Used by the corpus filter's `redact` and by monitoring's scrub.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from safestack.judge.detectors.rules import PII_PATTERNS, iban_valid, luhn_valid

PLACEHOLDERS: dict[str, str] = {
    "EMAIL_ADDRESS": "[EMAIL]",
    "PHONE_NUMBER": "[PHONE]",
    "CREDIT_CARD": "[CREDIT_CARD]",
    "IBAN_CODE": "[IBAN]",
    "US_SSN": "[SSN]",
    "IP_ADDRESS": "[IP_ADDRESS]",
    "US_ITIN": "[ITIN]",
    "US_PASSPORT": "[PASSPORT]",
    "US_DRIVER_LICENSE": "[DRIVER_LICENSE]",
    "US_BANK_NUMBER": "[BANK_ACCOUNT]",
    "CRYPTO": "[CRYPTO_WALLET]",
    "PERSON": "[PERSON]",
    "LOCATION": "[LOCATION]",
}

Span = tuple[int, int, str]


def pattern_spans(text: str) -> list[Span]:
    """Spans of the fast PII patterns, checksums verified, earlier patterns winning overlaps."""
    spans: list[Span] = []
    for pii in PII_PATTERNS:
        for match in pii.pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e, _ in spans):
                continue
            if pii.check == "luhn" and not luhn_valid(match.group()):
                continue
            if pii.check == "iban" and not iban_valid(match.group()):
                continue
            spans.append((start, end, pii.label))
    return spans


def redact_text(text: str, spans: Sequence[Span]) -> tuple[str, Counter[str]]:
    """`text` with each span replaced by its placeholder (overlaps: the longer span wins)."""
    kept: list[Span] = []
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end, label))
    pieces: list[str] = []
    counts: Counter[str] = Counter()
    cursor = 0
    for start, end, label in kept:
        placeholder = PLACEHOLDERS.get(label, f"[{label}]")
        pieces += [text[cursor:start], placeholder]
        counts[placeholder.strip("[]")] += 1
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), counts
