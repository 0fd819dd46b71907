"""Red-team runs and their Attempts: committed as they complete, read back for reports.

A run row holds the campaign and its hash, so a re-run can tell whether the campaign changed; the
attempts table's unique (run, target, probe, sample) key is what resume skips on. `store.runs` reads
and writes both; `AttemptWriter` commits a running campaign's attempts from one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Delete, Select, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from safestack.errors import StoreError
from safestack.records import SCHEMA_VERSION, Attempt
from safestack.store.database import BATCH_ROWS, Database, reason
from safestack.store.tables import AttemptRow, RedteamRunRow


class StoredRun(BaseModel):
    """A red-team run as stored: which campaign (and its hash), when."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    campaign_hash: str
    campaign: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RedteamRunRow) -> StoredRun:
        return cls.model_validate(
            {name: getattr(row, name) for name in cls.model_fields}, from_attributes=False
        )


def run_row(run_id: str, name: str, campaign_hash: str, campaign: dict[str, Any]) -> RedteamRunRow:
    now = datetime.now(UTC)
    return RedteamRunRow(
        id=run_id,
        name=name,
        campaign_hash=campaign_hash,
        campaign=campaign,
        created_at=now,
        updated_at=now,
        schema_version=SCHEMA_VERSION,
    )


def attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "run_id": attempt.run_id,
        "target": attempt.target,
        "probe_id": attempt.probe_id,
        "sample": attempt.sample,
        "attack": attempt.attack,
        "category": attempt.category,
        "status": attempt.status.value,
        "created_at": attempt.started_at,
        "record": attempt.model_dump(mode="json"),
        "schema_version": attempt.schema_version,
    }


def attempt_from_row(row: AttemptRow) -> Attempt:
    return Attempt.model_validate(row.record)


def select_attempts(run_id: str, target: str | None = None) -> Select[AttemptRow]:
    query = select(AttemptRow).where(AttemptRow.run_id == run_id)
    if target is not None:
        query = query.where(AttemptRow.target == target)
    return query.order_by(AttemptRow.created_at, AttemptRow.id)


def select_keys(run_id: str) -> Select[str, str, int]:
    return select(AttemptRow.target, AttemptRow.probe_id, AttemptRow.sample).where(
        AttemptRow.run_id == run_id
    )


def delete_attempts(run_id: str) -> Delete:
    return delete(AttemptRow).where(AttemptRow.run_id == run_id)


