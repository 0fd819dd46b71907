"""The `harm` corpus filter: the built-in harm model judging whole documents, chunk by chunk.

A category's document score is its worst segment (`scoring.DocumentScorer`, shared with the
`adult` filter, which reads the `sexual` column); the worst window in it is the evidence.
Thresholds come from the policy's `data.harm`; `sexual/minors` is always removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field, model_validator

from safestack.data.document import Document, Removal
from safestack.data.filters.base import FilterOptions, corpus_filter
from safestack.data.filters.models import FilterModels, ModelFilter
from safestack.data.filters.scoring import DocumentScores, windows
from safestack.errors import PolicyError
from safestack.policy import Policy

__all__ = ["SEXUAL_MINORS", "DocumentScores", "HarmFilter", "HarmOptions", "reason_code", "windows"]

SEXUAL_MINORS = "sexual/minors"


class HarmOptions(FilterOptions):
    chunk_chars: int = Field(
        default=600, ge=100, le=4000, description="Window size; the worst window is the evidence."
    )
    segment_chars: int = Field(
        default=2400,
        ge=100,
        le=100_000,
        description="Span judged as one (whole windows, pooled); the worst segment decides.",
    )
    escalate: bool = Field(
        default=False,
        description="Re-judge uncertain documents with the accurate tier (ONNX MiniLM, ~30x "
        "slower per window); off for corpus scale, on for small or high-stakes corpora.",
    )
    band: tuple[float, float] = Field(
        default=(0.5, 0.99), description="Worst-window scores escalated when `escalate` is on."
    )

    @model_validator(mode="after")
    def _band_order(self) -> HarmOptions:
        if not 0.0 <= self.band[0] <= self.band[1] <= 1.0:
            raise ValueError("band must be [low, high] with 0 <= low <= high <= 1")
        return self


def reason_code(category: str) -> str:
    """'self-harm/intent' -> 'self_harm_intent': reason codes are dotted identifiers."""
    return category.replace("/", "_").replace("-", "_")


@corpus_filter("harm")
class HarmFilter(ModelFilter):
    """Remove documents the harm model scores above the policy's per-category thresholds."""

    version = "1"
    Options: ClassVar[type[FilterOptions]] = HarmOptions
    options: HarmOptions

    def __init__(
        self,
        policy: Policy,
        options: FilterOptions | None = None,
        models: FilterModels | None = None,
    ) -> None:
        super().__init__(policy, options, models)
        labels = self.scorer.labels
        settings = policy.data.harm
        unknown = sorted(set(settings.categories) - set(labels))
        if unknown:
            raise PolicyError(
                f"data.harm.categories names {unknown}, which the harm model does not score; "
                f"known: {', '.join(labels)}"
            )
        self.thresholds: dict[str, float] = {}
        for label in labels:
            threshold = settings.threshold(label)
            if threshold is not None:
                self.thresholds[label] = threshold
        self.sexual_minors_removed = 0  # counted apart from the other reasons, for reporting

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        band = self.options.band if self.options.escalate else None
        scored = self.scorer.score(
            [d.text for d in documents],
            chunk_chars=self.options.chunk_chars,
            segment_chars=self.options.segment_chars,
            escalate_band=band,
            escalate_labels=tuple(self.thresholds),
        )
        out: list[Removal | None] = []
        for document, scores in zip(documents, scored, strict=True):
            out.append(self._judge(document, scores))
        return out

    def _judge(self, document: Document, scores: DocumentScores) -> Removal | None:
        minors = scores.score(SEXUAL_MINORS)
        threshold = self.thresholds[SEXUAL_MINORS]
        if minors >= threshold:
            self.sexual_minors_removed += 1
            return self.removal(
                "sexual_minors",
                minors,
                threshold,
                category=SEXUAL_MINORS,
                evidence=scores.evidence(document.text, SEXUAL_MINORS),
            )
        worst: tuple[float, str] | None = None
        for label, threshold in self.thresholds.items():
            score = scores.score(label)
            if score >= threshold and (worst is None or score - threshold > worst[0]):
                worst = (score - threshold, label)
        if worst is None:
            return None
        label = worst[1]
        return self.removal(
            reason_code(label),
            scores.score(label),
            self.thresholds[label],
            category=label,
            evidence=scores.evidence(document.text, label),
        )
