"""The built-in detectors: `harm`, `attack`, `refusal`, `response-harm` and `document-harm`, each a
two-tier cascade over USE Multilingual v3.

The fast tier averages a text's token vectors and applies a small calibrated head; where a label's
probability falls inside the policy's uncertainty band, the accurate tier (the fine-tuned encoder on
ONNX Runtime) judges it again, within a budget of pieces set by the options: which inputs escalate
is decided by the text and the fast tier's scores, never by the clock. Long texts are cut into
chunks; a label's score is its highest over chunks and decoded payloads. `refusal` and
`response-harm` judge a response together with its request (`Sample.request`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from safestack.judge.builtin.heads import Head, Matrix, Tier, pair_features
from safestack.judge.builtin.models import BuiltinModels, default_models
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.normalise import View
from safestack.policy import Policy
from safestack.records import Finding

# The accurate tier's cost per SentencePiece piece on one thread (benchmarks/embedders.py: ~11 ms
# for a 512-character message of 133 pieces). A budget in milliseconds becomes a budget in pieces
# with it, once, from the options: escalation is then decided by the text alone, never by the clock.
ACCURATE_MS_PER_PIECE = 0.09


class CascadeOptions(DetectorOptions):
    tiers: Literal["cascade", "fast", "accurate"] = Field(
        default="cascade", description="Run both tiers as a cascade, or only one of them."
    )
    band: tuple[float, float] = Field(
        default=(0.01, 0.99),
        description="Fast-tier probabilities inside [low, high] are uncertain and escalate "
        "(the model cards show quality and escalation rate for several bands).",
    )
    budget_ms: float = Field(
        default=50.0,
        gt=0,
        description="Latency budget per input for the accurate tier, enforced by size: at most "
        "budget_ms / 0.09 pieces of an input are escalated (the most uncertain chunks first). "
        "The same text always gets the same verdict, however busy the machine is.",
    )
    min_score: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Scores below this are not reported."
    )
    chunk_chars: int = Field(
        default=600,
        ge=100,
        description="Texts longer than this are judged in chunks of about this size.",
    )

    @model_validator(mode="after")
    def _band_order(self) -> CascadeOptions:
        low, high = self.band
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError("band must be [low, high] with 0 <= low <= high <= 1")
        return self

    @property
    def piece_budget(self) -> int:
        """Pieces of one input the accurate tier may read (from `budget_ms`)."""
        return max(1, int(self.budget_ms / ACCURATE_MS_PER_PIECE))


@dataclass(frozen=True, slots=True)
class _Chunk:
    sample: int
    source: str
    text: str
    start: int
    end: int
    view: int
    folded: bool = False  # cut from the leetspeak-folded text rather than the plain one


class BuiltinDetector(Detector):
    """Shared cascade logic; subclasses name the task and map head labels to policy categories.

    The embedders and heads come from `models`, the owner's `BuiltinModels` (the Python API's
    `default_models()` when none is given).
    """

    task: ClassVar[str]
    # Judged with the request alongside (`Sample.request`): refusals and harmful answers.
    pair: ClassVar[bool] = False
    version = "2"
    uses_builtin_models = True
    # The tiers' vectors depend on the text only (the int8 encoder reads one text per run), and
    # escalation is decided by the text, never by the clock.
    deterministic = True
    Options: ClassVar[type[DetectorOptions]] = CascadeOptions
    options: CascadeOptions
    # head label -> policy category (None: the label means "nothing to report")
    categories: ClassVar[dict[str, str | None]]

    def category_of(self, label: str) -> str | None:
        return self.categories.get(label)

    def __init__(
        self,
        policy: Policy,
        options: DetectorOptions | None = None,
        *,
        models: BuiltinModels | None = None,
    ):
        super().__init__(policy, options)
        self.models = models if models is not None else default_models()
        for category in self.categories.values():
            if category is not None:
                policy.category(category)
        heads = self.models.heads(self.task)
        # The vectors' source: the encoder the heads were fitted on, and the copy of it that runs.
        precision = "+int8" if self.models.precision == "int8" else ""
        self.version = f"{type(self).version}+{heads['accurate'].embedder}{precision}"

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        chunks = _chunks(samples, self.options.chunk_chars)
        if not chunks:
            return [[] for _ in samples]
        heads = self.models.heads(self.task)
        tier_of = np.full(len(chunks), "fast", dtype=object)
        if self.options.tiers == "accurate":
            probs = heads["accurate"].predict(self._features("accurate", samples, chunks))
            tier_of[:] = "accurate"
        else:
            probs = heads["fast"].predict(self._features("fast", samples, chunks))
            if self.options.tiers == "cascade":
                self._escalate(samples, chunks, probs, tier_of, heads)
        return self._findings(samples, chunks, probs, tier_of, heads["fast"].labels)

    def _features(
        self,
        tier: Tier,
        samples: Sequence[Sample],
        chunks: Sequence[_Chunk],
        ids: Sequence[list[int]] | None = None,
    ) -> Matrix:
        """Embeddings of the chunks; for a pair task, with their sample's request alongside."""
        model = self.models.embedder(tier)
        x = model.encode([c.text for c in chunks]) if ids is None else model.encode_ids(ids)
        if not self.pair:
            return x
        # Each sample's request once, however many chunks its response was cut into.
        owners = sorted({c.sample for c in chunks})
        encoded = model.encode([samples[i].request or "" for i in owners])
        row = {sample: n for n, sample in enumerate(owners)}
        return pair_features(encoded[[row[c.sample] for c in chunks]], x)

    def _escalate(
        self,
        samples: Sequence[Sample],
        chunks: list[_Chunk],
        probs: Matrix,
        tier_of: np.ndarray,
        heads: dict[Tier, Head],
    ) -> None:
        """Judge the uncertain chunks again with the accurate tier, within each input's piece
        budget, most uncertain first. Decided by the text and the fast tier's scores only."""
        head = heads["accurate"]
        reportable = [i for i, label in enumerate(heads["fast"].labels) if self.category_of(label)]
        unsure = uncertain(probs, reportable, self.options.band, [c.text for c in chunks])
        candidates = np.flatnonzero(unsure)
        if not len(candidates):
            return
        ids = self.models.encoder().tokenize([chunks[i].text for i in candidates])
        # Closest to 0.5 first: where the fast tier knows least, the encoder helps most.
        doubt = np.abs(probs[candidates][:, reportable] - 0.5).min(axis=1)
        budget = self.options.piece_budget
        spent: dict[int, int] = {}
        rows: list[int] = []
        row_ids: list[list[int]] = []
        for k in np.lexsort((candidates, doubt)).tolist():
            i = int(candidates[k])
            owner = chunks[i].sample
            cost = len(ids[k])
            if spent.get(owner, 0) + cost > budget:
                continue
            spent[owner] = spent.get(owner, 0) + cost
            rows.append(i)
            row_ids.append(ids[k])
        if not rows:
            return
        accurate = head.predict(
            self._features("accurate", samples, [chunks[i] for i in rows], row_ids)
        )
        probs[rows] = align_labels(head, heads["fast"], accurate)
        tier_of[rows] = "accurate"

    def _findings(
        self,
        samples: Sequence[Sample],
        chunks: list[_Chunk],
        probs: Matrix,
        tier_of: np.ndarray,
        labels: tuple[str, ...],
    ) -> list[list[Finding]]:
        columns = [j for j, label in enumerate(labels) if self.category_of(label) is not None]
        owner = np.fromiter((c.sample for c in chunks), dtype=np.int64, count=len(chunks))
        best: dict[tuple[int, str], tuple[float, int]] = {}
        # Chunks come grouped by sample: the best chunk per sample and label is a grouped argmax.
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        ends = np.r_[starts[1:], len(chunks)]
        for begin, end in zip(starts.tolist(), ends.tolist(), strict=True):
            block = probs[begin:end, columns]
            top_rows = block.argmax(axis=0)
            top = block[top_rows, np.arange(len(columns))]
            for k in np.flatnonzero(top >= self.options.min_score).tolist():
                best[(int(owner[begin]), labels[columns[k]])] = (
                    float(top[k]),
                    begin + int(top_rows[k]),
                )
        findings: list[list[Finding]] = [[] for _ in samples]
        for (index, label), (score, row) in sorted(best.items()):
            chunk = chunks[row]
            view = _view(samples[index], chunk.view)
            category = self.category_of(label)
            assert category is not None
            findings[index].append(
                self.finding(
                    category,
                    score,
                    source=chunk.source,
                    span=view.span(chunk.start, chunk.end, folded=chunk.folded),
                    evidence=f"[{tier_of[row]}] {_excerpt(chunk.text)}",
                    label=label,
                )
            )
        return findings


