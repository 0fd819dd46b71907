"""The `redact` corpus filter: personal identifiers replaced by typed placeholders, never a removal.

The judge's fast PII patterns (`judge/detectors/rules.py`: email, card with Luhn check, SSN, IBAN
with its checksum, phone, IP address) rewrite `document.text` in place, e.g. `[EMAIL]`; with the
`presidio` option, presidio's recognisers (spaCy NER, offline) add the entity types listed. Counts
per placeholder go to `document.metadata["redactions"]`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from safestack.data.document import Document, Removal
from safestack.data.filters.base import FilterOptions, corpus_filter
from safestack.data.filters.models import ModelFilter
from safestack.judge.redaction import PLACEHOLDERS, Span, pattern_spans, redact_text

# The patterns and the rewriting live in the judge (monitoring scrubs with them too).
__all__ = ["PLACEHOLDERS", "RedactFilter", "RedactOptions", "pattern_spans", "redact_text"]

# Names and places are left out by default: a corpus without them loses more than it protects.
_PRESIDIO_DEFAULT = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "US_BANK_NUMBER",
    "IBAN_CODE",
    "IP_ADDRESS",
    "CRYPTO",
)


class RedactOptions(FilterOptions):
    presidio: bool = Field(
        default=False,
        description="Also run presidio (spaCy NER; ~16 ms per 500 characters, so off by default).",
    )
    presidio_entities: tuple[str, ...] = Field(
        default=_PRESIDIO_DEFAULT, description="Presidio entity types to redact."
    )
    min_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Presidio's score floor.")


@corpus_filter("redact")
class RedactFilter(ModelFilter):
    """Rewrite personal identifiers as typed placeholders; keeps every document."""

    version = "1"
    Options: ClassVar[type[FilterOptions]] = RedactOptions
    options: RedactOptions

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        found = [pattern_spans(d.text) for d in documents]
        if self.options.presidio:
            for spans, extra in zip(found, self._presidio(documents), strict=True):
                spans.extend(extra)
        for document, spans in zip(documents, found, strict=True):
            if not spans:
                continue
            document.text, counts = redact_text(document.text, spans)
            previous = document.metadata.get("redactions") or {}
            document.metadata["redactions"] = dict(Counter(previous) + counts)
        return [None] * len(documents)

    def _presidio(self, documents: Sequence[Document]) -> list[list[Span]]:
        from presidio_analyzer import BatchAnalyzerEngine

        results = BatchAnalyzerEngine(self.models.presidio()).analyze_iterator(
            [d.text for d in documents],
            language="en",
            entities=list(self.options.presidio_entities),
            batch_size=16,
        )
        return [
            [(r.start, r.end, r.entity_type) for r in found if r.score >= self.options.min_score]
            for found in results
        ]
