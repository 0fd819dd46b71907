"""Small statistics every stage reports with: proportions and their confidence intervals.

One place for the Wilson score interval (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it
over the normal approximation for small n and rates near 0 or 1), so a rate in a model card, a
red-team report and a corpus-filter summary is computed the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959964  # two-sided 95%


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n`; (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(successes: int, n: int) -> dict[str, float | int | list[float]]:
    """A proportion as reported everywhere: value, count, n and the 95% Wilson interval."""
    low, high = wilson_interval(successes, n)
    return {
        "value": round(successes / n, 4) if n else 0.0,
        "k": successes,
        "n": n,
        "ci95": [round(low, 4), round(high, 4)],
    }


def wilson_bounds(
    successes: Sequence[int] | Sequence[float], n: Sequence[int] | Sequence[float], z: float = Z95
) -> tuple[list[float], list[float]]:
    """`wilson_interval` of each (successes, n) pair, as two lists (lows, highs): one call for
    thousands of accounts' rates."""
    lows: list[float] = []
    highs: list[float] = []
    for k, total in zip(successes, n, strict=True):
        low, high = wilson_interval(int(k), int(total), z)
        lows.append(low)
        highs.append(high)
    return lows, highs
