"""Reading a training set for fine-tuning: the rows `safestack align data` wrote, checked line by line.

A set is a directory with `sft/`, `retain/`, `preference/` and `kto/` JSON Lines files per split
(docs/align.md), usually with the `manifest.json` that pins every file's sha256. Each row is checked
for what training needs (the turns and roles, a non-empty answer); a bad line is one InputError
naming the file and line. The set's version is the manifest's, and the files must still match it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from safestack.errors import InputError

Chat = list[dict[str, str]]
Split = Literal["train", "validation"]


class _Turn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str


def _conversation(turns: list[_Turn]) -> list[_Turn]:
    if not any(turn.role == "user" for turn in turns):
        raise ValueError("has no user turn")
    if turns[-1].role == "assistant":
        raise ValueError("ends with an assistant turn; the prompt must end before the answer")
    return turns


def _answer(turns: list[_Turn]) -> list[_Turn]:
    if len(turns) != 1 or turns[0].role != "assistant":
        raise ValueError("must be one assistant turn")
    if not turns[0].content.strip():
        raise ValueError("the answer is empty")
    return turns


class _ChatRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: list[_Turn]

    @field_validator("messages")
    @classmethod
    def _ends_with_an_answer(cls, turns: list[_Turn]) -> list[_Turn]:
        if len(turns) < 2:
            raise ValueError("needs the prompt and the answer (2 turns or more)")
        _conversation(turns[:-1])
        _answer(turns[-1:])
        return turns


class _PairRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: list[_Turn]
    chosen: list[_Turn]
    rejected: list[_Turn]

    @field_validator("prompt")
    @classmethod
    def _a_conversation(cls, turns: list[_Turn]) -> list[_Turn]:
        return _conversation(turns)

    @field_validator("chosen", "rejected")
    @classmethod
    def _an_answer(cls, turns: list[_Turn]) -> list[_Turn]:
        return _answer(turns)


class _UnpairedRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: list[_Turn]
    completion: list[_Turn]
    label: bool

    @field_validator("prompt")
    @classmethod
    def _a_conversation(cls, turns: list[_Turn]) -> list[_Turn]:
        return _conversation(turns)

    @field_validator("completion")
    @classmethod
    def _an_answer(cls, turns: list[_Turn]) -> list[_Turn]:
        return _answer(turns)


@dataclass(frozen=True)
class Example:
    """One supervised example: learn `answer` after `prompt`."""

    prompt: Chat
    answer: str


@dataclass(frozen=True)
class Pair:
    """One preference pair: `chosen` over `rejected` after `prompt`."""

    prompt: Chat
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Unpaired:
    """One KTO row: `answer` after `prompt` is desirable (`label`) or not."""

    prompt: Chat
    answer: str
    label: bool


@dataclass(frozen=True)
class TrainingData:
    """A set's rows as training reads them, and the identity the lineage records."""

    path: Path
    id: str | None  # the manifest's id; None for a directory without one
    version: str  # the manifest's version, or the sha256 of the files read
    sft: dict[Split, list[Example]] = field(default_factory=dict)  # sft + retain rows
    preference: dict[Split, list[Pair]] = field(default_factory=dict)
    kto: dict[Split, list[Unpaired]] = field(default_factory=dict)


SPLITS: tuple[Split, ...] = ("train", "validation")
FILES = tuple(
    f"{kind}/{split}.jsonl" for kind in ("sft", "retain", "preference", "kto") for split in SPLITS
)


def _turns(turns: list[_Turn]) -> Chat:
    return [{"role": t.role, "content": t.content} for t in turns]


def _rows(path: Path, model: type[BaseModel]) -> list[Any]:
    """The file's rows, each checked; a bad one is an InputError naming file and line."""
    if not path.is_file():
        return []
    rows = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(model.model_validate(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{number}: not a JSON object ({exc.msg}); rebuild the set with "
                    "safestack align data, or fix the line"
                ) from None
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "row"
                raise InputError(
                    f"{path}:{number}: {where}: {first['msg']}; rebuild the set with "
                    "safestack align data, or fix the line"
                ) from None
    return rows


def files_version(directory: Path) -> str:
    """sha256 over each JSONL file's name and digest (as `align data` computes `version`)."""
    digest = hashlib.sha256()
    for name in sorted(f for f in FILES if (directory / f).is_file()):
        data = (directory / name).read_bytes()
        digest.update(f"{name} {hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def _check_manifest(directory: Path) -> tuple[str | None, str]:
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return None, files_version(directory)
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        pinned: dict[str, str] = manifest["files"]
        set_id, version = str(manifest["id"]), str(manifest["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{manifest_path}: not a training set manifest ({exc}); rebuild the set with "
            "safestack align data"
        ) from None
    for name in FILES:
        path = directory / name
        if (
            name in pinned
            and path.is_file()
            and hashlib.sha256(path.read_bytes()).hexdigest() != pinned[name]
        ):
            raise InputError(
                f"{path}: changed since the set was built (its sha256 differs from "
                "manifest.json); rebuild the set with safestack align data, or remove "
                "manifest.json to train on the edited files as a new set"
            )
    return set_id, version


def read_training_set(directory: Path) -> TrainingData:
    """Every row of the set in `directory`, checked (see the module docstring)."""
    if not directory.is_dir():
        raise InputError(
            f"training set {directory}: no such directory; give a directory written by "
            "safestack align data, or a stored set id (safestack align sets)"
        )
    if not any((directory / name).is_file() for name in FILES):
        raise InputError(
            f"training set {directory}: holds none of {', '.join(FILES[:2])}, ...; give a "
            "directory written by safestack align data"
        )
    set_id, version = _check_manifest(directory)
    sft: dict[Split, list[Example]] = {}
    preference: dict[Split, list[Pair]] = {}
    kto: dict[Split, list[Unpaired]] = {}
    for split in SPLITS:
        chats = [
            *_rows(directory / f"sft/{split}.jsonl", _ChatRow),
            *_rows(directory / f"retain/{split}.jsonl", _ChatRow),
        ]
        sft[split] = [Example(_turns(row.messages[:-1]), row.messages[-1].content) for row in chats]
        preference[split] = [
            Pair(_turns(row.prompt), row.chosen[0].content, row.rejected[0].content)
            for row in _rows(directory / f"preference/{split}.jsonl", _PairRow)
        ]
        kto[split] = [
            Unpaired(_turns(row.prompt), row.completion[0].content, row.label)
            for row in _rows(directory / f"kto/{split}.jsonl", _UnpairedRow)
        ]
    return TrainingData(directory.resolve(), set_id, version, sft, preference, kto)
