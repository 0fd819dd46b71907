"""The policy: taxonomy, severity scale, thresholds, actions and framework mappings.

Defaults have one home each: a setting's default is its field default here (and in guard.py,
data.py); assets/default.yaml holds only what no field default can express: the taxonomy (name,
version, severity scale, default actions, categories, framework mappings, judge detectors). The
packaged default policy is the two together, built here; `policy show --yaml` prints all of it.
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import PolicyError
from safestack.policy.data import DataSettings
from safestack.policy.guard import (
    ElectionSettings,
    GuardMessages,
    GuardScope,
    GuardSettings,
    OverlapSettings,
    Redirect,
    SpotlightSettings,
    StreamSettings,
)
from safestack.records import Action
from safestack.yamlfile import validate

__all__ = [
    "BANDS",
    "MAX_SEVERITY",
    "AuditSettings",
    "CategoryPolicy",
    "DataSettings",
    "Defaults",
    "DetectorSpec",
    "ElectionSettings",
    "FrameworkEntry",
    "GuardMessages",
    "GuardScope",
    "GuardSettings",
    "JudgeSettings",
    "OverlapSettings",
    "Policy",
    "Redirect",
    "SeverityScale",
    "SpotlightSettings",
    "StreamSettings",
    "default_policy",
    "default_policy_text",
]

Band = Literal["very_low", "low", "medium", "high"]
BANDS: tuple[Band, ...] = ("very_low", "low", "medium", "high")
MAX_SEVERITY = 7


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityScale(_Strict):
    bands: dict[Band, tuple[int, int]]
    score_cutpoints: list[float] = Field(min_length=MAX_SEVERITY, max_length=MAX_SEVERITY)

    @field_validator("bands")
    @classmethod
    def _bands_cover_scale(cls, bands: dict[Band, tuple[int, int]]) -> dict[Band, tuple[int, int]]:
        covered = sorted(s for low, high in bands.values() for s in range(low, high + 1))
        if covered != list(range(MAX_SEVERITY + 1)) or set(bands) != set(BANDS):
            raise ValueError(
                f"bands must be {', '.join(BANDS)} and cover 0-{MAX_SEVERITY} exactly once, "
                "e.g. very_low: [0, 1], low: [2, 3], medium: [4, 5], high: [6, 7]"
            )
        return bands

    @field_validator("score_cutpoints")
    @classmethod
    def _ascending(cls, cuts: list[float]) -> list[float]:
        if any(not 0.0 < c <= 1.0 for c in cuts) or cuts != sorted(cuts):
            raise ValueError("score_cutpoints must be 7 ascending numbers in (0, 1]")
        return cuts


BandActions = dict[Band, Action]


class Defaults(_Strict):
    threshold: float = Field(ge=0.0, le=1.0)
    actions: BandActions

    @field_validator("actions")
    @classmethod
    def _all_bands(cls, actions: BandActions) -> BandActions:
        missing = [b for b in BANDS if b not in actions]
        if missing:
            raise ValueError(f"actions needs every band; missing: {', '.join(missing)}")
        return actions


class CategoryPolicy(_Strict):
    definition: str = Field(min_length=1)
    # content: harm in the text; attack: on the instruction hierarchy; signal: a property the other
    # stages read (a model refusing), scored and reported but never flagged.
    kind: Literal["content", "attack", "signal"] = "content"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    actions: BandActions | None = None


class FrameworkEntry(_Strict):
    name: str
    categories: list[str]


class DetectorSpec(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class JudgeSettings(_Strict):
    # Detectors run in this order; each one's options are validated by the detector itself.
    detectors: list[DetectorSpec] = Field(min_length=1)
    # Image detectors (`safestack.judge.image_detector`) judge images that matched no hash bank,
    # in the gateway; none by default: images are then only matched (docs/media.md).
    image_detectors: list[DetectorSpec] = Field(default_factory=list)
    max_input_chars: int = Field(default=100_000, gt=0)
    # What a detector error does to a verdict: 'fail' raises (the caller sees an error, never
    # "safe"), 'block' returns a blocking verdict that lists the failure.
    on_detector_error: Literal["fail", "block"] = "fail"


class AuditSettings(_Strict):
    """What the gateway keeps of each request in its audit log."""

    # Digests (sha256 of input and output) are always kept; full text only when this says so.
    content: bool = False
    retention_days: float | None = Field(
        default=90.0,
        gt=0,
        description="Events older than this are purged; null keeps them forever.",
    )


class Policy(_Strict):
    """A complete, validated policy. Build it with `load_policy()` or `Policy.default()`."""

    schema_version: Literal[1] = 1
    name: str
    version: str
    severity: SeverityScale
    defaults: Defaults
    categories: dict[str, CategoryPolicy] = Field(min_length=1)
    frameworks: dict[str, dict[str, FrameworkEntry]] = Field(default_factory=dict)
    judge: JudgeSettings
    guard: GuardSettings = Field(default_factory=GuardSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    data: DataSettings = Field(default_factory=DataSettings)

    @model_validator(mode="after")
    def _references_exist(self) -> Policy:
        for framework, entries in self.frameworks.items():
            for code, entry in entries.items():
                unknown = [c for c in entry.categories if c not in self.categories]
                if unknown:
                    raise ValueError(
                        f"frameworks.{framework}.{code} maps to unknown categories {unknown}; "
                        f"use names from 'categories'"
                    )
        for name in self.categories:
            parent = name.split("/", 1)[0]
            if parent != name and parent not in self.categories:
                raise ValueError(f"category '{name}' needs its parent category '{parent}'")
        for field in ("corroborate", "untrusted_categories"):
            unknown = [c for c in getattr(self.guard, field) if c not in self.categories]
            if unknown:
                raise ValueError(
                    f"guard.{field} names unknown categories {unknown}; use names from 'categories'"
                )
        return self

    @classmethod
    def default(cls) -> Policy:
        return default_policy()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def category(self, name: str) -> CategoryPolicy:
        try:
            return self.categories[name]
        except KeyError:
            raise PolicyError(
                f"category '{name}' is not in policy {self.ref}; known: {', '.join(self.categories)}"
            ) from None

    def threshold(self, category: str) -> float:
        own = self.category(category).threshold
        return self.defaults.threshold if own is None else own

    def band(self, severity: int) -> Band:
        for band, (low, high) in self.severity.bands.items():
            if low <= severity <= high:
                return band
        raise ValueError(f"severity {severity} is outside 0-{MAX_SEVERITY}")

    def action(self, category: str, severity: int) -> Action:
        actions = self.category(category).actions or self.defaults.actions
        return actions.get(self.band(severity), self.defaults.actions[self.band(severity)])

    def severity_from_score(self, score: float) -> int:
        return bisect.bisect_right(self.severity.score_cutpoints, score)

    @staticmethod
    def parent(category: str) -> str | None:
        parent = category.split("/", 1)[0]
        return None if parent == category else parent

    def framework_categories(self, framework: str, code: str) -> list[str] | None:
        """Safestack categories for a foreign code (e.g. mlcommons S10); None if the code is unknown."""
        entry = self.frameworks.get(framework, {}).get(code)
        return None if entry is None else list(entry.categories)

    def content_categories(self) -> list[str]:
        return [n for n, c in self.categories.items() if c.kind == "content"]

    def attack_categories(self) -> list[str]:
        return [n for n, c in self.categories.items() if c.kind == "attack"]

    def is_signal(self, category: str) -> bool:
        return self.category(category).kind == "signal"


DEFAULT_POLICY_RESOURCE = "default.yaml"
FIELD_HINT = "check the spelling against `safestack policy show --yaml`"


def default_policy_text() -> str:
    """The packaged default policy file, as text."""
    return (
        resources.files("safestack.policy")
        .joinpath("assets", DEFAULT_POLICY_RESOURCE)
        .read_text("utf-8")
    )


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The packaged default policy (built once: a Policy is frozen)."""
    data = yaml.safe_load(default_policy_text())
    return validate(Policy, data, "<default policy>", None, PolicyError, FIELD_HINT)
