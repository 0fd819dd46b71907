"""`safestack gate`: frameworks, evidence, scorecards, signed decisions, the release check, cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import GateError

if TYPE_CHECKING:
    from safestack.gate.decisions import Kind
    from safestack.gate.framework import Framework
    from safestack.gate.scorecard import Scorecard
    from safestack.store import Store

gate_app = typer.Typer(
    cls=SafestackGroup,
    help="The preparedness gate: scorecards from evidence, signed decisions, the release check.",
    no_args_is_help=True,
)
model_app = typer.Typer(
    cls=SafestackGroup, help="Model versions and their pre/post targets.", no_args_is_help=True
)
evidence_app = typer.Typer(
    cls=SafestackGroup, help="Pin evidence to a model version.", no_args_is_help=True
)
keys_app = typer.Typer(
    cls=SafestackGroup, help="Per-person Ed25519 signing keys.", no_args_is_help=True
)
gate_app.add_typer(model_app, name="model")
gate_app.add_typer(evidence_app, name="evidence")
gate_app.add_typer(keys_app, name="keys")

MODEL = typer.Argument(..., help="Model name.", show_default=False)
VERSION = typer.Option(
    None, "--version", "-v", help="Model version (default: the newest registered)."
)
FRAMEWORK = typer.Option(
    "pf-beta-2023", "--framework", "-f", help="Shipped framework id or a framework YAML file."
)
KEY = typer.Option(
    ...,
    "--key",
    help="Your private key file (from `safestack gate keys create`).",
    show_default=False,
)
AS = typer.Option(None, "--as", help="Who you are; refused unless the key is yours.")


def _store(ctx: typer.Context) -> Store:
    from safestack.store import Store

    return Store.open(state(ctx).settings.database_url())


def _framework(name: str) -> Framework:
    from safestack.gate.framework import load_framework

    return load_framework(name)


@gate_app.command("frameworks")
def frameworks_command() -> None:
    """List the shipped framework files and their sources."""
    from safestack.gate.framework import load_framework, shipped_frameworks

    table = Table()
    for column in ("id", "name", "version", "levels", "source"):
        table.add_column(column)
    for name in sorted(shipped_frameworks()):
        f = load_framework(name)
        table.add_row(name, f.name, f.version, " < ".join(f.level_names), f.source.url)
    console.print(table)


@gate_app.command("validate")
def validate_command(
    path: Path = typer.Argument(..., help="Framework YAML file.", show_default=False),
) -> None:
    """Check a framework file; errors name file:line: field.

    Example: safestack gate validate my-framework.yaml
    """
    f = _framework(str(path))
    console.print(
        f"{f.ref}: {len(f.categories)} categories, levels {' < '.join(f.level_names)}; ok"
    )


@model_app.command("add")
def model_add(
    ctx: typer.Context,
    model: str = MODEL,
    version: str = typer.Option(..., "--version", "-v", help="The version being assessed."),
    pre: str = typer.Option(
        ..., "--pre", help="Red-team target name of the raw (pre-mitigation) model."
    ),
    post: str = typer.Option(..., "--post", help="Red-team target name of the mitigated model."),
    built: str | None = typer.Option(
        None, "--built", help="When this version was built (ISO 8601; default now)."
    ),
    description: str = typer.Option("", "--description"),
) -> None:
    """Register a model version; evidence collected before it was built is stale.

    Example: safestack gate model add gemma-270m --version 1 --pre gemma-raw --post gemma-guarded
    """
    from datetime import datetime

    from safestack.gate.evidence import register_model_version

    try:
        built_at = datetime.fromisoformat(built) if built else None
    except ValueError:
        raise GateError(f"--built must be an ISO 8601 time, got {built!r}") from None
    with _store(ctx) as store:
        mv = register_model_version(
            store,
            model,
            version,
            pre_target=pre,
            post_target=post,
            description=description,
            built_at=built_at,
        )
    console.print(f"registered {mv.id}: pre={mv.pre_target}, post={mv.post_target}")


@model_app.command("list")
def model_list(ctx: typer.Context) -> None:
    """List registered model versions, newest first."""
    with _store(ctx) as store:
        table = Table()
        for column in ("model version", "pre", "post", "built"):
            table.add_column(column)
        for mv in store.gate.model_versions():
            table.add_row(mv.id, mv.pre_target, mv.post_target, f"{mv.created_at:%Y-%m-%d %H:%M}")
        console.print(table)


@evidence_app.command("add-run")
def evidence_add_run(
    ctx: typer.Context,
    model: str = MODEL,
    run_id: str = typer.Argument(..., help="Stored red-team run id.", show_default=False),
    version: str | None = VERSION,
) -> None:
    """Pin a stored red-team run's attempts on the version's pre and post targets.

    Example: safestack gate evidence add-run gemma-270m demo --version 1
    """
    from safestack.gate.evidence import get_model_version, pin_run

    with _store(ctx) as store:
        for item in pin_run(store, get_model_version(store, model, version), run_id):
            console.print(
                f"pinned {item.id}: {item.source} ({item.stage}) sha256 {item.content_hash[:12]}"
            )


@evidence_app.command("import")
def evidence_import(
    ctx: typer.Context,
    model: str = MODEL,
    path: Path = typer.Argument(
        ..., help="Inspect eval log (.json) or plain JSON result.", show_default=False
    ),
    stage: str = typer.Option(..., "--stage", help="pre or post."),
    version: str | None = VERSION,
) -> None:
    """Pin an imported evaluation result (Inspect JSON log or plain JSON).

    Example: safestack gate evidence import gemma-270m logs/autonomy.json --stage pre --version 1
    """
    from safestack.gate.evidence import get_model_version, import_result

    with _store(ctx) as store:
        item = import_result(store, get_model_version(store, model, version), path, stage)  # type: ignore[arg-type]
    console.print(f"pinned {item.id}: {item.source} ({item.stage}) sha256 {item.content_hash[:12]}")


@evidence_app.command("add-finding")
def evidence_add_finding(
    ctx: typer.Context,
    model: str = MODEL,
    category: str = typer.Option(..., "--category", help="Policy category, e.g. cbrn."),
    severity: int = typer.Option(..., "--severity", help="0-7."),
    accepted: bool = typer.Option(
        ..., "--accepted/--rejected", help="Did the reviewers accept it?"
    ),
    summary: str = typer.Option(..., "--summary"),
    author: str = typer.Option(..., "--author"),
    stage: str = typer.Option("post", "--stage", help="pre or post."),
    version: str | None = VERSION,
) -> None:
    """Record an expert finding as evidence.

    Example: safestack gate evidence add-finding m --category cbrn --severity 6 --accepted --summary "..." --author ana
    """
    from pydantic import ValidationError

    from safestack.gate.evidence import Finding, add_finding, get_model_version

    if stage not in ("pre", "post"):
        raise GateError(f"--stage must be pre or post, got {stage!r}")
    try:
        finding = Finding(
            category=category, severity=severity, accepted=accepted, summary=summary, author=author
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise GateError(f"finding {'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
    with _store(ctx) as store:
        item = add_finding(store, get_model_version(store, model, version), finding, stage)  # type: ignore[arg-type]
    console.print(f"pinned {item.id}: {item.source}")


@evidence_app.command("list")
def evidence_list(ctx: typer.Context, model: str = MODEL, version: str | None = VERSION) -> None:
    """List a model version's pinned evidence."""
    from safestack.gate.evidence import get_model_version

    with _store(ctx) as store:
        mv = get_model_version(store, model, version)
        table = Table(title=mv.id, title_justify="left")
        for column in ("id", "kind", "stage", "source", "sha256", "collected"):
            table.add_column(column)
        for e in store.gate.evidence(mv.id):
            table.add_row(
                e.id,
                e.kind,
                e.stage,
                escape(e.source),
                e.content_hash[:12],
                f"{e.collected_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)


def show_scorecard(card: Scorecard) -> None:
    table = Table(title=f"{card.model_version_id} under {card.framework}", title_justify="left")
    for column in ("category", "pre-mitigation", "post-mitigation", "evidence"):
        table.add_column(column)
    for c in card.categories:
        ids = sorted({i for s in (c.pre, c.post) for r in s.readings for i in r.evidence})
        name = c.name if c.tracked else f"{c.name} (not tracked)"
        table.add_row(escape(name), c.pre.text(), c.post.text(), ", ".join(ids) or "-")
    table.add_row(
        "[bold]overall[/]",
        card.overall_pre or "not assessed",
        card.overall_post or "not assessed",
        "",
    )
    console.print(table)
    for c in card.categories:
        for stage in ("pre", "post"):
            s = getattr(c, stage)
            if s.missing:
                console.print(f"missing evidence for {c.id} ({stage}): {', '.join(s.missing)}")
    for s in card.stale:
        console.print(f"[yellow]stale:[/] {escape(s)}")
    for name, rule in (("deploy", card.deploy), ("develop", card.develop)):
        mark = "[green]holds[/]" if rule.holds else "[red]fails[/]"
        console.print(f"{name} rule '{rule.rule}': {mark} ({escape(rule.reason)})")
    console.print(f"scorecard sha256 {card.digest()}")


@gate_app.command("assess")
def assess_command(
    ctx: typer.Context,
    model: str = MODEL,
    version: str | None = VERSION,
    framework: str = FRAMEWORK,
    as_json: bool = typer.Option(False, "--json", help="Print the scorecard as JSON."),
) -> None:
    """Build the scorecard: per category, pre/post levels, what cannot be ruled out, the rules.

    Example: safestack gate assess gemma-270m --version 1 --framework pf-beta-2023
    """
    from safestack.gate.scorecard import assess_model

    f = _framework(framework)
    with _store(ctx) as store:
        card = assess_model(store, f, model, version)
    if as_json:
        console.print_json(card.model_dump_json())
    else:
        show_scorecard(card)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    person: str = typer.Argument(..., help="Who holds the key.", show_default=False),
    role: str = typer.Option(..., "--role", help="advisory, leadership or board."),
    out: Path = typer.Option(..., "--out", help="Where to write the private key (0600)."),
) -> None:
    """Make a person's signing key; the private key goes to --out only and is never printed.

    Example: safestack gate keys create ana --role advisory --out ~/.safestack/ana.key
    """
    from safestack.gate.decisions import create_key

    with _store(ctx) as store:
        signer = create_key(store, person, role, out)
    console.print(f"key {signer.key_id} for {signer.person} ({signer.role}); private key: {out}")


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(
        False, "--json", help="Public keys as JSON (the file `verify --signers` reads)."
    ),
) -> None:
    """List registered signers and their public keys."""
    with _store(ctx) as store:
        signers = store.gate.signers()
    if as_json:
        print(json.dumps([s.model_dump(mode="json") for s in signers], indent=2))
        return
    table = Table()
    for column in ("key id", "person", "role", "created"):
        table.add_column(column)
    for s in signers:
        table.add_row(s.key_id, s.person, s.role, f"{s.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


def _split_dissent(values: list[str]) -> list[object]:
    from safestack.gate.decisions import Dissent

    out: list[object] = []
    for value in values:
        person, sep, reason = value.partition(":")
        if not sep or not person.strip() or not reason.strip():
            raise GateError(f"--dissent takes 'PERSON: REASON', got {value!r}")
        out.append(Dissent(person=person.strip(), reason=reason.strip()))
    return out


@gate_app.command("review")
def review_command(
    ctx: typer.Context,
    model: str = MODEL,
    version: str | None = VERSION,
    framework: str = FRAMEWORK,
    key: Path = KEY,
    recommend: str = typer.Option(
        ..., "--recommend", help="deploy, deploy-with-conditions, do-not-deploy, more-evaluation."
    ),
    reason: str = typer.Option(..., "--reason"),
    condition: list[str] = typer.Option([], "--condition", help="A condition (repeatable)."),
    dissent: list[str] = typer.Option([], "--dissent", help="'PERSON: REASON' (repeatable)."),
    acting_as: str | None = AS,
) -> None:
    """The advisory group's signed recommendation on the current scorecard.

    Example: safestack gate review gemma-270m -v 1 --key ana.key --recommend deploy --reason "post Low"
    """
    _record(
        ctx,
        "review",
        model,
        version,
        framework,
        key,
        reason,
        acting_as,
        recommendation=recommend,
        conditions=condition,
        dissent=_split_dissent(dissent),
    )


@gate_app.command("decide")
def decide_command(
    ctx: typer.Context,
    model: str = MODEL,
    version: str | None = VERSION,
    framework: str = FRAMEWORK,
    key: Path = KEY,
    outcome: str = typer.Option(
        ..., "--outcome", help="deploy, deploy-with-conditions, do-not-deploy, develop-only."
    ),
    reason: str = typer.Option(..., "--reason"),
    condition: list[str] = typer.Option([], "--condition", help="A condition (repeatable)."),
    acting_as: str | None = AS,
) -> None:
    """Leadership's signed decision on the current (reviewed) scorecard.

    Example: safestack gate decide gemma-270m -v 1 --key lee.key --outcome deploy --reason "SAG concurs"
    """
    _record(
        ctx,
        "decision",
        model,
        version,
        framework,
        key,
        reason,
        acting_as,
        outcome=outcome,
        conditions=condition,
    )


@gate_app.command("notify")
def notify_command(
    ctx: typer.Context,
    decision: int = typer.Argument(..., help="The decision's entry number.", show_default=False),
    key: Path = KEY,
    reason: str = typer.Option("Board notified.", "--reason"),
    acting_as: str | None = AS,
) -> None:
    """The board's signed acknowledgement of a decision."""
    _record(ctx, "board-notification", None, None, None, key, reason, acting_as, refers_to=decision)


@gate_app.command("reverse")
def reverse_command(
    ctx: typer.Context,
    decision: int = typer.Argument(..., help="The decision's entry number.", show_default=False),
    key: Path = KEY,
    reason: str = typer.Option(..., "--reason"),
    acting_as: str | None = AS,
) -> None:
    """The board's signed reversal of a decision: `gate check` fails for it from now on."""
    _record(ctx, "reversal", None, None, None, key, reason, acting_as, refers_to=decision)


def _record(
    ctx: typer.Context,
    kind: Kind,
    model: str | None,
    version: str | None,
    framework: str | None,
    key: Path,
    reason: str,
    acting_as: str | None,
    **extra: object,
) -> None:
    from pydantic import ValidationError

    from safestack.gate.decisions import record_entry
    from safestack.gate.scorecard import assess_model

    with _store(ctx) as store:
        scorecard = None
        if model is not None and framework is not None:
            scorecard = assess_model(store, _framework(framework), model, version)
        try:
            entry = record_entry(
                store,
                key,
                kind=kind,
                scorecard=scorecard,
                reasons=reason,
                acting_as=acting_as,
                **extra,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            problem = exc.errors()[0]
            allowed = problem.get("ctx", {}).get("expected", "")
            raise GateError(
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
                + (f" ({allowed})" if allowed and allowed not in problem["msg"] else "")
            ) from None
    console.print(
        f"recorded {entry.label()}, sha256 {entry.entry_hash[:12]}, scorecard {entry.scorecard_hash[:12]}"
    )


@gate_app.command("sign")
def sign_command(
    entry_file: Path = typer.Argument(
        ..., help="The entry the console prepared (entry.json).", show_default=False
    ),
    key: Path = KEY,
) -> None:
    """Sign an entry the console prepared, on your own machine: shows what you sign, prints the
    signature to paste back into the console. Needs no store; your key never leaves this machine.

    Example: safestack gate sign entry.json --key ana.key
    """
    from pydantic import ValidationError

    from safestack.gate.decisions import LogEntry, key_id, load_private_key, sign_entry

    try:
        entry = LogEntry.model_validate_json(entry_file.read_text("utf-8"))
    except FileNotFoundError:
        raise GateError(f"{entry_file}: file not found") from None
    except ValidationError as exc:
        first = str(exc).splitlines()[0]
        raise GateError(f"{entry_file}: not a prepared decision log entry ({first})") from None
    private = load_private_key(key)
    if key_id(private.public_key()) != entry.key_id:
        raise GateError(
            f"{key}: this key is not {entry.author}'s (key {entry.key_id}); nobody signs for "
            "someone else"
        )
    signature = sign_entry(private, entry)
    what = entry.recommendation or entry.outcome or f"re entry {entry.refers_to}"
    err_console.print(
        f"signing {escape(entry.label())}: {escape(str(what))} on {escape(entry.model)}@"
        f"{escape(entry.version)}, scorecard {entry.scorecard_hash[:12]}, reasons: "
        f"{escape(entry.reasons)}",
        highlight=False,
    )
    typer.echo(signature)


@gate_app.command("log")
def log_command(ctx: typer.Context) -> None:
    """Show the decision log."""
    from safestack.gate.decisions import read_log

    with _store(ctx) as store:
        entries = read_log(store)
    table = Table()
    for column in ("#", "kind", "model version", "framework", "author", "role", "what", "time"):
        table.add_column(column)
    for e in entries:
        what = e.recommendation or e.outcome or (f"re #{e.refers_to}" if e.refers_to else "")
        table.add_row(
            str(e.seq),
            e.kind,
            f"{e.model}@{e.version}",
            e.framework,
            e.author,
            e.role,
            what,
            f"{e.time:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@gate_app.command("export")
def export_command(
    ctx: typer.Context, out: Path = typer.Option(..., "--out", help="JSON Lines file to write.")
) -> None:
    """Export the decision log as JSON Lines (and the signers' public keys beside it).

    Example: safestack gate export --out gate-log.jsonl   (also writes gate-log.signers.json)
    """
    from safestack.gate.decisions import export_lines, read_log

    with _store(ctx) as store:
        entries = read_log(store)
        signers = store.gate.signers()
    out.write_text(export_lines(entries), "utf-8")
    keys = out.with_suffix(".signers.json")
    keys.write_text(json.dumps([s.model_dump(mode="json") for s in signers], indent=2), "utf-8")
    console.print(f"{len(entries)} entries -> {out}; public keys -> {keys}")


@gate_app.command("verify")
def verify_command(
    ctx: typer.Context,
    log: Path | None = typer.Option(
        None, "--log", help="An exported JSON Lines log (default: the store's)."
    ),
    signers: Path | None = typer.Option(
        None, "--signers", help="Public keys JSON (default: the store's)."
    ),
) -> None:
    """Re-check the chain and every signature; names the first broken entry (exit 1).

    Example: safestack gate verify --log gate-log.jsonl --signers gate-log.signers.json
    """
    from safestack.gate.decisions import parse_log_lines, parse_signers, read_log, verify_entries

    def read(path: Path) -> str:
        try:
            return path.read_text("utf-8")
        except FileNotFoundError:
            raise GateError(f"{path}: file not found") from None

    if log is not None and signers is not None:
        entries = parse_log_lines(read(log).splitlines(), str(log))
        keys = parse_signers(read(signers), str(signers))
    else:
        with _store(ctx) as store:
            entries = parse_log_lines(read(log).splitlines(), str(log)) if log else read_log(store)
            keys = parse_signers(read(signers), str(signers)) if signers else store.gate.signers()
    result = verify_entries(entries, keys)
    if not result.ok:
        err_console.print(f"[red]broken:[/] {escape(result.problem or '')}")
        raise typer.Exit(1)
    console.print(f"{result.entries} entries: chain and signatures verify")


@gate_app.command("check")
def check_command(
    ctx: typer.Context,
    model: str = MODEL,
    version: str | None = VERSION,
    framework: str = FRAMEWORK,
) -> None:
    """Exit 0 only if an unreversed decision allows deploying exactly this version (for CI).

    Example: safestack gate check gemma-270m --version 1 --framework pf-beta-2023
    """
    from safestack.gate.check import check_release

    f = _framework(framework)
    with _store(ctx) as store:
        result = check_release(store, f, model, version)
    for reason in result.reasons:
        (console if result.passed else err_console).print(escape(reason))
    if not result.passed:
        err_console.print(
            f"[red]gate check failed[/] for {model}@{result.version or '?'} under {f.ref}"
        )
        raise typer.Exit(1)
    console.print(f"[green]gate check passed[/] for {model}@{result.version} under {f.ref}")


@gate_app.command("card")
def card_command(
    ctx: typer.Context,
    model: str = MODEL,
    version: str | None = VERSION,
    framework: str = FRAMEWORK,
    out: Path = typer.Option(Path("system-card"), "--out", help="Output directory."),
) -> None:
    """Write the system card (HTML, Markdown with model-index metadata, CycloneDX ML-BOM).

    Example: safestack gate card gemma-270m --version 1 --out cards/gemma
    """
    from safestack.gate.card import write_card

    with _store(ctx) as store:
        files = write_card(store, _framework(framework), model, version, out)
    for path in files.paths():
        console.print(str(path))
