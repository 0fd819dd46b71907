"""Per-deployment calibration: thresholds that keep false positives on your own traffic in budget.

Given benign traffic a deployment really sees, raise each category's threshold just enough that
the share of benign inputs flagged (by any category) is at most `max_fpr`; then report what recall
that leaves on labelled attacks or harms, so the trade-off is explicit. Thresholds only go up: a
threshold lowered from benign data alone would be tuned to traffic the model has never been
wrong on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from safestack.errors import InputError
from safestack.judge.batch import read_records
from safestack.judge.judge import Judge
from safestack.policy import Policy, parse_policy


@dataclass
class CategoryCalibration:
    category: str
    old_threshold: float
    new_threshold: float
    benign_fpr_before: float
    benign_fpr_after: float
    recall_before: float | None = None
    recall_after: float | None = None
    positives: int = 0


@dataclass
class Calibration:
    max_fpr: float
    benign: int
    fpr_before: float
    fpr_after: float
    categories: list[CategoryCalibration] = field(default_factory=list)
    recall_before: float | None = None
    recall_after: float | None = None
    labelled: int = 0
    rejected: list[str] = field(default_factory=list)


def _scores(
    judge: Judge,
    path: Path,
    text_field: str,
    rejected: list[str],
    progress: Callable[[int], None] | None,
) -> tuple[list[dict[str, float]], list[dict[str, Any]]]:
    samples, records = [], []
    for line, record, error in read_records(path, text_field):
        if record is None:
            rejected.append(f"{path}: {error}")
            continue
        try:
            samples.append(judge.prepare(record[text_field], field=text_field))
        except InputError as exc:
            rejected.append(f"{path}: line {line}: {exc.reason}")
            continue
        records.append(record)
    scores: list[dict[str, float]] = []
    for start in range(0, len(samples), 64):
        batch = judge.check_batch(samples[start : start + 64])
        scores.extend(v.category_scores for v in batch)
        if progress is not None:
            progress(len(batch))
    return scores, records


def _flagged(scores: list[dict[str, float]], thresholds: dict[str, float]) -> np.ndarray:
    return np.array(
        [any(s.get(c, 0.0) >= t for c, t in thresholds.items()) for s in scores], dtype=bool
    )


def calibrate(
    judge: Judge,
    benign: Path,
    *,
    max_fpr: float,
    labelled: Path | None = None,
    text_field: str = "text",
    label_field: str = "category",
    progress: Callable[[int], None] | None = None,
) -> tuple[Policy, Calibration]:
    """A policy with raised thresholds, and the report of what it costs in recall."""
    if not 0.0 <= max_fpr < 1.0:
        raise InputError(f"--max-fpr must be in [0, 1), got {max_fpr}")
    policy = judge.policy
    rejected: list[str] = []
    benign_scores, _ = _scores(judge, benign, text_field, rejected, progress)
    if not benign_scores:
        raise InputError(f"{benign}: no usable lines; each needs a '{text_field}' field")
    categories = sorted(
        {c for s in benign_scores for c in s if not policy.is_signal(c)}
        | {c for c in policy.categories if not policy.is_signal(c)}
    )
    old = {c: policy.threshold(c) for c in categories}
    new = dict(old)
    # Greedy: while over budget, raise the threshold of the category that flags the most benign
    # inputs to just above its highest offending score among them.
    while True:
        flagged = _flagged(benign_scores, new)
        if flagged.mean() <= max_fpr:
            break
        counts = {
            c: sum(
                1 for s, f in zip(benign_scores, flagged, strict=True) if f and s.get(c, 0.0) >= t
            )
            for c, t in new.items()
        }
        worst = max(counts, key=lambda c: counts[c])
        offending = sorted(
            s.get(worst, 0.0)
            for s, f in zip(benign_scores, flagged, strict=True)
            if f and s.get(worst, 0.0) >= new[worst]
        )
        # Lift past the lowest offending score: one benign input fewer per step, smallest change first.
        new[worst] = min(1.0, round(offending[0] + 1e-6, 6))  # stays above it after rounding
    report = Calibration(
        max_fpr=max_fpr,
        benign=len(benign_scores),
        fpr_before=round(float(_flagged(benign_scores, old).mean()), 4),
        fpr_after=round(float(_flagged(benign_scores, new).mean()), 4),
        rejected=rejected,
    )
    positives: dict[str, list[dict[str, float]]] = {}
    if labelled is not None:
        scores, records = _scores(judge, labelled, text_field, rejected, progress)
        for score, record in zip(scores, records, strict=True):
            label = record.get(label_field)
            for category in [label] if isinstance(label, str) else list(label or []):
                positives.setdefault(str(category), []).append(score)
        report.labelled = len(scores)
        hit_before = [
            any(s.get(c, 0.0) >= old.get(c, 1.1) for c in _family(cat, policy))
            for cat, ss in positives.items()
            for s in ss
        ]
        hit_after = [
            any(s.get(c, 0.0) >= new.get(c, 1.1) for c in _family(cat, policy))
            for cat, ss in positives.items()
            for s in ss
        ]
        if hit_before:
            report.recall_before = round(float(np.mean(hit_before)), 4)
            report.recall_after = round(float(np.mean(hit_after)), 4)
    for c in categories:
        if new[c] == old[c] and c not in positives:
            continue
        entry = CategoryCalibration(
            category=c,
            old_threshold=round(old[c], 4),
            new_threshold=round(new[c], 4),
            benign_fpr_before=round(
                float(np.mean([s.get(c, 0.0) >= old[c] for s in benign_scores])), 4
            ),
            benign_fpr_after=round(
                float(np.mean([s.get(c, 0.0) >= new[c] for s in benign_scores])), 4
            ),
        )
        if c in positives:
            entry.positives = len(positives[c])
            entry.recall_before = round(
                float(np.mean([s.get(c, 0.0) >= old[c] for s in positives[c]])), 4
            )
            entry.recall_after = round(
                float(np.mean([s.get(c, 0.0) >= new[c] for s in positives[c]])), 4
            )
        report.categories.append(entry)
    data = policy.model_dump(mode="json")
    for c, t in new.items():
        if t != old[c]:
            data["categories"][c]["threshold"] = t
    data["version"] = f"{policy.version}+calibrated"
    return parse_policy(data, "<calibrated policy>"), report


def _family(category: str, policy: Policy) -> Sequence[str]:
    """A labelled category counts as caught if it or one of its subcategories is flagged."""
    return [c for c in policy.categories if c == category or c.startswith(category + "/")]


def write_policy(policy: Policy, report: Calibration, path: Path) -> None:
    header = (
        f"# Calibrated by `safestack judge calibrate` on {report.benign} benign inputs:\n"
        f"# false-positive rate {report.fpr_before:.2%} -> {report.fpr_after:.2%} (budget {report.max_fpr:.2%})"
        + (
            f"; recall on {report.labelled} labelled inputs {report.recall_before:.2%} -> {report.recall_after:.2%}"
            if report.recall_before is not None and report.recall_after is not None
            else ""
        )
        + "\nextends: none\n"
    )
    body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    path.write_text(header + body, encoding="utf-8")


def report_json(report: Calibration) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(report), indent=2)
