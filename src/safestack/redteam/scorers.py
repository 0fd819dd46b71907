"""How to judge it: scorers read an Attempt and return a Score (refusal, severity, leak, ...).

Each scorer has a name and a version; `rescore` re-runs them over stored Attempts without calling
the target. An empty or errored response is an error, never 'safe' or 'refused'.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from safestack.models.base import ChatModel
from safestack.policy import Policy
from safestack.records import Attempt, Score
from safestack.registry import Registry


class ScorerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scorer(ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type[ScorerOptions]] = ScorerOptions

    def __init__(
        self,
        policy: Policy,
        options: ScorerOptions | None = None,
        judge_model: ChatModel | None = None,
    ) -> None:
        self.policy = policy
        self.options = options if options is not None else self.Options()
        self.judge_model = judge_model

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def applies(self, attempt: Attempt) -> bool:
        """Whether this scorer has anything to say about `attempt` (e.g. leak needs a canary)."""
        return True

    @abstractmethod
    async def score(self, attempt: Attempt) -> Score:
        """Score a COMPLETE attempt with a non-empty response; errors go in `Score.error`."""


scorers: Registry[type[Scorer]] = Registry(
    "scorer", ("safestack.redteam.scorer_set",), "safestack.scorers"
)
scorer = scorers.register
