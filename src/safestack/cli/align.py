"""`safestack align`: break-fix. Red-team findings become training data and a regression campaign.

Exit codes: 0 done (or already up to date), 2 bad input or a failure (one line saying what to do),
3 the runs hold no successful attack, so there is nothing to learn from (nothing is written).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state

NOTHING_TO_LEARN = 3  # exit code: the runs hold no finding (docs/align.md)

align_app = typer.Typer(
    cls=SafestackGroup,
    help="Break-fix: turn red-team findings into safety training data and a regression campaign.",
    no_args_is_help=True,
)

RUN_IDS = typer.Argument(..., help="Stored red-team run ids.", show_default=False)
POLICY = typer.Option(None, "--policy", help="Policy file (default: settings).")


def _register_stage_plugins() -> None:
    """The guard's `kind: guarded` target, which stored campaigns may name (the CLI is the one
    layer that imports both the guard and align)."""
    import safestack.guard.target  # noqa: F401


def _nothing_to_learn(message: str) -> typer.Exit:
    err_console.print(f"[yellow]nothing to learn:[/] {escape(message)}", highlight=False)
    return typer.Exit(NOTHING_TO_LEARN)


@align_app.command("data")
def data_command(
    ctx: typer.Context,
    run_ids: list[str] = RUN_IDS,
    out: Path = typer.Option(..., "--out", help="Output directory.", show_default=False),
    retain_ratio: float = typer.Option(  # align.retain.DEFAULT_RETAIN_RATIO (not imported here)
        3.0, "--retain-ratio", help="Retain (helpful) rows per safety row; docs/align.md."
    ),
    validation_ratio: float = typer.Option(
        0.1, "--validation-ratio", help="Share of behaviours held out for validation."
    ),
    writer: str = typer.Option(
        "templates",
        "--writer",
        help="'templates' (offline), a model kind, '{kind: openai, options: {...}}' or a YAML file.",
    ),
    seed: int = typer.Option(0, "--seed", help="Fixes phrasings, retain choice and the split."),
    heldout: list[str] = typer.Option(
        ["benign-lookalikes"],
        "--heldout-source",
        help="Behaviour set whose prompts never enter the retain set (the over-refusal measure).",
    ),
    retain_sources: list[str] = typer.Option(
        ["run", "borderline", "chatterbot"],
        "--retain-source",
        help="Where retain rows come from, in priority order: run, borderline, chatterbot.",
    ),
    regression: bool = typer.Option(
        True, "--regression/--no-regression", help="Also write regression.yaml (the findings)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a different set in --out (the old one is kept beside it)."
    ),
    policy_path: Path | None = POLICY,
) -> None:
    """Build SFT, preference, KTO and retain sets from the attacks that succeeded in stored runs.

    Exit codes: 0 written (or already there), 2 bad input, 3 no attack succeeded (nothing written).

    Example: safestack align data demo --out data/round1
    """
    from safestack.align import (
        BuildOptions,
        ModelWriter,
        NothingToLearnError,
        TemplateWriter,
        build_training_set,
        load_runs,
        parse_writer,
        record_training_set,
        regression_campaign,
        write_training_set,
    )
    from safestack.store import Store

    st = state(ctx)
    policy = st.policy(policy_path)
    options = BuildOptions(
        retain_ratio=retain_ratio,
        validation_ratio=validation_ratio,
        seed=seed,
        heldout_sources=tuple(heldout),
        retain_sources=tuple(retain_sources),
    )
    spec = parse_writer(writer)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        runs = load_runs(store, run_ids)
        chosen = TemplateWriter() if spec is None else ModelWriter.from_spec(spec, policy)
        progress = Progress(
            TextColumn("[bold]writing answers"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=spec is None,
        )
        try:
            with progress:
                task = progress.add_task("answers", total=None)
                training_set = build_training_set(
                    runs, policy, chosen, options, lambda n: progress.update(task, advance=n)
                )
        except NothingToLearnError as exc:
            raise _nothing_to_learn(str(exc)) from None
        campaign = regression_campaign(runs, training_set.findings) if regression else None
        result = write_training_set(training_set, out, force=force, regression=campaign)
        stored = record_training_set(store, result)
    counts = training_set.counts
    table = Table(title=f"training set {stored.id} → {out}", title_justify="left")
    for column in ("kind", "train", "validation"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in ("sft", "preference", "kto", "retain"):
        table.add_row(kind, str(counts[kind]["train"]), str(counts[kind]["validation"]))
    err_console.print(table)
    if counts["retain_available"] < counts["retain_wanted"]:
        err_console.print(
            f"retain: {counts['retain_available']} available of {counts['retain_wanted']} wanted "
            f"(--retain-ratio {retain_ratio:g}); add sources or lower the ratio"
        )
    if training_set.rejected:
        left = ", ".join(f"{k}: {v}" for k, v in training_set.rejected.items())
        err_console.print(f"left out: {escape(left)}")
    if result.status == "unchanged":
        err_console.print(f"{out} already holds this set (version {result.version[:12]})")
    elif result.previous is not None:
        err_console.print(f"the previous set is kept in {result.previous}")
    console.print(f"{stored.id} {result.version}", soft_wrap=True)


@align_app.command("regression")
def regression_command(
    ctx: typer.Context,
    run_ids: list[str] = RUN_IDS,
    out: Path = typer.Option(..., "--out", help="The campaign file to write.", show_default=False),
    name: str | None = typer.Option(None, "--name", help="Campaign name (default: from the run)."),
    force: bool = typer.Option(
        False, "--force", help="Replace a different file (the old one is kept beside it)."
    ),
) -> None:
    """Write a red-team campaign that replays every finding of the runs, by finding id.

    Example: safestack align regression demo --out campaigns/regression.yaml
    """
    from safestack.align import NothingToLearnError, load_runs, regression_campaign, write_campaign
    from safestack.store import Store

    st = state(ctx)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        runs = load_runs(store, run_ids)
    try:
        campaign = regression_campaign(runs, name=name)
    except NothingToLearnError as exc:
        raise _nothing_to_learn(str(exc)) from None
    status = write_campaign(campaign, out, force=force)
    probes = len(campaign["behaviours"][0]["options"]["behaviours"])
    err_console.print(f"{probes} fixed probes ({status}); run: safestack redteam run {out}")
    console.print(str(out))


@align_app.command("sets")
def sets_command(ctx: typer.Context) -> None:
    """List the stored training sets, newest first."""
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        table = Table()
        table.add_column("id", no_wrap=True)
        for column in ("runs", "policy", "sft", "retain", "created"):
            table.add_column(column)
        table.add_column("path", overflow="fold")
        for found in store.training_sets.all():
            counts = found.counts
            table.add_row(
                found.id,
                ", ".join(found.runs),
                found.policy,
                str(counts["sft"]["train"] + counts["sft"]["validation"]),
                str(counts["retain"]["train"] + counts["retain"]["validation"]),
                found.created_at.strftime("%Y-%m-%d %H:%M"),
                found.path,
            )
        console.print(table)
