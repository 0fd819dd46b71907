"""Redaction: personal data replaced by typed placeholders (`[EMAIL_ADDRESS]`, `[US_SSN]`).

The spans come from the findings (rules and presidio both map them to the original text); spans
that overlap are merged and take the label of the most confident finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from safestack.policy import Policy
from safestack.records import Finding, Verdict

REDACTED_CATEGORY = "privacy"


@dataclass(frozen=True, slots=True)
class Redaction:
    start: int
    end: int
    label: str


def redactions(verdict: Verdict, policy: Policy, *, offset: int = 0) -> list[Redaction]:
    """Merged spans of the verdict's privacy findings at or above the threshold, shifted by `offset`
    (for a verdict on a window whose first `-offset` characters are not part of the target text)."""
    threshold = policy.threshold(REDACTED_CATEGORY)
    found: list[Finding] = [
        f
        for f in verdict.findings
        if f.category == REDACTED_CATEGORY and f.span is not None and f.score >= threshold
    ]
    found.sort(key=lambda f: (f.span.start if f.span else 0, -f.score))
    merged: list[tuple[int, int, Finding]] = []
    for finding in found:
        assert finding.span is not None
        start, end = finding.span.start + offset, finding.span.end + offset
        if end <= 0 or end <= start:
            continue
        start = max(start, 0)
        if merged and start < merged[-1][1]:
            first, last, best = merged[-1]
            merged[-1] = (first, max(last, end), best if best.score >= finding.score else finding)
        else:
            merged.append((start, end, finding))
    return [Redaction(s, e, f.label or "PII") for s, e, f in merged]


def apply(text: str, spans: list[Redaction]) -> str:
    out: list[str] = []
    last = 0
    for span in spans:
        if span.start < last or span.start >= len(text):
            continue
        out.append(text[last : span.start])
        out.append(f"[{span.label}]")
        last = min(span.end, len(text))
    out.append(text[last:])
    return "".join(out)
