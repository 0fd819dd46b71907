"""Small trained heads over sentence embeddings: the decision layer of the built-in detectors.

A head is a linear layer (one-vs-rest sigmoids for multi-label tasks, a softmax for exclusive ones)
followed by per-label Platt scaling fitted on held-out data, so its outputs are calibrated
probabilities. Weights are a few kilobytes of numpy arrays; serving needs nothing but numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from safestack.errors import DetectorError

Activation = Literal["sigmoid", "softmax"]
Tier = Literal["fast", "accurate"]
TIERS: tuple[Tier, ...] = ("fast", "accurate")
Matrix = NDArray[np.float32]


@dataclass(frozen=True)
class Head:
    """Linear scores -> activation -> Platt scaling per label: `p = sigmoid(a * logit(q) + b)`."""

    task: str
    tier: str
    labels: tuple[str, ...]
    activation: Activation
    weight: Matrix  # (dim, labels)
    bias: Matrix  # (labels,)
    platt_a: Matrix  # (labels,)
    platt_b: Matrix  # (labels,)
    embedder: str  # which embedder the head was trained on, checked at load

    def predict(self, embeddings: Matrix) -> Matrix:
        """Calibrated probabilities, shape (n, labels)."""
        logits = embeddings @ self.weight + self.bias
        if self.activation == "softmax":
            shifted = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(shifted)
            probs /= probs.sum(axis=1, keepdims=True)
            raw = np.log(np.clip(probs, 1e-7, 1 - 1e-7) / np.clip(1 - probs, 1e-7, 1))
        else:
            raw = logits
        # Clipped: beyond +-40 the sigmoid is 0 or 1 in float32 anyway, and exp() would overflow.
        z = np.clip(self.platt_a * raw + self.platt_b, -40.0, 40.0)
        calibrated: Matrix = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        return calibrated

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            weight=self.weight.astype(np.float32),
            bias=self.bias.astype(np.float32),
            platt_a=self.platt_a.astype(np.float32),
            platt_b=self.platt_b.astype(np.float32),
            meta=np.array(
                json.dumps(
                    {
                        "task": self.task,
                        "tier": self.tier,
                        "labels": list(self.labels),
                        "activation": self.activation,
                        "embedder": self.embedder,
                    }
                )
            ),
        )

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                return cls(
                    task=meta["task"],
                    tier=meta["tier"],
                    labels=tuple(meta["labels"]),
                    activation=meta["activation"],
                    embedder=meta["embedder"],
                    weight=data["weight"],
                    bias=data["bias"],
                    platt_a=data["platt_a"],
                    platt_b=data["platt_b"],
                )
        except FileNotFoundError:
            raise DetectorError(
                "builtin",
                f"model head {path.name} is missing; rebuild the models with `make models`",
            ) from None
        except (KeyError, ValueError, OSError) as exc:
            raise DetectorError(
                "builtin",
                f"model head {path.name} is unreadable ({exc}); rebuild with `make models`",
            ) from None


def load_heads(directory: Path, task: str) -> dict[Tier, Head]:
    """A task's head per tier from `directory` (`<task>-<tier>.npz`), read afresh: keep them in a
    `BuiltinModels` (`BuiltinModels.heads`), which reads each once."""
    return {tier: Head.load(directory / f"{task}-{tier}.npz") for tier in TIERS}


def pair_features(requests: Matrix, responses: Matrix) -> Matrix:
    """A (request, response) pair as one vector: [u, v, u*v, |u-v|] (InferSent, Conneau et al.
    2017), so a head can judge an answer given what was asked."""
    features: Matrix = np.concatenate(
        [requests, responses, requests * responses, np.abs(requests - responses)], axis=1
    ).astype(np.float32)
    return features
