"""`safestack align train`: one fine-tune, from a training set to a model the red team can attack.

    DIR/run.json          what this run is (config, set, parent): a resume must match it
    DIR/sft/              checkpoints/, adapter/ and done.json of the SFT stage
    DIR/dpo/ (or kto/)    the same for the preference stage
    DIR/adapter/          the final LoRA adapter (PEFT), over the parent model
    DIR/merged/           the parent with the adapter merged: a transformers model directory
    DIR/target.yaml       the red-team target for it
    DIR/training.json     the finished run: ids, hashes, config, metrics

A stage that finished is not redone; one that was interrupted continues from its last complete
checkpoint with `resume`. A directory holding another run is refused, never overwritten.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from safestack.align.finetune.base import ParentModel, convert_gguf
from safestack.align.finetune.config import TrainConfig, config_hash, sha256_json
from safestack.align.finetune.data import TrainingData
from safestack.align.finetune.encode import Encoder, ensure_chat_template
from safestack.errors import InputError
from safestack.models.transformers_model import HF_INSTALL, require_modules
from safestack.store import Store, StoredModel

RUN, RESULT = "run.json", "training.json"
TRAIN_INSTALL = f"{HF_INSTALL} && pip install 'safestack[align]'"


@dataclass(frozen=True)
class TrainResult:
    """A finished fine-tune: where its parts are and what it measured."""

    model_id: str
    name: str
    parent: ParentModel
    out: Path
    adapter: Path
    merged: Path
    target_file: Path
    target: dict[str, Any]
    config: TrainConfig
    config_hash: str
    data: TrainingData
    metrics: dict[str, Any]
    status: str  # "trained" or "unchanged"


def model_id(parent_id: str, data_version: str, settings_hash: str) -> str:
    """A fine-tune's id: its parent, what it learnt and how; the same three, the same id."""
    digest = sha256_json([parent_id, data_version, settings_hash])
    return f"ft-{digest[:16]}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe_checkpoints(out: Path) -> str:
    from safestack.align.finetune.stages import last_checkpoint

    steps = [
        f"{stage} step {found.name.split('-')[-1]}"
        for stage in ("sft", "dpo", "kto")
        if (found := last_checkpoint(out / stage / "checkpoints")) is not None
    ]
    return ", ".join(steps) or "no checkpoint yet"


