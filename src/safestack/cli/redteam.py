"""`safestack redteam`: plan and run campaigns, rescore stored attempts, and write reports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import SafestackError

if TYPE_CHECKING:
    from safestack.redteam.plan import Work
    from safestack.redteam.runner import Runner
    from safestack.store import Store

redteam_app = typer.Typer(
    cls=SafestackGroup,
    help="Red-team models: campaigns of attacks × converters × scorers × targets, with reports.",
    no_args_is_help=True,
)

CAMPAIGN = typer.Argument(..., help="The campaign YAML file.", show_default=False)
RUN_ID = typer.Option(None, "--run-id", help="Store under this run id (default: campaign name).")
POLICY = typer.Option(None, "--policy", help="Policy file for the scorers (default: settings).")


def _register_stage_plugins() -> None:
    """Register the plugins other stages add to the red-team axes: the guard's `kind: guarded`
    target. The CLI sits above both stages, so it is the one place that may import both."""
    import safestack.guard.target  # noqa: F401


def _runner(
    ctx: typer.Context, campaign_path: Path, run_id: str | None, force: bool, policy: Path | None
) -> tuple[Runner, Store]:
    from safestack.redteam.campaign import load_campaign
    from safestack.redteam.runner import Runner
    from safestack.store import Store

    st = state(ctx)
    _register_stage_plugins()
    campaign = load_campaign(campaign_path)
    store = Store.open(st.settings.database_url())
    runner = Runner(
        campaign,
        store,
        st.policy(policy),
        run_id=run_id,
        force=force,
        home=st.settings.home,
        models=st.models,
    )
    return runner, store


def _show_plan(runner: Runner, pending: list[Work], done: int) -> None:
    plan = runner.plan
    table = Table(
        title=f"campaign {plan.campaign.name} → run {runner.run_id}", title_justify="left"
    )
    table.add_column("attack")
    table.add_column("probes × targets × samples", justify="right")
    for label, count in plan.by_attack().items():
        table.add_row(escape(label), f"{count:,}")
    err_console.print(table)
    for added in plan.added:
        err_console.print(escape(added.message()))
    for skipped in plan.skipped:
        err_console.print(
            f"skipped {skipped.attack} on {skipped.target} ({skipped.probes} probes): {skipped.reason}"
        )
    budget = plan.campaign.budget
    for warning in runner.replay.warnings():
        err_console.print(f"warning: {escape(warning)}")
    recovered = len(runner.replay.attempts)
    err_console.print(
        f"{len(plan.work):,} attempts planned, {done - recovered:,} already stored, "
        + (
            f"{recovered:,} answered before the last run stopped (kept in its journal: to be "
            "scored and stored, not asked again), "
            if recovered
            else ""
        )
        + f"{len(pending):,} to run; "
        f"estimate ≈ {plan.expected_calls(pending):,} requests and ≈ {plan.expected_tokens(pending):,} "
        f"tokens (budget: {budget.max_requests or 'no limit'} requests, "
        f"{budget.max_tokens or 'no limit'} tokens)"
    )
    for s in plan.behaviour_sets:
        err_console.print(
            f"behaviours {s.source}@{s.version}: {len(s.behaviours)} (sha256 {s.sha256[:12]}, {s.licence})"
        )


@redteam_app.command("plan")
def plan_command(
    ctx: typer.Context,
    campaign_path: Path = CAMPAIGN,
    run_id: str | None = RUN_ID,
    policy: Path | None = POLICY,
) -> None:
    """Check a campaign and show what a run would do, without calling any model.

    Example: safestack redteam plan examples/campaigns/demo.yaml
    """
    runner, store = _runner(ctx, campaign_path, run_id, False, policy)
    with store:
        done = store.runs.attempt_keys(runner.run_id) if store.runs.get(runner.run_id) else set()
        runner.replay = runner.read_journal(done)
        answered = done | runner.replay.keys()
        todo = [w for w in runner.plan.work if w.key not in answered]
        _show_plan(runner, todo, len(runner.plan.work) - len(todo))


@redteam_app.command("run")
def run_command(
    ctx: typer.Context,
    campaign_path: Path = CAMPAIGN,
    run_id: str | None = RUN_ID,
    force: bool = typer.Option(
        False, "--force", help="Run even if the stored run was made from a different campaign."
    ),
    policy: Path | None = POLICY,
) -> None:
    """Run a campaign; re-running the same command resumes where it stopped.

    Example: safestack redteam run examples/campaigns/demo.yaml
    """
    runner, store = _runner(ctx, campaign_path, run_id, force, policy)
    with store:
        todo, done = runner.pending()
        _show_plan(runner, todo, done)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        with progress:
            total = len(todo) + len(runner.replay.attempts)
            task = progress.add_task(runner.run_id, total=total, errors=0)
            errors = 0

            def advance(attempt: object) -> None:
                nonlocal errors
                from safestack.records import Attempt, AttemptStatus

                assert isinstance(attempt, Attempt)
                errors += attempt.status == AttemptStatus.ERROR
                progress.update(task, advance=1, errors=errors)

            try:
                result = asyncio.run(runner.run(todo, advance))
            except KeyboardInterrupt:
                stored = len(store.runs.attempt_keys(runner.run_id))
                err_console.print(
                    f"interrupted: {stored} attempts are stored, answered ones not yet stored are "
                    "in the run's journal; run the same command to resume"
                )
                raise typer.Exit(130) from None
    spend = result.spend
    err_console.print(
        f"run {result.run_id}: {result.completed} completed, {result.errors} errors"
        + (f" ({result.recovered} from the journal)" if result.recovered else "")
        + (f", {result.not_run} not run ({result.stopped})" if result.not_run else "")
        + (f"; {spend.requests} requests, {spend.tokens} tokens" if spend else "")
    )
    console.print(f"report: safestack redteam report {result.run_id} --out reports/{result.run_id}")


@redteam_app.command("rescore")
def rescore_command(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Stored run ids.", show_default=False),
    campaign_path: Path | None = typer.Option(
        None, "--campaign", help="Take the scorers from this campaign instead of the stored one."
    ),
    policy: Path | None = POLICY,
) -> None:
    """Re-judge stored attempts with the campaign's scorers, without calling any target.

    Example: safestack redteam rescore demo --campaign campaigns/stricter-judges.yaml
    """
    from safestack.redteam.campaign import load_campaign, parse_campaign
    from safestack.redteam.runner import build_model
    from safestack.redteam.scoring import build_scorers, rescore
    from safestack.store import Store

    st = state(ctx)
    _register_stage_plugins()
    with Store.open(st.settings.database_url()) as store:
        for run_id in run_ids:
            run = store.runs.get(run_id)
            if run is None:
                raise SafestackError(f"no stored run '{run_id}'; see `safestack redteam runs`")
            campaign = (
                load_campaign(campaign_path)
                if campaign_path
                else parse_campaign(run.campaign, f"run {run_id}")
            )
            judge = (
                build_model(campaign.judge_model, "judge_model") if campaign.judge_model else None
            )
            active = build_scorers(campaign, st.policy(policy), judge, st.models)
            stored = store.runs.attempts(run_id)
            rescored = asyncio.run(rescore(stored, active))
            store.runs.replace_attempts(rescored)
            names = ", ".join(s.ref for s in active)
            err_console.print(f"run {run_id}: {len(rescored)} attempts rescored with {names}")


@redteam_app.command("report")
def report_command(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Stored run ids.", show_default=False),
    out: Path = typer.Option(Path("redteam-report"), "--out", help="Output directory."),
    title: str | None = typer.Option(None, "--title", help="Report title."),
) -> None:
    """Write report.html (plots), metrics.json and metrics.csv for one or more runs.

    Example: safestack redteam report demo-raw demo-guarded --out reports/demo
    """
    from safestack.redteam.report import write_report
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        attempts = []
        for run_id in run_ids:
            if store.runs.get(run_id) is None:
                raise SafestackError(f"no stored run '{run_id}'; see `safestack redteam runs`")
            attempts.extend(store.runs.attempts(run_id))
    files = write_report(attempts, out, title=title or f"Red-team report: {', '.join(run_ids)}")
    err_console.print(f"{len(attempts)} attempts from {len(run_ids)} run(s)")
    for path in (files.html, files.json, files.csv):
        console.print(str(path))


@redteam_app.command("runs")
def runs_command(ctx: typer.Context) -> None:
    """List stored red-team runs, newest first."""
    from safestack.store import Store

    st = state(ctx)
    with Store.open(st.settings.database_url()) as store:
        table = Table()
        for column in ("run", "campaign", "hash", "attempts", "updated"):
            table.add_column(column)
        for run in store.runs.all():
            table.add_row(
                run.id,
                run.name,
                run.campaign_hash[:12],
                str(len(store.runs.attempt_keys(run.id))),
                run.updated_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)