@detector("harm")
class HarmDetector(BuiltinDetector):
    """Per-category probabilities of harmful content, for prompts and responses."""

    task = "harm"
    categories: ClassVar[dict[str, str | None]] = {}  # every head label is a policy category

    def category_of(self, label: str) -> str | None:
        return label if label in self.policy.categories else None


@detector("attack")
class AttackDetector(BuiltinDetector):
    """Attacks on the instruction hierarchy: jailbreaks, injections, system-prompt extraction."""

    task = "attack"
    categories: ClassVar[dict[str, str | None]] = {
        "benign": None,
        "jailbreak": "jailbreak",
        "prompt-injection-direct": "prompt-injection",
        "prompt-injection-indirect": "prompt-injection",
        "system-prompt-extraction": "system-prompt-extraction",
    }


@detector("refusal")
class RefusalDetector(BuiltinDetector):
    """Did a model response refuse the request? `full` or `partial`; `none` is not reported."""

    task = "refusal"
    pair = True
    categories: ClassVar[dict[str, str | None]] = {
        "none": None,
        "partial": "refusal",
        "full": "refusal",
    }


@detector("response-harm")
class ResponseHarmDetector(HarmDetector):
    """Harmful help in a model response, judged given the request (`Sample.request`): the same
    answer can be fine for one request and harmful for another. Severity from the policy's scale."""

    task = "response-harm"
    pair = True


