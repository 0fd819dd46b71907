"""Sentence embedders under the built-in detectors: a static tier and an ONNX encoder tier.

Both turn texts into L2-normalised float32 vectors that the trained heads (`heads.py`) score. The
weights ship under `judge/assets/models/{static,encoder}/`, rebuilt by `make models`
(`training/embeddings.py`); serving needs neither torch nor transformers, nor the network.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from safestack.errors import DetectorError

if TYPE_CHECKING:
    import onnxruntime  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from model2vec import StaticModel
    from tokenizers import Tokenizer

Matrix = NDArray[np.float32]

STATIC_FILES = ("model.safetensors", "tokenizer.json", "config.json")
ENCODER_FILES = ("model.onnx", "tokenizer.json")
# all-MiniLM-L6-v2 was trained on 128-token inputs and sentence-transformers truncates it at 256
# (its sentence_bert_config.json); longer inputs are the detectors' job to chunk.
ENCODER_MAX_TOKENS = 256
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


class StaticEmbedder:
    """The fast tier: model2vec static token embeddings distilled from all-MiniLM-L6-v2, mean-pooled."""

    def __init__(self, directory: Path, *, batch_size: int = 1024):
        _require(directory, STATIC_FILES)
        from model2vec import StaticModel

        # from_pretrained resolves an existing directory locally; only a missing one would be
        # treated as a hub id, which _require has ruled out.
        try:
            self._model: StaticModel = StaticModel.from_pretrained(
                directory.resolve(), normalize=True, force_download=False
            )
        except Exception as exc:  # safetensors and tokenizers raise their own untyped errors
            raise DetectorError(
                "builtin", f"static model in {directory} is unreadable ({exc}); {REBUILD}"
            ) from exc
        self._batch_size = batch_size
        # StaticModel.encode re-sets the shared tokenizer's truncation on every call; calls are
        # serialised rather than trusting that to be safe across threads. Two threads measured no
        # faster than one here, so the lock costs no throughput.
        self._lock = threading.Lock()
        self.dim = int(self._model.dim)
        self.name = _identity(directory, "static-minilm-l6-v2", "model.safetensors")

    def encode(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=self._batch_size, use_multiprocessing=False
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """The accurate tier: the full MiniLM encoder (mean pooling, L2 norm) as int8 ONNX."""

    def __init__(
        self,
        directory: Path,
        *,
        threads: int = 1,
        batch_size: int = 32,
        max_batch_tokens: int = 1024,
        max_tokens: int = ENCODER_MAX_TOKENS,
    ):
        _require(directory, ENCODER_FILES)
        import onnxruntime as ort  # type: ignore[import-not-found, import-untyped, unused-ignore]
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: onnxruntime.InferenceSession = ort.InferenceSession(
                str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            tokenizer: Tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad file
            raise DetectorError(
                "builtin", f"encoder in {directory} is unreadable ({exc}); {REBUILD}"
            ) from exc
        # Configured once here and never changed: encode_batch only reads the tokenizer, so
        # concurrent calls are safe (and onnxruntime's run is thread-safe). Padding is done per
        # batch below, after grouping texts of similar length.
        tokenizer.enable_truncation(max_tokens)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._batch_size = batch_size
        # Working memory grows with batch x sequence (measured: up to +100 MB at 1,024 tokens,
        # +230 MB at 4,096) while throughput does not improve past a few sequences, so batches
        # are capped by tokens as well as by count.
        self._max_batch_tokens = max_batch_tokens
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.name = _identity(directory, "onnx-minilm-l6-v2", "model.onnx")

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids after truncation; their count is what the encoder's latency grows with."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> Matrix:
        return self.encode_ids(self.tokenize(texts))

    def encode_ids(self, ids: Sequence[list[int]]) -> Matrix:
        """Embeddings of already tokenized texts (see `tokenize`)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        # Shortest first, so a batch's newest member is its longest (its padded width).
        batch: list[int] = []
        for i in sorted(range(len(ids)), key=lambda i: len(ids[i])):
            full = len(batch) == self._batch_size
            if batch and (full or (len(batch) + 1) * len(ids[i]) > self._max_batch_tokens):
                out[batch] = self._run([ids[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            out[batch] = self._run([ids[j] for j in batch])
        return out

    def _run(self, rows: list[list[int]]) -> Matrix:
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            input_ids[n, : len(row)] = row
            attention_mask[n, : len(row)] = 1
        (vectors,) = self._session.run(
            ["sentence_embedding"], {"input_ids": input_ids, "attention_mask": attention_mask}
        )
        return np.asarray(vectors, dtype=np.float32)


E = TypeVar("E")
_cache: dict[str, object] = {}
_key_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def _cached(key: str, load: Callable[[], E]) -> E:
    """One instance per process and key: the first caller loads it, concurrent callers of the same
    key wait for that load (a slow encoder load does not hold up the static tier)."""
    if key not in _cache:
        with _locks_lock:
            lock = _key_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in _cache:
                _cache[key] = load()
    return _cache[key]  # type: ignore[return-value]


def static_embedder() -> StaticEmbedder:
    """The packaged fast-tier embedder, loaded on first use and shared by the process."""
    return _cached("static", lambda: StaticEmbedder(models_dir() / "static"))


def encoder(threads: int = 1) -> OnnxEncoder:
    """The packaged accurate-tier encoder with `threads` intra-op threads, loaded on first use."""
    return _cached(
        f"encoder/{threads}", lambda: OnnxEncoder(models_dir() / "encoder", threads=threads)
    )


def _require(directory: Path, files: Sequence[str]) -> None:
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        raise DetectorError(
            "builtin",
            f"embedding model files missing in {directory}: {', '.join(missing)}; {REBUILD}",
        )


def _identity(directory: Path, base: str, weights: str) -> str:
    """`base@<first 12 hex of the weights' sha256>` from build.json, so a head can tell which
    build it was trained on; plain `base` for a directory without a build record."""
    try:
        record = json.loads((directory / "build.json").read_text(encoding="utf-8"))
        digest = str(record["files"][weights]["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return base
    return f"{base}@{digest[:12]}"
