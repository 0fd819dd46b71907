"""`safestack media`: hash images, match them against the hash banks, import and list banks.

Needs the media extra (pip install 'safestack[media]'); the modules load only when a command runs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, err_console, state
from safestack.errors import MediaError, SafestackError
from safestack.store import Store

if TYPE_CHECKING:
    from safestack.media import ImageLimits

media_app = typer.Typer(
    cls=SafestackGroup,
    help="Images: PDQ/MD5/SHA-256 hashes and matching against banks of known material.",
    no_args_is_help=True,
)
bank_app = typer.Typer(
    cls=SafestackGroup,
    help="Hash banks: import hash lists, list what is loaded.",
    no_args_is_help=True,
)
media_app.add_typer(bank_app, name="bank")
# Problems printed one a line after an import; the rest are counted.
SHOWN_PROBLEMS = 20


class FormatName(StrEnum):
    HMA_CSV = "hma-csv"
    JSON = "json"
    PLAIN = "plain"


class KindName(StrEnum):
    PDQ = "pdq"
    SHA256 = "sha256"


def _require_media() -> None:
    try:
        import pdqhash  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as exc:
        raise SafestackError(
            f"`safestack media` needs the media extra ({exc.name} is missing): "
            "pip install 'safestack[media]'"
        ) from None


def _limits(ctx: typer.Context) -> ImageLimits:
    from safestack.media import ImageLimits

    settings = state(ctx).settings
    return ImageLimits(max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels)


def _read(path: Path, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise MediaError(
                f"{path}: {path.stat().st_size} bytes is over the limit of {limit} "
                "(SAFESTACK_MEDIA_MAX_BYTES)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror})") from None


@media_app.command("hash")
def hash_files(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG, WebP, GIF)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line, all hashes."),
) -> None:
    """Print each image's PDQ hash and quality, MD5 and SHA-256.

    Example: safestack media hash photo.jpg --json
    """
    _require_media()
    from safestack.media import hash_image

    limits = _limits(ctx)
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("file", "pdq", "quality", "md5", "sha256"):
        table.add_column(header, overflow="fold")
    failed = 0
    for path in files:
        try:
            hashes = hash_image(_read(path, limits.max_bytes), limits, name=str(path))
        except MediaError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            failed += 1
            continue
        if as_json:
            typer.echo(json.dumps({"file": str(path), **hashes.model_dump(mode="json")}))
        else:
            table.add_row(
                escape(str(path)), hashes.pdq, str(hashes.quality), hashes.md5, hashes.sha256
            )
    if not as_json and table.row_count:
        console.print(table)
    if failed:
        raise typer.Exit(2)


@media_app.command("match")
def match_files(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG, WebP, GIF)."),
    banks: list[str] = typer.Option(
        [],
        "--bank",
        "-b",
        help="Match only this bank (repeatable); every bank if none.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="One MediaVerdict a line, as JSON."),
) -> None:
    """Match images against the banks: exact MD5/SHA-256, then PDQ with all rotations and flips.

    Exit status: 0 when nothing matched, 1 when an image matched, 2 when an image could not be read.

    Example: safestack media match upload.png --bank ncmec
    """
    _require_media()
    from safestack.media import MediaScreen

    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        screen = MediaScreen.from_store(store, settings, banks=banks or None)
    matched = failed = 0
    for path in files:
        try:
            verdict = screen.screen(_read(path, screen.limits.max_bytes), name=str(path))
        except MediaError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            failed += 1
            continue
        matched += verdict.matched
        if as_json:
            typer.echo(json.dumps({"file": str(path), **verdict.model_dump(mode="json")}))
            continue
        if not verdict.matched:
            note = (
                ""
                if verdict.pdq_trusted
                else f" (PDQ quality {verdict.hashes.quality}: exact only)"
            )
            console.print(f"{escape(str(path))}: no match{note}", highlight=False, soft_wrap=True)
        for m in verdict.matches:
            console.print(
                f"{escape(str(path))}: [red]MATCH[/] bank '{escape(m.bank)}' {m.kind} {m.value} "
                f"distance {m.distance} ({m.variant})",
                highlight=False,
                soft_wrap=True,  # one line a match: greppable
            )
    if failed:
        raise typer.Exit(2)
    if matched:
        raise typer.Exit(1)


@bank_app.command("import")
def import_bank(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="The hash list: an HMA/ThreatExchange CSV, JSON, or plain."
    ),
    name: str = typer.Option(..., "--name", "-n", help="The bank to add to (created if new)."),
    format: FormatName = typer.Option(
        FormatName.HMA_CSV,
        "--format",
        "-f",
        help="hma-csv: 'pdq,<hex>' rows; json; plain: a hash a line.",
    ),
    kind: KindName = typer.Option(
        KindName.PDQ, "--kind", help="Plain files: what a bare 64-digit hash is (32 digits: md5)."
    ),
    source: str = typer.Option(
        "", "--source", help="Where the list came from, kept with the bank."
    ),
) -> None:
    """Import a hash list into a bank; malformed lines are named, counted and skipped.

    Example: safestack media bank import hashes.csv --name ncmec --source "NCMEC 2026-12"
    """
    _require_media()
    from safestack.media.bank_files import read_bank_file

    parsed = read_bank_file(file, format.value, kind=kind.value)
    for problem in parsed.problems[:SHOWN_PROBLEMS]:
        err_console.print(f"[yellow]skipped:[/] {escape(str(problem))}", highlight=False)
    if len(parsed.problems) > SHOWN_PROBLEMS:
        err_console.print(f"... and {len(parsed.problems) - SHOWN_PROBLEMS} more skipped")
    if not parsed.entries:
        raise MediaError(f"{file}: no well-formed hash found; is --format {format.value} right?")
    with Store.open(state(ctx).settings.database_url()) as store:
        count = store.media_banks.add(name, parsed.entries, source=source or str(file))
    console.print(
        f"bank '{escape(name)}': {count.added} added, {count.repeated} already held, "
        f"{len(parsed.problems)} malformed skipped",
        highlight=False,
    )


@bank_app.command("list")
def list_banks(ctx: typer.Context) -> None:
    """List the banks with their active and disabled (tombstoned) entries.

    Example: safestack media bank list
    """
    with Store.open(state(ctx).settings.database_url()) as store:
        banks = store.media_banks.banks()
    if not banks:
        console.print(
            "no hash banks; import one with: safestack media bank import FILE --name NAME"
        )
        return
    table = Table(title="hash banks", box=box.SIMPLE_HEAD)
    for header in ("name", "active", "disabled", "source", "created"):
        table.add_column(header, overflow="fold")
    for bank in banks:
        table.add_row(
            escape(bank.name),
            str(bank.active),
            str(bank.disabled),
            escape(bank.source),
            bank.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


case_app = typer.Typer(
    cls=SafestackGroup,
    help="Match cases: images that matched a bank, for review and reporting.",
    no_args_is_help=True,
)
media_app.add_typer(case_app, name="case")


class StatusName(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    REPORTED = "reported"


@case_app.command("list")
def list_cases(
    ctx: typer.Context,
    status: StatusName | None = typer.Option(
        None, "--status", "-s", help="Only cases in this status."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, oldest first."),
) -> None:
    """List match cases, oldest first (the review queue: --status open).

    Example: safestack media case list --status open
    """
    with Store.open(state(ctx).settings.database_url()) as store:
        cases = store.media_cases.find(status=status.value if status else None, limit=limit)
    if not cases:
        console.print("no media cases")
        return
    table = Table(title="media cases", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    for header in ("matched", "status", "banks", "closest", "reviewer"):
        table.add_column(header, overflow="fold")
    for case in cases:
        table.add_row(
            case.id,
            case.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            case.status,
            escape(", ".join(sorted({m.bank for m in case.matches}))),
            str(min(m.distance for m in case.matches)),
            escape(case.reviewer or ""),
        )
    console.print(table)


@case_app.command("review")
def review_case(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="The case id from `safestack media case list`."),
    status: StatusName = typer.Option(
        ..., "--status", "-s", help="confirmed, dismissed or reported."
    ),
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Who decided."),
    note: str | None = typer.Option(None, "--note", help="Why, kept with the case."),
) -> None:
    """Record a decision: open -> confirmed | dismissed; confirmed -> reported once filed by hand.

    Example: safestack media case review 3f2a... --status confirmed --reviewer ana
    """
    with Store.open(state(ctx).settings.database_url()) as store:
        case = store.media_cases.review(case_id, status=status.value, reviewer=reviewer, note=note)
    console.print(f"case {case.id}: {case.status} by {escape(reviewer)}", highlight=False)


class ReportFormat(StrEnum):
    JSON = "json"
    XML = "xml"


@case_app.command("export")
def export_case(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="The case id from `safestack media case list`."),
    format: ReportFormat = typer.Option(
        ReportFormat.JSON, "--format", "-f", help="json, or xml (the CyberTipline structure)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
) -> None:
    """Write a case as a report file with what a NCMEC CyberTipline report asks (incident time,
    uploader account and IP, file hashes and matches, reporter from SAFESTACK_MEDIA_REPORTER_*).
    Nothing is sent anywhere: a person files it, then marks the case reported.

    Example: safestack media case export 3f2a... --format xml --out report.xml
    """
    from safestack.media.reports import Reporter, case_report, report_json, report_xml

    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        case = store.media_cases.get(case_id)
    reporter = Reporter.from_settings(settings)
    report = case_report(case, reporter)
    text = report_xml(report) if format is ReportFormat.XML else report_json(report)
    missing = reporter.missing()
    if missing:
        err_console.print(
            f"note: the reporter's details are incomplete; set {', '.join(missing)}",
            highlight=False,
        )
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MediaError(f"{out}: cannot write the report ({exc.strerror})") from None
    console.print(
        f"case {case.id}: {format.value} report written to {escape(str(out))}", soft_wrap=True
    )


@case_app.command("image")
def case_image(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="The case id from `safestack media case list`."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the decrypted image."),
) -> None:
    """Decrypt a case's quarantined image (SAFESTACK_MEDIA_QUARANTINE_KEY) for the legal report.

    Handle the file as the law requires: it may be illegal material.
    Example: safestack media case image 3f2a... --out /secure/evidence/3f2a.png
    """
    from safestack.media.quarantine import Quarantine

    settings = state(ctx).settings
    with Store.open(settings.database_url()) as store:
        case = store.media_cases.get(case_id)
    name = case.context.get("quarantine")
    if not name:
        raise MediaError(
            f"media case {case.id}: its image was not kept (no quarantine key was set when it "
            "matched)"
        )
    key = settings.media_quarantine_key
    if key is None:
        raise MediaError("SAFESTACK_MEDIA_QUARANTINE_KEY is not set: the quarantine cannot be read")
    data = Quarantine(settings.media_quarantine_path(), key.get_secret_value()).read(str(name))
    try:
        out.write_bytes(data)
        out.chmod(0o600)
    except OSError as exc:
        raise MediaError(f"{out}: cannot write the image ({exc.strerror})") from None
    console.print(f"case {case.id}: image written to {escape(str(out))}", soft_wrap=True)


@media_app.command("quarantine-key")
def quarantine_key() -> None:
    """Print a new random key for the media quarantine (SAFESTACK_MEDIA_QUARANTINE_KEY).

    Keep it as a secret; without it the quarantined images cannot be read.
    Example: export SAFESTACK_MEDIA_QUARANTINE_KEY=$(safestack media quarantine-key)
    """
    from safestack.media.quarantine import new_key

    typer.echo(new_key())