@detector("document-harm")
class DocumentHarmDetector(HarmDetector):
    """Harmful documents for the corpus filter: long text judged in windows, trained with ordinary
    technical pages, changelogs, advisories, news, history, medicine and law as negatives."""

    task = "document-harm"


def _chunks(samples: Sequence[Sample], size: int) -> list[_Chunk]:
    """Every view of every sample cut into chunks, plus the leetspeak-folded text where it differs."""
    chunks = []
    for index, sample in enumerate(samples):
        for number, view in enumerate(sample.normalised.views()):
            for text, folded in ((view.text, False), (view.folded, True)):
                if folded and text == view.text:
                    continue
                for start, end in _cuts(text, size):
                    chunks.append(
                        _Chunk(index, view.source, text[start:end], start, end, number, folded)
                    )
    return chunks


_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
MIN_SENTENCE_CHARS = 20


def _cuts(text: str, size: int) -> list[tuple[int, int]]:
    """[start, end) pieces to embed: the whole text when short, else windows and sentences.

    A short message is judged whole, as the heads were trained. A long one is cut into windows of
    about `size` characters (ending at a sentence where one is near) and, as mean-pooled embeddings
    dilute one harmful sentence among benign ones, into its sentences too.
    """
    if len(text) <= size:
        return [(0, len(text))] if text.strip() else []
    cuts = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            window = text[start + size // 2 : end]
            sentence = max(
                window.rfind(". "), window.rfind("\n"), window.rfind("? "), window.rfind("! ")
            )
            space = window.rfind(" ")
            if sentence >= 0:
                end = start + size // 2 + sentence + 1
            elif space >= 0:
                end = start + size // 2 + space
        if text[start:end].strip():
            cuts.append((start, end))
        start = end
    for match in _SENTENCE.finditer(text):
        piece = match.group()
        if len(piece.strip()) >= MIN_SENTENCE_CHARS and len(piece) <= size:
            lead = len(piece) - len(piece.lstrip())
            cuts.append((match.start() + lead, match.end()))
    return cuts


SHORT_WORDS = 4  # a static embedding of one or two words is a single token's vector: no evidence


def uncertain(
    probs: Matrix, reportable: Sequence[int], band: tuple[float, float], texts: Sequence[str]
) -> np.ndarray:
    """Rows the fast tier cannot settle: a reportable probability inside the band, or a text too
    short for static embeddings to carry meaning ("What?" scored 0.99 privacy on the fast tier)."""
    low, high = band
    in_band = ((probs[:, reportable] >= low) & (probs[:, reportable] <= high)).any(axis=1)
    short = np.fromiter((len(t.split()) < SHORT_WORDS for t in texts), dtype=bool, count=len(texts))
    return np.asarray(in_band | short)


def _view(sample: Sample, number: int) -> View:
    for index, view in enumerate(sample.normalised.views()):
        if index == number:
            return view
    raise IndexError(number)


def _excerpt(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def align_labels(source: Head, target: Head, probs: Matrix) -> Matrix:
    """`probs` of `source`'s labels laid out as `target`'s (a label one tier lacks scores 0):
    the tiers' heads may differ when a label was too thin to train for one of them."""
    if source.labels == target.labels:
        return probs
    out = np.zeros((len(probs), len(target.labels)), dtype=np.float32)
    for j, label in enumerate(target.labels):
        if label in source.labels:
            out[:, j] = probs[:, source.labels.index(label)]
    return out
