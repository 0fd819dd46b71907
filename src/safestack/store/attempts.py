"""Red-team runs and their Attempts: committed as they complete, read back for reports.

A run row holds the campaign and its hash, so a re-run can tell whether the campaign changed; the
attempts table's unique (run, target, probe, sample) key is what resume skips on. `AttemptWriter`
commits a running campaign's attempts from one thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Delete, Select, delete, select

from safestack.records import SCHEMA_VERSION, Attempt
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
