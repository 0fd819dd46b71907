"""Scoring attempts: every scorer that applies, errors kept as error scores, and batching for the
scorers whose models judge many responses in one call (the built-in ones). Used by the runner as
attempts complete, and by `rescore`, which re-judges stored attempts without calling any target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from safestack.models.base import ChatModel
from safestack.policy import Policy
from safestack.records import Attempt, AttemptStatus, Score
from safestack.redteam.campaign import Campaign
from safestack.redteam.scorers import Scorer, scorers

if TYPE_CHECKING:
    from safestack.judge.builtin import BuiltinModels

# Responses a batching scorer (the built-in models) judges in one call.
SCORE_BATCH = 32


def build_scorers(
    campaign: Campaign,
    policy: Policy,
    judge: ChatModel | None,
    models: BuiltinModels | None = None,
) -> list[Scorer]:
    """The campaign's scorers; those running the built-in models run them on `models` (the run's)."""
    built = []
    for spec in campaign.scorers:
        cls = scorers.get(spec.name)
        built.append(
            cls.from_options(
                spec.options, policy, where="scorers", judge_model=judge, models=models
            )
        )
    return built


async def score_attempt(
    attempt: Attempt, active: Sequence[Scorer], batcher: ScoreBatcher | None = None
) -> Attempt:
    """The attempt with a fresh score from every scorer that applies (errors recorded as errors).

    With a `batcher`, scorers that batch judge the attempt together with others waiting for them.
    """
    if attempt.status != AttemptStatus.COMPLETE:
        return attempt.model_copy(update={"scores": []})
    results: list[Score] = []
    for scorer in active:
        if not scorer.applies(attempt):
            continue
        try:
            if batcher is not None and scorer.batches:
                results.append(await batcher.score(scorer, attempt))
            else:
                results.append(await scorer.score(attempt))
        except Exception as exc:  # a scorer bug must not lose the attempt; it is an error score
            results.append(
                Score(
                    scorer=scorer.name, version=scorer.version, error=f"{type(exc).__name__}: {exc}"
                )
            )
    return attempt.model_copy(update={"scores": results})


class ScoreBatcher:
    """Hands batching scorers the attempts waiting for them, up to `SCORE_BATCH` per call, one
    call at a time: a batch forms from what arrives while the previous one is being judged, so
    nothing waits for a batch to fill. The scorers' models are loaded first, in a worker thread,
    while the first requests are in flight."""

    def __init__(self, active: Sequence[Scorer]) -> None:
        self._waiting: dict[Scorer, list[tuple[Attempt, asyncio.Future[Score]]]] = {}
        self._worker: asyncio.Task[None] | None = None
        self._loaded: asyncio.Future[None] | None = (
            asyncio.ensure_future(asyncio.to_thread(_load, active)) if active else None
        )

    async def score(self, scorer: Scorer, attempt: Attempt) -> Score:
        done: asyncio.Future[Score] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(scorer, []).append((attempt, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        if self._loaded is not None:
            await self._loaded
        while any(self._waiting.values()):
            for scorer, waiting in self._waiting.items():
                batch, waiting[:] = waiting[:SCORE_BATCH], waiting[SCORE_BATCH:]
                if batch:
                    await self._judge(scorer, batch)

    async def _judge(
        self, scorer: Scorer, batch: list[tuple[Attempt, asyncio.Future[Score]]]
    ) -> None:
        attempts = [attempt for attempt, _ in batch]
        outcomes: list[Score | BaseException]
        try:
            scores = await scorer.score_many(attempts)
            if len(scores) != len(attempts):
                raise ValueError(f"{scorer.name}: {len(scores)} scores for {len(attempts)}")
            outcomes = list(scores)
        except Exception:  # the batch failed: each attempt gets what scoring it alone gives
            outcomes = []
            for attempt in attempts:
                try:
                    outcomes.append(await scorer.score(attempt))
                except Exception as exc:
                    outcomes.append(exc)
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if done.done():
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    async def aclose(self) -> None:
        for task in (self._worker, self._loaded):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._worker, self._loaded):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)


def _load(active: Sequence[Scorer]) -> None:
    for scorer in active:
        try:
            scorer.load()
        except Exception:
            continue


async def rescore(attempts: Sequence[Attempt], active: Sequence[Scorer]) -> list[Attempt]:
    """Re-judge stored attempts with `active` scorers; the targets are not called."""
    return [await score_attempt(a, active) for a in attempts]
