"""How to deliver it, part two: attacks turn behaviours into probes and run them against a target.

An attack plans its probes up front (so a run knows its size and can resume by probe id) and then
runs one probe at a time: a single prompt, a templated jailbreak, an injection inside a tool result,
or a multi-turn conversation. Success is decided later by scorers, not here.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from safestack.models.base import ChatModel, GenerationSettings
from safestack.records import Message, Usage
from safestack.redteam.behaviours.behaviour import Behaviour
from safestack.redteam.converters.converter import Converter
from safestack.registry import Plugin, PluginOptions, Registry


class AttackOptions(PluginOptions):
    """Base for an attack's options block (a campaign's `attacks[].options`)."""


class Probe(BaseModel):
    """One planned interaction. `id` is stable across runs for the same campaign content."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    attack: str = Field(description="'name@version'.")
    objective: str
    category: str
    benign: bool = False
    behaviour: Behaviour | None = None
    converters: tuple[str, ...] = ()
    canary: str | None = None
    system_prompt: str | None = None
    grounding: str | None = None
    payload: dict[str, str] = Field(default_factory=dict, description="Attack-specific fields.")


class Transcript(BaseModel):
    """What happened: the whole conversation as the target saw it, and its last answer."""

    model_config = ConfigDict(extra="forbid")
    messages: list[Message] = Field(default_factory=list)
    response: str | None = None
    usage: Usage = Field(default_factory=Usage)


@dataclass
class AttackContext:
    """What an attack may use while running one probe."""

    target: ChatModel
    settings: GenerationSettings
    converters: list[Converter] = field(default_factory=list)
    attacker: ChatModel | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))


class Attack(Plugin, ABC):
    """Subclasses set `name`, `version`, `Options`, what they need of a target, and implement both."""

    Options: ClassVar[type[AttackOptions]] = AttackOptions
    needs_system_prompt: ClassVar[bool] = False
    needs_multi_turn: ClassVar[bool] = False
    needs_attacker: ClassVar[bool] = False
    uses_behaviours: ClassVar[bool] = True
    # The scorers that decide whether a probe succeeded (`metrics.attack_outcome`), any one enough.
    # The plan adds the first when a campaign lists none, or the report counts every attempt as
    # an error. Empty: success is the harm scorer's call, which a campaign may replace by its own.
    judged_by: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: AttackOptions | None = None) -> None:
        super().__init__(options)

    def expected_calls(self) -> int:
        """Target calls one probe makes (attacker calls included), for the budget estimate."""
        return 1

    @abstractmethod
    def probes(self, behaviours: Sequence[Behaviour], converters: Sequence[str]) -> list[Probe]:
        """Plan the probes; attacks with their own objectives (injection) ignore `behaviours`."""

    @abstractmethod
    async def run(self, probe: Probe, ctx: AttackContext) -> Transcript:
        """Talk to `ctx.target`. Let ModelError propagate: the runner records it as an error."""

    def probe_id(self, *parts: Any) -> str:
        """A stable id from the attack, its options and the given parts."""
        blob = json.dumps(
            [self.ref, self.options.model_dump(mode="json"), *parts], sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


attacks: Registry[type[Attack]] = Registry(
    "attack",
    (
        "safestack.redteam.attacks.single_turn",
        "safestack.redteam.attacks.injection",
        "safestack.redteam.attacks.multi_turn",
    ),
    "safestack.attacks",
)
attack = attacks.register
