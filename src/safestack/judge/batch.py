"""Judging a JSON Lines file: read, validate each line, judge in batches, write verdicts and errors.

One bad line never stops the run (unless `strict`): it is counted, reported with its line number
and the field at fault, and written to the errors file. `judged + rejected == read` always holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from safestack.errors import DetectorError, InputError
from safestack.judge.detector import Sample
from safestack.judge.judge import Judge
from safestack.judge.moderation import moderation_response
from safestack.records import Kind, Verdict


@dataclass(slots=True)
class Judged:
    line: int
    record_id: str | None
    text: str
    verdict: Verdict


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    field: str | None = None

    def message(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class BatchReport:
    read: int = 0
    judged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    flagged: int = 0
    actions: dict[str, int] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def count_lines(path: Path) -> int:
    return sum(1 for _ in _lines(path))


def parse_record(number: int, raw: bytes, text_field: str) -> dict[str, Any]:
    """One JSON Lines record with a text field; InputError naming the line and field otherwise."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); re-encode the file as UTF-8",
            line=number,
        ) from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})", line=number) from None
    if not isinstance(record, dict):
        raise InputError(
            f"expected a JSON object with a '{text_field}' field, got {type(record).__name__}",
            line=number,
        )
    if text_field not in record:
        raise InputError(
            f"missing; each line needs a '{text_field}' field (or pass --text-field)",
            line=number,
            field=text_field,
        )
    return record


def read_records(
    path: Path, text_field: str = "text"
) -> Iterator[tuple[int, dict[str, Any], None] | tuple[int, None, InputError]]:
    """Every non-blank line as (line, record, None), or (line, None, error) for a bad one."""
    for number, raw in _lines(path):
        try:
            yield number, parse_record(number, raw, text_field), None
        except InputError as exc:
            yield number, None, exc


def judge_file(
    judge: Judge,
    path: Path,
    out: IO[str],
    *,
    text_field: str = "text",
    id_field: str = "id",
    kind: Kind = "prompt",
    strict: bool = False,
    batch_size: int = 32,
    errors: IO[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_judged: Callable[[list[Judged]], None] | None = None,
) -> BatchReport:
    """Judge every line of `path`; write one moderation-shaped JSON line per judged input to `out`."""
    report = BatchReport()
    pending: list[tuple[int, str | None, str, Sample]] = []

    def reject(line: int, exc: InputError | DetectorError) -> None:
        rejected = Rejected(line, getattr(exc, "reason", str(exc)), getattr(exc, "field", None))
        report.rejected.append(rejected)
        if errors is not None:
            errors.write(
                json.dumps({"line": line, "field": rejected.field, "error": rejected.reason}) + "\n"
            )
        if strict:
            raise (
                exc
                if isinstance(exc, DetectorError)
                else InputError(rejected.reason, line=line, field=rejected.field)
            )

    def flush() -> None:
        if not pending:
            return
        try:
            verdicts = judge.check_batch([sample for *_, sample in pending])
        except DetectorError as exc:
            for line, *_ in pending:
                reject(line, exc)
            verdicts = []
        done = []
        for (line, record_id, text, _), verdict in zip(pending, verdicts, strict=False):
            response = moderation_response([verdict], judge.policy)
            response.update({"line": line, "input_id": record_id})
            out.write(json.dumps(response, ensure_ascii=False) + "\n")
            report.judged += 1
            report.flagged += verdict.flagged
            report.actions[verdict.action.value] = report.actions.get(verdict.action.value, 0) + 1
            done.append(Judged(line, record_id, text, verdict))
        if on_judged is not None and done:
            on_judged(done)
        if on_progress is not None:
            on_progress(len(pending))
        pending.clear()

    for number, record, error in read_records(path, text_field):
        report.read += 1
        try:
            if error is not None:
                raise error
            assert record is not None
            raw_id = record.get(id_field)
            record_id = None if raw_id is None else str(raw_id)
            text = record[text_field]
            sample = judge.prepare(text, kind, field=text_field)
        except InputError as exc:
            if strict:
                flush()  # what came before the bad line is still judged and written
            reject(number, InputError(exc.reason, line=number, field=exc.field))
            if on_progress is not None:
                on_progress(1)
            continue
        pending.append((number, record_id, text, sample))
        if len(pending) >= batch_size:
            flush()
    flush()
    return report
