"""`safestack data`: filter a training corpus (readers → filters → writers) and show the pipeline."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.data.summary import RunStats, ShardStats
from safestack.errors import InputError

data_app = typer.Typer(
    cls=SafestackGroup,
    help="Filter training corpora: remove adult, harmful and low-quality documents, with reasons.",
    no_args_is_help=True,
)


class _RichProgress:
    """Two bars on stderr: shards (of the total) and documents (count and rate)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._shards: TaskID | None = None
        self._docs: TaskID | None = None
        self._count = 0

    def __enter__(self) -> _RichProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._shards is not None:
            self._progress.__exit__(kind, exc, tb)

    def start(self, shards: int, skipped: int) -> None:
        """Called once the inputs and pipeline are valid: errors before it print no bar."""
        self._progress.__enter__()
        if skipped:
            err_console.print(
                f"{skipped} of {shards} shards already done (use --force to redo them)"
            )
        self._shards = self._progress.add_task("shards", total=shards, completed=skipped, rate="")
        self._docs = self._progress.add_task("documents", total=None, rate="")

    def documents(self, count: int) -> None:
        if self._docs is None:
            return
        self._count += count
        elapsed = self._progress.tasks[self._docs].elapsed or 0.0
        rate = f"{self._count / elapsed:,.0f} docs/s" if elapsed > 0 else ""
        self._progress.update(self._docs, advance=count, rate=rate)

    def shard_done(self, stats: ShardStats) -> None:
        if self._shards is not None:
            self._progress.advance(self._shards)


@data_app.command("filter")
def filter_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        help="Input files (.jsonl[.gz|.zst], .parquet, .warc[.gz]), directories of them, or fsspec URLs.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    policy_path: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy YAML (default: SAFESTACK_POLICY or built-in)."
    ),
    pipeline_path: Path | None = typer.Option(
        None, "--pipeline", help="Pipeline YAML (default: `safestack data show-pipeline`)."
    ),
    executor: str = typer.Option("local", "--executor", help="'local' (processes) or 'ray'."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", min=1, help="Parallel workers (default: one per CPU)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Redo shards an earlier run already finished."
    ),
) -> None:
    """Filter INPUT files into --out: kept/, removed/ (with the reason), errors/, stats.json and
    report.html. A re-run skips the shards already done.

    Examples:

      safestack data filter crawl/*.jsonl.gz --out filtered/

      safestack data filter s3://bucket/part-0.parquet --out filtered/ --executor ray --workers 8
    """
    from safestack.data.executors import filter_corpus
    from safestack.data.filters.models import FilterModels

    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be 'local' or 'ray', got {executor!r}")
    st = state(ctx)
    policy = st.policy(policy_path)
    with _RichProgress() as progress:
        run = filter_corpus(
            inputs,
            out,
            pipeline=pipeline_path,
            policy=policy,
            executor="ray" if executor == "ray" else "local",
            workers=workers,
            force=force,
            progress=progress,
            models=FilterModels(st.models),  # a pool or Ray worker loads its own
        )
    _print_summary(run)


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "-"


def _print_summary(run: RunStats) -> None:
    table = Table(caption=f"{len(run.shards)} shard(s), policy {run.policy}")
    table.add_column("documents", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    for label, n in (
        ("read", run.read),
        ("kept", run.kept),
        ("removed", run.removed),
        ("errored", run.errored),
    ):
        table.add_row(label, f"{n:,}", _share(n, run.read))
    for title, counts in (
        ("removed: ", run.merged("removed_by_reason")),
        ("errored: ", run.merged("errors_by_reason")),
    ):
        for reason, n in list(counts.items())[:10]:
            table.add_row(f"  {title}{escape(reason)}", f"{n:,}", _share(n, run.read))
    console.print(table)
    rate = f", {run.processed / run.seconds:,.0f} docs/s" if run.seconds and run.processed else ""
    console.print(f"done in {run.seconds:.1f}s{rate}", highlight=False)
    console.print(f"stats:  {run.stats_path}", soft_wrap=True, highlight=False)
    console.print(f"report: {run.report_path}", soft_wrap=True, highlight=False)


@data_app.command("show-pipeline")
def show_pipeline(
    pipeline_path: Path | None = typer.Option(
        None, "--pipeline", help="Show this pipeline with the defaults filled in."
    ),
) -> None:
    """Print the effective pipeline YAML (the built-in default unless --pipeline is given).

    Example: safestack data show-pipeline > my-pipeline.yaml
    """
    from safestack.data.pipeline import default_pipeline_text, load_pipeline, pipeline_yaml

    if pipeline_path is None:
        print(default_pipeline_text(), end="")
        return
    spec, _ = load_pipeline(pipeline_path)
    print(pipeline_yaml(spec), end="")


@data_app.command("eval")
def eval_command(
    ctx: typer.Context,
    heldout: bool = typer.Option(
        True,
        "--heldout/--tuning",
        help="The held-out corpus (default; the model card's numbers) or the tuning corpus "
        "(optimistic: the thresholds were set on it).",
    ),
    policy_path: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy YAML (default: SAFESTACK_POLICY or built-in)."
    ),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Also write the full report (by source, misclassified) here."
    ),
) -> None:
    """Measure each corpus filter and the whole chain on a labelled corpus: precision, recall and
    F1 with 95% intervals, the chain's label x outcome table and the misclassified count.

    Examples:

      safestack data eval

      safestack data eval --tuning --policy my-policy.yaml --markdown eval.md
    """
    from safestack.data.evaluate import (
        PIPELINE,
        evaluate_filters,
        evaluate_heldout,
        interval_text,
    )
    from safestack.data.filters.models import FilterModels

    st = state(ctx)
    policy = st.policy(policy_path)
    models = FilterModels(st.models)
    with err_console.status("running the filters over the labelled corpus"):
        report = (
            evaluate_heldout(policy, models=models)
            if heldout
            else evaluate_filters(policy, models=models)
        )
    table = Table(
        title=f"{report.split} corpus {report.corpus}: {report.documents} documents",
        caption=f"policy {report.policy}; Wilson 95% intervals (F1: bootstrap)",
    )
    for column in ("filter", "precision", "recall", "F1", "TP", "FP", "FN"):
        table.add_column(column, justify="left" if column == "filter" else "right", no_wrap=True)
    for s in [*report.filters.values(), report.pipeline]:
        table.add_row(
            s.name,
            # value over its interval: the table stays inside 80 columns
            f"{s.precision:.3f}\n{interval_text(s.precision_interval)}",
            f"{s.recall:.3f}\n{interval_text(s.recall_interval)}",
            f"{s.f1:.3f}\n{interval_text(s.f1_interval)}",
            str(s.tp),
            str(s.fp),
            str(s.fn),
        )
    console.print(table)
    outcomes = ["kept", *PIPELINE]
    chain = Table(title="whole pipeline: label x outcome")
    chain.add_column("label", no_wrap=True)
    for outcome in outcomes:
        chain.add_column(outcome, justify="right", no_wrap=True)
    for label, counts in sorted(report.confusion.items()):
        chain.add_row(label, *(str(counts.get(o, 0)) for o in outcomes))
    console.print(chain)
    console.print(f"misclassified documents: {len(report.misclassified)}", highlight=False)
    if markdown is not None:
        markdown.write_text(report.to_markdown(), encoding="utf-8")
        console.print(f"report: {markdown}", soft_wrap=True, highlight=False)
