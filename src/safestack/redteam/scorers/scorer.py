"""How to judge it: scorers read an Attempt and return a Score (refusal, severity, leak, ...).

Each scorer has a name and a version; `rescore` re-runs them over stored Attempts without calling
the target. An empty or errored response is an error, never 'safe' or 'refused'.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from safestack.models.base import ChatModel
from safestack.policy import Policy
from safestack.records import Attempt, Score
from safestack.registry import Plugin, PluginOptions, Registry


class ScorerOptions(PluginOptions):
    """Base for a scorer's options block (a campaign's `scorers[].options`)."""


class Scorer(Plugin, ABC):
    Options: ClassVar[type[ScorerOptions]] = ScorerOptions
    # True when `score_many` judges a batch in one model call: the runner then queues answered
    # attempts for this scorer and hands it up to 32 at a time. Others score each attempt alone.
    batches: bool = False

    def __init__(
        self,
        policy: Policy,
        options: ScorerOptions | None = None,
        judge_model: ChatModel | None = None,
    ) -> None:
        super().__init__(options)
        self.policy = policy
        self.judge_model = judge_model

    def applies(self, attempt: Attempt) -> bool:
        """Whether this scorer has anything to say about `attempt` (e.g. leak needs a canary)."""
        return True

    @abstractmethod
    async def score(self, attempt: Attempt) -> Score:
        """Score a COMPLETE attempt with a non-empty response; errors go in `Score.error`."""

    async def score_many(self, attempts: Sequence[Attempt]) -> list[Score]:
        """`score` for each attempt, in order; a batching scorer judges them in one model call.

        The scores must be those `score` gives (a batch may differ in float rounding only). If
        this raises, the runner scores the attempts one by one instead.
        """
        return [await self.score(attempt) for attempt in attempts]

    def load(self) -> None:
        """Load models before the first attempt needs them (runs in a worker thread, once)."""


scorers: Registry[type[Scorer]] = Registry(
    "scorer",
    (
        "safestack.redteam.scorers.refusal",
        "safestack.redteam.scorers.harm_severity",
        "safestack.redteam.scorers.ungroundedness",
        "safestack.redteam.scorers.leaks",
    ),
    "safestack.scorers",
)
scorer = scorers.register
