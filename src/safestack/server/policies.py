"""The policies the gateway enforces: the default one and each key's own, loaded once and cached.

A `LoadedPolicy` is a policy with its Judge (for /v1/moderations) and its Guard (for chat), which
share detector instances, and its image detectors (none unless the policy names some). Loading builds and warms the detectors (seconds: presidio, the built-in
models, loaded into the cache's one `BuiltinModels`), so it runs in a worker thread, once per policy
path, however many requests ask at once.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from safestack.guard import Guard
from safestack.judge import Judge
from safestack.judge.builtin import BuiltinModels
from safestack.judge.image_detector import ImageDetector, create_image_detectors
from safestack.policy import Policy, load_policy


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: Policy
    judge: Judge
    guard: Guard
    image_detectors: tuple[ImageDetector, ...] = ()

    @classmethod
    def build(
        cls, policy: Policy, *, models: BuiltinModels | None = None, warm: bool = True
    ) -> LoadedPolicy:
        judge = Judge.from_policy(policy, models=models)
        # The guard takes the judge's detectors by name and builds the rest.
        guard = Guard(policy, judge, models=models)
        if warm:
            guard.warm_up()
        return cls(policy, judge, guard, tuple(create_image_detectors(policy)))


class PolicyCache:
    """Policy path -> LoadedPolicy. `None` is the default policy (given, or from `default`'s path).

    Every policy's detectors run on `models`, the built-in models this cache owns (a new
    `BuiltinModels` unless the caller passes its own, as `safestack serve` does): they load once
    for all the policies and keys the gateway serves. Thread-safe and not tied to an event loop,
    so one cache can serve several apps.
    """

    def __init__(
        self, default: Policy | Path | None = None, *, models: BuiltinModels | None = None
    ):
        self.models = models if models is not None else BuiltinModels()
        self._default_path = default if isinstance(default, Path) else None
        self._loaded: dict[str | None, LoadedPolicy] = {}
        self._lock = threading.Lock()
        if isinstance(default, Policy):
            self._loaded[None] = LoadedPolicy.build(default, models=self.models)

    @property
    def default(self) -> LoadedPolicy:
        """The default policy, loading it now (in this thread) if needed."""
        return self._load_once(None)

    def loaded(self) -> list[LoadedPolicy]:
        """The policies loaded so far."""
        with self._lock:
            return list(self._loaded.values())

    async def get(self, path: str | None) -> LoadedPolicy:
        """The policy at `path` (a key's), or the default; raises PolicyError if it cannot load."""
        loaded = self._loaded.get(path)
        if loaded is not None:
            return loaded
        return await asyncio.to_thread(self._load_once, path)

    def _load_once(self, path: str | None) -> LoadedPolicy:
        with self._lock:  # one load at a time: a caller that waited finds the policy loaded
            loaded = self._loaded.get(path)
            if loaded is None:
                source = self._default_path if path is None else Path(path)
                loaded = self._loaded[path] = LoadedPolicy.build(
                    load_policy(source), models=self.models
                )
            return loaded
