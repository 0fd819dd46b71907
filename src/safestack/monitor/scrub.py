"""Scrubbing personal data from request text before anything about it is summarised.

All offline, each span replaced by a typed placeholder (`[EMAIL]`, `[PERSON]`): the judge's fast
PII patterns (email, card with Luhn check, SSN, IBAN, phone, IP address), runs of two or more
capitalised words (a full name, wherever it stands; place and product names go too: a summary
loses a little, a person is not named), and with `presidio` also presidio's recognisers over the
packaged spaCy model (names in lower case, locations, more identifiers; ~50-90 ms a request on a
loaded 2-core machine, so not the default). Clustering embeds and describes only scrubbed text;
`benchmarks/monitor.py` measures the share of seeded canaries removed by each mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from safestack.judge.builtin.models import BuiltinModels
from safestack.judge.detectors.pii import DEFAULT_ENTITIES
from safestack.judge.redaction import Span, pattern_spans, redact_text

Scrub = Literal["patterns", "presidio"]

# Two or more capitalised words in a row ("Ada Lovelace", "Mary-Jane O'Neil"): over-redacts
# places and brands on purpose; a summary never needs a name.
NAME_LIKE = re.compile(r"\b[A-Z][a-z'’]+(?:[- ][A-Z][a-z'’]+)+\b")

# Everything the pii detector looks for, names and places included (unlike the corpus filter), and
# URLs: a monitoring summary has no use for any of them.
ENTITIES = (*DEFAULT_ENTITIES, "URL")
MIN_SCORE = 0.3  # lower than the detector's 0.5: here a missed name costs more than a lost word


class Scrubber:
    """Replaces personal data in texts; `mode` 'presidio' adds spaCy NER to the patterns."""

    def __init__(self, models: BuiltinModels, mode: Scrub = "patterns", batch_size: int = 64):
        self.models = models
        self.mode = mode
        self.batch_size = batch_size

    def scrub(self, texts: Sequence[str]) -> list[str]:
        spans = [pattern_spans(text) + _name_like(text) for text in texts]
        if self.mode == "presidio" and texts:
            for found, extra in zip(spans, self._presidio(texts), strict=True):
                found.extend(extra)
        return [redact_text(text, found)[0] for text, found in zip(texts, spans, strict=True)]

    def _presidio(self, texts: Sequence[str]) -> list[list[Span]]:
        from presidio_analyzer import BatchAnalyzerEngine

        presidio = self.models.presidio("en")
        with presidio.lock:
            supported = set(presidio.engine.get_supported_entities("en"))
            results = BatchAnalyzerEngine(presidio.engine).analyze_iterator(
                list(texts),
                language="en",
                entities=[e for e in ENTITIES if e in supported],
                batch_size=self.batch_size,
            )
        return [
            [(r.start, r.end, r.entity_type) for r in found if r.score >= MIN_SCORE]
            for found in results
        ]


def _name_like(text: str) -> list[Span]:
    return [(m.start(), m.end(), "PERSON") for m in NAME_LIKE.finditer(text)]
