"""The targets the console can chat with: red-team target specs (`kind`, `options`, `name`), the
same as a campaign's `targets:` entries or a break-fix round's `target.yaml`, built with the red
team's `build_model` once and shared by every conversation.

A targets file is a campaign-like mapping with `targets: [...]`, or one spec.
Answers stream when the model can (`stream_answer`); otherwise the whole answer is one chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from safestack.errors import InputError
from safestack.judge.builtin import BuiltinModels
from safestack.models.base import ChatModel, GenerationSettings
from safestack.records import Message
from safestack.redteam.campaign import TargetSpec
from safestack.redteam.runner import build_model
from safestack.yamlfile import describe, read_yaml

# Option fields that hold secrets: never stored with an engagement, never shown.
SECRET_OPTIONS = frozenset({"api_key"})


class _TargetsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    targets: list[TargetSpec]


def read_targets(path: Path) -> list[TargetSpec]:
    """The target specs in a YAML file; errors name the file, line and field."""
    data, root = read_yaml(path, InputError, "targets")
    if "targets" not in data:
        data = {"targets": [data]}
    try:
        return _TargetsFile.model_validate(data).targets
    except ValidationError as exc:
        raise InputError(describe(exc, str(path), root, "see docs/console.md")) from None


def public_spec(spec: TargetSpec) -> dict[str, Any]:
    """The spec as an engagement stores it: secrets left out (`api_key_env` stays)."""
    data = spec.model_dump(mode="json")
    data["options"] = {k: v for k, v in data["options"].items() if k not in SECRET_OPTIONS}
    return data


class ConsoleTargets:
    """Named chat models, built on first use and closed with the app."""

    def __init__(self, specs: Sequence[TargetSpec], models: BuiltinModels | None = None) -> None:
        self._builtin = models
        self.specs = {spec.name: spec for spec in specs}
        if len(self.specs) != len(specs):
            raise InputError("two console targets share a name; every target needs its own")
        self._models: dict[str, ChatModel] = {}

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def spec(self, name: str) -> TargetSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise InputError(
                f"no console target '{name}'; known: {', '.join(self.specs) or 'none'}"
            ) from None

    def model(self, name: str) -> ChatModel:
        if name not in self._models:
            self._models[name] = build_model(self.spec(name), f"target '{name}'", self._builtin)
        return self._models[name]

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()
        self._models.clear()


async def stream_answer(
    model: ChatModel, messages: Sequence[Message], settings: GenerationSettings, timeout_s: float
) -> AsyncIterator[str]:
    """The answer in pieces: a model with `stream()` streams; any other answers in one piece.
    Raises ModelError (or TimeoutError after `timeout_s`) instead of yielding an error as text."""
    streaming = getattr(model, "stream", None)
    if streaming is None:
        completion = await asyncio.wait_for(model.complete(messages, settings), timeout_s)
        yield completion.text
        return
    async with asyncio.timeout(timeout_s):
        async for piece in streaming(messages, settings):
            yield piece
