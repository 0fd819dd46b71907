"""The reproducible build of the built-in models: fine-tune, calibrate, export, record.

`build_models` reads the assembled data set (`dataset.assemble`), computes the frozen per-token
layers once per text, fine-tunes the encoder's upper layers with a head per task, fits Platt
scaling on a held-back fifth of the training groups, fits the fast tier's heads on bag-of-pieces
vectors, and writes `encoder/model.onnx` (with its int8 copy `encoder/model.int8.onnx`),
`encoder/build.json` and `heads/<task>-<tier>.npz` into the models directory. Test sources are never seen (`dataset.HELD_OUT`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from safestack.datasets.examples import PAIR_TASKS, TASKS, Example, Task
from safestack.judge.builtin.embedders import INT8_FILE, StaticEmbedder
from safestack.judge.builtin.heads import Head, pair_features
from safestack.judge.builtin.use_m3 import PACKAGE, PINS, VERSION, WEIGHTS, Vocabulary, package_file
from safestack.policy import default_policy
from safestack.training.dataset import HELD_OUT, split_by_source
from safestack.training.encoder_model import UseTrunk, export_onnx
from safestack.training.finetune import (
    MultiTask,
    Settings,
    TaskData,
    TokenSums,
    document_windows,
    embed,
    finetune,
    task_data,
)
from safestack.training.quantize import quantize_encoder
from safestack.training.train import CALIBRATION_PRIOR, calibration_mask, fit_head, platt

Progress = Callable[[str, int, int], None]
NOT_HARM = frozenset(
    {"prompt-injection-direct", "prompt-injection-indirect", "system-prompt-extraction"}
)


def training_examples(examples: Sequence[Example], task: Task) -> list[Example]:
    """A task's training rows: its split's train part; documents cut into windows, and every
    harm training prompt also a `document-harm` row (a harmful request is harmful text)."""
    train = split_by_source(examples, task).train
    if task == "harm":
        # Injections and extraction attempts ask for nothing harmful: harm negatives, so that an
        # attack in any language does not read as harm. (Jailbreaks often wrap a harmful request.)
        seen = {e.text for e in train}
        held = set(HELD_OUT["harm"])
        extra = [
            e.model_copy(update={"task": "harm", "labels": []})
            for e in split_by_source(examples, "attack").train
            if e.labels[0] in NOT_HARM and e.source not in held and e.text not in seen
        ]
        return [*train, *extra]
    if task != "document-harm":
        return list(train)
    windows = [w for e in train for w in document_windows(e)]
    prompts = split_by_source(examples, "harm").train
    return windows + [e.model_copy(update={"task": "document-harm"}) for e in prompts]


def build_models(
    data_dir: Path,
    models_dir: Path,
    work_dir: Path,
    settings: Settings | None = None,
    progress: Progress | None = None,
    tasks: Sequence[Task] = TASKS,
) -> dict[str, object]:
    from safestack.datasets.examples import read_jsonl

    settings = settings or Settings()
    started = time.time()
    examples = read_jsonl(data_dir / "examples.jsonl")
    harm = tuple(default_policy().content_categories())
    vocab = Vocabulary.installed()
    trunk = UseTrunk.from_package(package_file(WEIGHTS))
    table = TokenSums(vocab, trunk, cache=work_dir / "token-sums.npz")
    rows: dict[Task, list[Example]] = {}
    fit: dict[Task, list[Example]] = {}
    held: dict[Task, list[Example]] = {}
    for task in tasks:
        rows[task] = training_examples(examples, task)
        cal = calibration_mask(rows[task])
        fit[task] = [e for e, c in zip(rows[task], cal, strict=True) if not c]
        held[task] = [e for e, c in zip(rows[task], cal, strict=True) if c]
    data = {task: task_data(task, fit[task], harm, table) for task in tasks}
    calibration = {task: task_data(task, held[task], harm, table) for task in tasks}
    sums, lengths = table.compute(
        None if progress is None else lambda done, total: progress("frozen layers", done, total)
    )
    model = finetune(
        data,
        trunk,
        sums,
        lengths,
        settings,
        None if progress is None else lambda step, total, _: progress("fine-tuning", step, total),
    )
    vectors = embed(model, sums, lengths)
    heads_dir = models_dir / "heads"
    heads_dir.mkdir(parents=True, exist_ok=True)
    encoder_dir = models_dir / "encoder"
    onnx_path = encoder_dir / "model.onnx"
    export_onnx(model.trunk, onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    accurate_name = f"use-m3-ft@{digest[:12]}"
    reports: dict[str, object] = {}
    for task in tasks:
        head = accurate_head(model, task, calibration[task], vectors, accurate_name)
        head.save(heads_dir / f"{task}-accurate.npz")
        reports[f"{task}-accurate"] = {"labels": list(head.labels), "fit": len(fit[task])}
    bag = StaticEmbedder(vocab)
    for task in tasks:
        x = _bag_features(bag, rows[task], task)
        head, report = fit_head(task, "fast", rows[task], x, bag.name)
        head.save(heads_dir / f"{task}-fast.npz")
        reports[f"{task}-fast"] = {"labels": report.labels, "dropped": report.dropped_labels}
    record = {
        "model": "use-m3-ft",
        "base": {"package": PACKAGE, "version": VERSION, "files": PINS},
        "files": {"model.onnx": {"sha256": digest, "bytes": onnx_path.stat().st_size}},
        "trained": "upper layers (after the sum over tokens) and heads; token layers frozen",
        "settings": asdict(settings),
        "tasks": list(tasks),
        "examples": {task: len(fit[task]) for task in tasks},
        "calibration": {task: len(held[task]) for task in tasks},
        "data_sha256": hashlib.sha256((data_dir / "examples.jsonl").read_bytes()).hexdigest(),
        "build_seconds": round(time.time() - started),
        "machine": f"{platform.machine()}, {_cores()} cores",
        "losses": {task: float(np.mean(data[task].losses[-200:] or [0.0])) for task in tasks},
        "heads": reports,
    }
    (encoder_dir / "build.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    # The int8 copy the gateway runs by default, recorded beside the float model.
    record["files"][INT8_FILE] = quantize_encoder(encoder_dir)  # type: ignore[index]
    return record


def accurate_head(
    model: MultiTask, task: Task, calibration: TaskData, vectors: np.ndarray, name: str
) -> Head:
    """The fine-tuned linear head as a `Head`, labels with no calibration positive dropped,
    calibrated."""
    layer = model.heads[task]
    assert isinstance(layer, torch.nn.Linear)
    weight = layer.weight.detach().numpy().T.astype(np.float32)
    bias = layer.bias.detach().numpy().astype(np.float32)
    x = vectors[calibration.rows]
    if calibration.request_rows is not None:
        x = pair_features(vectors[calibration.request_rows], x)
    multi = calibration.multi_label
    # A softmax head keeps every class (the probabilities need them all to sum to one).
    keep = [j for j in range(len(calibration.labels)) if not multi or calibration.y[:, j].any()]
    labels = tuple(calibration.labels[j] for j in keep)
    weight, bias = weight[:, keep], bias[keep]
    head = Head(
        task=task,
        tier="accurate",
        labels=labels,
        activation="sigmoid" if multi else "softmax",
        weight=weight,
        bias=bias,
        platt_a=np.ones(len(labels), dtype=np.float32),
        platt_b=np.zeros(len(labels), dtype=np.float32),
        embedder=name,
    )
    named = ~calibration.unspecified
    prior = CALIBRATION_PRIOR if multi else None
    a, b = platt(head, x[named], calibration.y[named][:, keep].astype(np.int8), prior)
    return replace(head, platt_a=a, platt_b=b)


def _bag_features(bag: StaticEmbedder, examples: Sequence[Example], task: Task) -> np.ndarray:
    x = bag.encode([e.text for e in examples])
    if task in PAIR_TASKS:
        x = pair_features(bag.encode([e.request or "" for e in examples]), x)
    return x


def _cores() -> int:
    return len(os.sched_getaffinity(0))
