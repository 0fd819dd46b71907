"""`document-harm` model scores of whole documents, shared by the `adult` and `harm` filters of one
pipeline: ~600-character windows embedded by the fast tier, a category's score its worst segment (up to
2,400 characters of pooled windows), the worst window in it the evidence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from safestack.judge.builtin import BuiltinModels

if TYPE_CHECKING:
    from safestack.judge.builtin.heads import Head, Matrix

# The model trained for documents: windows of long pages, with ordinary technical documentation,
# changelogs, advisories, news, history, medicine and law as negatives (docs/models/).
HEADS = "document-harm"
CACHE_SIZE = 8192  # documents: enough for the batches in flight between the adult and harm filters


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


class FastTier:
    """The fast tier, rebuilt for throughput: whitespace words are cut into SentencePiece pieces
    once per scorer, and a window's embedding is the normalised sum of its pieces' USE vectors:
    the vector the serving fast tier (`StaticEmbedder`) gives, without re-tokenizing every page."""

    def __init__(self, models: BuiltinModels) -> None:
        self.name = models.static_embedder().name
        self._vocabulary = models.vocabulary()
        self._ids: dict[str, list[int]] = {}

    def encode_words(self, windows: list[list[str]]) -> Matrix:
        """Un-normalised sums of token vectors, one row per window: segments add rows up."""
        unseen = set(chain.from_iterable(windows)).difference(self._ids)
        if len(self._ids) + len(unseen) > 2_000_000:
            self._ids.clear()  # bounded memory on endless unique tokens (hashes, ids)
            unseen = set(chain.from_iterable(windows))
        if unseen:
            words = list(unseen)
            for word, ids in zip(words, self._vocabulary.ids(words), strict=True):
                self._ids[word] = ids[1:-1]  # without the sentence markers
        lookup = self._ids.__getitem__
        out = np.zeros((len(windows), self._vocabulary.table.shape[1]), dtype=np.float32)
        for row, words_ in enumerate(windows):
            ids = list(chain.from_iterable(map(lookup, words_)))
            if ids:
                out[row] = self._vocabulary.vectors(ids).sum(axis=0)
        return out


def normalised(vectors: Matrix) -> Matrix:
    out: Matrix = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-32)
    return out


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


class DocumentScorer:
    """The harm model over whole documents, with the scores of recent documents kept.

    Models load on first use from `models` (the run's `BuiltinModels`; a new one by default), so
    a pipeline without model-backed filters pays nothing. Pickled (to a spawned or Ray worker) it
    travels without its models and scores, which reload there into the worker's own registry.
    """

    def __init__(self, cache_size: int = CACHE_SIZE, models: BuiltinModels | None = None) -> None:
        self.cache_size = cache_size
        self.models = models if models is not None else BuiltinModels()
        self._fast: FastTier | None = None
        self._cache: OrderedDict[tuple[int, int, bool, str], DocumentScores] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"cache_size": self.cache_size, "models": self.models}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cache_size = state["cache_size"]
        self.models = state["models"]  # arrives empty (BuiltinModels pickles without its models)
        self._fast, self._cache = None, OrderedDict()

    @property
    def heads(self) -> dict[str, Head]:
        return {str(tier): head for tier, head in self.models.heads(HEADS).items()}

    @property
    def fast(self) -> FastTier:
        if self._fast is None:
            self._fast = FastTier(self.models)
        return self._fast

    @property
    def labels(self) -> tuple[str, ...]:
        """The categories the harm model scores (its fast head's labels)."""
        return tuple(self.heads["fast"].labels)

    def clear(self) -> None:
        """Forget the kept scores (a benchmark does, so each filter pays for its embeddings)."""
        self._cache.clear()

    def score(
        self,
        texts: Sequence[str],
        *,
        chunk_chars: int = 600,
        segment_chars: int = 2400,
        escalate_band: tuple[float, float] | None = None,
        escalate_labels: Sequence[str] = (),
    ) -> list[DocumentScores]:
        """Harm-model scores of whole documents: one fast-tier pass over all windows of all texts.

        With `escalate_band`, a document whose score for one of `escalate_labels` falls inside the
        band is judged again by the accurate tier (the fine-tuned ONNX encoder) window by window; its
        segments are then the normalised mean of their windows' encoder embeddings.
        """
        per_segment = max(1, segment_chars // chunk_chars)
        key = (chunk_chars, per_segment, escalate_band is not None)
        result: list[DocumentScores | None] = [self._cache.get((*key, t)) for t in texts]
        todo = [i for i, found in enumerate(result) if found is None]
        if todo:
            fresh = self.compute(
                [texts[i] for i in todo],
                chunk_chars,
                per_segment,
                escalate_band,
                tuple(escalate_labels),
            )
            for i, scores in zip(todo, fresh, strict=True):
                result[i] = self._cache[(*key, texts[i])] = scores
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [r for r in result if r is not None]

    def compute(
        self,
        texts: list[str],
        chunk_chars: int,
        per_segment: int,
        band: tuple[float, float] | None,
        escalate_labels: tuple[str, ...],
    ) -> list[DocumentScores]:
        """Score `texts` afresh (`score` without the kept scores)."""
        heads = self.heads
        fast = heads["fast"]
        cuts = [windows(t, chunk_chars) or [(0, 0)] for t in texts]
        words = [texts[d][a:b].split() for d, doc_cuts in enumerate(cuts) for a, b in doc_cuts]
        sums = self.fast.encode_words(words)
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
            d
            for d, s in enumerate(out)
            if ((s.top[columns] >= low) & (s.top[columns] <= high)).any()
        ]
        if unsure:
            rows = [texts[d][a:b] for d in unsure for a, b in cuts[d]]
            embedded = self.models.encoder().encode(rows)
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
    window_probs = head.predict(normalised(vectors))
    starts = np.arange(0, len(cuts), per_segment)
    segment_probs = head.predict(normalised(np.add.reduceat(vectors, starts, axis=0)))
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
