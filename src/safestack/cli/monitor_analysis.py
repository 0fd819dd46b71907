"""`safestack monitor` analysis commands: signals, rules check|evaluate, run, cluster, report,
campaign, simulate and export (the enforcement commands live in `cli/monitor.py`).

`register(app)` adds them to the `monitor` group. Every command reads the audit log of the
settings' database (SAFESTACK_DB_URL) or, with `--parquet`, an export of it (`monitor export`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import InputError

if TYPE_CHECKING:
    from safestack.monitor.analysis import Analysis
    from safestack.monitor.auditlog import Period
    from safestack.monitor.clusters import ClusterOptions
    from safestack.monitor.rules import RuleFile
    from safestack.policy import Policy

PARQUET = typer.Option(
    None,
    "--parquet",
    help="Read a Parquet export of the audit log instead of the database; repeat it for a log "
    "exported in shards (one per day, say).",
)
EXECUTOR = typer.Option(
    "local",
    "--executor",
    help="Where the shards of repeated --parquet are read: 'local' or 'ray' (one task per shard).",
)
SINCE = typer.Option(None, "--since", help="Only events at or after this ISO time (UTC if naive).")
UNTIL = typer.Option(None, "--until", help="Only events before this ISO time (UTC if naive).")
POLICY = typer.Option(None, "--policy", help="Policy file (default: settings).")
RULES = typer.Argument(
    None, help="Rules YAML (default: settings' monitor_rules, else the example)."
)
MIN_ACCOUNTS = typer.Option(
    None, "--min-accounts", help="k: hide clusters of fewer accounts (default: settings)."
)
SCRUB = typer.Option(
    "presidio",
    "--scrub",
    help="'presidio' (patterns + spaCy NER) or 'patterns' (faster, no names).",
)
MAX_TEXTS = typer.Option(10_000, "--max-texts", help="Requests clustered at most.")
MERGE = typer.Option(
    0.1,
    "--merge-similarity",
    help="Clusters this similar (c-TF-IDF cosine) are one theme; 1: none.",
)


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the `monitor` group."""
    app.command("signals")(signals_command)
    rules_app = typer.Typer(
        cls=SafestackGroup, help="Check and evaluate monitoring rules.", no_args_is_help=True
    )
    rules_app.command("check")(rules_check)
    rules_app.command("evaluate")(rules_evaluate)
    app.add_typer(rules_app, name="rules")
    app.command("run")(run_command)
    app.command("cluster")(cluster_command)
    app.command("report")(report_command)
    app.command("campaign")(campaign_command)
    app.command("simulate")(simulate_command)
    app.command("export")(export_command)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r}: not an ISO time such as 2026-12-01T00:00") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _period(since: str | None, until: str | None) -> Period:
    from safestack.monitor.auditlog import Period

    return Period(_time(since, "--since"), _time(until, "--until"))


def _duration(value: str, option: str) -> timedelta:
    from safestack.monitor.rules import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


def _analyse(
    ctx: typer.Context,
    parquet: list[Path] | None,
    period: Period,
    policy: Policy,
    cluster: ClusterOptions | None = None,
    executor: str = "local",
) -> Analysis:
    from safestack.monitor.analysis import Analysis, analyse
    from safestack.store import Database

    settings = state(ctx).settings
    if executor not in ("local", "ray"):
        raise InputError(f"--executor {executor}: use 'local' or 'ray'")
    if parquet and (len(parquet) > 1 or executor == "ray"):
        if cluster is not None:
            raise InputError(
                "clustering reads one source: give one --parquet export (or the database); "
                "shards and --executor serve signals, rules evaluate and run"
            )
        from safestack.monitor.shards import analyse_shards

        analysis = Analysis(
            analyse_shards(
                parquet, policy, period, executor="ray" if executor == "ray" else "local"
            ),
            None,
        )
    elif executor == "ray":
        raise InputError(
            "--executor ray reads Parquet shards: export them with monitor export and pass --parquet"
        )
    elif parquet:
        analysis = analyse(parquet[0], policy, period, cluster=cluster)
    else:
        with Database.open(settings.database_url(), migrate=False) as database:
            analysis = analyse(database, policy, period, cluster=cluster)
    stats = analysis.activity.stats
    if stats.skipped or stats.repaired or stats.missing_columns:
        err_console.print(
            f"[yellow]audit log:[/] {escape(json.dumps(stats.as_dict()))}", highlight=False
        )
    return analysis


def _rules(ctx: typer.Context, path: Path | None) -> RuleFile:
    from safestack.monitor.rules import example_rules_path, load_rules

    chosen = path or state(ctx).settings.monitor_rules or example_rules_path()
    return load_rules(chosen)


