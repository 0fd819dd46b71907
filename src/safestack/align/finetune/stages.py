"""The two training stages on TRL: LoRA SFT, then DPO (or KTO) continuing the same adapter.

Rows arrive tokenised and cut to length (`encode.Encoder`), so the trainers' own preparation is
skipped. SFT's loss is on the answer tokens only (`completion_mask`); TRL's fused LM head projects
only those positions through the output layer, which on Gemma (262k words) is most of the work.
The preference stage starts from the SFT adapter and uses it, frozen, as the reference model: its
log-probabilities are computed once before training (`precompute_ref_log_probs`), so no second
model is kept or run during training. Each stage checkpoints every `save_steps` optimizer steps
into `DIR/<stage>/checkpoints` and resumes from the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from rich.console import Console
from transformers import AutoModelForCausalLM, PrinterCallback
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig, SFTTrainer

from safestack.align.finetune.config import TrainConfig
from safestack.align.finetune.progress import CountingCollator, RichProgress, TokenCount, quiet
from safestack.errors import InputError

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint: Trainer writes trainer_state.json last, so a checkpoint
    a killed job was still writing has none and is skipped."""
    if not directory.is_dir():
        return None
    found = [
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := CHECKPOINT.match(path.name)) and (path / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def load_model(path: Path) -> Any:
    """A causal LM from a directory, float32 (the fast dtype on CPUs without bf16 units)."""
    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the model in {path}: {exc}") from None


def _common_args(config: TrainConfig, stage_dir: Path) -> dict[str, Any]:
    return {
        "output_dir": str(stage_dir / "checkpoints"),
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "warmup_steps": config.warmup_ratio,
        "lr_scheduler_type": "linear",
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": config.gradient_checkpointing,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "disable_tqdm": True,
        "seed": config.seed,
        "data_seed": config.seed,
        "max_length": config.max_length,
        "remove_unused_columns": True,
    }


@dataclass
class StageOutcome:
    metrics: dict[str, Any]
    model: Any  # the trained PeftModel


class _Tokenised:
    """Mixin for TRL trainers: rows come tokenised and fitted, so preparation is skipped.

    DPO and KTO would otherwise render and tokenise `prompt`/`chosen`/`rejected` again and cut
    them from the right (`keep_start`, the only mode TRL 1.x keeps), losing the answer's end.
    """

    calculate_KL: bool
    args: Any

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, name: str) -> Any:
        if getattr(self, "calculate_KL", False) and "KL_completion_ids" not in dataset.column_names:
            # KTO's KL term: each prompt with its batch neighbour's answer, as TRL builds it.
            def rotate(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
                answers = batch["completion_ids"]
                return {**batch, "KL_completion_ids": [answers[-1], *answers[:-1]]}

            dataset = dataset.map(rotate, batched=True, batch_size=args.per_device_train_batch_size)
        return dataset


class TokenisedDPOTrainer(_Tokenised, DPOTrainer):  # type: ignore[misc]
    pass


class TokenisedKTOTrainer(_Tokenised, KTOTrainer):  # type: ignore[misc]
    pass


@contextlib.contextmanager
def _reported(
    trainer: Any, console: Console | None, stage: str, callbacks: Sequence[Any]
) -> Iterator[TokenCount]:
    count = TokenCount()
    trainer.data_collator = CountingCollator(trainer.data_collator, count)
    trainer.remove_callback(PrinterCallback)  # the Rich bar shows the loss instead
    bar = RichProgress(console, stage, count) if console is not None else None
    for callback in [*([bar] if bar is not None else []), *callbacks]:
        trainer.add_callback(callback)
    try:
        yield count
    finally:
        if bar is not None:
            bar.close()


def _train(trainer: Any, stage_dir: Path, resume: bool) -> dict[str, Any]:
    checkpoint = last_checkpoint(stage_dir / "checkpoints") if resume else None
    load_before = os.getloadavg()[0]
    try:
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except (MemoryError, RuntimeError) as exc:
        # torch on CPU: "DefaultCPUAllocator: can't allocate memory" (a RuntimeError subclass).
        if not isinstance(exc, MemoryError) and "can't allocate memory" not in str(exc):
            raise
        raise InputError(
            f"the model does not fit in memory while training ({str(exc)[:200]}); lower "
            "--max-length or --batch-size, or train a smaller model; the checkpoints are kept"
        ) from None
    history = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        # The machine's load (1-minute average) before and after: speed depends on it.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "steps": trainer.state.global_step,
        "resumed_from": checkpoint.name if checkpoint else None,
        "train_loss": round(float(output.training_loss), 4),
        "final_loss": round(float(history[-1]), 4) if history else None,
    }


