"""The settings of one break-fix fine-tune, and their hash.

Defaults are for 2 CPU cores and a model of a few hundred million parameters (docs/align.md has the
measurements): short sequences, LoRA on every linear layer of the decoder, one example per step
with gradient accumulation, DPO with precomputed reference log-probabilities.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Gemma's, Llama's, Qwen's and Mistral's names for the decoder's linear layers; PEFT matches them
# as module-name suffixes. The output layer is left out: TRL computes log-probabilities from its
# weight directly, and on Gemma it is tied to the 262k-row embedding.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Fields that may change between a run and its `--resume` (how long to train, how often to
# save, how many threads); every other field must match the checkpoints'.
RESUMABLE = frozenset({"sft_max_steps", "preference_max_steps", "save_steps", "threads"})


class LoraSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    r: int = Field(default=16, ge=1, le=512, description="LoRA rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA alpha (scale alpha / r).")
    dropout: float = Field(default=0.05, ge=0, lt=1)
    targets: tuple[str, ...] = Field(
        default=DEFAULT_TARGETS, min_length=1, description="Module names LoRA adapts."
    )


class TrainConfig(BaseModel):
    """One fine-tune: SFT on the safety and retain rows, then preference optimisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    preference: Literal["dpo", "kto", "none"] = Field(
        default="dpo", description="The second stage: DPO on pairs, KTO on unpaired rows, or none."
    )
    max_length: int = Field(default=256, ge=16, description="Tokens per sequence, prompt+answer.")
    max_answer_length: int = Field(
        default=128,
        ge=4,
        description="Answer tokens kept (the start); the prompt gets the rest, cut from the left.",
    )
    lora: LoraSettings = LoraSettings()
    batch_size: int = Field(default=1, ge=1, description="Sequences per forward pass.")
    gradient_accumulation: int = Field(default=8, ge=1, description="Passes per optimizer step.")
    sft_epochs: float = Field(default=1.0, gt=0)
    sft_max_steps: int | None = Field(default=None, ge=1, description="Overrides sft_epochs.")
    sft_learning_rate: float = Field(default=2e-4, gt=0)
    preference_epochs: float = Field(default=1.0, gt=0)
    preference_max_steps: int | None = Field(default=None, ge=1)
    preference_learning_rate: float = Field(default=5e-5, gt=0)
    beta: float = Field(default=0.1, gt=0, description="DPO/KTO beta: the pull to the SFT model.")
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    save_steps: int = Field(default=10, ge=1, description="Checkpoint every N optimizer steps.")
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="torch threads."
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Trade compute for memory; off: short sequences fit anyway."
    )
    evaluate: bool = Field(default=True, description="Loss on the validation split after a stage.")
    seed: int = 0

    @model_validator(mode="after")
    def _answer_fits(self) -> TrainConfig:
        if self.max_answer_length > self.max_length - 8:
            raise ValueError(
                f"max_answer_length ({self.max_answer_length}) must leave at least 8 of "
                f"max_length ({self.max_length}) tokens for the prompt"
            )
        return self

    def resume_key(self) -> dict[str, Any]:
        """What checkpoints depend on: the config without the fields a resume may change."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in RESUMABLE}


def sha256_json(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def config_hash(config: TrainConfig) -> str:
    """sha256 of the settings that shape the model (threads and checkpoint cadence left out)."""
    settings = config.model_dump(mode="json")
    for name in ("threads", "save_steps"):
        settings.pop(name)
    return sha256_json(settings)