def signals_command(
    ctx: typer.Context,
    window: str = typer.Option("24h", "--window", help="Sliding window: 30m, 6h, 7d."),
    at: str | None = typer.Option(None, "--at", help="Window end (default: the last event)."),
    top: int = typer.Option(20, "--top", help="Accounts shown, highest flag_rate_lift first."),
    account: str | None = typer.Option(None, "--account", help="Only this account."),
    as_json: bool = typer.Option(False, "--json", help="All accounts as JSON lines."),
    parquet: list[Path] | None = PARQUET,
    executor: str = EXECUTOR,
    policy_path: Path | None = POLICY,
) -> None:
    """Per-account signals over a window ending at --at (default: the last event).

    Accounts are `key:<key_id>` and `user:<key_id>:<end_user>`. Signals: docs/monitor.md.

    Example: safestack monitor signals --window 24h --top 10
    """
    import polars as pl

    span = _duration(window, "--window")
    analysis = _analyse(
        ctx, parquet, _period(None, None), state(ctx).policy(policy_path), executor=executor
    )
    activity = analysis.activity
    end = _time(at, "--at") or activity.last
    if end is None:
        console.print("the audit log holds no events")
        return
    table = activity.signals(end, span).sort("flag_rate_lift", "requests", descending=True)
    if account is not None:
        table = table.filter(pl.col("account") == account)
    if as_json:
        for row in table.iter_rows(named=True):
            typer.echo(json.dumps(row, default=str))
        return
    shown = Table(title=f"signals over {window} ending {end:%Y-%m-%d %H:%M} UTC")
    columns = [
        "account",
        "requests",
        "flag_rate",
        "flag_rate_low",
        "flag_rate_lift",
        "high_severity",
        "attacks",
        "burst",
        "novel_categories",
    ]
    for column in columns:
        shown.add_column(column, justify="left" if column == "account" else "right")
    for row in table.head(top).iter_rows(named=True):
        shown.add_row(*(_cell(row[c]) for c in columns))
    console.print(shown)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return escape(str(value))


def rules_check(ctx: typer.Context, rules_path: Path | None = RULES) -> None:
    """Validate a rules file; errors name the file, line and field.

    Example: safestack monitor rules check rules.yaml
    """
    rules = _rules(ctx, rules_path)
    for rule in rules.rules:
        console.print(
            f"{escape(rule.name)}: {rule.action} ({rule.mode}) over {rule.window} "
            f"for {rule.accounts} accounts when {escape(rule.describe())}",
            highlight=False,
        )
    console.print(f"{len(rules.rules)} rule(s) valid")


