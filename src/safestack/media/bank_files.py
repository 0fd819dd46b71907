"""Reading hash-bank files: HMA / ThreatExchange signal CSVs (`pdq,<hex>`), JSON exports and plain
lists (one hex hash a line, or python-threatexchange's `pdq <hex>`). A malformed hash is named by
file and line, counted and skipped; the rest of the file still imports.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from safestack.errors import MediaError
from safestack.store import BankEntry, HashKind

BankFormat = Literal["hma-csv", "json", "plain"]
FORMATS: tuple[BankFormat, ...] = ("hma-csv", "json", "plain")

# The signal-type names HMA, python-threatexchange and ThreatExchange's API use for image hashes.
SIGNAL_TYPES: dict[str, HashKind] = {
    "pdq": "pdq",
    "photo_pdq": "pdq",
    "hash_pdq": "pdq",
    "pdq_hash": "pdq",
    "md5": "md5",
    "photo_md5": "md5",
    "hash_md5": "md5",
    "sha256": "sha256",
    "sha-256": "sha256",
    "hash_sha256": "sha256",
}
HEX_DIGITS: dict[HashKind, int] = {"pdq": 64, "md5": 32, "sha256": 64}
_HEX = re.compile(r"[0-9a-fA-F]+")
_TYPE_COLUMNS = ("signal_type", "type", "kind", "hash_type")
_VALUE_COLUMNS = ("signal_value", "signal", "hash", "value", "signal_hash", "hash_value")


@dataclass(frozen=True)
class Problem:
    """One entry that was not imported: where (file:line or file: entry N) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class BankFile:
    """What a bank file held: the well-formed entries and the problems with the others."""

    entries: list[BankEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_bank_file(path: Path, format: BankFormat, *, kind: HashKind = "pdq") -> BankFile:
    """Parse `path` in `format`. `kind` is the hash kind of plain lines that do not name one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MediaError(f"{path}: cannot read the bank file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise MediaError(
            f"{path}: not UTF-8 text at byte {exc.start}; export it as UTF-8"
        ) from None
    if format == "hma-csv":
        return _read_csv(path, text)
    if format == "json":
        return _read_json(path, text)
    if format == "plain":
        return _read_plain(path, text, kind)
    raise MediaError(f"unknown bank format '{format}'; use one of {', '.join(FORMATS)}")


def parse_entry(signal_type: str, value: str, quality: Any = None) -> BankEntry:
    """One entry from a signal type and hex value; ValueError says what is wrong with it."""
    kind = SIGNAL_TYPES.get(signal_type.strip().lower())
    if kind is None:
        raise ValueError(
            f"unknown signal type '{signal_type}' (image hashes: {', '.join(sorted(SIGNAL_TYPES))})"
        )
    value = value.strip()
    digits = HEX_DIGITS[kind]
    if not _HEX.fullmatch(value) or len(value) != digits:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"'{shown}' is not a {kind} hash ({digits} hex digits)")
    parsed_quality: int | None = None
    if quality not in (None, ""):
        try:
            parsed_quality = int(quality)
        except (TypeError, ValueError):
            raise ValueError(f"quality '{quality}' is not a whole number 0-100") from None
        if not 0 <= parsed_quality <= 100:
            raise ValueError(f"quality {parsed_quality} is outside 0-100")
    return BankEntry(kind=kind, value=value.lower(), quality=parsed_quality)


def _read_csv(path: Path, text: str) -> BankFile:
    result = BankFile()
    rows = csv.reader(io.StringIO(text))
    type_at, value_at, quality_at = 0, 1, 2
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        lowered = [cell.lower() for cell in cells]
        if number == 1 and any(name in lowered for name in _TYPE_COLUMNS + _VALUE_COLUMNS):
            type_at = _column(lowered, _TYPE_COLUMNS, path, "signal type")
            value_at = _column(lowered, _VALUE_COLUMNS, path, "hash value")
            quality_at = lowered.index("quality") if "quality" in lowered else -1
            continue
        where = f"{path}:{number}"
        if len(cells) <= max(type_at, value_at):
            result.problems.append(Problem(where, "expected 'signal_type,hash' (e.g. pdq,<hex>)"))
            continue
        quality = cells[quality_at] if 0 <= quality_at < len(cells) else None
        _add(result, where, cells[type_at], cells[value_at], quality)
    return result


def _column(header: list[str], names: tuple[str, ...], path: Path, what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise MediaError(f"{path}:1: the header has no {what} column (one of {', '.join(names)})")


def _read_json(path: Path, text: str) -> BankFile:
    result = BankFile()
    try:
        document = json.loads(text)
        items: list[tuple[str, Any]] = []
        listed = document
        if isinstance(document, dict):
            key = next((k for k in ("entries", "signals", "hashes") if k in document), None)
            if key is None:
                raise MediaError(
                    f"{path}: expected a list of entries or an object with 'entries', "
                    "'signals' or 'hashes'"
                )
            listed = document[key]
        if not isinstance(listed, list):
            raise MediaError(f"{path}: the entries must be a JSON list")
        items = [(f"{path}: entry {n}", item) for n, item in enumerate(listed, start=1)]
    except json.JSONDecodeError as whole:
        # JSON Lines: one object a line.
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                if number == 1:
                    raise MediaError(
                        f"{path}:{whole.lineno}: not JSON ({whole.msg}); "
                        "use --format hma-csv or plain for other files"
                    ) from None
                result.problems.append(Problem(f"{path}:{number}", f"not JSON ({exc.msg})"))
    for where, item in items:
        if isinstance(item, str):
            _add(result, where, "pdq", item, None)
            continue
        if not isinstance(item, dict):
            result.problems.append(Problem(where, "expected an object with signal_type and hash"))
            continue
        lowered = {str(k).lower(): v for k, v in item.items()}
        signal_type = next((lowered[k] for k in _TYPE_COLUMNS if k in lowered), None)
        value = next((lowered[k] for k in _VALUE_COLUMNS if k in lowered), None)
        if not isinstance(signal_type, str) or not isinstance(value, str):
            result.problems.append(
                Problem(where, "needs 'signal_type' and 'signal_value' (strings)")
            )
            continue
        _add(result, where, signal_type, value, lowered.get("quality"))
    return result


def _read_plain(path: Path, text: str, kind: HashKind) -> BankFile:
    result = BankFile()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = line.replace(",", " ").split()
        if len(parts) == 1:
            # An MD5 is told apart by its length; 64 digits may be PDQ or SHA-256: --kind says.
            signal_type = "md5" if len(parts[0]) == 32 else kind
            _add(result, where, signal_type, parts[0], None)
        elif len(parts) == 2:
            _add(result, where, parts[0], parts[1], None)
        else:
            result.problems.append(Problem(where, "expected one hash, or '<type> <hash>', a line"))
    return result


def _add(result: BankFile, where: str, signal_type: str, value: str, quality: Any) -> None:
    try:
        result.entries.append(parse_entry(signal_type, value, quality))
    except ValueError as exc:
        result.problems.append(Problem(where, str(exc)))