class RedteamRuns:
    """The redteam_runs and attempts tables: `store.runs`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def open(
        self, run_id: str, name: str, campaign_hash: str, campaign: dict[str, Any], *, force: bool
    ) -> tuple[StoredRun, int]:
        """Create the run, or reopen it when its campaign is unchanged; returns (run, attempts kept).

        A changed campaign is refused (StoreError naming both hashes) unless `force`, which
        discards the run's stored attempts and records the new campaign.
        """
        with self._database.transaction("opening a red-team run", write_first=True) as session:
            row = session.get(RedteamRunRow, run_id)
            if row is None:
                row = run_row(run_id, name, campaign_hash, campaign)
                session.add(row)
                session.flush()
                return StoredRun.from_row(row), 0
            count = len(session.execute(select_keys(run_id)).all())
            if row.campaign_hash != campaign_hash:
                if not force:
                    raise StoreError(
                        f"run '{run_id}' was made from a different campaign "
                        f"(stored {row.campaign_hash[:12]}, now {campaign_hash[:12]}); pass --force "
                        f"to discard its {count} attempts and start again, or --run-id NEW to keep both"
                    )
                session.execute(delete_attempts(run_id))
                row.campaign_hash, row.campaign, row.name = campaign_hash, campaign, name
                count = 0
            row.updated_at = datetime.now(UTC)
            session.flush()
            return StoredRun.from_row(row), count

    def get(self, run_id: str) -> StoredRun | None:
        with self._database.transaction("reading a red-team run") as session:
            row = session.get(RedteamRunRow, run_id)
            return None if row is None else StoredRun.from_row(row)

    def all(self) -> list[StoredRun]:
        """Runs, most recently updated first."""
        with self._database.transaction("listing red-team runs") as session:
            rows = session.scalars(select(RedteamRunRow).order_by(RedteamRunRow.updated_at.desc()))
            return [StoredRun.from_row(row) for row in rows]

    def record_attempt(self, attempt: Attempt) -> None:
        """Store one Attempt; it is committed (durable) when this returns."""
        with self._database.transaction("recording an attempt") as session:
            session.execute(insert(AttemptRow), [attempt_row(attempt)])

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        """Store Attempts in one transaction (one commit, one sync): all of them or, on error, none.

        A running campaign's writer calls this for every attempt or group of attempts, so it
        goes through a Core connection, without an ORM session (half the cost of a small commit).
        """
        rows = (attempt_row(attempt) for attempt in attempts)
        with self._database.connect() as connection:
            try:
                with connection.begin():
                    while chunk := list(islice(rows, BATCH_ROWS)):
                        connection.execute(insert(AttemptRow), chunk)
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"{self._database.display_url}: recording attempts failed: {reason(exc)}"
                ) from None

    def replace_attempts(self, attempts: Iterable[Attempt]) -> int:
        """Overwrite stored Attempts (same ids) in one transaction, e.g. after rescoring."""
        changed = 0
        with self._database.transaction("rewriting attempts") as session:
            for attempt in attempts:
                row = session.get(AttemptRow, attempt.id)
                if row is None:
                    raise StoreError(f"attempt '{attempt.id}' is not stored; nothing to replace")
                values = attempt_row(attempt)
                row.record, row.status = values["record"], values["status"]
                changed += 1
        return changed

    def attempts(self, run_id: str, *, target: str | None = None) -> list[Attempt]:
        """A run's Attempts in the order they completed."""
        with self._database.transaction("reading attempts") as session:
            return [
                attempt_from_row(row) for row in session.scalars(select_attempts(run_id, target))
            ]

    def attempt_keys(self, run_id: str) -> set[tuple[str, str, int]]:
        """(target, probe_id, sample) of every stored attempt of the run: what resume skips."""
        with self._database.transaction("reading attempt keys") as session:
            return {
                (target, probe, sample)
                for target, probe, sample in session.execute(select_keys(run_id))
            }


class AttemptWriter:
    """Commits attempts in the order they arrive, from one thread: `await writer.write(attempt)`
    returns once the attempt is committed (or raises the store's error).

    An attempt is written as soon as the thread is free; those that arrived while it was committing
    share the next transaction (one commit and one sync for all of them), so a killed process loses
    at most what was waiting here, never an attempt `write` has returned for.
    """

    def __init__(self, commit: Callable[[Sequence[Attempt]], None], max_batch: int = 500) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, name="safestack-attempt-writer", daemon=True
        )
        self._thread.start()

    async def write(self, attempt: Attempt) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(attempt, loop, done))
        await done

    async def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)

    def _work(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            error: BaseException | None = None
            try:
                self._commit([item.attempt for item in batch])
            except BaseException as exc:  # handed to every waiting caller
                error = exc
            for loop, items in _by_loop(batch).items():
                # RuntimeError: that event loop is closed, so nobody waits for these any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, items, error)


class _Pending:
    __slots__ = ("attempt", "done", "loop")

    def __init__(
        self, attempt: Attempt, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]
    ) -> None:
        self.attempt, self.loop, self.done = attempt, loop, done


def _by_loop(batch: list[_Pending]) -> dict[asyncio.AbstractEventLoop, list[_Pending]]:
    grouped: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for item in batch:
        grouped.setdefault(item.loop, []).append(item)
    return grouped


def _settle(items: list[_Pending], error: BaseException | None) -> None:
    for item in items:
        if item.done.done():  # the waiting task was cancelled
            continue
        if error is None:
            item.done.set_result(None)
        else:
            item.done.set_exception(error)
