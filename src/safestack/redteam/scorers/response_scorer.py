"""What every built-in scorer that reads a response shares: no response or a failing judge is an
error score, never "safe" or "refused"; built-in detectors judge a batch of responses in one call.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from safestack.errors import SafestackError
from safestack.judge import Judge, create_detector
from safestack.policy import Policy
from safestack.records import Attempt, AttemptStatus, Role, Score, Verdict
from safestack.redteam.scorers.scorer import Scorer

if TYPE_CHECKING:
    from safestack.judge.builtin import BuiltinModels


def no_response(attempt: Attempt) -> str | None:
    """Why `attempt` has nothing to score, or None when it has a response."""
    if attempt.status == AttemptStatus.ERROR:
        return f"no response to score: the attempt failed ({attempt.error or 'no error message'})"
    if attempt.status == AttemptStatus.SKIPPED:
        return f"no response to score: the attempt was skipped ({attempt.error or 'no reason'})"
    if attempt.response is None or not attempt.response.strip():
        return "no response to score: the response is empty"
    return None


class ResponseScorer(Scorer):
    """Shared guard rails: no response or a failing judge -> `Score.error`, value None."""

    @property
    def score_version(self) -> str:
        """The version recorded on Scores; refined by the judge a scorer uses."""
        return self.version

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.score_version}"

    @property
    def _judge_id(self) -> str:
        return "none" if self.judge_model is None else self.judge_model.model_id

    def make(self, **fields: Any) -> Score:
        return Score(scorer=self.name, version=self.score_version, **fields)

    async def score(self, attempt: Attempt) -> Score:
        missing = no_response(attempt)
        if missing is not None:
            return self.make(error=missing)
        assert attempt.response is not None
        try:
            return await self.score_response(attempt, attempt.response)
        except SafestackError as exc:
            return self.make(error=f"{self.ref} could not judge: {exc}")

    @abstractmethod
    async def score_response(self, attempt: Attempt, response: str) -> Score:
        """Score a non-empty response; raise SafestackError when no opinion can be given."""

    async def judge_many(
        self,
        judge: Judge,
        attempts: Sequence[Attempt],
        read: Callable[[Attempt, Verdict], Score],
    ) -> list[Score]:
        """What `score` gives for each attempt, with one `check_batch` of the judge's detectors
        for all the responses (in a worker thread: the models hold the GIL in short stretches)."""
        scores: list[Score | None] = [None] * len(attempts)
        samples, judged = [], []
        for index, attempt in enumerate(attempts):
            missing = no_response(attempt)
            if missing is not None:
                scores[index] = self.make(error=missing)
                continue
            try:
                samples.append(
                    judge.prepare(attempt.response, "response", request=request_of(attempt))
                )
            except SafestackError as exc:
                scores[index] = self.make(error=f"{self.ref} could not judge: {exc}")
                continue
            judged.append(index)
        if samples:
            verdicts = await asyncio.to_thread(judge.check_batch, samples)
            for index, verdict in zip(judged, verdicts, strict=True):
                scores[index] = read(attempts[index], verdict)
        return [score for score in scores if score is not None]


def request_of(attempt: Attempt) -> str | None:
    """The last user turn the response answers (the behaviour's objective when the conversation
    was not stored): `refusal` and `response-harm` judge the pair."""
    for message in reversed(attempt.conversation):
        if message.role is Role.USER and message.content.strip():
            return message.content
    return attempt.objective or None


def warm_judge(judge: Judge) -> None:
    """Load the built-in detectors' first tier (the static embeddings; heads load with the
    detector) into each detector's `BuiltinModels`. The accurate tier, needed only for uncertain
    inputs, still loads when first used."""
    from safestack.judge.builtin.cascade import BuiltinDetector, CascadeOptions

    for detector in judge.detectors:
        if isinstance(detector, BuiltinDetector) and isinstance(detector.options, CascadeOptions):
            if detector.options.tiers == "accurate":
                detector.models.encoder()
            else:
                detector.models.static_embedder()


def offline_judge(policy: Policy, detector: str, models: BuiltinModels | None) -> Judge:
    """A Judge with one built-in cascade detector on `models` and no piece budget: red-team
    scoring is batch work, so every uncertain chunk of a response escalates to the accurate tier."""
    specs = {spec.name: spec.options for spec in policy.judge.detectors}
    options = {**specs.get(detector, {}), "budget_ms": 1e9}
    return Judge(policy, [create_detector(detector, policy, options, models=models)])
