"""`safestack media sign|verify`: C2PA content credentials on generated images and text.

Registered on the `media` group by cli/main.py; needs the media extra (c2pa-python), loaded only
when a command runs. The signing key's path comes from settings or --key; its content is never shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from safestack.cli.app import console, err_console, state
from safestack.cli.media import media_app
from safestack.errors import MediaError, SafestackError

if TYPE_CHECKING:
    from safestack.media.provenance import ProvenanceReport

# Exit status of `verify` by verdict: 0 intact and trusted, 1 tampered, 3 intact but not trusted
# (or no credentials at all); 2 is a file that could not be read.
EXIT_STATUS = {
    "trusted": 0,
    "invalid": 1,
    "untrusted": 3,
    "expired": 3,
    "revoked": 3,
    "unsigned": 3,
}
_STYLE = {"trusted": "green", "invalid": "bold red"}
# Text files are signed with the text embedding; anything else must be an image.
_TEXT_SUFFIXES = {".txt", ".md", ".text"}
_MAX_BYTES = 50 * 1024 * 1024


def _require_c2pa() -> None:
    try:
        import c2pa  # noqa: F401
    except ImportError as exc:
        raise SafestackError(
            f"content credentials need the media extra ({exc.name} is missing): "
            "pip install 'safestack[media]'"
        ) from None


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise MediaError(f"{path}: over {_MAX_BYTES:,} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror})") from None


def _is_text(path: Path, data: bytes, force: bool) -> bool:
    from safestack.media.provenance import image_format

    if force or path.suffix.lower() in _TEXT_SUFFIXES:
        return True
    if image_format(data) is not None:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@media_app.command("sign")
def sign(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="A generated image (PNG, JPEG, WebP, GIF) or text."),
    target: Path = typer.Argument(..., help="Where to write the signed copy (never in place)."),
    model: str = typer.Option(..., "--model", "-m", help="The model that generated it."),
    cert: Path | None = typer.Option(
        None, "--cert", help="PEM chain, signer first (default SAFESTACK_PROVENANCE_CERT)."
    ),
    key: Path | None = typer.Option(
        None, "--key", help="The signer's PEM private key (default SAFESTACK_PROVENANCE_KEY)."
    ),
    text: bool = typer.Option(False, "--text", help="Sign as text (default: .txt/.md files)."),
) -> None:
    """Sign generated content with C2PA content credentials: claim generator safestack, a
    `c2pa.created` action with digital source type trainedAlgorithmicMedia, and the model.

    Example: safestack media sign cat.png cat.signed.png --model sdxl-turbo
    """
    _require_c2pa()
    from safestack.media.provenance import sign_text, signer_from_settings

    settings = state(ctx).settings
    overrides = {k: v for k, v in (("provenance_cert", cert), ("provenance_key", key)) if v}
    signer = signer_from_settings(settings.model_copy(update=overrides))
    if source.resolve() == target.resolve():
        raise MediaError(f"{target}: write the signed copy to another file; the original is kept")
    data = _read(source)
    if _is_text(source, data, text):
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MediaError(f"{source}: not UTF-8 text (byte {exc.start})") from None
        signed = sign_text(signer, content, model).encode("utf-8")
        kind = "text"
    else:
        signed = signer.sign_image(data, model, title=source.name)
        kind = "image"
    _write(target, signed)
    console.print(
        f"signed {kind} {escape(str(target))}: model {escape(model)}, signer "
        f"{escape(signer.credentials.subject)} ({signer.credentials.algorithm}), "
        f"{len(signed) - len(data):,} bytes of credentials",
        highlight=False,
        soft_wrap=True,
    )


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        raise MediaError(f"{path}: cannot write ({exc.strerror})") from None


@media_app.command("verify")
def verify(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Images or text files to verify."),
    trust: Path | None = typer.Option(
        None,
        "--trust",
        help="PEM root certificates to trust (default SAFESTACK_PROVENANCE_TRUST_ANCHORS).",
    ),
    text: bool = typer.Option(False, "--text", help="Read the files as text."),
    as_json: bool = typer.Option(False, "--json", help="One report a line, as JSON."),
    show_manifest: bool = typer.Option(False, "--manifest", help="Print the whole manifest."),
) -> None:
    """Verify content credentials: intact or tampered, and whether the signer is trusted.

    Exit status: 0 intact and trusted, 1 tampered (content or manifest changed after signing),
    3 intact but untrusted, expired or revoked, or no credentials; 2 a file could not be read.

    Example: safestack media verify cat.signed.png --trust root.pem
    """
    _require_c2pa()
    from safestack.media.provenance import load_trust_anchors, verify_asset, verify_text

    anchors_path = trust or state(ctx).settings.provenance_trust_anchors
    anchors = load_trust_anchors(anchors_path) if anchors_path is not None else None
    status = 0
    for path in files:
        try:
            data = _read(path)
            if _is_text(path, data, text):
                report = verify_text(data.decode("utf-8", errors="replace"), anchors)
            else:
                report = verify_asset(data, anchors)
        except MediaError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            status = max(status, 2)
            continue
        status = max(status, EXIT_STATUS[report.verdict])
        if as_json:
            typer.echo(json.dumps({"file": str(path), **report.model_dump(mode="json")}))
        else:
            _show(path, report, anchors is not None, show_manifest)
    if status:
        raise typer.Exit(status)


def _show(path: Path, report: ProvenanceReport, anchored: bool, show_manifest: bool) -> None:
    style = _STYLE.get(report.verdict, "yellow")
    console.print(
        f"{escape(str(path))}: [{style}]{report.verdict.upper()}[/] ({report.meaning})",
        highlight=False,
        soft_wrap=True,
    )
    if report.verdict == "unsigned":
        return
    if report.verdict == "invalid":
        console.print("  (what the manifest claims below failed validation: do not rely on it)")
    rows = [
        ("format", report.format),
        ("validation state", report.state),
        ("claim generator", report.claim_generator),
        ("actions", ", ".join(report.actions) or None),
        ("digital source type", report.digital_source_type),
        ("model", report.model),
        ("signer", f"{report.signer} (issuer {report.issuer})" if report.signer else None),
    ]
    for name, value in rows:
        if value:
            console.print(f"  {name:20} {escape(value)}", highlight=False, soft_wrap=True)
    for failure in report.failures:
        console.print(
            f"  [red]{escape(failure.code)}[/]: {escape(failure.explanation or '')}",
            highlight=False,
            soft_wrap=True,
        )
    if not anchored and report.verdict == "untrusted":
        console.print(
            "  (no trust anchors given: --trust ROOT.pem or SAFESTACK_PROVENANCE_TRUST_ANCHORS)",
            soft_wrap=True,
        )
    if show_manifest and report.manifest is not None:
        console.print_json(json.dumps(report.manifest))
