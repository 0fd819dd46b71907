"""The retain set: benign and borderline requests with helpful answers, mixed in with the safety
rows so that the fine-tune learns to keep helping, not only to refuse.

Sources, in the order they fill the set: the runs' own benign attempts the target answered helpfully
(`run`), safestack's packaged borderline requests with team-written answers (`borderline`,
`assets/retain.yaml`) and chatterbot-corpus conversations when that package is installed
(`chatterbot`). The over-refusal evaluation prompts (the `benign-lookalikes` behaviour set by
default) are held out: a request among them never enters the retain set, so the benign refusal rate
measured on them after training is not measured on training data.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field

from safestack.align.findings import Finding
from safestack.align.rows import RowSource, Turn, prompt_hash, text_hash
from safestack.datasets import SourceUnavailableError
from safestack.datasets.chatterbot import chat_pairs
from safestack.errors import InputError
from safestack.redteam.behaviours import behaviour_sources
from safestack.yamlfile import validate

# Retain rows per safety (SFT) row; docs/align.md says why 3 (Safety-Tuned LLaMAs measured a few
# percent of safety data as enough when the general data is large; a CPU round cannot afford that).
DEFAULT_RETAIN_RATIO = 3.0
RETAIN_SOURCES = ("run", "borderline", "chatterbot")
DEFAULT_HELDOUT = ("benign-lookalikes",)
BORDERLINE_ASSET = "retain.yaml"


@dataclass(frozen=True)
class RetainCandidate:
    """A request with a helpful answer that may join the retain set."""

    source: RowSource
    prompt: tuple[Turn, ...]
    answer: str
    language: str
    category: str
    writer: str
    group: str
    finding: Finding | None = None

    @property
    def prompt_hash(self) -> str:
        return prompt_hash(self.prompt)

    def request_hashes(self) -> set[str]:
        return {text_hash(turn.content) for turn in self.prompt if turn.role == "user"}


@dataclass(frozen=True)
class HeldOut:
    """The over-refusal evaluation requests: never trained on."""

    pins: dict[str, str]
    hashes: frozenset[str]

    def holds(self, candidate: RetainCandidate) -> bool:
        if candidate.finding is not None:
            source = candidate.finding.attempt.behaviour_source
            if source is not None and source in self.pins:
                return True
        return bool(candidate.request_hashes() & self.hashes)


def load_heldout(names: Sequence[str]) -> HeldOut:
    """The requests of the named behaviour sets (whole, as packaged), by normalised text hash."""
    pins: dict[str, str] = {}
    hashes: set[str] = set()
    for name in names:
        cls = behaviour_sources.get(name, where="held-out over-refusal set")
        loaded = cls.from_options(None, where=f"held-out set {name}").load()
        pins[name] = f"{loaded.version} sha256:{loaded.sha256}"
        hashes.update(text_hash(b.text) for b in loaded.behaviours)
    return HeldOut(pins, frozenset(hashes))


class BorderlineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category: str
    language: str
    prompt: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class BorderlineSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int
    items: tuple[BorderlineItem, ...] = Field(min_length=1)


@cache
def _borderline_text() -> str:
    return (
        resources.files("safestack.align").joinpath("assets", BORDERLINE_ASSET).read_text("utf-8")
    )


def borderline_ref() -> str:
    return "borderline@" + hashlib.sha256(_borderline_text().encode()).hexdigest()[:12]


def borderline_candidates() -> list[RetainCandidate]:
    data = yaml.safe_load(_borderline_text())
    items = validate(
        BorderlineSet, data, f"safestack/align/assets/{BORDERLINE_ASSET}", None, InputError
    ).items
    ref = borderline_ref()
    return [
        RetainCandidate(
            source="borderline",
            prompt=(Turn(role="user", content=item.prompt),),
            answer=item.answer,
            language=item.language,
            category=item.category,
            writer=ref,
            group=f"request:{text_hash(item.prompt)}",
        )
        for item in items
    ]


def chatterbot_candidates() -> tuple[list[RetainCandidate], str]:
    """The chatterbot-corpus pairs and their pin, or ([], why not) when it is not installed."""
    try:
        pairs = chat_pairs()
    except SourceUnavailableError as exc:
        return [], f"unavailable: {exc}"
    from importlib.metadata import version

    ref = f"chatterbot-corpus=={version('chatterbot-corpus')}"
    return [
        RetainCandidate(
            source="chatterbot",
            prompt=(Turn(role="user", content=pair.prompt),),
            answer=pair.answer,
            language=pair.language,
            category="benign",
            writer=ref,
            group=f"request:{text_hash(pair.prompt)}",
        )
        for pair in pairs
    ], ref


def run_candidates(helpful: Sequence[Finding]) -> list[RetainCandidate]:
    """The runs' benign attempts the target answered helpfully, with its own answer."""
    return [
        RetainCandidate(
            source="run-benign",
            prompt=item.prompt,
            answer=(item.attempt.response or "").strip(),
            language=item.language,
            category=item.attempt.category,
            writer=f"target:{item.attempt.target_model}",
            group=f"request:{text_hash(item.attempt.objective)}",
            finding=item,
        )
        for item in helpful
    ]


@dataclass
class RetainChoice:
    chosen: list[RetainCandidate] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    available: int = 0
    pins: dict[str, str] = field(default_factory=dict)


def choose_retain(
    pools: Sequence[tuple[str, list[RetainCandidate]]],
    wanted: int,
    heldout: HeldOut,
    safety_prompts: set[str],
    seed: int,
) -> RetainChoice:
    """Up to `wanted` candidates: each pool (in priority order) shuffled by `seed`, held-out and
    duplicate requests dropped (and counted), the first pools used up before the next."""
    choice = RetainChoice()
    seen = set(safety_prompts)
    usable: list[RetainCandidate] = []
    for name, pool in pools:
        ordered = sorted(pool, key=lambda c: c.prompt_hash)
        random.Random(f"{seed}:retain:{name}").shuffle(ordered)
        for candidate in ordered:
            if heldout.holds(candidate):
                choice.rejected["retain-heldout"] += 1
                continue
            key = candidate.prompt_hash
            if key in seen:
                overlap = key in safety_prompts
                choice.rejected["retain-overlaps-finding" if overlap else "retain-duplicate"] += 1
                continue
            seen.add(key)
            usable.append(candidate)
    choice.available = len(usable)
    choice.chosen = usable[:wanted]
    return choice
