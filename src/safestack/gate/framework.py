"""Framework files: the risk categories a lab tracks, their levels, thresholds and ship rules.

A framework is YAML (`assets/frameworks/*.yaml` ships the OpenAI Preparedness Framework Beta and
v2, an RSP-style ASL file and an FSF-style CCL file); thresholds are `gate.query` queries over
evidence metrics, checked when the file loads, and every error names `file:line: field`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from safestack.errors import GateError
from safestack.gate.query import Node, QueryError, check_rule, check_threshold, parse
from safestack.policy import default_policy
from safestack.records import SCHEMA_VERSION
from safestack.yamlfile import line_of, read_yaml, validate

FIELD_HINT = "see docs/gate.md for the fields of a framework file"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Strict):
    """The published document the file follows."""

    title: str
    publisher: str
    url: str
    published: date
    note: str = ""


class Level(_Strict):
    name: str = Field(min_length=1)
    description: str


class Category(_Strict):
    """One tracked (or research) risk category."""

    name: str
    description: str
    tracked: bool = Field(
        default=True, description="Research categories are reported but do not enter the rule."
    )
    evaluations: list[str] = Field(default_factory=list, description="What informs the level.")
    levels: dict[str, str] = Field(
        default_factory=dict, description="Level name -> what it means for this category."
    )
    thresholds: dict[str, str] = Field(
        default_factory=dict,
        description="Level name -> query: the category is at that level if true.",
    )


class Rules(_Strict):
    """Conditions on the overall pre/post levels, e.g. `post <= Medium`."""

    deploy: str
    develop: str


class Framework(_Strict):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    version: str
    effective: date = Field(description="Evidence collected before this date is stale.")
    source: Source
    levels: list[Level] = Field(min_length=2, description="Lowest first.")
    precautionary: bool = Field(
        default=True,
        description="A level the evidence cannot rule out (its interval reaches the threshold) "
        "counts for the rule, as in Anthropic's provisional ASL-3 activation.",
    )
    categories: dict[str, Category] = Field(min_length=1)
    rules: Rules
    roles: dict[str, str] = Field(
        default_factory=lambda: {
            "advisory": "reviews the scorecard and recommends",
            "leadership": "makes the decision",
            "board": "is notified, oversees and may reverse",
        }
    )

    @field_validator("levels")
    @classmethod
    def _unique_levels(cls, levels: list[Level]) -> list[Level]:
        names = [level.name for level in levels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"level names must be unique; repeated: {', '.join(duplicates)}")
        return levels

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def digest(self) -> str:
        """sha256 of the framework's content: a decision names it, so an edited file is seen."""
        content = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(content.encode()).hexdigest()

    def threshold(self, category: str, level: str) -> Node:
        return parse(self.categories[category].thresholds[level])

    def rule(self, name: str) -> Node:
        return parse(getattr(self.rules, name))


def shipped_frameworks() -> dict[str, Path]:
    """The framework files inside the package, by id (file stem)."""
    folder = resources.files("safestack.gate").joinpath("assets", "frameworks")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def load_framework(name_or_path: str | Path) -> Framework:
    """A shipped framework by id (`pf-beta-2023`) or a YAML file; errors name file:line: field."""
    shipped = shipped_frameworks()
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.exists() and str(name_or_path) not in shipped:
        raise GateError(
            f"{name_or_path}: framework file not found; shipped frameworks: {', '.join(sorted(shipped))}"
        )
    data, root = read_yaml(path, GateError, "framework")
    framework = validate(Framework, data, str(path), root, GateError, FIELD_HINT)
    check_queries(framework, str(path), root)
    return framework


def parse_framework(data: dict[str, Any], source: str = "<framework>") -> Framework:
    framework = validate(Framework, data, source, None, GateError, FIELD_HINT)
    check_queries(framework, source, None)
    return framework


def check_queries(framework: Framework, source: str, root: yaml.Node | None) -> None:
    """Parse every threshold and rule; unknown metrics, arguments, categories, levels fail here."""
    categories = frozenset(default_policy().categories) | {"benign"}

    def fail(loc: list[str], exc: QueryError) -> GateError:
        line = line_of(root, loc)
        where = f"{source}:{line}" if line else source
        return GateError(f"{where}: {'.'.join(loc)}: {exc}")

    names = framework.level_names
    for key, category in framework.categories.items():
        for field in ("levels", "thresholds"):
            for level in getattr(category, field):
                loc = ["categories", key, field, level]
                if level not in names:
                    raise fail(
                        loc, QueryError(f"unknown level '{level}'; levels are {', '.join(names)}")
                    )
                if field == "thresholds" and level == names[0]:
                    raise fail(
                        loc,
                        QueryError(
                            f"'{level}' is the floor and takes no threshold: a category is at "
                            "the floor when no higher threshold holds"
                        ),
                    )
        for level, text in category.thresholds.items():
            loc = ["categories", key, "thresholds", level]
            try:
                check_threshold(parse(text), categories)
            except QueryError as exc:
                raise fail(loc, exc) from None
    for name in ("deploy", "develop"):
        try:
            check_rule(framework.rule(name), framework.level_names)
        except QueryError as exc:
            raise fail(["rules", name], exc) from None
