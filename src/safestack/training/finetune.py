"""Fine-tuning the accurate tier: USE Multilingual v3's encoder and a head per task, end to end.

One encoder serves every task (one pass per text at serving time), trained on all of them at once:
each step draws one task (probability ~ sqrt of its size) and a batch from it (each example weighted
by 1/sqrt of its source's size, as the heads always were). Pair tasks (`refusal`, `response-harm`)
embed the request and the response with the same encoder and judge [u, v, u*v, |u-v|]. Attacks
whose kind a source does not say train "not benign" (-log(1 - p_benign)) without a guessed kind.
The per-token layers (the token table, the projections and the n-gram CNN, 90% of the compute)
stay frozen and run once per text; the layers above the sum over tokens (the last layer norm's
scale and shift, the projection and the deep-averaging network) and the heads are trained. On two
CPU cores that is minutes instead of days; the cost is measured in the model card.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from safestack.datasets.examples import ATTACK_UNSPECIFIED, PAIR_TASKS, Example, Task
from safestack.judge.builtin.use_m3 import Vocabulary
from safestack.training.encoder_model import UseTrunk

SEED = 20261204
TRAIN_PIECES = 128  # pieces per text while training (serving reads up to 256)
DOCUMENT_WINDOW = 600
MAX_POS_WEIGHT = 20.0  # characters: documents are judged in windows of about this size


@dataclass
class Settings:
    steps: int = 6000
    batch: int = 64
    lr_encoder: float = 1e-4
    lr_heads: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = SEED


@dataclass
class TaskData:
    """One task's training rows: their texts' rows in the feature table, targets, weights."""

    task: Task
    labels: tuple[str, ...]
    multi_label: bool
    rows: np.ndarray  # (n,) index of each text in the shared table of token sums
    request_rows: np.ndarray | None  # (n,) for pair tasks: the request's row
    y: np.ndarray  # (n, labels) 0/1; an unspecified attack is all zeros with `unspecified` set
    unspecified: np.ndarray  # (n,) bool
    weights: np.ndarray  # (n,) sampling probabilities
    losses: list[float] = field(default_factory=list)

    @property
    def pos_weight(self) -> np.ndarray:
        positives = self.y.sum(axis=0)
        ratio = (len(self.y) - positives) / np.maximum(positives, 1.0)
        weights: np.ndarray = np.clip(ratio, 1.0, MAX_POS_WEIGHT).astype(np.float32)
        return weights


class TokenSums:
    """The frozen per-token layers' output for every distinct text, computed once (and cached on
    disk by text hash between builds)."""

    def __init__(self, vocab: Vocabulary, trunk: UseTrunk, cache: Path | None = None):
        self.vocab, self.trunk, self.cache = vocab, trunk, cache
        self.index: dict[str, int] = {}
        self.texts: list[str] = []

    def row(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.texts)
            self.texts.append(text)
        return self.index[text]

    def compute(
        self, progress: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in self.texts]
        known: dict[str, tuple[np.ndarray, float]] = {}
        if self.cache is not None and self.cache.exists():
            with np.load(self.cache) as data:
                for key, vector, length in zip(
                    data["keys"], data["sums"], data["lengths"], strict=True
                ):
                    known[str(key)] = (vector, float(length))
        missing = [i for i, key in enumerate(keys) if key not in known]
        ids = self.vocab.ids([self.texts[i] for i in missing], TRAIN_PIECES)
        order = sorted(range(len(missing)), key=lambda j: len(ids[j]))
        done = 0
        with torch.no_grad():
            for start in range(0, len(order), 64):
                chunk = order[start : start + 64]
                tokens, mask = self.vocab.padded([ids[j] for j in chunk])
                sums, lengths = self.trunk.token_sums(
                    torch.from_numpy(tokens), torch.from_numpy(mask)
                )
                for j, vector, length in zip(
                    chunk, sums.numpy(), lengths.numpy()[:, 0], strict=True
                ):
                    known[keys[missing[j]]] = (vector, float(length))
                done += len(chunk)
                if progress is not None:
                    progress(done, len(order))
        if self.cache is not None and missing:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            ordered = sorted(known)
            np.savez(
                self.cache,
                keys=np.array(ordered),
                sums=np.stack([known[k][0] for k in ordered]),
                lengths=np.array([known[k][1] for k in ordered], dtype=np.float32),
            )
        table = np.stack([known[k][0] for k in keys]).astype(np.float32)
        counts = np.array([known[k][1] for k in keys], dtype=np.float32)[:, None]
        return table, counts


def head_labels(task: Task, harm: Sequence[str]) -> tuple[str, ...]:
    from safestack.datasets.examples import ATTACK_LABELS, REFUSAL_LABELS

    if task in ("harm", "document-harm", "response-harm"):
        return tuple(harm)
    return ATTACK_LABELS if task == "attack" else REFUSAL_LABELS


def document_windows(example: Example) -> list[Example]:
    """A long document as windows of about DOCUMENT_WINDOW characters, each with its labels."""
    text = example.text
    if len(text) <= DOCUMENT_WINDOW * 1.5:
        return [example]
    step = DOCUMENT_WINDOW
    return [
        example.model_copy(update={"text": text[start : start + step]})
        for start in range(0, len(text), step)
        if len(text[start : start + step].strip()) > 40
    ]


def task_data(
    task: Task, examples: Sequence[Example], harm: Sequence[str], table: TokenSums
) -> TaskData:
    labels = head_labels(task, harm)
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(examples), len(labels)), dtype=np.float32)
    unspecified = np.zeros(len(examples), dtype=bool)
    for row, example in enumerate(examples):
        for label in example.labels:
            if label == ATTACK_UNSPECIFIED:
                unspecified[row] = True
            elif label in index:
                y[row, index[label]] = 1.0
    sizes = Counter(e.source for e in examples)
    weights = np.array([1.0 / math.sqrt(sizes[e.source]) for e in examples])
    pair = task in PAIR_TASKS
    return TaskData(
        task=task,
        labels=labels,
        multi_label=task in ("harm", "document-harm", "response-harm"),
        rows=np.array([table.row(e.text) for e in examples]),
        request_rows=np.array([table.row(e.request or "") for e in examples]) if pair else None,
        y=y,
        unspecified=unspecified,
        weights=weights / weights.sum(),
    )


def pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cat([u, v, u * v, (u - v).abs()], dim=-1)


class MultiTask(nn.Module):
    """The encoder's upper layers and one linear head per task."""

    def __init__(self, trunk: UseTrunk, heads: dict[str, tuple[int, int]]):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict(
            {task: nn.Linear(width, n) for task, (width, n) in heads.items()}
        )

    def vectors(self, sums: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.trunk.from_sums(sums, lengths)


def _loss(data: TaskData, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    y = torch.from_numpy(data.y[rows])
    if data.multi_label:
        # Each category is rare; weighting its positives by the negatives-to-positives ratio (as
        # class_weight="balanced" does for the fast heads) keeps recall from collapsing.
        return nn.functional.binary_cross_entropy_with_logits(
            logits, y, pos_weight=torch.from_numpy(data.pos_weight)
        )
    log_p = torch.log_softmax(logits, dim=-1)
    unspecified = torch.from_numpy(data.unspecified[rows])
    named = -(log_p * y).sum(dim=-1)
    benign = data.labels.index("benign") if "benign" in data.labels else None
    if benign is not None and bool(unspecified.any()):
        p_benign = log_p[:, benign].exp().clamp(max=1 - 1e-6)
        named = torch.where(unspecified, -torch.log1p(-p_benign), named)
    return named.mean()


def finetune(
    tasks: dict[Task, TaskData],
    trunk: UseTrunk,
    sums: np.ndarray,
    lengths: np.ndarray,
    settings: Settings,
    progress: Callable[[int, int, dict[Task, float]], None] | None = None,
) -> MultiTask:
    torch.manual_seed(settings.seed)
    # One thread: these small matrices gain nothing from two (measured 85 ms vs 545 ms a step on a
    # busy 2-core machine), and one thread makes the build repeat to the bit.
    torch.set_num_threads(1)
    rng = np.random.default_rng(settings.seed)
    dim = 512
    for p in trunk.token_parameters():
        p.requires_grad_(False)
    model = MultiTask(
        trunk,
        {t: ((4 * dim if t in PAIR_TASKS else dim), len(d.labels)) for t, d in tasks.items()},
    )
    optimiser = torch.optim.AdamW(
        [
            {"params": trunk.upper_parameters(), "lr": settings.lr_encoder},
            {"params": model.heads.parameters(), "lr": settings.lr_heads},
        ],
        weight_decay=settings.weight_decay,
    )
    base = [group["lr"] for group in optimiser.param_groups]
    all_sums, all_lengths = torch.from_numpy(sums), torch.from_numpy(lengths)
    names = list(tasks)
    share = np.array([math.sqrt(len(tasks[t].rows)) for t in names])
    share /= share.sum()
    model.train()
    for step in range(settings.steps):
        scale = min(1.0, (step + 1) / settings.warmup) * max(0.05, 1 - step / settings.steps)
        for group, lr in zip(optimiser.param_groups, base, strict=True):
            group["lr"] = lr * scale
        task = names[int(rng.choice(len(names), p=share))]
        data = tasks[task]
        picked = rng.choice(len(data.rows), size=settings.batch, p=data.weights)
        rows = torch.from_numpy(data.rows[picked])
        vectors = model.vectors(all_sums[rows], all_lengths[rows])
        if data.request_rows is not None:
            asked = torch.from_numpy(data.request_rows[picked])
            vectors = pair_features(model.vectors(all_sums[asked], all_lengths[asked]), vectors)
        loss = _loss(data, model.heads[task](vectors), picked)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        data.losses.append(float(loss.detach()))
        if progress is not None:
            recent = {t: float(np.mean(tasks[t].losses[-200:] or [0.0])) for t in names}
            progress(step + 1, settings.steps, recent)
    model.eval()
    return model


def embed(model: MultiTask, sums: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sentence vectors of the fine-tuned encoder (the numbers ONNX gives, to float rounding)."""
    with torch.no_grad():
        return model.vectors(torch.from_numpy(sums), torch.from_numpy(lengths)).numpy()
