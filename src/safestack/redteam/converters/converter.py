"""How to deliver it, part one: converters that rewrite a prompt (encodings, obfuscation, rephrasing).

A converter is a small class with `convert()`; model-driven converters (rephrasing) are given an
attacker `ChatModel`. Converters chain in the order a campaign lists them.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from safestack.models.base import ChatModel
from safestack.registry import Registry


class ConverterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Converter(ABC):
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Options: ClassVar[type[ConverterOptions]] = ConverterOptions
    needs_attacker: ClassVar[bool] = False

    def __init__(
        self, options: ConverterOptions | None = None, attacker: ChatModel | None = None
    ) -> None:
        self.options = options if options is not None else self.Options()
        self.attacker = attacker

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @abstractmethod
    async def convert(self, text: str, rng: random.Random) -> str:
        """The rewritten prompt. Deterministic for a given `rng` state (and attacker seed)."""


converters: Registry[type[Converter]] = Registry(
    "converter",
    (
        "safestack.redteam.converters.obfuscation",
        "safestack.redteam.converters.rephrasing",
    ),
    "safestack.converters",
)
converter = converters.register
