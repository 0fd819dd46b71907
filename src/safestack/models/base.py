"""The chat-model extension point: one async `complete()` over a conversation, registered by name.

Red-team targets and attacker models are both `ChatModel`s: an OpenAI-compatible endpoint (the
safestack gateway included), a local GGUF model, a `transformers` model, or a scripted model in tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import SafestackError
from safestack.records import Message
from safestack.registry import Plugin, PluginOptions, Registry


class Capabilities(BaseModel):
    """What a target can take; attacks that need more are skipped for it, with a reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    system_prompt: bool = True
    multi_turn: bool = True
    tools: bool = False


class GenerationSettings(BaseModel):
    """Sampling settings sent with every request; stored on each Attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    seed: int | None = 0
    stop: tuple[str, ...] = ()


class Completion(BaseModel):
    """One model answer and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str
    model: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


class ModelError(SafestackError):
    """A model call failed. `transient` errors (timeouts, 429, 5xx) are worth retrying;
    `retry_after` is how long the server asked to wait first (seconds; None when it did not say)."""

    def __init__(
        self,
        model: str,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.model = model
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(f"model '{model}': {message}")


class ModelOptions(PluginOptions):
    """Base for a chat model's options block (a campaign's `targets[].options`)."""


class ChatModel(Plugin, ABC):
    """A chat model. Subclasses set `Options`, `capabilities`, and implement `complete()`."""

    Options: ClassVar[type[ModelOptions]] = ModelOptions
    capabilities: Capabilities = Capabilities()

    def __init__(self, options: ModelOptions | None = None) -> None:
        super().__init__(options)

    @property
    def model_id(self) -> str:
        """What is being talked to (model name, file digest or path), recorded on Attempts."""
        return self.name

    @abstractmethod
    async def complete(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> Completion:
        """Answer the conversation; raise ModelError on failure (never return an error as text)."""

    async def aclose(self) -> None:
        """Release connections or loaded weights."""


chat_models: Registry[type[ChatModel]] = Registry(
    "chat model",
    (
        "safestack.models.openai_compatible",
        "safestack.models.gguf",
        "safestack.models.transformers_model",
        "safestack.models.scripted",
    ),
    "safestack.models",
)
model = chat_models.register


def create_model(
    kind: str,
    options: Mapping[str, Any] | None = None,
    *,
    where: str = "model",
    models: object = None,
) -> ChatModel:
    """Build a registered chat model with its options validated (errors name `where`). `models`
    (the caller's `judge.builtin.BuiltinModels`) goes to a model that runs the built-in judgement
    models, such as the guard's `guarded` target; this layer never looks inside it."""
    cls = chat_models.get(kind, where=f"{where}.kind")
    return cls.from_options(options, where=f"{where}.options", models=models)
