"""`safestack policy`: show the effective policy, validate a policy file."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.table import Table

from safestack.cli.app import SafestackGroup, console, state
from safestack.policy import BANDS

policy_app = typer.Typer(
    cls=SafestackGroup, help="Inspect and validate policies.", no_args_is_help=True
)


@policy_app.command("show")
def show(
    ctx: typer.Context,
    policy_path: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy YAML; the active one by default."
    ),
    as_yaml: bool = typer.Option(
        False, "--yaml", help="Print the complete effective policy as YAML."
    ),
    definitions: bool = typer.Option(
        False, "--definitions", help="Also print each category's definition."
    ),
) -> None:
    """Show categories, thresholds, actions per severity band and framework mappings.

    Example: safestack policy show --yaml > my-policy.yaml
    """
    policy = state(ctx).policy(policy_path)
    if as_yaml:
        print(
            yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
            end="",
        )
        return
    reverse: dict[str, dict[str, list[str]]] = {}
    for framework, entries in policy.frameworks.items():
        for code, entry in entries.items():
            for mapped in entry.categories:
                reverse.setdefault(mapped, {}).setdefault(framework, []).append(code)
    table = Table(
        "category",
        "kind",
        "threshold",
        *BANDS,
        "mlcommons",
        "azure",
        title=policy.ref,
    )
    table.columns[0].no_wrap = True
    for name, rules in policy.categories.items():
        actions = rules.actions or policy.defaults.actions
        table.add_row(
            name,
            rules.kind,
            f"{policy.threshold(name):.2f}",
            *(actions[b].value for b in BANDS),
            ",".join(reverse.get(name, {}).get("mlcommons", [])),
            ",".join(reverse.get(name, {}).get("azure", [])),
        )
    console.print(table)
    if definitions:
        for name, described in policy.categories.items():
            console.print(f"[bold]{name}[/]: {described.definition}")
    bands = ", ".join(f"{b} {lo}-{hi}" for b, (lo, hi) in policy.severity.bands.items())
    console.print(
        f"severity 0-7: {bands}; detectors: {', '.join(d.name for d in policy.judge.detectors)}"
    )


@policy_app.command("validate")
def validate(
    ctx: typer.Context, path: Path = typer.Argument(..., help="Policy YAML to check.")
) -> None:
    """Check a policy file, its detectors' options included; prints the first problem with its
    line and field, or a summary.

    Example: safestack policy validate my-policy.yaml
    """
    policy = state(ctx).policy(path)
    console.print(
        f"[green]ok[/] {path}: {policy.ref}, {len(policy.categories)} categories, "
        f"detectors {', '.join(d.name for d in policy.judge.detectors)}",
        soft_wrap=True,
    )
