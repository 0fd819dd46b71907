"""The pipeline definition (reader → filters in order → writer) and the filters built from it.

A definition is YAML validated with pydantic; errors name the file and the field path. `Pipeline`
applies the filters to one batch: each filter sees only documents still kept, and a filter that
raises turns the documents it failed on into errors, never into kept documents.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safestack.data.document import Document, ReadError, Removal
from safestack.data.filters.base import Filter, FilterOptions, filters
from safestack.data.filters.models import FilterModels, build_filter
from safestack.data.readers import ReaderOptions
from safestack.data.writers import WriterOptions
from safestack.errors import SafestackError
from safestack.policy import Policy
from safestack.yamlfile import read_yaml

DEFAULT_PIPELINE_SOURCE = "<default pipeline>"


class PipelineError(SafestackError):
    """A pipeline definition is invalid (the message names the file and field)."""


class FilterSpec(BaseModel):
    """One `filters:` entry: a registered filter name and its options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class PipelineSpec(BaseModel):
    """A whole pipeline definition (see assets/pipeline.yaml for the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    filters: list[FilterSpec] = Field(
        default_factory=lambda: [
            FilterSpec(name=n) for n in ("adult", "quality", "aggregator", "harm")
        ]
    )
    writer: WriterOptions = Field(default_factory=WriterOptions)
    batch_size: int = Field(default=256, ge=1, le=100_000)


def default_pipeline_text() -> str:
    return resources.files("safestack.data").joinpath("assets", "pipeline.yaml").read_text("utf-8")


def load_pipeline(path: str | Path | None = None) -> tuple[PipelineSpec, str]:
    """The definition in `path` (keys it leaves out keep the default), and its source name."""
    if path is None:
        return parse_pipeline(yaml.safe_load(default_pipeline_text()), DEFAULT_PIPELINE_SOURCE), (
            DEFAULT_PIPELINE_SOURCE
        )
    data, root = read_yaml(path, PipelineError, "pipeline")
    return parse_pipeline(data, str(path), root), str(path)


def parse_pipeline(
    data: Any, source: str = "<pipeline>", root: yaml.Node | None = None
) -> PipelineSpec:
    """Validate a definition; each filter's options are checked by the filter itself, with the
    file, line and field of a mistake when the definition came from a file."""
    if not isinstance(data, dict):
        raise PipelineError(f"{source}: a pipeline must be a mapping, got {type(data).__name__}")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(
            "."
        )
        raise PipelineError(f"{source}: {path or 'pipeline'}: {first['msg']}") from None
    for i, entry in enumerate(spec.filters):
        filter_cls = filters.get(entry.name, where=f"{source}: filters[{i}].name")
        filter_cls.validate_options(
            entry.options,
            where=f"{source}: filters[{i}].options",
            source=source if root is not None else None,
            root=root,
            loc=["filters", str(i), "options"],
            error=PipelineError,
        )
    return spec


def pipeline_yaml(spec: PipelineSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


@dataclass(frozen=True)
class PipelinePlan:
    """A validated definition with its filter classes resolved: cheap to pickle to workers.

    Classes travel with the plan (not just names) so a worker process started by spawn or Ray
    needs no registry state of its own; `build()` then makes the FilterModels its model-backed
    filters share, so each model loads once per worker.
    """

    spec: PipelineSpec
    policy: Policy
    source: str
    classes: tuple[type[Filter], ...]
    options: tuple[FilterOptions, ...]

    @classmethod
    def resolve(cls, spec: PipelineSpec, policy: Policy, source: str) -> PipelinePlan:
        classes: list[type[Filter]] = []
        options: list[FilterOptions] = []
        for i, entry in enumerate(spec.filters):
            filter_cls = filters.get(entry.name, where=f"{source}: filters[{i}].name")
            classes.append(filter_cls)
            parsed = filter_cls.validate_options(
                entry.options, where=f"{source}: filters[{i}].options", error=PipelineError
            )
            assert isinstance(parsed, FilterOptions)
            options.append(parsed)
        return cls(spec, policy, source, tuple(classes), tuple(options))

    @property
    def fingerprint(self) -> str:
        """Changes when the definition, the policy or a filter's version changes (resume key)."""
        identity = {
            "pipeline": self.spec.model_dump(mode="json"),
            "policy": self.policy.model_dump(mode="json"),
            "filters": [f"{c.name}@{c.version}" for c in self.classes],
        }
        blob = json.dumps(identity, sort_keys=True, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]

    def build(self, models: FilterModels | None = None) -> Pipeline:
        """The filters, built once; those using models share `models` (new ones by default), so
        the adult and harm filters embed each document once between them."""
        models = models if models is not None else FilterModels()
        built = [
            build_filter(c, self.policy, o, models)
            for c, o in zip(self.classes, self.options, strict=True)
        ]
        return Pipeline(self.spec, built)


@dataclass(slots=True)
class BatchResult:
    kept: list[Document] = field(default_factory=list)
    removed: list[tuple[Document, Removal]] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)


class Pipeline:
    """Built filters, applied in order to batches of documents."""

    def __init__(self, spec: PipelineSpec, built: list[Filter]) -> None:
        self.spec = spec
        self.filters = built

    def process(self, batch: list[Document]) -> BatchResult:
        result = BatchResult()
        alive = batch
        for flt in self.filters:
            if not alive:
                break
            still: list[Document] = []
            for doc, outcome in zip(alive, _apply(flt, alive), strict=True):
                if outcome is None:
                    still.append(doc)
                elif isinstance(outcome, Removal):
                    result.removed.append((doc, outcome))
                else:
                    result.errors.append(
                        ReadError(
                            doc.source,
                            f"filter.{flt.name}.failed",
                            f"{flt.ref} failed on {doc.id}: {outcome}",
                            doc.text[:1000],
                        )
                    )
            alive = still
        result.kept = alive
        return result


def _apply(flt: Filter, docs: list[Document]) -> list[Removal | str | None]:
    """The filter's answers; when it raises on a batch, retried one document at a time so only
    the documents it fails on become errors (a str: what went wrong)."""
    try:
        answers = flt.apply(docs)
        if len(answers) != len(docs):
            raise ValueError(f"returned {len(answers)} answers for {len(docs)} documents")
        bad = next((a for a in answers if a is not None and not isinstance(a, Removal)), None)
        if bad is not None:
            raise TypeError(f"returned {type(bad).__name__}, expected Removal or None")
        return list(answers)
    except Exception as exc:
        if len(docs) == 1:
            return [f"{type(exc).__name__}: {exc}"]
        return [_apply(flt, [doc])[0] for doc in docs]
