"""The `harm` corpus filter: the built-in harm model judging whole documents, chunk by chunk.

A document is cut into windows of about 600 characters, embedded by the fast (static) tier in one
pass per batch. A category's document score is its worst *segment* (up to 2,400 characters of
consecutive windows, mean-pooled: a short page is judged whole, a long one piece by piece), and the
worst window inside that segment is the evidence. `sexual/minors` is always removed.
`score_documents` is shared with the `adult` filter, which reads the `sexual` column.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from safestack.data.document import Document, Removal
from safestack.data.filters.base import Filter, FilterOptions, corpus_filter
from safestack.errors import PolicyError
from safestack.judge.builtin.heads import Head, Matrix
from safestack.policy import Policy

SEXUAL_MINORS = "sexual/minors"
_CACHE_SIZE = 8192  # documents: the adult and harm filters of one pipeline share their scores


@dataclass(frozen=True, slots=True)
class DocumentScores:
    """One document's worst-segment probability per head label, and its worst window's place."""

    labels: tuple[str, ...]
    top: Matrix  # (labels,)
    spans: np.ndarray  # (labels, 2): [start, end) of the evidence window per label
    tier: str  # "fast", or "accurate" when the document was escalated

    def score(self, label: str) -> float:
        return float(self.top[self.labels.index(label)])

    def evidence(self, text: str, label: str) -> str:
        start, end = self.spans[self.labels.index(label)]
        return f"[{self.tier}] " + " ".join(text[int(start) : int(end)].split())


class _FastTier:
    """The fast tier, rebuilt for throughput: whitespace words are tokenized once per process
    (the model's WordPiece on each distinct word) and a window's embedding is the normalised sum
    of its tokens' static vectors: the same vector `StaticModel.encode` gives, about 4x sooner."""

    def __init__(self) -> None:
        from model2vec import StaticModel

        from safestack.judge.builtin.embedders import models_dir, static_embedder

        self.name = static_embedder().name
        model = StaticModel.from_pretrained(
            (models_dir() / "static").resolve(), normalize=True, force_download=False
        )
        self._tokenizer: Any = model.tokenizer
        self._unk = model.unk_token_id
        self._vectors = np.asarray(model.embedding, dtype=np.float32)
        self._ids: dict[str, list[int]] = {}

    def encode_words(self, windows: list[list[str]]) -> Matrix:
        """Un-normalised sums of token vectors, one row per window: segments add rows up."""
        unseen = set(chain.from_iterable(windows)).difference(self._ids)
        if len(self._ids) + len(unseen) > 2_000_000:
            self._ids.clear()  # bounded memory on endless unique tokens (hashes, ids)
            unseen = set(chain.from_iterable(windows))
        if unseen:
            words = list(unseen)
            encoded = self._tokenizer.encode_batch_fast(words, add_special_tokens=False)
            for word, encoding in zip(words, encoded, strict=True):
                self._ids[word] = [i for i in encoding.ids if i != self._unk]
        lookup = self._ids.__getitem__
        out = np.zeros((len(windows), self._vectors.shape[1]), dtype=np.float32)
        for row, words_ in enumerate(windows):
            ids = list(chain.from_iterable(map(lookup, words_)))
            if ids:
                out[row] = np.add.reduce(self._vectors.take(ids, axis=0), axis=0)
        return out


def _normalised(vectors: Matrix) -> Matrix:
    out: Matrix = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-32)
    return out


@cache
def _fast_tier() -> _FastTier:
    return _FastTier()


@cache
def _heads() -> dict[str, Head]:
    from safestack.judge.builtin.cascade import load_heads

    return {str(tier): head for tier, head in load_heads("harm").items()}


def windows(text: str, size: int) -> list[tuple[int, int]]:
    """[start, end) windows of about `size` characters, ended at a space when one is near."""
    cuts: list[tuple[int, int]] = []
    start, length = 0, len(text)
    while start < length:
        end = min(length, start + size)
        if end < length:
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > start else end
        if not text[start:end].isspace():
            cuts.append((start, end))
        start = end
    return cuts


