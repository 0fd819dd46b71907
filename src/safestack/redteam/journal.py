"""The red-team journal: each answered Attempt is appended to a local JSON Lines file the moment the
target has answered, and synced to disk (one `fdatasync` for all entries appended meanwhile) before
it is queued for the store. A run killed with `kill -9` re-asks only the calls that were in flight:
resume (`read_journal`) hands the runner the journalled attempts the store lacks, to be scored and
stored without asking again.

One directory per run, next to a SQLite store (`<db file>.journals/<run id>/`) or under
`SAFESTACK_HOME/journals/<store digest>/<run id>/` for PostgreSQL. Each process appends to its own
numbered segment file; a segment is deleted once every entry in it is committed to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError
from sqlalchemy import URL

from safestack.errors import SafestackError
from safestack.records import Attempt

# A segment is closed after this many entries (or bytes), so a long run's journal holds about
# one segment of committed attempts at a time, not the whole run twice over.
SEGMENT_ENTRIES = 1024
SEGMENT_BYTES = 8 * 1024 * 1024

Key = tuple[str, str, int]

# fdatasync flushes the data and the size, which is all an append needs (Linux); fsync elsewhere.
_datasync = getattr(os, "fdatasync", os.fsync)


def journal_directory(url: URL, run_id: str, home: Path | None) -> Path | None:
    """Where run `run_id`'s journal lives for the store at `url`, or None when it has none.

    A SQLite file keeps its journals beside it (`<file>.journals/`); other stores under
    `home/journals/<sha256 of the URL without password>/`, so two stores never share a journal.
    An in-memory SQLite store needs none (nothing outlives the process), nor a PostgreSQL store
    without a `home`.
    """
    name = quote(run_id, safe="")
    if name.startswith("."):  # never '.' or '..'
        name = "%2E" + name[1:]
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(f"{database}.journals") / name
    if home is None:
        return None
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return home / "journals" / digest / name


@dataclass
class Replay:
    """What a run's journal held when the run resumed."""

    directory: Path | None
    # The files read: the next `Journal` adopts them and deletes them once `attempts` are stored.
    segments: list[Path] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)  # answered, not stored: not asked again
    stored: int = 0  # already committed to the store
    stale: int = 0  # from another campaign (a forced re-run) or not in the plan: dropped
    unreadable: int = 0  # lines that are not a whole Attempt (a write cut short): skipped

    def keys(self) -> set[Key]:
        return {_key(a) for a in self.attempts}

    def warnings(self) -> list[str]:
        if not self.unreadable:
            return []
        return [
            f"journal {self.directory}: skipped {self.unreadable} unreadable line(s), "
            "likely a write cut short when the process was killed; their attempts are asked again"
        ]


def read_journal(
    directory: Path | None,
    run_id: str,
    campaign_hash: str,
    stored: set[Key],
    planned: set[Key],
) -> Replay:
    """The journalled attempts of this run and campaign that are planned and not `stored`.

    Never raises for the journal's content: a torn or corrupt line is counted and skipped.
    """
    replay = Replay(directory)
    if directory is None or not directory.is_dir():
        return replay
    replay.segments = segments(directory)
    seen: set[Key] = set()
    for path in replay.segments:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise SafestackError(
                f"cannot read the red-team journal {path}: {exc.strerror}; make it readable, "
                "or move it away to ask its attempts again"
            ) from None
        for line in lines:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                key = (data["target"], data["probe_id"], data["sample"])
                hash(key)  # a list or an object where a string belongs is not a key
                same_run = data["run_id"] == run_id and data["campaign_hash"] == campaign_hash
            except (ValueError, KeyError, TypeError):
                replay.unreadable += 1
                continue
            if not same_run or key not in planned:
                replay.stale += 1
            elif key in stored:
                replay.stored += 1
            elif key not in seen:  # one entry per key is expected; keep the first
                try:
                    replay.attempts.append(Attempt.model_validate(data))
                except ValidationError:
                    replay.unreadable += 1
                    continue
                seen.add(key)
    return replay


def segments(directory: Path) -> list[Path]:
    """The journal's segment files, oldest first."""
    found = [p for p in directory.glob("*.jsonl") if p.stem.isdigit()]
    return sorted(found, key=lambda p: int(p.stem))


class Segment:
    """Journal files whose entries are committed to the store one by one (`Journal.confirm`)."""

    def __init__(self, paths: list[Path], fd: int = -1) -> None:
        self.paths, self.fd = paths, fd
        self.entries = self.bytes = 0
        self.outstanding = 0  # entries not yet committed to the store
        self.dirty = False  # written since the last sync
        self.closed = fd < 0  # no more appends; deleted once all its entries are committed


@dataclass(frozen=True, slots=True)
class Entry:
    """One appended attempt: which segment holds it, and its place in this process's journal."""

    segment: Segment
    seq: int


