"""One labelled training example for the built-in detectors, and JSONL reading and writing.

Every loader in `sources` and every generator in `synthetic` yields `Example`s; `dataset` writes
them to `examples.jsonl`. Labels are checked against the policy when the record is built.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from safestack.errors import InputError
from safestack.policy import default_policy
from safestack.records import Kind

SCHEMA_VERSION: Literal[1] = 1

Task = Literal["harm", "attack", "refusal", "response-harm", "document-harm"]
TASKS: tuple[Task, ...] = ("harm", "attack", "refusal", "response-harm", "document-harm")
# Tasks judged on a (request, response) pair: the same answer is fine for one request and
# harmful for another, so the request is part of the input.
PAIR_TASKS: frozenset[Task] = frozenset({"refusal", "response-harm"})

# `attack` is single-label: which attack on the instruction hierarchy, or none ("benign").
ATTACK_LABELS: tuple[str, ...] = (
    "jailbreak",
    "prompt-injection-direct",
    "prompt-injection-indirect",
    "system-prompt-extraction",
    "benign",
)
# `refusal` is single-label over model responses: refused all, refused part and helped with a
# safe part, or did not refuse.
REFUSAL_LABELS: tuple[str, ...] = ("full", "partial", "none")
# An attack whose kind the source does not say (a binary benign/injection set): trains "not
# benign" without guessing which attack it is.
ATTACK_UNSPECIFIED = "attack"


def harm_labels() -> tuple[str, ...]:
    """The policy's content categories: the labels a `harm` example may carry."""
    return tuple(default_policy().content_categories())


def task_labels(task: Task) -> tuple[str, ...]:
    """Every label name an example of `task` may carry."""
    # `response-harm`: the categories of harmful help the answer gave, given the request.
    if task in ("harm", "document-harm", "response-harm"):
        return harm_labels()
    return (*ATTACK_LABELS, ATTACK_UNSPECIFIED) if task == "attack" else REFUSAL_LABELS


class Example(BaseModel):
    """A text with its labels for one task, and where it came from.

    `labels` for `harm` is a set of policy content categories (empty = benign); a subcategory
    brings its parent (`self-harm/intent` adds `self-harm`), so a parent head sees every positive.
    `attack` and `refusal` carry exactly one label. `group` ties variants of one seed together
    (a document with and without its injection, one template's fillings) so splits keep them on
    one side.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    text: str = Field(min_length=1)
    task: Task
    labels: list[str]
    kind: Kind
    source: str = Field(pattern=r"^[a-z0-9-]+/[a-z0-9][a-z0-9._/-]*$")
    synthetic: bool
    licence: str = Field(min_length=1)
    group: str | None = None
    # ISO 639-1 code of the text's language, for per-language results.
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    # For pair tasks: the request the response (`text`) answers.
    request: str | None = None
    # For graded response labels (0-7), where the source has them.
    severity: int | None = Field(default=None, ge=0, le=7)

    @field_validator("labels")
    @classmethod
    def _sorted_with_parents(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        names = set(labels)
        if info.data.get("task") in ("harm", "document-harm", "response-harm"):
            names |= {label.split("/", 1)[0] for label in labels}
        return sorted(names)

    @model_validator(mode="after")
    def _labels_fit_task(self) -> Example:
        allowed = task_labels(self.task)
        unknown = [label for label in self.labels if label not in allowed]
        if unknown:
            raise ValueError(
                f"labels {unknown} are not {self.task} labels; use one of: {', '.join(allowed)}"
            )
        if self.task in ("attack", "refusal") and len(self.labels) != 1:
            raise ValueError(f"a {self.task} example has exactly one label, got {self.labels}")
        if self.task in PAIR_TASKS and self.kind != "response":
            raise ValueError(f"{self.task} examples are model responses (kind='response')")
        if self.task == "response-harm" and not self.request:
            raise ValueError("a response-harm example needs the request it answers (`request`)")
        return self


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> int:
    """Write one JSON object per line (UTF-8, keys in field order); returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(example.model_dump_json() + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[Example]:
    """Read examples written by `write_jsonl`; a bad line fails with its number and field."""
    examples: list[Example] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                examples.append(Example.model_validate(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: not JSON ({exc.msg})", line=number) from None
            except ValidationError as exc:
                error = exc.errors()[0]
                field = ".".join(str(part) for part in error["loc"]) or None
                message = error["msg"].removeprefix("Value error, ")
                raise InputError(f"{path}: {message}", line=number, field=field) from None
    return examples
