"""Chat-model clients shared by red-teaming (targets, attackers, judges) and the gateway's tests."""

from safestack.models.base import (
    Capabilities,
    ChatModel,
    Completion,
    GenerationSettings,
    ModelError,
    chat_models,
    create_model,
)

__all__ = [
    "Capabilities",
    "ChatModel",
    "Completion",
    "GenerationSettings",
    "ModelError",
    "chat_models",
    "create_model",
]
