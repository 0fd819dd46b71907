"""The fast tier's heads and every head's calibration.

`fit_head` fits logistic regression (one-vs-rest for the multi-label harm tasks, multinomial for
`attack` and `refusal`) on embedded training rows, each source weighted by 1/sqrt(its size) so a
few large sources do not set the decision boundary for all, then Platt scaling per label on a
held-back fifth of the groups (`platt`, also used for the fine-tuned heads by `build.py`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safestack.datasets.examples import ATTACK_UNSPECIFIED, Example, Task, task_labels
from safestack.judge.builtin.heads import Activation, Head, Matrix

MIN_POSITIVES = 20  # a label with fewer training positives gets no output (reported in the card)
CALIBRATION_SHARE = 0.2  # of training groups, held back to fit Platt scaling
REGULARISATION_C = 4.0  # inverse L2 strength; chosen on the calibration split, see the card
CALIBRATION_PRIOR = 0.2  # the share of positives calibrated probabilities assume, per label
MULTI_LABEL: frozenset[str] = frozenset({"harm", "document-harm", "response-harm"})


@dataclass
class HeadReport:
    task: str
    tier: str
    labels: list[str]
    dropped_labels: dict[str, int] = field(default_factory=dict)
    train_examples: int = 0
    calibration_examples: int = 0


def targets(examples: Sequence[Example], task: Task) -> tuple[list[str], NDArray[np.int8]]:
    # An attack of unstated kind has no class of its own: it trains the encoder, not a head.
    labels = [label for label in task_labels(task) if label != ATTACK_UNSPECIFIED]
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(examples), len(labels)), dtype=np.int8)
    for row, example in enumerate(examples):
        for label in example.labels:
            if label in index:
                y[row, index[label]] = 1
    return labels, y


def calibration_mask(examples: Sequence[Example]) -> NDArray[np.bool_]:
    """Deterministic group-wise split: variants of one seed stay on one side."""

    def bucket(example: Example) -> float:
        key = example.group or example.text
        return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    return np.array([bucket(e) < CALIBRATION_SHARE for e in examples])


def source_weights(examples: Sequence[Example], rows: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per-example weights for `rows`: 1/sqrt(examples of its source), mean 1.

    The square root is a middle way between counting every example once (the thousands of
    templated indirect-injection documents outvote a 28-example source) and counting every source
    once (a handful of examples would weigh as much as a whole corpus).
    """
    sources = [examples[int(i)].source for i in np.flatnonzero(rows)]
    sizes = Counter(sources)
    weights = np.array([1.0 / np.sqrt(sizes[s]) for s in sources])
    normalised: NDArray[np.float64] = weights / weights.mean()
    return normalised


def fit_head(
    task: Task, tier: str, examples: Sequence[Example], x: Matrix, embedder: str
) -> tuple[Head, HeadReport]:
    """Fit one head on embedded examples; see the module docstring."""
    from sklearn.linear_model import LogisticRegression

    labels, y = targets(examples, task)
    cal = calibration_mask(examples)
    fit = ~cal
    report = HeadReport(
        task, tier, [], train_examples=int(fit.sum()), calibration_examples=int(cal.sum())
    )
    activation: Activation
    if task in MULTI_LABEL:
        activation = "sigmoid"
        keep = []
        for j, label in enumerate(labels):
            positives = int(y[fit, j].sum())
            if positives >= MIN_POSITIVES and int(y[cal, j].sum()) > 0:
                keep.append(j)
            else:
                report.dropped_labels[label] = positives
        weights, biases = [], []
        weights_fit = source_weights(examples, fit)
        for j in keep:
            model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=2000)
            model.fit(x[fit], y[fit, j], sample_weight=weights_fit)
            weights.append(model.coef_[0])
            biases.append(model.intercept_[0])
        weight = np.stack(weights, axis=1)
        bias = np.array(biases)
        kept_labels = [labels[j] for j in keep]
        y_cal = y[cal][:, keep]
    else:
        activation = "softmax"
        present = [j for j, label in enumerate(labels) if y[fit, j].sum() >= MIN_POSITIVES]
        for j, label in enumerate(labels):
            if j not in present:
                report.dropped_labels[label] = int(y[fit, j].sum())
        rows = fit & (y[:, present].sum(axis=1) == 1)
        classes = y[rows][:, present].argmax(axis=1)
        model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=3000)
        model.fit(x[rows], classes, sample_weight=source_weights(examples, rows))
        weight = model.coef_.T
        bias = model.intercept_
        kept_labels = [labels[j] for j in present]
        y_cal = y[cal][:, present]
    uncalibrated = Head(
        task=task,
        tier=tier,
        labels=tuple(kept_labels),
        activation=activation,
        weight=weight.astype(np.float32),
        bias=bias.astype(np.float32),
        platt_a=np.ones(len(kept_labels), dtype=np.float32),
        platt_b=np.zeros(len(kept_labels), dtype=np.float32),
        embedder=embedder,
    )
    prior = CALIBRATION_PRIOR if task in MULTI_LABEL else None
    platt_a, platt_b = platt(uncalibrated, x[cal], y_cal, prior)
    report.labels = kept_labels
    head = Head(
        task=task,
        tier=tier,
        labels=tuple(kept_labels),
        activation=activation,
        weight=uncalibrated.weight,
        bias=uncalibrated.bias,
        platt_a=platt_a,
        platt_b=platt_b,
        embedder=embedder,
    )
    return head, report


def platt(
    head: Head, x: Matrix, y: NDArray[np.int8], prior: float | None = None
) -> tuple[Matrix, Matrix]:
    """Per-label Platt scaling (Platt 1999): logistic regression on the head's own logit.

    With `prior` (multi-label harm heads), fitted under that prior: the calibration rows are
    weighted so that a label's positives count for `prior` of the total. Unweighted, each category
    is a few percent of the training mix and a plain "how do I build a pipe bomb" calibrated to
    0.47; fully balanced (50%), one benign edgy prompt in nine was flagged. Exclusive heads
    (attack, refusal) keep the mix's own prior: their classes are not rare. A deployment fits
    thresholds to its own traffic with `safestack judge calibrate`.
    """
    from sklearn.linear_model import LogisticRegression

    probs = np.clip(head.predict(x), 1e-6, 1 - 1e-6)
    logits = np.log(probs / (1 - probs))
    a = np.ones(len(head.labels), dtype=np.float32)
    b = np.zeros(len(head.labels), dtype=np.float32)
    for j in range(len(head.labels)):
        positives = int(y[:, j].sum())
        if 0 < positives < len(y):
            share = positives / len(y)
            target = share if prior is None else prior
            weights = np.where(y[:, j] == 1, target / share, (1 - target) / (1 - share))
            model = LogisticRegression(C=1e4, max_iter=1000)
            model.fit(logits[:, j : j + 1], y[:, j], sample_weight=weights)
            a[j], b[j] = float(model.coef_[0, 0]), float(model.intercept_[0])
    return a, b
