"""How to deliver it, part one: converters that rewrite a prompt (encodings, obfuscation, rephrasing).

A converter is a small class with `convert()`; model-driven converters (rephrasing) are given an
attacker `ChatModel`. Converters chain in the order a campaign lists them.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import ClassVar

from safestack.models.base import ChatModel
from safestack.registry import Plugin, PluginOptions, Registry


class ConverterOptions(PluginOptions):
    """Base for a converter's options block (a campaign's `attacks[].converters[].options`)."""


class Converter(Plugin, ABC):
    Options: ClassVar[type[ConverterOptions]] = ConverterOptions
    needs_attacker: ClassVar[bool] = False

    def __init__(
        self, options: ConverterOptions | None = None, attacker: ChatModel | None = None
    ) -> None:
        super().__init__(options)
        self.attacker = attacker

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
