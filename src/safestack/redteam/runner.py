"""Running a campaign: every planned interaction once, concurrently within each target's limit,
retried on transient failures, journalled, scored, and committed to the store once scored.

Re-running the same campaign resumes: stored (target, probe, sample) keys are skipped, and answered
attempts the store lacks are taken from the run's journal (`redteam.journal`: written the moment a
target answers) and scored and stored without asking again. So a killed run (even `kill -9`) loses
only the interactions in flight at the targets. A changed campaign is refused unless forced.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safestack.judge.builtin import BuiltinModels
from safestack.models.base import (
    ChatModel,
    Completion,
    GenerationSettings,
    ModelError,
    create_model,
)
from safestack.policy import Policy
from safestack.records import Attempt, AttemptStatus, Message, Role, Usage
from safestack.redteam.attacks import AttackContext
from safestack.redteam.campaign import Campaign, ModelSpec, Retries, TargetSpec
from safestack.redteam.converters import Converter, converters
from safestack.redteam.journal import Entry, Journal, Replay, journal_directory, read_journal
from safestack.redteam.plan import Plan, Work, plan_campaign
from safestack.redteam.scoring import ScoreBatcher, build_scorers, score_attempt
from safestack.store import Store
from safestack.store.attempts import AttemptWriter

# Answered attempts not yet committed, run-wide: when this many wait to be scored and stored, the
# targets wait too (they are journalled already; this bounds the memory they hold).
ANSWERED_LIMIT = 64


class BudgetExhausted(Exception):
    """The campaign's request or token budget is spent; the rest waits for the next run."""


@dataclass
class Spend:
    """Requests and tokens spent in this run, checked against the campaign budget before a call."""

    max_requests: int | None
    max_tokens: int | None
    requests: int = 0
    tokens: int = 0

    def reserve(self) -> None:
        if self.max_requests is not None and self.requests >= self.max_requests:
            raise BudgetExhausted(f"request budget of {self.max_requests} spent")
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            raise BudgetExhausted(f"token budget of {self.max_tokens} spent")
        self.requests += 1


