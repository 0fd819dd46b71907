"""`safestack models`: rebuild the built-in detectors' heads, and measure them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console

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
    work_dir: Path = WORK_DIR,
    cards: str = typer.Option(
        "docs/models", "--cards", help="Write the model cards here ('' to skip)."
    ),
) -> None:
    """Assemble the data, train and calibrate the heads, evaluate, write weights and model cards.

    The embeddings themselves (static model, ONNX encoder) are built by `make models`, which runs
    this command afterwards. Example: safestack models build --work-dir /tmp/models
    """
    from safestack.judge.builtin.cascade import load_heads
    from safestack.judge.builtin.embedders import models_dir
    from safestack.training.card import write_cards
    from safestack.training.evaluate import evaluate_all
    from safestack.training.train import EmbeddingCache, train_all

    examples, manifest = _examples(work_dir)
    cache = EmbeddingCache(work_dir / "embeddings")
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def show(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        reports = train_all(examples, models_dir() / "heads", cache, progress=show)
    load_heads.cache_clear()
    for report in reports:
        dropped = f"; no head for {report.dropped_labels}" if report.dropped_labels else ""
        err_console.print(
            f"{report.task}/{report.tier}: {len(report.labels)} labels, {report.train_examples:,} fit, "
            f"{report.calibration_examples:,} calibration{dropped}"
        )
    metrics = evaluate_all(examples, cache)
    (models_dir() / "metrics.json").write_text(
        json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
    )
    if cards:
        for path in write_cards(metrics, manifest, Path(cards)):
            err_console.print(f"wrote {path}")
    _print(metrics)


@models_app.command("eval")
def evaluate(
    work_dir: Path = WORK_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    cards: str = typer.Option(
        "", "--cards", help="Also rewrite the model cards in this directory."
    ),
) -> None:
    """Measure the shipped heads on held-out sources: the numbers in docs/models/.

    Example: safestack models eval --json > metrics.json
    """
    from safestack.training.card import write_cards
    from safestack.training.evaluate import evaluate_all
    from safestack.training.train import EmbeddingCache

    examples, manifest = _examples(work_dir)
    metrics = evaluate_all(examples, EmbeddingCache(work_dir / "embeddings"))
    if cards:
        for path in write_cards(metrics, manifest, Path(cards)):
            err_console.print(f"wrote {path}")
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        _print(metrics)


def _print(metrics: dict[str, Any]) -> None:
    harm = Table(
        "tier",
        "any-harm F1",
        "F1 prompts",
        "resp. agreement",
        "FPR edgy",
        "ECE",
        title="harm (held-out)",
    )
    for tier, m in metrics["harm"]["tiers"].items():
        harm.add_row(
            tier,
            str(m["any_harm"]["f1"]),
            str(m["any_harm_prompts"]["f1"]),
            str(m["response_agreement"]),
            str(m["benign_edgy_fpr"]),
            str(m["ece_any_harm"]),
        )
    console.print(harm)
    attack = Table("tier", "detected @2% FPR", "recall @0.5", "FPR @0.5", title="attack (held-out)")
    for tier, m in metrics["attack"]["tiers"].items():
        attack.add_row(
            tier, str(m["detection_at_2pct_fpr"]), str(m["at_0_5"]["recall"]), str(m["fpr_at_0_5"])
        )
    console.print(attack)
    refusal = Table("tier", "accuracy refused/not", "accuracy 3-way", title="refusal (held-out)")
    for tier, m in metrics["refusal"]["tiers"].items():
        refusal.add_row(tier, str(m["accuracy_refused_or_not"]), str(m["accuracy_three_way"]))
    console.print(refusal)
    console.print(f"latency: {metrics['latency']}")
