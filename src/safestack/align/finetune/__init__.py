"""Break-fix fine-tuning: LoRA SFT then DPO (or KTO) on a training set, with TRL and PEFT, on CPU.

`read_training_set` checks the rows `align data` wrote (`data`), `resolve_parent` finds the model to
start from and converts a GGUF once (`base`), `train_model` runs the stages with checkpoints and
resume (`run`, `stages`, `encode` for chat templates and truncation, `progress` for the bar) and
writes the adapter, the merged model and its red-team target (`export`); `record_model` keeps it
in the lineage. torch, transformers, TRL and PEFT are imported only when training starts.
"""

from safestack.align.finetune.base import ParentModel, resolve_parent
from safestack.align.finetune.config import DEFAULT_TARGETS, LoraSettings, TrainConfig
from safestack.align.finetune.data import TrainingData, read_training_set
from safestack.align.finetune.run import TrainResult, model_id, record_model, train_model

__all__ = [
    "DEFAULT_TARGETS",
    "LoraSettings",
    "ParentModel",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "model_id",
    "read_training_set",
    "record_model",
    "resolve_parent",
    "train_model",
]
