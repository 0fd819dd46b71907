"""The team-written multilingual sets (`training/assets/synthetic/`) as training examples.

Nothing in a package ships multilingual harm prompts or hard multilingual negatives, so the team
wrote them: contrastive twins (a harmful request and its benign neighbour on the same topic),
attacks with benign twins, everyday chat, (request, response) pairs and documents, in en, fr, de,
es and it. Each file becomes sources `synthetic/<set>-<lang>` (trained on) and
`synthetic/<set>-<lang>-holdout` (a fifth of the items, chosen by hash, never trained on: reported
on their own). Every metric is also reported without any `synthetic/*` source.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from safestack.datasets.examples import Example, Task
from safestack.errors import InputError
from safestack.records import Kind
from safestack.training.synthetic import team_example

# Harmful items stand in "[slur]", "[address redacted]", "[step redacted]" for what must not be
# written; benign items rarely do. Left in, brackets would teach "brackets mean harm", so every
# authored text (harmful or not) gets the same neutral ellipsis instead.
PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,60}\]")
HOLDOUT_SHARE = 5  # one item in five (by hash of its first text) is report-only
SETS = ("harm", "attack", "benign_chat", "responses", "documents")


def assets() -> Path:
    return Path(str(resources.files("safestack.training").joinpath("assets", "synthetic")))


def _held_out(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % HOLDOUT_SHARE == 0


def _source(kind: str, stem: str, key: str) -> str:
    name = f"synthetic/{kind.replace('_', '-')}-{stem.replace('_', '-')}"
    return f"{name}-holdout" if _held_out(key) else name


def _example(
    source: str,
    text: str,
    task: Task,
    labels: list[str],
    *,
    language: str,
    group: str,
    kind: Kind = "prompt",
    request: str | None = None,
    severity: int | None = None,
) -> Example:
    return team_example(
        source,
        PLACEHOLDER.sub("…", text).strip(),
        task,
        labels,
        kind,
        group,
        language=language,
        request=None if request is None else PLACEHOLDER.sub("…", request),
        severity=severity,
    )


def _plain(source: str, text: str, harm: list[str], attack: str, **kw: Any) -> Iterator[Example]:
    yield _example(source, text, "harm", harm, **kw)
    yield _example(source, text, "attack", [attack], **kw)


def harm_twins(path: Path, data: dict[str, Any]) -> Iterator[Example]:
    language = data["language"]
    for number, pair in enumerate(data.get("pairs") or []):
        source = _source("harm-twins", language, pair["harmful"])
        kw = {"language": language, "group": f"{path.stem}/{number}"}
        yield from _plain(source, pair["harmful"], [pair["category"]], "benign", **kw)
        yield from _plain(source, pair["benign"], [], "benign", **kw)


def attacks(path: Path, data: dict[str, Any]) -> Iterator[Example]:
    language = data["language"]
    for number, item in enumerate(data.get("items") or []):
        source = _source("attack", language, item["text"])
        kw = {"language": language, "group": f"{path.stem}/{number}"}
        yield _example(source, item["text"], "attack", [item["label"]], **kw)
        if item.get("benign_twin"):
            yield from _plain(source, item["benign_twin"], [], "benign", **kw)


def benign_chat(path: Path, data: dict[str, Any]) -> Iterator[Example]:
    language = data["language"]
    for number, text in enumerate(data.get("texts") or []):
        source = _source("benign-chat", language, text)
        yield from _plain(
            source, text, [], "benign", language=language, group=f"{path.stem}/{number}"
        )


def responses(path: Path, data: dict[str, Any]) -> Iterator[Example]:
    language = data["language"]
    for number, item in enumerate(data.get("items") or []):
        source = _source("responses", language, item["request"] + item["response"])
        kw = {
            "language": language,
            "group": f"{path.stem}/{number}",
            "kind": "response",
            "request": item["request"],
        }
        harmful = bool(item["harmful"]) and item.get("category")
        yield _example(
            source,
            item["response"],
            "response-harm",
            [item["category"]] if harmful else [],
            severity=int(item.get("severity") or 0),
            **kw,
        )
        yield _example(source, item["response"], "refusal", [item["refusal"]], **kw)


def documents(path: Path, data: dict[str, Any]) -> Iterator[Example]:
    for number, item in enumerate(data.get("documents") or []):
        source = _source("documents", path.stem, item["text"])
        yield _example(
            source,
            item["text"],
            "document-harm",
            list(item.get("labels") or []),
            language=item.get("language", "en"),
            group=f"{path.stem}/{number}",
        )


READERS = {
    "harm": harm_twins,
    "attack": attacks,
    "benign_chat": benign_chat,
    "responses": responses,
    "documents": documents,
}


def authored_examples(root: Path | None = None) -> Iterator[Example]:
    """Every example in every team-written file; a malformed item fails naming file and field."""
    base = root or assets()
    for kind in SETS:
        for path in sorted((base / kind).glob("*.yaml")):
            data = yaml.safe_load(path.read_text("utf-8")) or {}
            try:
                yield from READERS[kind](path, data)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{path}: {exc}; see {base / 'README.md'}") from None
