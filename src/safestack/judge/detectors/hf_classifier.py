"""The `hf-classifier` detector: a local sequence classifier (Prompt Guard-style) whose labels
map to policy categories. Long inputs are scored in overlapping windows; the worst is the evidence.
Model loading, shared with `hf-llama-guard`, is in `hf_loading.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from safestack.errors import DetectorError, PolicyError
from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.detectors.hf_loading import load_local_model
from safestack.judge.normalise import View
from safestack.policy import Policy
from safestack.records import Finding

CLASSIFIER = "hf-classifier"
EVIDENCE_CHARS = 200


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


class ClassifierOptions(DetectorOptions):
    model: Path = Field(description="Local directory with config.json, weights and tokenizer.")
    labels: dict[str, str | None] = Field(
        description="Every label of the model (config id2label) -> a policy category, or null for "
        "benign. Prompt Guard: {BENIGN: null, INJECTION: prompt-injection, JAILBREAK: jailbreak}."
    )
    multi_label: bool | None = Field(
        default=None,
        description="Sigmoid per label (true) or softmax over labels (false); "
        "default: true when config.problem_type is multi_label_classification.",
    )
    max_length: int = Field(
        default=512, ge=4, description="Tokens per window, capped at the model's limit."
    )
    stride: int = Field(
        default=64, ge=0, description="Tokens shared by consecutive windows of a long input."
    )
    batch_size: int = Field(default=16, ge=1, description="Windows per forward pass.")
    min_score: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Scores below this are not reported; 0 reports all (calibration).",
    )
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class Window:
    """One slice of tokens of one view, and the characters of the view it covers."""

    view: int
    start: int
    end: int
    inputs: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class _Hit:
    score: float
    label: str
    view: View
    start: int
    end: int


def _label_names(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in sorted(config.id2label)]


@detector(CLASSIFIER)
class HFClassifier(Detector):
    """A local `AutoModelForSequenceClassification`, its labels mapped to policy categories.

    Long inputs are split into overlapping windows; a category's score is its highest score over
    the windows of the text and of every decoded payload, and the evidence is that window. With
    softmax, labels mapped to the same category add up (Prompt Guard's own advice for injections
    in third-party data: P(injection) + P(jailbreak)); with sigmoid the highest label counts.
    """

    version = "1"
    Options = ClassifierOptions
    options: ClassifierOptions

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(policy, options)
        opts = self.options
        self._torch, self.tokenizer, self.model = load_local_model(
            CLASSIFIER,
            opts.model,
            "AutoModelForSequenceClassification",
            opts.device,
            check=lambda config: self._map_labels(_label_names(config)),
        )
        # The model is part of what the detector is: findings of another model differ.
        self.version = f"{type(self).version}+{opts.model.resolve().name}"
        config = self.model.config
        self._label_names = _label_names(config)
        self._targets = self._map_labels(self._label_names)
        self._multi_label = (
            opts.multi_label
            if opts.multi_label is not None
            else config.problem_type == "multi_label_classification"
        )
        if not getattr(self.tokenizer, "is_fast", False):
            raise DetectorError(
                CLASSIFIER,
                f"{opts.model} has no fast tokenizer (tokenizer.json); windows need offsets",
            )
        if self.tokenizer.pad_token is None:  # e.g. GPT-2 style classifiers
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
            config.pad_token_id = self.tokenizer.pad_token_id
        limit = self.tokenizer.model_max_length
        if not limit or limit > 1_000_000:  # "no limit" sentinel: fall back to the position table
            limit = getattr(config, "max_position_embeddings", None) or opts.max_length
        self._max_length = min(opts.max_length, limit)
        room = self._max_length - self.tokenizer.num_special_tokens_to_add()
        if opts.stride >= room:
            raise PolicyError(
                f"judge.detectors[{CLASSIFIER}].options.stride: {opts.stride} must be smaller "
                f"than the {room} text tokens of a {self._max_length}-token window"
            )

    def _map_labels(self, names: list[str]) -> dict[str, str]:
        """Model label -> category for the labels that are not benign; PolicyError if incomplete."""
        where = f"judge.detectors[{CLASSIFIER}].options.labels"
        mapping = self.options.labels
        missing = [n for n in names if n not in mapping]
        if missing:
            raise PolicyError(
                f"{where}: the model in {self.options.model} has label(s) {', '.join(missing)} "
                f"with no mapping; map every one of {', '.join(names)} to a category or null "
                "for benign"
            )
        extra = [n for n in mapping if n not in names]
        if extra:
            raise PolicyError(
                f"{where}: {', '.join(extra)} is not a label of the model in {self.options.model} "
                f"(its labels: {', '.join(names)})"
            )
        targets = {n: c for n, c in mapping.items() if c is not None}
        for label, category in targets.items():
            if category not in self.policy.categories:
                raise PolicyError(
                    f"{where}.{label}: '{category}' is not a category of policy {self.policy.ref}; "
                    f"known: {', '.join(self.policy.categories)}"
                )
        if not targets:
            raise PolicyError(
                f"{where}: every label is mapped to null, so nothing could ever be found"
            )
        return targets

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        views = [
            (i, v) for i, s in enumerate(samples) for v in s.normalised.views() if v.text.strip()
        ]
        windows = self.windows([v.text for _, v in views])
        best: list[dict[str, _Hit]] = [{} for _ in samples]
        for window, probs in zip(windows, self._probabilities(windows), strict=True):
            sample_index, view = views[window.view]
            for category, (score, label) in self._category_scores(probs).items():
                held = best[sample_index].get(category)
                if held is None or score > held.score:
                    best[sample_index][category] = _Hit(
                        score, label, view, window.start, window.end
                    )
        return [
            [
                self.finding(
                    category,
                    hit.score,
                    source=hit.view.source,
                    span=hit.view.span(hit.start, hit.end),
                    evidence=_snippet(hit.view.text[hit.start : hit.end]),
                    label=hit.label,
                )
                for category, hit in sorted(hits.items())
                if hit.score >= self.options.min_score
            ]
            for hits in best
        ]

    def windows(self, texts: Sequence[str]) -> list[Window]:
        """Overlapping token windows of each text (`stride` tokens shared) and their characters."""
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self._max_length,
            stride=self.options.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        names = [n for n in self.tokenizer.model_input_names if n in encoded]
        windows = []
        for row, text_index in enumerate(encoded["overflow_to_sample_mapping"]):
            offsets = [
                (s, e)
                for (s, e), special in zip(
                    encoded["offset_mapping"][row], encoded["special_tokens_mask"][row], strict=True
                )
                if not special and e > s
            ]
            if offsets:
                inputs = {n: list(encoded[n][row]) for n in names}
                windows.append(
                    Window(text_index, offsets[0][0], max(e for _, e in offsets), inputs)
                )
        return windows

    def _probabilities(self, windows: list[Window]) -> list[list[float]]:
        """Label probabilities per window, shortest windows batched together to limit padding."""
        torch = self._torch
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].inputs["input_ids"]))
        probs: list[list[float]] = [[] for _ in windows]
        size = self.options.batch_size
        for first in range(0, len(order), size):
            chunk = order[first : first + size]
            batch = self.tokenizer.pad([windows[i].inputs for i in chunk], return_tensors="pt")
            batch = {k: v.to(self.options.device) for k, v in batch.items()}
            try:
                with torch.inference_mode():
                    logits = self.model(**batch).logits.float()
            except RuntimeError as exc:
                raise DetectorError(
                    CLASSIFIER, f"inference failed on {self.options.model}: {exc}"
                ) from exc
            scores = logits.sigmoid() if self._multi_label else logits.softmax(dim=-1)
            for i, row in zip(chunk, scores.cpu().tolist(), strict=True):
                probs[i] = row
        return probs

    def _category_scores(self, probs: list[float]) -> dict[str, tuple[float, str]]:
        """Category -> (score, the model label that contributed most) for one window."""
        scores: dict[str, tuple[float, str]] = {}
        for name, p in zip(self._label_names, probs, strict=True):
            category = self._targets.get(name)
            if category is None:
                continue
            if category not in scores:
                scores[category] = (p, name)
                continue
            held, label = scores[category]
            top = name if p > held else label
            scores[category] = (max(held, p) if self._multi_label else held + p, top)
        return scores
