"""The root Typer app and what every command shares: error printing, settings, the policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from safestack.errors import SafestackError
from safestack.policy import Policy, default_policy, read_policy
from safestack.settings import Settings

if TYPE_CHECKING:
    from safestack.judge.builtin import BuiltinModels

console = Console()
# Messages on stderr are log lines: never hard-wrapped, so they stay greppable.
err_console = Console(stderr=True, soft_wrap=True)


class SafestackGroup(TyperGroup):
    """Prints a SafestackError as one line (`error: ...`, exit 2); `--debug` shows the traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SafestackError as exc:
            if isinstance(ctx.find_root().obj, State) and ctx.find_root().obj.debug:
                raise
            err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None


class DefaultCommandGroup(SafestackGroup):
    """A group whose default command runs when the first argument names no sub-command.

    `safestack judge "text"` is `safestack judge check "text"`, while `safestack judge calibrate`
    and other sub-commands keep their own names.
    """

    default_command = "check"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class State:
    """Built once at the edge from the environment and global options, handed to every command."""

    def __init__(self, settings: Settings, debug: bool = False):
        self.settings = settings
        self.debug = debug
        self._policy: Policy | None = None
        self._models: BuiltinModels | None = None

    @property
    def models(self) -> BuiltinModels:
        """This command's built-in models: created on first use, each model loaded when needed."""
        if self._models is None:
            from safestack.judge.builtin import BuiltinModels  # numpy, only for commands that judge

            self._models = BuiltinModels(precision=self.settings.encoder_precision)
        return self._models

    def policy(self, override: Path | None = None) -> Policy:
        if override is not None:
            return load_policy_file(override)
        if self._policy is None:
            path = self.settings.policy
            self._policy = load_policy_file(path) if path is not None else default_policy()
        return self._policy


def load_policy_file(path: Path) -> Policy:
    """A policy file, its detectors' options checked too: every error names the file and line."""
    from safestack.judge import validate_policy_detectors  # the detector modules load lazily
    from safestack.judge.image_detector import validate_policy_image_detectors

    loaded = read_policy(path)
    validate_policy_detectors(loaded.policy, loaded.source, loaded.root)
    validate_policy_image_detectors(loaded.policy, loaded.source, loaded.root)
    return loaded.policy


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State(Settings())
    return root.obj


app = typer.Typer(
    cls=SafestackGroup,
    name="safestack",
    help='An offline safety stack for language models. Try: safestack judge "some text"',
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
) -> None:
    ctx.obj = State(Settings(), debug=debug)