def _check_out(out: Path, run: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """What `out` already holds: the finished result of this run (returned as a dict), nothing,
    or an unfinished run that `resume` continues; anything else is an InputError."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a directory; choose a directory")
    finished = _read_json(out / RESULT)
    if finished is not None:
        if finished.get("model_id") == run["model_id"]:
            return finished
        raise InputError(
            f"--out {out}: already holds model {finished.get('model_id')}, trained from another "
            "parent, set or config; choose another --out (nothing there is overwritten)"
        )
    started = _read_json(out / RUN)
    if started is not None:
        if not resume:
            raise InputError(
                f"--out {out}: holds an unfinished run ({_describe_checkpoints(out)}): pass "
                "--resume to continue it, or choose another --out"
            )
        differs = sorted(
            key
            for key in run["resume_key"]
            if run["resume_key"][key] != (started.get("resume_key") or {}).get(key)
        )
        if differs:
            raise InputError(
                f"--out {out}: its checkpoints come from another run (it differs in "
                f"{', '.join(differs)}); resume with the same settings, or choose another --out"
            )
        return None
    if out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"--out {out}: holds files that are not a safestack fine-tune; choose another --out"
        )
    return None


def _seed(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)


def train_model(
    data: TrainingData,
    parent: ParentModel,
    config: TrainConfig,
    out: Path,
    *,
    cache: Path,
    resume: bool = False,
    chat_template: str = "auto",
    name: str | None = None,
    console: Console | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune `parent` on `data` into `out` (see the module docstring for what is written)."""
    require_modules(
        "align train",
        {"torch": "torch==2.13.0", "transformers": "transformers", "trl": "trl", "peft": "peft"},
        TRAIN_INSTALL,
    )
    settings_hash = config_hash(config)
    new_id = model_id(parent.id, data.version, settings_hash)
    name = name or out.resolve().name
    run = {
        "model_id": new_id,
        "parent": parent.id,
        "training_set": data.id,
        "training_set_version": data.version,
        "config_hash": settings_hash,
        "resume_key": {
            **config.resume_key(),
            "parent": parent.id,
            "training_set_version": data.version,
            "chat_template": chat_template,
        },
    }
    out = out.resolve()
    held = _check_out(out, run, resume)
    if isinstance(held, dict):
        return _result_from(held, parent, config, data, out, "unchanged")

    _check_rows(data, config)
    import torch

    torch.set_num_threads(config.threads)
    _seed(config.seed)
    started = time.perf_counter()
    note: Callable[[str], object] = console.print if console is not None else (lambda _: None)
    from safestack.align.finetune.progress import quiet

    with quiet():
        parent = convert_gguf(parent, cache, config.threads, note)
    assert parent.directory is not None

    from transformers import AutoTokenizer

    from safestack.align.finetune import stages
    from safestack.align.finetune.export import merge, target_spec, write_target

    tokenizer = AutoTokenizer.from_pretrained(parent.directory, local_files_only=True)
    template = ensure_chat_template(tokenizer, chat_template)
    encoder = Encoder(tokenizer, config.max_length, config.max_answer_length)
    sft_rows = {split: [encoder.sft(e) for e in rows] for split, rows in data.sft.items()}
    preference_rows: dict[str, list[dict[str, Any]]] = {}
    if config.preference == "dpo":
        preference_rows = {
            s: [encoder.pair(p) for p in rows] for s, rows in data.preference.items()
        }
    elif config.preference == "kto":
        preference_rows = {s: [encoder.unpaired(u) for u in rows] for s, rows in data.kto.items()}

    out.mkdir(parents=True, exist_ok=True)
    (out / RUN).write_text(json.dumps(run, indent=2) + "\n", "utf-8")
    metrics: dict[str, Any] = {
        "rows": {
            "sft": {s: len(r) for s, r in sft_rows.items()},
            config.preference: {s: len(r) for s, r in preference_rows.items()},
        },
        "truncated": {
            "prompts": encoder.truncated_prompts,
            "answers": encoder.truncated_answers,
        },
        "chat_template": template,
    }

    sft_dir = out / "sft"
    done = stages.read_done(sft_dir)
    if done is None:
        outcome = stages.run_sft(
            parent.directory,
            tokenizer,
            sft_rows["train"],
            sft_rows.get("validation", []),
            config,
            sft_dir,
            resume=resume,
            console=console,
            callbacks=callbacks,
        )
        done = outcome.metrics
        stages.write_done(sft_dir, done)
        del outcome
    metrics["sft"] = done
    adapter = sft_dir / "adapter"

    if config.preference != "none":
        stage_dir = out / config.preference
        done = stages.read_done(stage_dir)
        if done is None:
            note(f"{config.preference.upper()}: reference log-probabilities of the SFT model")
            outcome = stages.run_preference(
                parent.directory,
                adapter,
                tokenizer,
                preference_rows["train"],
                preference_rows.get("validation", []),
                config,
                stage_dir,
                resume=resume,
                console=console,
                callbacks=callbacks,
            )
            done = outcome.metrics
            stages.write_done(stage_dir, done)
            del outcome
        metrics[config.preference] = done
        adapter = stage_dir / "adapter"

    final_adapter = out / "adapter"
    shutil.rmtree(final_adapter, ignore_errors=True)
    shutil.copytree(adapter, final_adapter)
    note("merging the adapter into the model")
    identity = {"id": new_id, "parent": parent.id, "training_set_version": data.version}
    with quiet():
        merged = merge(
            stages.load_model(parent.directory), final_adapter, tokenizer, out / "merged", identity
        )
    target = target_spec(new_id, merged, name)
    write_target(
        target,
        out / "target.yaml",
        f"safestack align train: model {new_id} ({parent.id} + training set "
        f"{data.id or data.version[:16]}); add it to a campaign's targets",
    )
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    result = {
        **{k: v for k, v in run.items() if k != "resume_key"},
        "name": name,
        "config": config.model_dump(mode="json"),
        "metrics": metrics,
        "adapter": str(final_adapter),
        "merged": str(merged),
        "target": target,
    }
    (out / RESULT).write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return _result_from(result, parent, config, data, out, "trained")


def _check_rows(data: TrainingData, config: TrainConfig) -> None:
    where = data.path
    if not data.sft.get("train"):
        raise InputError(
            f"training set {where}: sft/train.jsonl and retain/train.jsonl hold no rows, so "
            "there is nothing to train on; build the set from runs with findings "
            "(safestack align data)"
        )
    if config.preference == "dpo" and not data.preference.get("train"):
        raise InputError(
            f"training set {where}: preference/train.jsonl holds no rows; pass "
            "--preference none to train SFT only"
        )
    if config.preference == "kto":
        if not data.kto.get("train"):
            raise InputError(
                f"training set {where}: kto/train.jsonl holds no rows; pass --preference none "
                "to train SFT only"
            )
        if config.batch_size < 2:
            raise InputError(
                "--preference kto: KTO estimates its KL term across a batch; pass --batch-size 2 "
                "or more (or use --preference dpo)"
            )


def _result_from(
    result: dict[str, Any],
    parent: ParentModel,
    config: TrainConfig,
    data: TrainingData,
    out: Path,
    status: str,
) -> TrainResult:
    return TrainResult(
        model_id=str(result["model_id"]),
        name=str(result["name"]),
        parent=parent,
        out=out,
        adapter=Path(result["adapter"]),
        merged=Path(result["merged"]),
        target_file=out / "target.yaml",
        target=dict(result["target"]),
        config=config,
        config_hash=str(result["config_hash"]),
        data=data,
        metrics=dict(result["metrics"]),
        status=status,
    )


def record_model(store: Store, result: TrainResult) -> StoredModel:
    """Keep the fine-tune (and its parent, when new) in the lineage: `store.models`."""
    parent = result.parent
    if store.models.get(parent.id) is None:
        store.models.record(
            parent.id,
            name=parent.name,
            kind="base",
            path=str(parent.gguf or parent.directory),
            target={"name": parent.name, **parent.target},
        )
    return store.models.record(
        result.model_id,
        name=result.name,
        kind="fine-tune",
        parent=parent.id,
        training_set=result.data.id,
        training_set_version=result.data.version,
        config_hash=result.config_hash,
        config=result.config.model_dump(mode="json"),
        metrics=result.metrics,
        path=str(result.merged),
        target=result.target,
    )