def _evaluate(trainer: Any, eval_rows: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if eval_rows is None or not len(eval_rows):
        return {}
    scores = trainer.evaluate()
    return {key: round(float(scores[key]), 4) for key in keys if key in scores}


def sft_trainer(
    base: Path,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    config: TrainConfig,
    stage_dir: Path,
) -> Any:
    """TRL's SFTTrainer over a fresh LoRA adapter on `base`, loss on the answer tokens only."""
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.targets),
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(load_model(base), lora)
    except ValueError as exc:  # PEFT: no module matches the targets
        raise InputError(f"LoRA targets {list(config.lora.targets)}: {exc}") from None
    args = SFTConfig(
        **_common_args(config, stage_dir),
        learning_rate=config.sft_learning_rate,
        num_train_epochs=config.sft_epochs,
        max_steps=config.sft_max_steps or -1,
        completion_only_loss=True,
        packing=False,
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(train_rows),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
    )


def run_sft(
    base: Path,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    config: TrainConfig,
    stage_dir: Path,
    *,
    resume: bool,
    console: Console | None,
    callbacks: Sequence[Any] = (),
) -> StageOutcome:
    """LoRA SFT on the safety and retain rows; the adapter is saved to `stage_dir/adapter`."""
    with quiet():
        trainer = sft_trainer(base, tokenizer, train_rows, eval_rows, config, stage_dir)
        with _reported(trainer, console, "SFT", callbacks) as count:
            metrics = _train(trainer, stage_dir, resume)
            metrics.update(count.rates())
        if config.evaluate:
            metrics.update(_evaluate(trainer, trainer.eval_dataset, ("eval_loss",)))
        trainer.model.save_pretrained(str(stage_dir / "adapter"))
    return StageOutcome(metrics, trainer.model)


def run_preference(
    base: Path,
    adapter: Path,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    config: TrainConfig,
    stage_dir: Path,
    *,
    resume: bool,
    console: Console | None,
    callbacks: Sequence[Any] = (),
) -> StageOutcome:
    """DPO (pairs) or KTO (unpaired rows) continuing the SFT adapter, with the SFT model as the
    reference; the adapter is saved to `stage_dir/adapter`."""
    with quiet():
        return _run_preference(
            base,
            adapter,
            tokenizer,
            train_rows,
            eval_rows,
            config,
            stage_dir,
            resume,
            console,
            callbacks,
        )


def rows_for_steps(
    rows: list[dict[str, Any]], steps: int | None, per_step: int, seed: int
) -> list[dict[str, Any]]:
    """The rows `steps` optimizer steps will see: all of them without a step limit, else a seeded
    sample of `steps * per_step`, in their order. TRL precomputes the reference log-probabilities
    of every row it is given, trained on or not: with 64 pairs and 4 steps of 8, half that pass
    (about 12 minutes on this machine under load) was for pairs no step used."""
    wanted = None if steps is None else steps * per_step
    if wanted is None or len(rows) <= wanted:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), wanted))
    return [rows[i] for i in keep]


def _run_preference(
    base: Path,
    adapter: Path,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    config: TrainConfig,
    stage_dir: Path,
    resume: bool,
    console: Console | None,
    callbacks: Sequence[Any],
) -> StageOutcome:
    model = PeftModel.from_pretrained(load_model(base), adapter, is_trainable=True)
    per_step = config.batch_size * config.gradient_accumulation
    train_rows = rows_for_steps(train_rows, config.preference_max_steps, per_step, config.seed)
    train_set = datasets.Dataset.from_list(train_rows)
    eval_set = datasets.Dataset.from_list(eval_rows) if eval_rows else None
    common = {
        **_common_args(config, stage_dir),
        "learning_rate": config.preference_learning_rate,
        "num_train_epochs": config.preference_epochs,
        "max_steps": config.preference_max_steps or -1,
        "beta": config.beta,
        "precompute_ref_log_probs": True,
    }
    trainer: Any
    if config.preference == "dpo":
        trainer = TokenisedDPOTrainer(
            model=model,
            args=DPOConfig(**common),
            train_dataset=train_set,
            eval_dataset=eval_set,
            processing_class=tokenizer,
        )
        keys: tuple[str, ...] = ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins")
    else:
        trainer = TokenisedKTOTrainer(
            model=model,
            args=KTOConfig(**common),
            train_dataset=train_set,
            eval_dataset=eval_set,
            processing_class=tokenizer,
        )
        keys = ("eval_loss", "eval_kl")
    stage = config.preference.upper()
    with _reported(trainer, console, stage, callbacks) as count:
        metrics = _train(trainer, stage_dir, resume)
        metrics.update(count.rates())
    if config.evaluate:
        metrics.update(_evaluate(trainer, trainer.eval_dataset, keys))
    last = [entry for entry in trainer.state.log_history if "rewards/accuracies" in entry]
    if last:
        metrics["rewards_accuracy"] = round(float(last[-1]["rewards/accuracies"]), 4)
        metrics["rewards_margin"] = round(float(last[-1].get("rewards/margins", 0.0)), 4)
    if "ref" in model.peft_config:
        model.delete_adapter("ref")  # TRL's frozen copy of the SFT adapter: the reference only
    model.save_pretrained(str(stage_dir / "adapter"))
    return StageOutcome(metrics, model)


def write_done(stage_dir: Path, metrics: dict[str, Any]) -> None:
    (stage_dir / "done.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")


def read_done(stage_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((stage_dir / "done.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and (stage_dir / "adapter").is_dir() else None