class Journal:
    """A run's journal in this process. `append` writes an entry at once (it survives the process
    being killed); `await synced(entry)` returns once it is on disk, the entries appended while
    one sync runs sharing the next; `confirm(entry)` once the store has committed it.

    Segments from an earlier process (`adopted`: the files `read_journal` read) are synced once and
    deleted when the `recovered` attempts taken from them are confirmed; with none, at once.
    """

    def __init__(self, directory: Path, adopted: Iterable[Path] = (), recovered: int = 0) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # the segments' descriptors, between the loop and `sync`
        self._dir_dirty = True
        self._written = self._synced = 0  # entries appended, and known to be on disk
        self._syncing: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.adopted = Segment(list(adopted))
        self.adopted.outstanding = recovered
        self._segments = [self.adopted]
        self._collect(self.adopted)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _error("create", directory, exc) from None
        for path in self.adopted.paths:  # the killed process may not have synced them
            try:
                _sync_path(path)
            except OSError as exc:
                raise _error("sync", path, exc) from None
        existing = segments(directory)
        self._next = int(existing[-1].stem) + 1 if existing else 1
        self._current = self._open_segment()

    def append(self, attempt: Attempt) -> Entry:
        """Write the attempt as one line; the OS holds it even if this process is killed now.
        A sync starts unless one is under way (then the next one covers it)."""
        line = attempt.model_dump_json().encode() + b"\n"
        segment = self._current
        if segment.entries >= SEGMENT_ENTRIES or segment.bytes + len(line) > SEGMENT_BYTES:
            segment.closed = True
            self._collect(segment)
            segment = self._current = self._open_segment()
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(segment.fd, view) :]
        except OSError as exc:
            raise _error("write", segment.paths[0], exc) from None
        segment.dirty = True  # after the write: a sync that clears it began after the write
        segment.entries += 1
        segment.bytes += len(line)
        segment.outstanding += 1
        self._written += 1
        if self._syncing is None:
            self._syncing = asyncio.get_running_loop().create_task(self._sync_appended())
        return Entry(segment, self._written)

    async def synced(self, entry: Entry) -> None:
        """Return once the entry is on disk (it would survive a power cut too)."""
        if entry.seq <= self._synced:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((entry.seq, done))
        if self._syncing is None:
            self._syncing = asyncio.get_running_loop().create_task(self._sync_appended())
        await done

    def sync(self) -> None:
        """Put every entry appended so far on disk (blocking; from any thread)."""
        with self._lock:
            dirty = [s for s in self._segments if s.dirty and s.fd >= 0]
            for segment in dirty:
                segment.dirty = False
            fds = [os.dup(s.fd) for s in dirty]  # the loop may close a segment meanwhile
            # A new file's name is durable once its directory is synced (POSIX; Windows cannot).
            sync_dir, self._dir_dirty = self._dir_dirty and os.name == "posix", False
        try:
            for fd in fds:
                _datasync(fd)
            if sync_dir:
                _sync_path(self.directory)
        except OSError as exc:
            raise _error("sync", self.directory, exc) from None
        finally:
            for fd in fds:
                os.close(fd)

    def confirm(self, entry: Entry) -> None:
        """The entry is committed to the store; a closed segment with nothing left goes."""
        entry.segment.outstanding -= 1
        self._collect(entry.segment)

    @property
    def outstanding(self) -> int:
        """Entries not yet committed to the store."""
        return sum(s.outstanding for s in self._segments)

    async def aclose(self) -> None:
        """Stop appending. When every entry is committed, the run's journal goes (its directory
        too, once empty); otherwise it stays for the next run to resume from."""
        if self._syncing is not None:  # let a sync under way finish with its descriptors
            await asyncio.gather(self._syncing, return_exceptions=True)
        done = self.outstanding == 0
        for segment in self._segments:
            segment.closed = True
            self._release(segment)
            if done:
                self._collect(segment)
        if done:
            with contextlib.suppress(OSError):  # not empty: another process's segments
                self.directory.rmdir()

    async def _sync_appended(self) -> None:
        try:
            while self._synced < self._written:
                upto = self._written
                try:
                    await asyncio.to_thread(self.sync)
                except SafestackError as exc:
                    self._settle(exc)
                    return
                self._synced = upto
                self._settle(None)
        finally:
            self._syncing = None

    def _settle(self, error: SafestackError | None) -> None:
        waiting = []
        for seq, done in self._waiters:
            if done.done():
                continue
            if error is not None:
                done.set_exception(error)
            elif seq <= self._synced:
                done.set_result(None)
            else:
                waiting.append((seq, done))
        self._waiters = waiting

    def _collect(self, segment: Segment) -> None:
        if segment.closed and segment.outstanding == 0:
            self._release(segment)
            for path in segment.paths:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            segment.paths = []

    def _release(self, segment: Segment) -> None:
        with self._lock:
            if segment.fd >= 0:
                os.close(segment.fd)
                segment.fd = -1

    def _open_segment(self) -> Segment:
        path = self.directory / f"{self._next:06d}.jsonl"
        self._next += 1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as exc:
            raise _error("create", path, exc) from None
        segment = Segment([path], fd)
        with self._lock:
            self._segments.append(segment)
            self._dir_dirty = True
        return segment


def _sync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _error(doing: str, path: Path, exc: OSError) -> SafestackError:
    return SafestackError(
        f"cannot {doing} the red-team journal {path}: {exc.strerror}; it keeps answered attempts "
        "safe until they are stored: free disk space or make the directory writable"
    )


def _key(attempt: Attempt) -> Key:
    return (attempt.target, attempt.probe_id, attempt.sample)