class GatedModel(ChatModel):
    """A model seen through the campaign's rules: budget, per-call timeout, retries with backoff,
    and the target's default system prompt when the conversation brings none."""

    name = "gated"

    def __init__(
        self,
        inner: ChatModel,
        spend: Spend,
        retries: Retries,
        timeout_s: float,
        system_prompt: str | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.sleep = sleep  # waits between tries; a test passes a fake clock
        self.capabilities = inner.capabilities
        self.spend = spend
        self.retry = retries.policy()
        self.timeout_s = timeout_s
        self.system_prompt = system_prompt if inner.capabilities.system_prompt else None
        self.usage = Usage()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def with_system(self, messages: Sequence[Message]) -> list[Message]:
        if self.system_prompt and not any(m.role == Role.SYSTEM for m in messages):
            return [Message(role=Role.SYSTEM, content=self.system_prompt), *messages]
        return list(messages)

    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        sent = self.with_system(messages)
        attempt = 0
        while True:
            try:
                completion = await self._call(sent, settings)
                break
            except ModelError as exc:
                decision = self.retry.decide(attempt, exc.transient, exc.retry_after)
                if decision.wait_s is None:
                    if decision.give_up == "retry-after-too-long":
                        raise self._impatient(exc) from exc
                    raise
                await self.sleep(decision.wait_s)
                attempt += 1
        self.spend.tokens += completion.prompt_tokens + completion.completion_tokens
        self.usage = Usage(
            requests=self.usage.requests + 1,
            prompt_tokens=self.usage.prompt_tokens + completion.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + completion.completion_tokens,
        )
        return completion

    async def _call(self, sent: list[Message], settings: GenerationSettings) -> Completion:
        self.spend.reserve()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.inner.complete(sent, settings)
        except TimeoutError:
            raise ModelError(
                self.model_id, f"no answer within {self.timeout_s:g} s", transient=True
            ) from None

    def _impatient(self, exc: ModelError) -> ModelError:
        return ModelError(
            self.model_id,
            f"the server asked to retry after {exc.retry_after:g} s, longer than the campaign's "
            f"retries.max_backoff_s={self.retry.max_backoff_s:g} s; raise it or lower the "
            f"request rate ({exc})",
            transient=True,
            retry_after=exc.retry_after,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class RunResult:
    run_id: str
    campaign_hash: str
    planned: int
    already_done: int
    completed: int = 0
    errors: int = 0
    recovered: int = 0  # of completed + errors: answered before a kill, taken from the journal
    not_run: int = 0
    stopped: str | None = None
    spend: Spend | None = None
    # Not in the repr: asyncio.run formats its main task's result (twice, on Python 3.11), and
    # thousands of Attempts took longer to print than a run of 200 attempts takes to send.
    attempts: list[Attempt] = field(default_factory=list, repr=False)


Progress = Callable[[Attempt], None]


def build_model(spec: ModelSpec, where: str, models: BuiltinModels | None = None) -> ChatModel:
    """The chat model `spec` names; one that runs the built-in models (`guarded`) runs `models`."""
    return create_model(spec.kind, spec.options, where=where, models=models)


class Runner:
    """Runs one campaign against the store; build it, then `todo, _ = runner.pending()` and
    `await runner.run(todo)`.

    The run's journal lives beside a SQLite store file, or under `home` for other stores (the
    CLI passes `SAFESTACK_HOME`); without either (in-memory SQLite, or PostgreSQL and no `home`)
    the run keeps none and a killed process loses its answered, uncommitted attempts.

    The run's built-in models (`models`: its scorers' and guarded targets'; a new `BuiltinModels`
    unless the caller passes its own) load once for the whole run.
    """

    def __init__(
        self,
        campaign: Campaign,
        store: Store,
        policy: Policy,
        *,
        run_id: str | None = None,
        force: bool = False,
        home: Path | None = None,
        models: BuiltinModels | None = None,
    ) -> None:
        self.campaign = campaign
        self.store = store
        self.policy = policy
        self.run_id = run_id or campaign.name
        self.force = force
        self.journal_directory = journal_directory(store.engine.url, self.run_id, home)
        # What resume found in the journal (`pending` reads it; `run` scores and stores it).
        self.replay = Replay(self.journal_directory)
        self.models = models if models is not None else BuiltinModels()
        self.spend = Spend(campaign.budget.max_requests, campaign.budget.max_tokens)
        self.targets = {
            t.name: build_model(t, f"targets[{i}]", self.models)
            for i, t in enumerate(campaign.targets)
        }
        self.attacker = build_model(campaign.attacker, "attacker") if campaign.attacker else None
        self.judge = (
            build_model(campaign.judge_model, "judge_model") if campaign.judge_model else None
        )
        self.plan: Plan = plan_campaign(
            campaign, {name: m.capabilities for name, m in self.targets.items()}
        )
        # The plan may add a scorer an attack needs; the run stores and scores with that campaign.
        self.campaign = self.plan.campaign
        self._generation: dict[int, tuple[GenerationSettings, dict[str, Any]]] = {}

    def pending(self) -> tuple[list[Work], int]:
        """Open (or create) the run and return the work still to ask, and how much is not: the
        stored attempts and the answered ones in the journal (`self.replay`, stored by `run`)."""
        self.store.runs.open(
            self.run_id,
            self.campaign.name,
            self.plan.campaign_hash,
            self.campaign.model_dump(mode="json"),
            force=self.force,
        )
        done = self.store.runs.attempt_keys(self.run_id)
        self.replay = self.read_journal(done)
        answered = done | self.replay.keys()
        todo = [w for w in self.plan.work if w.key not in answered]
        return todo, len(self.plan.work) - len(todo)

    def read_journal(self, stored: set[tuple[str, str, int]]) -> Replay:
        """The journalled attempts of this run that are not among the `stored` keys."""
        planned = {w.key for w in self.plan.work}
        return read_journal(
            self.journal_directory, self.run_id, self.plan.campaign_hash, stored, planned
        )

    async def run(self, todo: Sequence[Work], on_attempt: Progress | None = None) -> RunResult:
        recovered = self.replay.attempts
        taken = self.replay.keys()
        todo = [w for w in todo if w.key not in taken]
        result = RunResult(
            self.run_id,
            self.plan.campaign_hash,
            len(self.plan.work),
            len(self.plan.work) - len(todo) - len(recovered),
        )
        result.spend = self.spend
        active = build_scorers(self.campaign, self.policy, self.judge, self.models)
        specs = {t.name: t for t in self.campaign.targets}
        limits = {name: asyncio.Semaphore(spec.concurrency) for name, spec in specs.items()}
        answered = asyncio.Semaphore(ANSWERED_LIMIT)
        stop = asyncio.Event()
        try:  # first, so that nothing runs unless answers can be journalled
            journal = (
                Journal(self.journal_directory, self.replay.segments, len(recovered))
                if self.journal_directory is not None
                else None
            )
        except BaseException:
            await self._close_models()
            raise
        batcher = ScoreBatcher(active)
        writer = AttemptWriter(self.store.runs.record_attempts)

        async def one(work: Work) -> None:
            async with limits[work.target]:
                if stop.is_set():
                    result.not_run += 1
                    return
                try:
                    attempt = await self._attempt(work, specs[work.target])
                except BudgetExhausted as exc:
                    result.stopped = str(exc)
                    result.not_run += 1
                    stop.set()
                    return
                # Written before the target's slot is freed: a kill from here on loses nothing.
                entry = journal.append(attempt) if journal else None
                await answered.acquire()  # the target's slot is freed once there is room
            await finish(attempt, entry)

        async def finish(attempt: Attempt, entry: Entry | None) -> None:
            """Score, and commit once journalled on disk; then the attempt counts as done."""
            try:
                attempt = await score_attempt(attempt, active, batcher)
                if journal and entry:
                    await journal.synced(entry)  # usually long done: it began at the append
                await writer.write(attempt)  # returns once committed
            finally:
                answered.release()
            if journal and entry:
                journal.confirm(entry)
            if attempt.status == AttemptStatus.ERROR:
                result.errors += 1
            else:
                result.completed += 1
            result.attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)

        async def recover(attempt: Attempt) -> None:
            await answered.acquire()
            await finish(attempt, Entry(journal.adopted, 0) if journal else None)
            result.recovered += 1

        try:
            async with asyncio.TaskGroup() as group:
                for attempt in recovered:
                    group.create_task(recover(attempt))
                for work in todo:
                    group.create_task(one(work))
            self.replay = Replay(self.journal_directory)  # stored now
        finally:
            await batcher.aclose()
            await writer.close()
            if journal:
                await journal.aclose()
            await self._close_models()
        return result

    async def _close_models(self) -> None:
        for model in {*self.targets.values(), self.attacker, self.judge} - {None}:
            assert model is not None
            await model.aclose()

    def _settings(self, sample: int) -> tuple[GenerationSettings, dict[str, Any]]:
        """The generation settings of a sample (each has its own seed), and as the Attempt records them."""
        if sample not in self._generation:
            settings = self.campaign.generation
            if settings.seed is not None:
                settings = settings.model_copy(update={"seed": settings.seed + sample})
            self._generation[sample] = (settings, settings.model_dump(mode="json"))
        return self._generation[sample]

    async def _attempt(self, work: Work, spec: TargetSpec) -> Attempt:
        """Run one interaction; the Attempt is unscored (`score_attempt` judges it)."""
        planned = self.plan.attacks[work.attack_index]
        probe = work.probe
        settings, recorded = self._settings(work.sample)
        target = GatedModel(
            self.targets[work.target],
            self.spend,
            self.campaign.retries,
            spec.timeout_s,
            spec.system_prompt,
        )
        attacker = (
            GatedModel(self.attacker, self.spend, self.campaign.retries, spec.timeout_s)
            if self.attacker is not None
            else None
        )
        chain: list[Converter] = []
        for conv in planned.spec.converters:
            cls = converters.get(conv.name)
            chain.append(cls.from_options(conv.options, where="converters", attacker=attacker))
        rng = random.Random(f"{self.campaign.seed}:{probe.id}:{work.sample}")
        ctx = AttackContext(target, settings, chain, attacker, rng)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        fields = {
            "run_id": self.run_id,
            "campaign_hash": self.plan.campaign_hash,
            "target": work.target,
            "target_model": target.model_id,
            "probe_id": probe.id,
            "sample": work.sample,
            "attack": planned.attack.ref,
            "converters": [c.ref for c in chain],
            "behaviour_id": probe.behaviour.id if probe.behaviour else None,
            "behaviour_source": probe.behaviour.source if probe.behaviour else None,
            "category": probe.category,
            "benign": probe.benign,
            "objective": probe.objective,
            "canary": probe.canary,
            "grounding": probe.grounding,
            "generation": dict(recorded),
            "started_at": started,
        }
        try:
            transcript = await planned.attack.run(probe, ctx)
        except ModelError as exc:
            return Attempt(
                **fields,
                status=AttemptStatus.ERROR,
                error=str(exc),
                usage=target.usage,
                latency_ms=(time.perf_counter() - clock) * 1000,
            )
        response = transcript.response
        empty = response is None or not response.strip()
        attempt = Attempt(
            **fields,
            conversation=target.with_system(transcript.messages),
            response=response,
            status=AttemptStatus.ERROR if empty else AttemptStatus.COMPLETE,
            error="the target returned an empty response" if empty else None,
            usage=transcript.usage if transcript.usage.requests else target.usage,
            latency_ms=(time.perf_counter() - clock) * 1000,
        )
        return attempt
