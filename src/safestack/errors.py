"""One exception hierarchy for the whole package.

Every message says what was wrong, where (file, line, field) and what to do; the CLI prints
`str(error)` on one line and shows the traceback only with `--debug`.
"""

from __future__ import annotations


class SafestackError(Exception):
    """Base of every error safestack raises on purpose."""


class PolicyError(SafestackError):
    """A policy file or policy value is invalid."""


class InputError(SafestackError):
    """A record handed to safestack cannot be judged (empty, too long, not UTF-8, ...)."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        self.line = line
        self.field = field
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message


class DetectorError(SafestackError):
    """A detector could not produce an opinion (model failed to load, endpoint down, bad output)."""

    def __init__(self, detector: str, message: str):
        self.detector = detector
        super().__init__(f"detector '{detector}': {message}")


class RegistryError(SafestackError):
    """A name was looked up in a registry that does not hold it."""


class MediaError(SafestackError):
    """An image could not be decoded or hashed safely, or a hash bank file could not be read."""


class StoreError(SafestackError):
    """The database could not be reached, migrated or written."""


class GateError(SafestackError):
    """A framework file, a piece of evidence, a signature or a decision the gate cannot accept."""


class EnforcementError(SafestackError):
    """An enforcement decision or strike-ladder file that cannot be accepted, or enforcement
    state that cannot be read."""
