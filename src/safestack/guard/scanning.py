"""Running the detectors the policy assigns to each scope (role -> detectors, as in LlamaFirewall).

One detector instance per name is shared by every scope; each scope gets a Judge over its own list.
Detector errors come back inside the verdict (`failures`), never raised and never read as safe: the
guard decides what they mean (`guard.on_error`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safestack.errors import PolicyError, RegistryError
from safestack.judge import Detector, Judge, Sample, create_detector
from safestack.policy import Policy
from safestack.policy.model import GuardScope
from safestack.records import Kind, Verdict

# Register the guard's detectors (not among the judge's built-in modules yet).
from safestack.judge.detectors import elections, injection  # noqa: F401  isort: skip

if TYPE_CHECKING:
    from safestack.judge.builtin import BuiltinModels

SCOPES: tuple[GuardScope, ...] = (
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "retrieval",
    "history",
    "output",
)


# Verdicts kept per scope: a chat client resends the earlier turns with every request, and they
# are judged as before (same text, same detectors, same verdict) without running the detectors.
RECENT_VERDICTS = 4096


@dataclass(frozen=True, slots=True)
class Job:
    scope: GuardScope
    sample: Sample


class Scanner:
    def __init__(
        self,
        policy: Policy,
        judge: Judge | None = None,
        *,
        models: BuiltinModels | None = None,
    ):
        # Verdicts list failures instead of raising; the guard applies guard.on_error to them.
        self.policy = policy
        self._policy = policy.model_copy(
            update={"judge": policy.judge.model_copy(update={"on_detector_error": "block"})}
        )
        self._pool: dict[str, Detector] = (
            {d.name: d for d in judge.detectors} if judge is not None else {}
        )
        specs = {spec.name: spec.options for spec in policy.judge.detectors}
        self.judges: dict[GuardScope, Judge | None] = {}
        for scope in SCOPES:
            names = policy.guard.detectors_for(scope)
            for index, name in enumerate(names):
                if name not in self._pool:
                    try:
                        self._pool[name] = create_detector(
                            name, policy, specs.get(name), models=models
                        )
                    except RegistryError as exc:
                        raise PolicyError(
                            f"policy {policy.ref}: guard.detectors.{scope}[{index}]: {exc}"
                        ) from None
            self.judges[scope] = (
                Judge(self._policy, [self._pool[n] for n in names], recent=RECENT_VERDICTS)
                if names
                else None
            )

    @property
    def detectors(self) -> dict[str, Detector]:
        return dict(self._pool)

    def prepare(
        self, scope: GuardScope, text: str, *, field: str, request: str | None = None
    ) -> Sample | None:
        """The sample a scope's judge will read, or None when nothing runs there or text is blank.
        `request`: for an output, the user message it answers (pair detectors judge both)."""
        judge = self.judges[scope]
        if judge is None or not text.strip():
            return None
        kind: Kind = "response" if scope == "output" else "prompt"
        return judge.prepare(text, kind, field=field, request=request)

    def run(self, jobs: Sequence[Job]) -> list[Verdict]:
        """One verdict per job, batched per scope."""
        results: list[Verdict | None] = [None] * len(jobs)
        for scope, indices in _by_scope(jobs).items():
            judge = self.judges[scope]
            assert judge is not None
            for index, verdict in zip(
                indices, judge.check_batch([jobs[i].sample for i in indices]), strict=True
            ):
                results[index] = verdict
        return [v for v in results if v is not None]

    async def arun(self, jobs: Sequence[Job]) -> list[Verdict]:
        """As `run`, each scope's batch in a worker thread, scopes concurrently."""
        groups = _by_scope(jobs)
        batches = await asyncio.gather(
            *(
                asyncio.to_thread(self._batch, scope, [jobs[i].sample for i in indices])
                for scope, indices in groups.items()
            )
        )
        results: list[Verdict | None] = [None] * len(jobs)
        for indices, verdicts in zip(groups.values(), batches, strict=True):
            for index, verdict in zip(indices, verdicts, strict=True):
                results[index] = verdict
        return [v for v in results if v is not None]

    def _batch(self, scope: GuardScope, samples: list[Sample]) -> list[Verdict]:
        judge = self.judges[scope]
        assert judge is not None
        return judge.check_batch(samples)


def _by_scope(jobs: Sequence[Job]) -> dict[GuardScope, list[int]]:
    groups: dict[GuardScope, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.scope, []).append(index)
    return groups
