"""Model-card metrics of the shipped models: held-out by source and by language, per tier and for
the cascade, with 95% Wilson intervals.

Every number is measured with the serving embedders and heads on sources no model was trained on
(`dataset.HELD_OUT`), and separately on the team-written report-only holdouts (`synthetic/*`),
which are never mixed into the held-out figures. `safestack models eval` prints these;
`safestack models build` writes them into docs/models/.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.datasets.examples import ATTACK_UNSPECIFIED, PAIR_TASKS, TASKS, Example, Task
from safestack.judge.builtin import BuiltinModels
from safestack.judge.builtin.cascade import align_labels, uncertain
from safestack.judge.builtin.heads import Head, Matrix, pair_features
from safestack.stats import rate
from safestack.training.dataset import split_by_source

DEFAULT_BAND = (0.01, 0.99)  # the detectors' default (CascadeOptions.band)
ATTACK_FPR_BUDGET = 0.02  # issue target: detection at 2% false positives
THRESHOLD = 0.5
TIERS = ("fast", "accurate", "cascade")
NOT_REPORTED = {"benign", "none"}

Embed = Callable[[str, Sequence[str]], Matrix]


def load_heads(task: Task, models: BuiltinModels) -> dict[str, Head]:
    return {str(tier): head for tier, head in models.heads(task).items()}


def serving_embed(models: BuiltinModels) -> Embed:
    """Embedding by the serving tiers of `models` (the caller's loaded built-in models)."""

    def embed(tier: str, texts: Sequence[str]) -> Matrix:
        return models.embedder("fast" if tier == "fast" else "accurate").encode(list(texts))

    return embed


def tier_probs(
    task: Task,
    heads: dict[str, Head],
    examples: Sequence[Example],
    embed: Embed,
    band: tuple[float, float] = DEFAULT_BAND,
) -> tuple[dict[str, Matrix], NDArray[np.bool_]]:
    """Probabilities per tier and the cascade's, and which rows the cascade escalated."""
    texts = [e.text for e in examples]
    probs: dict[str, Matrix] = {}
    for tier in ("fast", "accurate"):
        x = embed(tier, texts)
        if task in PAIR_TASKS:
            x = pair_features(embed(tier, [e.request or "" for e in examples]), x)
        probs[tier] = heads[tier].predict(x)
    fast_head = heads["fast"]
    reportable = [i for i, label in enumerate(fast_head.labels) if label not in NOT_REPORTED]
    unsure = uncertain(probs["fast"], reportable, band, texts)
    # Labels of the two tiers can differ (a label too thin for one head); align on the fast head's.
    aligned = align_labels(heads["accurate"], fast_head, probs["accurate"])
    probs["accurate"] = aligned
    probs["cascade"] = np.where(unsure[:, None], aligned, probs["fast"])
    return probs, unsure


def positive_score(task: Task, head: Head, probs: Matrix) -> Matrix:
    """One score per row: the chance the row is flagged (any harm, any attack, refused, harmful)."""
    if task in ("attack", "refusal"):
        negative = "benign" if task == "attack" else "none"
        flagged: Matrix = 1.0 - probs[:, head.labels.index(negative)]
        return flagged
    top: Matrix = probs.max(axis=1)
    return top


def is_positive(task: Task, example: Example) -> bool:
    if task == "refusal":
        return example.labels != ["none"]
    if task == "attack":
        return example.labels != ["benign"]
    return bool(example.labels)


def _binary(y: NDArray[np.bool_], flagged: NDArray[np.bool_]) -> dict[str, Any]:
    tp, fp = int((y & flagged).sum()), int((~y & flagged).sum())
    fn = int((y & ~flagged).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "f1": round(f1, 4),
        "precision": rate(tp, tp + fp),
        "recall": rate(tp, int(y.sum())),
        "false_positive_rate": rate(fp, int((~y).sum())),
        "accuracy": rate(int((y == flagged).sum()), len(y)),
    }


def _groups(examples: Sequence[Example], key: Callable[[Example], str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[key(example)].append(i)
    return dict(sorted(groups.items()))


def evaluate_task(
    task: Task, examples: Sequence[Example], models: BuiltinModels, embed: Embed | None = None
) -> dict[str, Any]:
    """One task's metrics with the heads in `models`, embedded by its serving tiers unless
    `embed` is given."""
    split = split_by_source(examples, task)
    heads = load_heads(task, models)
    embed = embed if embed is not None else serving_embed(models)
    result: dict[str, Any] = {
        "test_sources": sorted(split.sources("test")),
        "test_examples": len(split.test),
        "report_only_sources": sorted(split.sources("synthetic_holdout")),
        "report_only_examples": len(split.synthetic_holdout),
        "tiers": {},
    }
    for part, rows in (("held_out", split.test), ("report_only", split.synthetic_holdout)):
        if not rows:
            continue
        probs, unsure = tier_probs(task, heads, rows, embed)
        if part == "held_out":
            result["escalation_rate"] = round(float(unsure.mean()), 4)
        y = np.array([is_positive(task, e) for e in rows])
        if part == "held_out":
            cascade = positive_score(task, heads["fast"], probs["cascade"])
            result["failures"] = failures(rows, y, cascade)
        for tier in TIERS:
            score = positive_score(task, heads["fast"], probs[tier])
            block = result["tiers"].setdefault(tier, {})
            block[part] = _part_metrics(task, rows, y, score, probs[tier], heads["fast"])
    return result


def failures(
    rows: Sequence[Example], y: NDArray[np.bool_], score: Matrix, per_kind: int = 6
) -> dict[str, list[dict[str, Any]]]:
    """The cascade's most confident mistakes on held-out rows: what a card should show."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, wrong, order in (
        ("missed", y & (score < THRESHOLD), np.argsort(score)),
        ("false_alarms", ~y & (score >= THRESHOLD), np.argsort(-score)),
    ):
        picked = [int(i) for i in order if wrong[i]][:per_kind]
        out[kind] = [
            {
                "source": rows[i].source,
                "language": rows[i].language,
                "labels": rows[i].labels,
                "score": round(float(score[i]), 3),
                "text": _excerpt(rows[i].text),
            }
            for i in picked
        ]
    return out


def _excerpt(text: str, width: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _part_metrics(
    task: Task,
    rows: Sequence[Example],
    y: NDArray[np.bool_],
    score: Matrix,
    probs: Matrix,
    head: Head,
) -> dict[str, Any]:
    flagged = score >= THRESHOLD
    out: dict[str, Any] = {"overall": _binary(y, flagged)}
    if task == "attack" and (~y).any():
        # The operating point of the target: the threshold that flags 2% of held-out benign rows.
        threshold = float(np.quantile(score[~y], 1 - ATTACK_FPR_BUDGET))
        out["threshold_at_2pct_fpr"] = round(threshold, 4)
        out["detected_at_2pct_fpr"] = rate(int((score[y] > threshold).sum()), int(y.sum()))
        out["per_language_at_2pct_fpr"] = {
            language: rate(int((score[idx][y[idx]] > threshold).sum()), int(y[idx].sum()))
            for language, idx in _index_groups(rows, lambda e: e.language).items()
            if y[idx].any()
        }
        named = [i for i, e in enumerate(rows) if e.labels[0] not in ("benign", ATTACK_UNSPECIFIED)]
        if named:
            predicted = np.array(head.labels)[probs[named].argmax(axis=1)]
            truth = np.array([rows[i].labels[0] for i in named])
            out["kind_accuracy"] = rate(int((predicted == truth).sum()), len(named))
    if task == "refusal":
        truth = np.array([e.labels[0] for e in rows])
        predicted = np.array(head.labels)[probs.argmax(axis=1)]
        out["three_way_accuracy"] = rate(int((predicted == truth).sum()), len(rows))
    for name, key in (("per_source", _source), ("per_language", _language)):
        out[name] = {
            group: _binary(y[idx], flagged[idx]) for group, idx in _index_groups(rows, key).items()
        }
    return out


def _source(example: Example) -> str:
    return example.source


def _language(example: Example) -> str:
    return example.language


def _index_groups(
    rows: Sequence[Example], key: Callable[[Example], str]
) -> dict[str, NDArray[np.int64]]:
    return {k: np.array(v) for k, v in _groups(rows, key).items()}


def evaluate_all(
    examples: Sequence[Example],
    models: BuiltinModels,
    embed: Embed | None = None,
    tasks: Sequence[Task] = TASKS,
) -> dict[str, Any]:
    """Every task's held-out metrics on `models` (document-harm is measured by `safestack data
    eval`)."""
    return {
        "band": list(DEFAULT_BAND),
        "threshold": THRESHOLD,
        "tasks": {
            task: evaluate_task(task, examples, models, embed)
            for task in tasks
            if task != "document-harm"
        },
    }
