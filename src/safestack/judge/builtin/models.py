"""The loaded built-in models, owned by whoever runs them: one `BuiltinModels` per server, CLI
command, red-team run or corpus-filter worker, handed to the detectors, scorers and filters it builds.

Each model (USE's vocabulary, the static and ONNX embedders, the sentence encoder, a task's heads,
presidio's spaCy pipeline) loads on first use, once per registry however many threads ask. Nothing is kept by a module except
`default_models()`, the registry the Python API falls back on when it is given none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from safestack.judge.builtin.embedders import (
    OnnxEncoder,
    Precision,
    SentenceEncoder,
    StaticEmbedder,
    models_dir,
)
from safestack.judge.builtin.heads import Head, Tier, load_heads
from safestack.judge.builtin.use_m3 import Vocabulary

if TYPE_CHECKING:
    from safestack.judge.detectors.pii import Presidio

M = TypeVar("M")


class BuiltinModels:
    """Loads the built-in models on first use and keeps them: one instance per owner.

    Thread-safe: concurrent first users of one model wait for a single load, and a slow load (the
    encoder) does not hold up another (the static tier). Pickled (to a process-pool or Ray worker)
    it travels empty and loads there. `directory` holds the encoder and heads (default: the
    packaged `judge/assets/models`); `precision` which copy of the encoder runs (`Precision`: the
    owner passes its settings' `encoder_precision`).
    """

    def __init__(self, directory: Path | None = None, *, precision: Precision = "int8") -> None:
        self.__setstate__({"directory": directory, "precision": precision})

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self._directory, "precision": self.precision}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._directory: Path | None = state["directory"]
        self.precision: Precision = state.get("precision", "int8")
        self._loaded: dict[str, object] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BuiltinModels(loaded={self.loaded()})"

    @property
    def directory(self) -> Path:
        return self._directory if self._directory is not None else models_dir()

    def loaded(self) -> list[str]:
        """The keys of what has loaded so far ("vocabulary", "encoder/1", "heads/harm", ...)."""
        return sorted(self._loaded)

    def _once(self, key: str, load: Callable[[], M]) -> M:
        if key not in self._loaded:
            with self._locks_lock:
                lock = self._locks.setdefault(key, threading.Lock())
            with lock:
                if key not in self._loaded:
                    self._loaded[key] = load()
        return self._loaded[key]  # type: ignore[return-value]

    def vocabulary(self) -> Vocabulary:
        """USE Multilingual v3's pieces and token table from the installed wheel, sha256-checked."""
        return self._once("vocabulary", Vocabulary.installed)

    def static_embedder(self) -> StaticEmbedder:
        """The fast tier."""
        return self._once("static", lambda: StaticEmbedder(self.vocabulary()))

    def encoder(self, threads: int = 1) -> OnnxEncoder:
        """The accurate tier (the fine-tuned encoder on ONNX Runtime) with `threads` threads."""
        return self._once(
            f"encoder/{threads}",
            lambda: OnnxEncoder(
                self.directory / "encoder",
                self.vocabulary(),
                precision=self.precision,
                threads=threads,
            ),
        )

    def embedder(self, tier: Tier) -> StaticEmbedder | OnnxEncoder:
        """The fast tier's embedder or the accurate tier's encoder."""
        return self.static_embedder() if tier == "fast" else self.encoder()

    def sentence_encoder(self) -> SentenceEncoder:
        """USE Multilingual v3 as Google trained it (the ungroundedness scorer's similarity)."""
        return self._once("sentence", SentenceEncoder)

    def heads(self, task: str) -> dict[Tier, Head]:
        """The task's calibrated heads, one per tier."""
        return self._once(f"heads/{task}", lambda: load_heads(self.directory / "heads", task))

    def presidio(self, language: str = "en") -> Presidio:
        """presidio's analyzer over the packaged spaCy model (the `pii` detector), never reaching
        the network, with the lock its callers take."""
        from safestack.judge.detectors.pii import Presidio  # presidio and spaCy, only when used

        return self._once(f"presidio/{language}", lambda: Presidio.load(language))


_default: BuiltinModels | None = None
_default_lock = threading.Lock()


def default_models() -> BuiltinModels:
    """The registry shared by the Python API's callers that pass none (`Judge.default()`, a
    detector or scorer built without `models=`), so scripts and notebooks load each model once.
    The server, each CLI command, each red-team run and each corpus-filter worker own their own
    and pass it in; they never load into this one."""
    global _default
    with _default_lock:
        if _default is None:
            _default = BuiltinModels()
        return _default
