"""The rows of a break-fix training set and the provenance every row carries.

Four kinds, in the formats TRL's trainers read: `sft` and `retain` (`{"messages": [...]}`),
`preference` (conversational `prompt` / `chosen` / `rejected`) and `kto` (unpaired `prompt` /
`completion` / `label`). Each row also has a `provenance` block with a fixed set of fields (so the
Parquet schema is the same for every row): where it came from, the scorers' verdicts, the policy,
its hashes and the group that decides its split.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.records import SCHEMA_VERSION, Score

Kind = Literal["sft", "preference", "kto", "retain"]
KINDS: tuple[Kind, ...] = ("sft", "preference", "kto", "retain")
Split = Literal["train", "validation"]
SPLITS: tuple[Split, ...] = ("train", "validation")
RowSource = Literal["finding", "run-benign", "borderline", "chatterbot"]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Turn(_Row):
    """One chat message as chat templates take it: role system, user or assistant, and text."""

    role: Literal["system", "user", "assistant"]
    content: str


class ScoreSummary(_Row):
    """One stored scorer verdict, as the row's provenance keeps it."""

    scorer: str
    version: str
    value: float | None = None
    label: str | None = None
    success: bool | None = None
    error: str | None = None

    @classmethod
    def of(cls, score: Score) -> ScoreSummary:
        return cls(
            scorer=score.scorer,
            version=score.version,
            value=score.value,
            label=score.label,
            success=score.success,
            error=score.error,
        )


class Provenance(_Row):
    """Where a row came from and why it is in the set; every field is present on every row."""

    schema_version: int = SCHEMA_VERSION
    source: RowSource = Field(
        description="finding: a failing red-team attempt; run-benign: a benign attempt answered "
        "helpfully; borderline: safestack's packaged borderline set; chatterbot: chatterbot-corpus."
    )
    run_id: str | None = None
    attempt_id: str | None = None
    target: str | None = None
    target_model: str | None = None
    probe_id: str | None = None
    attack: str | None = None
    converters: list[str] = Field(default_factory=list)
    behaviour_id: str | None = None
    behaviour_source: str | None = None
    category: str
    language: str = Field(description="The request's language (py3langid), or 'xx' when unsure.")
    answer_language: str = Field(description="The language the chosen answer is written in.")
    scores: list[ScoreSummary] = Field(
        default_factory=list, description="The run's stored scorer verdicts on the attempt."
    )
    policy: str = Field(description="The policy, 'name@version'.")
    writer: str = Field(description="What wrote the chosen answer: templates@<sha>, a model, ...")
    template: str | None = Field(default=None, description="category/language/frame.alternative")
    writer_scores: list[ScoreSummary] = Field(
        default_factory=list, description="The built-in judges' verdicts on a model-written answer."
    )
    prompt_hash: str = Field(description="sha256 of the normalised prompt: the dedup key.")
    content_hash: str = Field(description="sha256 of the row's data fields.")
    group: str = Field(description="The split group: one behaviour or request.")
    duplicates: list[str] = Field(
        default_factory=list, description="Attempts with the same prompt, merged into this row."
    )


class SftRow(_Row):
    """A supervised example: the conversation ending in the answer to learn (sft and retain)."""

    messages: list[Turn]
    provenance: Provenance


class PreferenceRow(_Row):
    """TRL's conversational preference format: `chosen` over `rejected` after `prompt`."""

    prompt: list[Turn]
    chosen: list[Turn]
    rejected: list[Turn]
    provenance: Provenance


class KtoRow(_Row):
    """TRL's unpaired preference format: a completion labelled desirable (True) or not (False)."""

    prompt: list[Turn]
    completion: list[Turn]
    label: bool
    provenance: Provenance


Row = SftRow | PreferenceRow | KtoRow


def normalise(text: str) -> str:
    """The text as dedup compares it: NFKC, case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def sha256_json(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def prompt_hash(prompt: Sequence[Turn]) -> str:
    """sha256 of the prompt's roles and normalised contents: equal prompts, one row."""
    return sha256_json([[turn.role, normalise(turn.content)] for turn in prompt])


def text_hash(text: str) -> str:
    """sha256 of one normalised text (a request compared across sets, e.g. the held-out ones)."""
    return sha256_json(normalise(text))


def content_hash(row: dict[str, Any]) -> str:
    """sha256 of a row's data fields, provenance left out."""
    return sha256_json({k: v for k, v in row.items() if k != "provenance"})


def turns(row: Sequence[Turn]) -> list[dict[str, str]]:
    return [turn.model_dump() for turn in row]