def rules_evaluate(
    ctx: typer.Context,
    rules_path: Path | None = RULES,
    labels: Path = typer.Option(
        ..., "--labels", help="account,label CSV (abusive|benign) or YAML."
    ),
    step: str = typer.Option("1h", "--step", help="Evaluate the rules every this often."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    parquet: list[Path] | None = PARQUET,
    executor: str = EXECUTOR,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    policy_path: Path | None = POLICY,
) -> None:
    """Precision and recall of each rule against labelled history.

    The rules are evaluated every --step over the log; an account counts as flagged by a rule
    when the rule fired for it at any step. `*` is all rules together.

    Example: safestack monitor rules evaluate rules.yaml --labels labels.csv
    """
    from safestack.monitor.rules import read_labels, score_rules, sweep

    rules = _rules(ctx, rules_path)
    known = read_labels(labels)
    analysis = _analyse(
        ctx, parquet, _period(since, until), state(ctx).policy(policy_path), executor=executor
    )
    firings = sweep(rules.rules, analysis.activity, _duration(step, "--step"))
    scores = score_rules(rules.rules, firings, known)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in scores], indent=2))
        return
    table = Table(title=f"rules against {len(known)} labelled accounts")
    for column in ("rule", "accounts", "TP", "FP", "FN", "unlabelled", "precision", "recall"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for s in scores:
        table.add_row(
            escape(s.rule),
            str(s.fired_accounts),
            str(s.true_positives),
            str(s.false_positives),
            str(s.false_negatives),
            str(s.unlabelled),
            "-" if s.precision is None else f"{s.precision:.3f}",
            "-" if s.recall is None else f"{s.recall:.3f}",
        )
    console.print(table)


def run_command(
    ctx: typer.Context,
    rules_path: Path | None = RULES,
    at: str | None = typer.Option(None, "--at", help="Evaluate at this time (default: now)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the decisions; hand nothing to enforcement."
    ),
    parquet: list[Path] | None = PARQUET,
    executor: str = EXECUTOR,
    policy_path: Path | None = POLICY,
) -> None:
    """Evaluate the rules now and hand each firing to enforcement (shadow rules: logged only).

    Example: safestack monitor run rules.yaml
    """
    from safestack.monitor.rules import act, fire

    rules = _rules(ctx, rules_path)
    end = _time(at, "--at") or datetime.now(UTC)
    longest = max(r.span for r in rules.rules)
    # Novelty looks back before the window: read a week more than the longest window.
    period = _period((end - longest - timedelta(days=7)).isoformat(), end.isoformat())
    analysis = _analyse(ctx, parquet, period, state(ctx).policy(policy_path), executor=executor)
    firings = fire(rules.rules, analysis.activity, end)
    if dry_run or not firings:
        for firing in firings:
            mode = "shadow" if firing.shadow else "enforce"
            console.print(
                f"would {firing.action} {escape(firing.account)} (rule {escape(firing.rule)}, {mode})",
                highlight=False,
            )
        console.print(f"{len(firings)} firing(s) at {end:%Y-%m-%d %H:%M} UTC")
        return
    from safestack.monitor.enforce import enforcer_for
    from safestack.store import Store

    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        enforcer = enforcer_for(store, settings)
        try:
            decisions = act(rules, firings, enforcer.decide)
        finally:
            enforcer.close()  # queued alerts get their chance to leave
    console.print(f"{len(decisions)} decision(s) recorded at {end:%Y-%m-%d %H:%M} UTC")


def _cluster_options(
    ctx: typer.Context, min_accounts: int | None, scrub: str, max_texts: int, merge: float
) -> ClusterOptions:
    from pydantic import ValidationError

    from safestack.monitor.clusters import ClusterOptions

    k = min_accounts if min_accounts is not None else state(ctx).settings.monitor_min_accounts
    try:
        return ClusterOptions(
            min_accounts=k, scrub=scrub, max_texts=max_texts, merge_similarity=merge
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InputError(f"--{problem['loc'][0]}: {problem['msg']}".replace("_", "-")) from None


def cluster_command(
    ctx: typer.Context,
    min_accounts: int | None = MIN_ACCOUNTS,
    scrub: str = SCRUB,
    max_texts: int = MAX_TEXTS,
    merge: float = MERGE,
    out: Path | None = typer.Option(None, "--out", help="Also write the clusters as JSON."),
    parquet: list[Path] | None = PARQUET,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    policy_path: Path | None = POLICY,
) -> None:
    """Group flagged and sampled requests into themes; show those spanning k+ accounts.

    Example: safestack monitor cluster --min-accounts 10 --out clusters.json
    """
    from safestack.monitor.clusters import cluster_requests

    options = _cluster_options(ctx, min_accounts, scrub, max_texts, merge)
    analysis = _analyse(
        ctx, parquet, _period(since, until), state(ctx).policy(policy_path), options
    )
    assert analysis.requests is not None
    clustering = cluster_requests(analysis.requests, state(ctx).models, options)
    for cluster in clustering.clusters:
        console.print(f"[bold]{cluster.id}[/] {escape(cluster.label)}", highlight=False)
        console.print(f"  {escape(cluster.summary)}", highlight=False)
    console.print(
        f"{len(clustering.clusters)} cluster(s) shown, {clustering.hidden_clusters} hidden "
        f"(< {options.min_accounts} accounts), {clustering.noise} of {clustering.texts} requests "
        f"in none; source: {clustering.note}",
        highlight=False,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(clustering.model_dump_json(indent=2), "utf-8")


def report_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Output directory.", show_default=False),
    rules_path: Path | None = typer.Option(None, "--rules", help="Rules YAML (default: settings)."),
    step: str = typer.Option("1h", "--step", help="Rules are evaluated every this often."),
    min_accounts: int | None = MIN_ACCOUNTS,
    scrub: str = SCRUB,
    max_texts: int = MAX_TEXTS,
    merge: float = MERGE,
    parquet: list[Path] | None = PARQUET,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    policy_path: Path | None = POLICY,
) -> None:
    """Write dashboard.html (offline), threat-report.json/.md and clusters.json into --out.

    Example: safestack monitor report --out monitor-report
    """
    from safestack.monitor.clusters import cluster_requests
    from safestack.monitor.report import threat_report, write_dashboard, write_threat_report
    from safestack.monitor.rules import sweep

    rules = _rules(ctx, rules_path)
    options = _cluster_options(ctx, min_accounts, scrub, max_texts, merge)
    analysis = _analyse(
        ctx, parquet, _period(since, until), state(ctx).policy(policy_path), options
    )
    assert analysis.requests is not None
    firings = sweep(rules.rules, analysis.activity, _duration(step, "--step"))
    clustering = cluster_requests(analysis.requests, state(ctx).models, options)
    dashboard = write_dashboard(analysis.activity, clustering, firings, out)
    json_path, md_path = write_threat_report(
        threat_report(analysis.activity, clustering, firings), out
    )
    (out / "clusters.json").write_text(clustering.model_dump_json(indent=2), "utf-8")
    console.print(f"wrote {dashboard}, {json_path}, {md_path}, {out / 'clusters.json'}")


def campaign_command(
    ctx: typer.Context,
    cluster_id: str = typer.Argument(..., help="A cluster id from clusters.json (e.g. c3)."),
    clusters: Path = typer.Option(..., "--clusters", help="clusters.json from `monitor report`."),
    out: Path = typer.Option(..., "--out", help="Campaign YAML to write.", show_default=False),
    target_kind: str = typer.Option("gguf", "--target-kind", help="The target's model kind."),
    policy_path: Path | None = POLICY,
) -> None:
    """Export a cluster as a red-team campaign: its facets become `fixed` behaviours.

    Example: safestack monitor campaign c3 --clusters report/clusters.json --out c3.yaml
    """
    import yaml
    from pydantic import ValidationError

    from safestack.monitor.clusters import Clustering
    from safestack.monitor.report import cluster_campaign
    from safestack.redteam.campaign import parse_campaign

    try:
        clustering = Clustering.model_validate_json(clusters.read_text("utf-8"))
    except (OSError, ValidationError) as exc:
        raise InputError(
            f"{clusters}: not a clusters.json written by monitor report ({exc})"
        ) from None
    found = next((c for c in clustering.clusters if c.id == cluster_id), None)
    if found is None:
        known = ", ".join(c.id for c in clustering.clusters) or "none"
        raise InputError(f"{clusters}: no cluster '{cluster_id}'; known: {known}")
    policy = state(ctx).policy(policy_path)
    categories = [*policy.content_categories(), *policy.attack_categories()]
    campaign = cluster_campaign(found, {"name": "target", "kind": target_kind}, categories)
    parse_campaign(campaign, f"the campaign of cluster {cluster_id}")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Red-team campaign written by `safestack monitor campaign {cluster_id}`: behaviours\n"
        "# built from the cluster's facets. Run it with `safestack redteam run THIS_FILE`.\n"
    )
    out.write_text(header + yaml.safe_dump(campaign, sort_keys=False, allow_unicode=True), "utf-8")
    console.print(
        f"wrote {out} ({len(campaign['behaviours'][0]['options']['behaviours'])} behaviours)"
    )


def simulate_command(
    ctx: typer.Context,
    labels: Path = typer.Option(..., "--labels", help="Write the truth here (account,label CSV)."),
    benign: int = typer.Option(3000, "--benign", help="Benign accounts."),
    campaign: int = typer.Option(60, "--campaign", help="Accounts in the coordinated campaign."),
    abusers: int = typer.Option(5, "--abusers", help="Single abusers."),
    days: float = typer.Option(3.0, "--days", help="Days of traffic, ending at --end."),
    end: str | None = typer.Option(None, "--end", help="The last moment (default: now)."),
    content: bool = typer.Option(True, "--content/--no-content", help="Keep request text."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same log."),
    add_end_user: bool = typer.Option(
        False,
        "--add-end-user-column",
        help="On a schema without audit_events.end_user (before migration 0011), add it, so end "
        "users stay apart; only for a scratch database (the migration would then find it).",
    ),
    policy_path: Path | None = POLICY,
) -> None:
    """Write a simulated audit log (benign, noisy-but-benign, abusers, a campaign) into the
    database, and the truth as labels.

    Example: safestack monitor simulate --labels labels.csv --benign 500
    """
    from safestack.monitor.auditlog import audit_columns
    from safestack.monitor.simulate import Simulation, add_end_user_column, simulate, write_events
    from safestack.store import Store

    spec = Simulation(
        benign=benign,
        campaign=campaign,
        abusers=abusers,
        days=days,
        content=content,
        seed=seed,
        end=_time(end, "--end") or datetime.now(UTC),
    )
    events, truth = simulate(spec, state(ctx).policy(policy_path))
    with Store.open(state(ctx).settings.database_url()) as store:
        if add_end_user:
            add_end_user_column(store)
        elif "end_user" not in audit_columns(store):
            err_console.print(
                "[yellow]note:[/] this schema has no audit_events.end_user: end users are written "
                "as their key's traffic (see --add-end-user-column)",
                highlight=False,
            )
        written = write_events(store, events)
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(truth.labels_csv(), "utf-8")
    console.print(
        f"wrote {written} audit events for {len(truth.populations)} accounts; labels: {labels}"
    )


def export_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Parquet file to write.", show_default=False),
) -> None:
    """Export the audit log's monitoring columns to Parquet (for --parquet, or another machine).

    Example: safestack monitor export --out audit.parquet
    """
    from safestack.monitor.auditlog import export_parquet
    from safestack.store import Database

    with Database.open(state(ctx).settings.database_url(), migrate=False) as database:
        rows = export_parquet(database, out)
    console.print(f"wrote {rows} events to {out}")
