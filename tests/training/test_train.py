"""Head training: how sources are weighted against each other."""

from __future__ import annotations

import numpy as np

from safestack.datasets.examples import Example
from safestack.training.train import source_weights


def example(source: str) -> Example:
    return Example(
        text="x",
        task="harm",
        labels=[],
        kind="prompt",
        source=source,
        synthetic=False,
        licence="MIT",
    )


def test_a_large_source_weighs_sqrt_of_its_size_not_its_size() -> None:
    examples = [example("big/a")] * 400 + [example("small/b")] * 4
    weights = source_weights(examples, np.ones(len(examples), dtype=bool))
    big, small = weights[:400].sum(), weights[400:].sum()
    assert np.isclose(big / small, 10.0)  # sqrt(400 / 4), where counting examples would give 100
    assert np.isclose(weights.mean(), 1.0)
