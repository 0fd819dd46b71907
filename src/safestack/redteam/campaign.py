"""A campaign: one YAML file choosing from each axis (behaviours, attacks + converters, scorers,
targets) with a sampling budget. Loading validates everything against the registries, so a bad
file fails before any call, naming the line and the field path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import RegistryError, SafestackError
from safestack.http import RetryPolicy
from safestack.models.base import GenerationSettings, chat_models
from safestack.redteam.attacks import attacks
from safestack.redteam.behaviours import behaviour_sources
from safestack.redteam.converters import converters
from safestack.redteam.scorers import scorers
from safestack.registry import Registry
from safestack.yamlfile import line_of, read_yaml, validate


class CampaignError(SafestackError):
    """A campaign file is invalid; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """A chat model by registry kind and options (attacker and judge models)."""

    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class TargetSpec(ModelSpec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@:-]{1,100}$")
    system_prompt: str | None = Field(
        default="You are a helpful assistant.",
        description="Sent as the system message when the target takes one; attacks may replace it.",
    )
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=120.0, gt=0)


class BehaviourSpec(_Strict):
    source: str
    options: dict[str, Any] = Field(default_factory=dict)


class ConverterSpec(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class AttackSpec(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    converters: tuple[ConverterSpec, ...] = ()

    @field_validator("converters", mode="before")
    @classmethod
    def _names_allowed(cls, value: Any) -> Any:
        # `converters: [base64, rot13]` is shorthand for `[{name: base64}, {name: rot13}]`.
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @property
    def label(self) -> str:
        chain = "+".join(c.name for c in self.converters)
        return f"{self.name}[{chain}]" if chain else self.name


class ScorerSpec(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(_Strict):
    max_requests: int | None = Field(default=None, ge=1, description="Target + attacker calls.")
    max_tokens: int | None = Field(default=None, ge=1, description="Prompt + completion tokens.")
    max_probes_per_attack: int | None = Field(default=None, ge=1)


class Retries(_Strict):
    attempts: int = Field(default=4, ge=1, le=20, description="Tries per call, the first included.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles per retry.")
    max_backoff_s: float = Field(
        default=20.0, ge=0, description="Longest wait before a retry; a longer Retry-After fails."
    )

    def policy(self) -> RetryPolicy:
        """The same retry decision the judge's remote detectors make (`safestack.http`)."""
        return RetryPolicy(self.attempts - 1, self.backoff_s, self.max_backoff_s)


DEFAULT_SCORERS = (
    "refusal",
    "harm-severity",
    "ungroundedness",
    "canary-leak",
    "prompt-overlap",
    "injection-success",
)


class Campaign(_Strict):
    """A red-team campaign. Every campaign also runs the plain-request `baseline` attack."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    description: str = ""
    seed: int = 0
    samples: int = Field(default=1, ge=1, le=100, description="Samples per probe and target.")
    targets: tuple[TargetSpec, ...] = Field(min_length=1)
    behaviours: tuple[BehaviourSpec, ...] = Field(min_length=1)
    attacks: tuple[AttackSpec, ...] = ()
    scorers: tuple[ScorerSpec, ...] = tuple(ScorerSpec(name=n) for n in DEFAULT_SCORERS)
    attacker: ModelSpec | None = None
    judge_model: ModelSpec | None = None
    generation: GenerationSettings = GenerationSettings()
    budget: Budget = Budget()
    retries: Retries = Retries()

    @field_validator("scorers", mode="before")
    @classmethod
    def _scorer_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _with_baseline(self) -> Campaign:
        if not any(a.name == "baseline" and not a.converters for a in self.attacks):
            object.__setattr__(self, "attacks", (AttackSpec(name="baseline"), *self.attacks))
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        return self

    def digest(self, data_pins: dict[str, str]) -> str:
        """sha256 of what the campaign asks, of whom and how it judges, plus the data it reads.

        How a run is executed (budget, retries, concurrency, timeouts, description) is left out,
        so raising a budget or a timeout resumes the same run instead of starting a new one.
        """
        content = self.model_dump(mode="json", exclude={"budget", "retries", "description"})
        for target in content["targets"]:
            del target["concurrency"], target["timeout_s"]
        blob = json.dumps({"campaign": content, "data": data_pins}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file: schema, then every registry name and options block."""
    data, root = read_yaml(path, CampaignError, "campaign")
    campaign = validate(
        Campaign,
        data,
        str(path),
        root,
        CampaignError,
        "see docs/redteam.md for the campaign fields",
    )
    _check_registries(campaign, str(path), root, _attack_count(data))
    return campaign


def parse_campaign(data: dict[str, Any], source: str = "<campaign>") -> Campaign:
    """Validate an in-memory campaign mapping (for the Python API and tests)."""
    campaign = validate(Campaign, data, source, None, CampaignError)
    _check_registries(campaign, source, None, _attack_count(data))
    return campaign


def _check_registries(
    campaign: Campaign, source: str, root: yaml.Node | None, user_attacks: int
) -> None:
    # When the file has no baseline, one was prepended: the user's attack i is campaign's i + 1.
    offset = len(campaign.attacks) - user_attacks

    def fail(loc: list[str], message: str) -> NoReturn:
        line = line_of(root, loc)
        where = f"{source}:{line}" if line else source
        raise CampaignError(f"{where}: {'.'.join(loc)}: {message}")

    def check(registry: Registry[Any], name: str, options: dict[str, Any], loc: list[str]) -> Any:
        field = "kind" if loc[0] in ("targets", "attacker", "judge_model") else "name"
        if loc[0] == "behaviours":
            field = "source"
        try:
            cls = registry.get(name)
        except RegistryError as exc:
            fail([*loc, field], str(exc))
        cls.validate_options(
            options, source=source, root=root, loc=[*loc, "options"], error=CampaignError
        )
        return cls

    for i, target in enumerate(campaign.targets):
        check(chat_models, target.kind, target.options, ["targets", str(i)])
    for key in ("attacker", "judge_model"):
        spec = getattr(campaign, key)
        if spec is not None:
            check(chat_models, spec.kind, spec.options, [key])
    for i, behaviour in enumerate(campaign.behaviours):
        check(behaviour_sources, behaviour.source, behaviour.options, ["behaviours", str(i)])
    for i, attack_spec in enumerate(campaign.attacks):
        loc = ["attacks", str(i - offset)]
        needs = check(attacks, attack_spec.name, attack_spec.options, loc).needs_attacker
        for j, conv in enumerate(attack_spec.converters):
            conv_cls = check(converters, conv.name, conv.options, [*loc, "converters", str(j)])
            needs = needs or conv_cls.needs_attacker
        if needs and campaign.attacker is None:
            fail(
                loc,
                f"'{attack_spec.label}' needs an attacker model; add a top-level "
                "`attacker: {kind: openai, options: {base_url: ..., model: ...}}`",
            )
    for i, scorer_spec in enumerate(campaign.scorers):
        check(scorers, scorer_spec.name, scorer_spec.options, ["scorers", str(i)])


def _attack_count(data: dict[str, Any]) -> int:
    attacks_in_file = data.get("attacks")
    return len(attacks_in_file) if isinstance(attacks_in_file, list) else 0
