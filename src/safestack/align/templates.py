"""The offline writer of safe answers: team-written templates per policy category and language
(`assets/templates.yaml`), one phrasing chosen by the seed and the row's prompt hash.

A refusal names what it will not do and offers a safe alternative; self-harm gets a supportive
answer with crisis resources; dual-use categories (cyber, cbrn, illicit, privacy) a high-level,
non-operational overview. Requests in a language the templates lack are answered in English.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from safestack.errors import InputError
from safestack.policy import Policy
from safestack.yamlfile import validate

Style = Literal["refuse", "support", "high-level"]
ASSET = "templates.yaml"
SLOTS = ("what", "alternative", "overview", "resources")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wording(_Strict):
    what: str = Field(min_length=1, description="What the answer will not do.")
    alternatives: tuple[str, ...] = Field(min_length=1)
    overview: str | None = Field(default=None, description="High-level background (high-level).")


class CategoryTemplates(_Strict):
    style: Style
    en: Wording
    fr: Wording
    de: Wording
    es: Wording
    it: Wording

    def wording(self, language: str) -> Wording:
        found: Wording = getattr(self, language)
        return found


class TemplateSet(_Strict):
    schema_version: Literal[1]
    languages: tuple[str, ...]
    fallback_language: str
    frames: dict[Style, dict[str, tuple[str, ...]]]
    resources: dict[str, str]
    categories: dict[str, CategoryTemplates]

    @model_validator(mode="after")
    def _complete(self) -> TemplateSet:
        if "default" not in self.categories:
            raise ValueError("categories needs a `default` entry")
        for style in ("refuse", "support", "high-level"):
            for language in self.languages:
                if not self.frames.get(style, {}).get(language):
                    raise ValueError(f"frames.{style}.{language} is missing")
        for name, entry in self.categories.items():
            for language in self.languages:
                wording = entry.wording(language)
                if entry.style == "high-level" and not wording.overview:
                    raise ValueError(f"categories.{name}.{language}.overview is missing")
        missing = [lang for lang in self.languages if lang not in self.resources]
        if missing:
            raise ValueError(f"resources lacks {', '.join(missing)}")
        return self


@cache
def template_text() -> str:
    return resources.files("safestack.align").joinpath("assets", ASSET).read_text("utf-8")


@cache
def packaged_templates() -> TemplateSet:
    data = yaml.safe_load(template_text())
    return validate(TemplateSet, data, f"safestack/align/assets/{ASSET}", None, InputError)


def templates_ref() -> str:
    """'templates@<sha256 prefix>': what wrote the answers, pinned to the asset's content."""
    return "templates@" + hashlib.sha256(template_text().encode()).hexdigest()[:12]


def entry_for(category: str, templates: TemplateSet) -> str:
    """The template entry a category uses: its own, its parent's, else `default`."""
    if category in templates.categories:
        return category
    parent = Policy.parent(category)
    if parent is not None and parent in templates.categories:
        return parent
    return "default"


def style_of(category: str, templates: TemplateSet | None = None) -> Style:
    chosen = templates or packaged_templates()
    return chosen.categories[entry_for(category, chosen)].style


def choice(seed: int, key: str, *sizes: int) -> list[int]:
    """Indices into lists of `sizes`, fixed by the seed and the key (a prompt hash)."""
    number = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16], 16)
    picks = []
    for size in sizes:
        number, index = divmod(number, size)
        picks.append(index)
    return picks


def template_answer(
    category: str, language: str, key: str, seed: int, templates: TemplateSet | None = None
) -> tuple[str, str, str]:
    """(answer, answer language, template id) for a request in `category` and `language`."""
    chosen = templates or packaged_templates()
    name = entry_for(category, chosen)
    entry = chosen.categories[name]
    answer_language = language if language in chosen.languages else chosen.fallback_language
    frames = chosen.frames[entry.style][answer_language]
    wording = entry.wording(answer_language)
    frame, alternative = choice(seed, key, len(frames), len(wording.alternatives))
    slots = {
        "what": wording.what,
        "alternative": wording.alternatives[alternative],
        "overview": wording.overview or "",
        "resources": chosen.resources[answer_language],
    }
    text = frames[frame].format_map(slots)
    return (
        " ".join(text.split()),
        answer_language,
        f"{name}/{answer_language}/{frame}.{alternative}",
    )
