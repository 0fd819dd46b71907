"""Entry point of the `safestack` command: assembles the stage groups onto the root app."""

from __future__ import annotations

import platform

import typer

from safestack.cli.align import align_app
from safestack.cli.app import app, console, state
from safestack.cli.console import console_command  # noqa: F401  registers `safestack console`
from safestack.cli.data import data_app
from safestack.cli.db import db_app
from safestack.cli.gate import gate_app
from safestack.cli.judge import judge_app
from safestack.cli.keys import keys_app
from safestack.cli.media import media_app
from safestack.cli.media_provenance import sign  # noqa: F401  registers `media sign|verify`
from safestack.cli.models import models_app
from safestack.cli.monitor import monitor_app
from safestack.cli.monitor_analysis import register as register_monitor_analysis
from safestack.cli.policy import policy_app
from safestack.cli.redteam import redteam_app
from safestack.cli.serve import serve  # noqa: F401  registers `safestack serve`

app.add_typer(judge_app, name="judge")
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(data_app, name="data")
app.add_typer(redteam_app, name="redteam")
app.add_typer(align_app, name="align")
app.add_typer(gate_app, name="gate")
app.add_typer(media_app, name="media")
# The `monitor` group: enforcement (`cli/monitor.py`) and analysis (`cli/monitor_analysis.py`).
register_monitor_analysis(monitor_app)
app.add_typer(monitor_app, name="monitor")


@app.command("version")
def version(ctx: typer.Context) -> None:
    """Print safestack's version, the active policy and the available detectors."""
    from safestack import __version__
    from safestack.judge import available_detectors

    console.print(f"safestack {__version__} (Python {platform.python_version()})")
    console.print(f"policy {state(ctx).policy().ref}")
    names = ", ".join(f"{n}@{cls.version}" for n, cls in available_detectors().items())
    console.print(f"detectors {names}")


def run() -> None:
    app()
