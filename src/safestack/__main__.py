"""`python -m safestack` is the `safestack` command."""

from safestack.cli.main import run

run()
