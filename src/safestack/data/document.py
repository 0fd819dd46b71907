"""The records a corpus run passes between blocks: a Document, and why one was removed or errored.

Plain slotted dataclasses rather than pydantic models: a run handles millions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass(slots=True)
class Document:
    """One document. Filters may rewrite `text` (redaction) and add to `metadata`."""

    id: str
    text: str
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """Where it was read: 'path:line' for JSONL, 'path#row' for Parquet, 'path@offset' for WARC."""


@dataclass(frozen=True, slots=True)
class Removal:
    """Why a filter removed a document: which filter, which reason code, which score vs threshold."""

    filter: str
    reason: str
    """A reason code, '<filter>.<why>', e.g. 'adult.domain', 'harm.hate', 'quality.gopher_mean_word_length'."""
    score: float
    threshold: float
    category: str | None = None
    evidence: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "reason": self.reason,
            "category": self.category,
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class ReadError:
    """A record that could not be read: counted under `reason` and written to the errors file."""

    source: str
    reason: str
    """'read.invalid_json', 'read.missing_text', 'read.not_utf8', 'read.lone_surrogate', 'read.too_large', 'read.corrupt_file', ..."""
    message: str
    raw: str | None = None
    """The start of the offending record (at most 1,000 characters), for review."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "reason": self.reason,
            "message": self.message,
            "raw": self.raw,
            "schema_version": SCHEMA_VERSION,
        }