_cache: OrderedDict[tuple[int, int, bool, str], DocumentScores] = OrderedDict()


def score_documents(
    texts: Sequence[str],
    *,
    chunk_chars: int = 600,
    segment_chars: int = 2400,
    escalate_band: tuple[float, float] | None = None,
    escalate_labels: Sequence[str] = (),
) -> list[DocumentScores]:
    """Harm-model scores of whole documents: one fast-tier pass over all windows of all texts.

    With `escalate_band`, a document whose score for one of `escalate_labels` falls inside the
    band is judged again by the accurate tier (the ONNX MiniLM encoder) window by window; its
    segments are then the normalised mean of their windows' encoder embeddings.
    """
    per_segment = max(1, segment_chars // chunk_chars)
    key = (chunk_chars, per_segment, escalate_band is not None)
    result: list[DocumentScores | None] = [_cache.get((*key, t)) for t in texts]
    todo = [i for i, found in enumerate(result) if found is None]
    if todo:
        fresh = _score(
            [texts[i] for i in todo],
            chunk_chars,
            per_segment,
            escalate_band,
            tuple(escalate_labels),
        )
        for i, scores in zip(todo, fresh, strict=True):
            result[i] = _cache[(*key, texts[i])] = scores
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return [r for r in result if r is not None]


def _score(
    texts: list[str],
    chunk_chars: int,
    per_segment: int,
    band: tuple[float, float] | None,
    escalate_labels: tuple[str, ...],
) -> list[DocumentScores]:
    heads = _heads()
    fast = heads["fast"]
    cuts = [windows(t, chunk_chars) or [(0, 0)] for t in texts]
    words = [texts[d][a:b].split() for d, doc_cuts in enumerate(cuts) for a, b in doc_cuts]
    sums = _fast_tier().encode_words(words)
    bounds = np.cumsum([0, *(len(c) for c in cuts)])
    out = [
        _worst(fast, sums[bounds[d] : bounds[d + 1]], cuts[d], per_segment, "fast")
        for d in range(len(texts))
    ]
    if band is None:
        return out
    columns = [fast.labels.index(label) for label in escalate_labels]
    low, high = band
    unsure = [
        d for d, s in enumerate(out) if ((s.top[columns] >= low) & (s.top[columns] <= high)).any()
    ]
    if unsure:
        from safestack.judge.builtin.embedders import encoder

        rows = [texts[d][a:b] for d in unsure for a, b in cuts[d]]
        embedded = encoder().encode(rows)
        start = 0
        for d in unsure:
            stop = start + len(cuts[d])
            out[d] = _worst(
                heads["accurate"], embedded[start:stop], cuts[d], per_segment, "accurate"
            )
            start = stop
    return out


def _worst(
    head: Head, vectors: Matrix, cuts: list[tuple[int, int]], per_segment: int, tier: str
) -> DocumentScores:
    """Worst segment per label (a segment: `per_segment` consecutive windows, pooled), with the
    worst window of that segment as evidence."""
    window_probs = head.predict(_normalised(vectors))
    starts = np.arange(0, len(cuts), per_segment)
    segment_probs = head.predict(_normalised(np.add.reduceat(vectors, starts, axis=0)))
    worst_segment = segment_probs.argmax(axis=0)
    labels = np.arange(segment_probs.shape[1])
    top = segment_probs[worst_segment, labels]
    rows = np.empty(len(labels), dtype=np.int64)
    for label in labels.tolist():
        first = int(starts[worst_segment[label]])
        block = window_probs[first : first + per_segment, label]
        rows[label] = first + int(block.argmax())
    spans = np.asarray(cuts, dtype=np.int64)[rows]
    return DocumentScores(head.labels, top, spans, tier)


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
class HarmFilter(Filter):
    """Remove documents the harm model scores above the policy's per-category thresholds."""

    version = "1"
    Options: ClassVar[type[FilterOptions]] = HarmOptions
    options: HarmOptions

    def __init__(self, policy: Policy, options: FilterOptions | None = None) -> None:
        super().__init__(policy, options)
        labels = _heads()["fast"].labels
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
        scored = score_documents(
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
