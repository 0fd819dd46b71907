"""Agreement per policy category: Cohen's kappa between two experts who flagged the same answer,
between the expert and the reviewer (a second expert) and between the expert and the built-in judge, on the policy's severity bands (very low,
low, medium, high), with a 95% percentile bootstrap interval.

Kappa is Cohen (1960): (p_o - p_e) / (1 - p_e); the interval resamples the pairs (Efron and
Tibshirani 1993, percentile method), seeded, so the same findings give the same interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from safestack.policy import BANDS, Policy
from safestack.store.console import ExpertFinding, Review

BOOTSTRAP_RESAMPLES = 1000
SEED = 0


class Kappa(BaseModel):
    model_config = ConfigDict(frozen=True)
    category: str
    pair: str
    n: int
    kappa: float | None
    low: float | None
    high: float | None
    observed: float | None

    def text(self) -> str:
        if self.kappa is None:
            return f"n/a (n={self.n})"
        interval = "" if self.low is None else f" [{self.low:.2f}, {self.high:.2f}]"
        return f"{self.kappa:.2f}{interval} (n={self.n})"


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters' labels; 1.0 when both always agree on one label; None for
    no pairs."""
    if not a:
        return None
    x, y = np.asarray(a), np.asarray(b)
    labels = np.union1d(x, y)
    observed = float(np.mean(x == y))
    expected = float(sum(np.mean(x == k) * np.mean(y == k) for k in labels))
    if expected == 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def bootstrap_interval(
    a: Sequence[int], b: Sequence[int], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of kappa over resampled pairs; None under 2 pairs."""
    if len(a) < 2:
        return None
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a), np.asarray(b)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        value = cohen_kappa(list(x[pick]), list(y[pick]))
        if value is not None:
            values.append(value)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def kappa_row(category: str, pair: str, a: Sequence[int], b: Sequence[int]) -> Kappa:
    value = cohen_kappa(a, b)
    interval = bootstrap_interval(a, b)
    return Kappa(
        category=category,
        pair=pair,
        n=len(a),
        kappa=None if value is None else round(value, 4),
        low=None if interval is None else round(interval[0], 4),
        high=None if interval is None else round(interval[1], 4),
        observed=None if not a else round(float(np.mean(np.asarray(a) == np.asarray(b))), 4),
    )


def agreement(
    findings: Sequence[ExpertFinding], reviews: Sequence[Review], policy: Policy
) -> list[Kappa]:
    """Per category (by the expert's category) and overall: expert vs reviewer (each finding's
    latest review) and expert vs judge (the judge's severity for the expert's category)."""

    def band(severity: int) -> int:
        return BANDS.index(policy.band(max(0, min(7, severity))))

    latest: dict[str, Review] = {}
    for reviewed in reviews:
        latest[reviewed.finding_id] = reviewed
    pairs: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for item in findings:
        expert = band(item.severity)
        review = latest.get(item.id)
        keys = (item.category, "all")
        if review is not None:
            # A rejection says the answer is not harmful: the lowest band.
            other = band(0 if review.decision == "reject" else review.severity)
            for key in keys:
                pairs[(key, "expert vs reviewer")][0].append(expert)
                pairs[(key, "expert vs reviewer")][1].append(other)
        severities = item.judge.get("category_severities")
        if isinstance(severities, dict) and not item.judge.get("error"):
            judged = band(int(severities.get(item.category, 0)))
            for key in keys:
                pairs[(key, "expert vs judge")][0].append(expert)
                pairs[(key, "expert vs judge")][1].append(judged)
    # Two experts who flagged the same answer (the first two, in the order they flagged it).
    by_turn: dict[str, list[ExpertFinding]] = defaultdict(list)
    for item in findings:
        if all(other.expert != item.expert for other in by_turn[item.turn_id]):
            by_turn[item.turn_id].append(item)
    for first, second, *_ in (group for group in by_turn.values() if len(group) > 1):
        for key in (first.category, "all"):
            pairs[(key, "expert vs expert")][0].append(band(first.severity))
            pairs[(key, "expert vs expert")][1].append(band(second.severity))
    rows = [kappa_row(category, pair, a, b) for (category, pair), (a, b) in pairs.items()]
    return sorted(rows, key=lambda r: (r.category == "all", r.category, r.pair))
