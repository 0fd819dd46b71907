"""The audit journal: a write-ahead log of audit events on local disk, drained into the store.

The gateway appends each request's records here (JSON Lines, one AuditEvent a line) and waits for
them to be on disk (fdatasync) before it forwards or answers; a drainer then moves them into the
store in batches (`AuditLog.absorb`, idempotent by event id) and deletes what the store took. So a
store that is down, slow or frozen delays the audit log without losing a record, and a crash loses
nothing that was acknowledged: the next process over the same directory drains it.

Layout: one directory per database, holding segment files `<time>-<pid>-<random>.jsonl`. A process
appends to one segment of its own, which it holds under an exclusive `flock` (so several worker
processes share the directory safely); the drainer closes it (rotation) and takes any segment whose
lock is free: closed ones and those of processes that died. Appends are group-committed: requests
waiting at the same moment share one write and one fdatasync.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.store.audit import AuditLog

log = logging.getLogger("safestack.store")

SEGMENT = ".jsonl"
DRAIN_BATCH = 2000  # events per store transaction when draining (memory stays bounded)
_OPENING = ".new"  # a segment being created: not yet locked, never drained


def journal_directory(base: Path, database_url: str) -> Path:
    """The journal of the database at `database_url` under `base`: one subdirectory per database,
    so that gateways in front of different databases never drain into the wrong one."""
    return base / hashlib.sha256(database_url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Drained:
    """What one drain moved into the store."""

    records: int = 0
    segments: int = 0
    skipped_lines: int = 0


class _Segment:
    """The file this process appends to, held under an exclusive lock while it is open."""

    def __init__(self, directory: Path) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        opening = directory / (name + _OPENING)
        self.path = directory / (name + SEGMENT)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self.fd = os.open(opening, flags, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Drainers look only at *.jsonl, so the file is locked before they can see it.
            os.rename(opening, self.path)
            _sync_directory(directory)
        except BaseException:
            os.close(self.fd)
            raise
        self.size = 0
        self.records = 0

    def write(self, data: bytes) -> None:
        """Append `data` (to the OS's cache: it survives this process, not a power cut); on
        failure cut the segment back to where it was, so a half-written line never runs into
        the next one."""
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, data[written:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)

    def sync(self) -> None:
        """Make what was written durable (it survives a power cut)."""
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)  # releases the lock: the segment is now the drainer's


class AuditJournal:
    """This process's journal in `directory` (see the module's docstring). Thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._segment: _Segment | None = _Segment(directory)
        except OSError as exc:
            raise StoreError(
                f"cannot open the audit journal in {directory}: {exc.strerror or exc}; choose a "
                "writable directory in SAFESTACK_AUDIT_JOURNAL_DIR"
            ) from None
        self._pending: list[tuple[bytes, bool, concurrent.futures.Future[None]]] = []
        self._wakeup = threading.Condition()
        self._io = threading.Lock()  # held while the writer writes, and to swap segments
        self._draining = threading.Lock()
        self._closing = False
        self._writer = threading.Thread(
            target=self._write_loop, name="safestack-audit-journal", daemon=True
        )
        self._writer.start()

    # -- appending -----------------------------------------------------------------------------
    def append(self, event: AuditEvent, *, sync: bool = True) -> concurrent.futures.Future[None]:
        """Queue `event`; the future is done when it is on disk (fdatasync'd), or fails with the
        OSError. `sync=False`: done once it is written (it survives this process dying, not a
        power cut), made durable with the same batch right after."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        line = event.model_dump_json().encode() + b"\n"
        with self._wakeup:
            if self._closing:
                raise StoreError("the audit journal is closed")
            self._pending.append((line, sync, future))
            self._wakeup.notify()
        return future

    def _write_loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._pending and not self._closing:
                    self._wakeup.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closing:
                    return
            with self._io:
                try:
                    if self._segment is None:  # the last one failed; start afresh
                        self._segment = _Segment(self.directory)
                    self._segment.write(b"".join(line for line, _, _ in batch))
                    self._segment.records += len(batch)
                except OSError as exc:
                    self._retire()
                    _settle(batch, exc)
                    continue
                _settle([entry for entry in batch if not entry[1]], None)
                try:
                    self._segment.sync()
                except OSError as exc:
                    # What was written stays (drained later; the callers' fallback writes the
                    # same events to the store, which takes each id once).
                    self._retire()
                    _settle([entry for entry in batch if entry[1]], exc)
                    continue
            _settle([entry for entry in batch if entry[1]], None)

    def _retire(self) -> None:
        """Give up the current segment after a failed write (called holding `_io`)."""
        if self._segment is not None:
            with contextlib.suppress(OSError):
                self._segment.close()
            self._segment = None

    def rotate(self) -> None:
        """Close the current segment if it holds records (it becomes drainable) and go on in a
        new one, created before the swap so appends wait only for the swap itself."""
        with self._io:
            current = self._segment
            if current is not None and current.records == 0:
                return
        fresh = _Segment(self.directory)
        with self._io:
            old, self._segment = self._segment, fresh
        if old is not None:
            old.close()

    # -- draining ------------------------------------------------------------------------------
    def drain(self, audit: AuditLog) -> Drained:
        """Move every finished segment (this process's after rotating it, and any whose process
        is gone) into `audit`, oldest first; each is deleted once the store has committed it.

        A StoreError (the store is down) stops the drain and leaves the rest for the next one.
        Repeating a drain after a crash between the commit and the delete adds nothing twice.
        """
        with self._draining:
            # What is waiting first: while the store is down this fails before rotating, so an
            # outage grows one segment rather than adding one per drain.
            before = self._drain_closed(audit)
            try:
                self.rotate()
            except OSError as exc:
                log.warning("cannot rotate the audit journal: %s", exc)
            after = self._drain_closed(audit)
            _remove_abandoned_openings(self.directory)
            return Drained(
                before.records + after.records,
                before.segments + after.segments,
                before.skipped_lines + after.skipped_lines,
            )

    def _drain_closed(self, audit: AuditLog) -> Drained:
        records = segments = skipped = 0
        for path in sorted(self.directory.glob("*" + SEGMENT)):
            taken = _drain_segment(path, audit)
            if taken is not None:
                records += taken[0]
                skipped += taken[1]
                segments += 1
        return Drained(records, segments, skipped)

    def backlog(self) -> int:
        """Bytes in segments not yet drained (this process's open one included)."""
        total = 0
        for path in self.directory.glob("*" + SEGMENT):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def close(self) -> None:
        """Write what is queued, stop the writer and release this process's segment."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._writer.join(timeout=30)
        with self._io:
            self._retire()


def _settle(
    entries: list[tuple[bytes, bool, concurrent.futures.Future[None]]], error: OSError | None
) -> None:
    for _, _, future in entries:
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _drain_segment(path: Path, audit: AuditLog) -> tuple[int, int] | None:
    """Absorb one segment into the store and delete it: (records, unreadable lines), or None when
    it is not ours to take (a live process's open segment, or already drained)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live process appends to it
        if os.fstat(fd).st_nlink == 0:
            return None  # another drainer took it while we waited
        records = skipped = 0
        batch: list[AuditEvent] = []
        with os.fdopen(os.dup(fd), "rb") as file:
            for number, line in enumerate(file, 1):
                event = _parse(path, number, line)
                if event is None:
                    if line.strip():
                        skipped += 1
                    continue
                batch.append(event)
                if len(batch) == DRAIN_BATCH:
                    audit.absorb(batch)  # a StoreError leaves the segment for the next drain
                    records += len(batch)
                    batch = []
        if batch:
            audit.absorb(batch)
            records += len(batch)
        os.unlink(path)
        return records, skipped
    finally:
        os.close(fd)


def _parse(path: Path, number: int, line: bytes) -> AuditEvent | None:
    if not line.strip():
        return None
    try:
        return AuditEvent.model_validate_json(line)
    except ValidationError as exc:
        # Only a write cut short by a crash leaves one (a failed write is cut back), and then it
        # was never acknowledged: no request went on on its strength.
        log.warning("%s:%d: not an audit event, skipped: %s", path, number, exc.errors()[0])
        return None


def _remove_abandoned_openings(directory: Path) -> None:
    """Delete segments whose process died between creating and locking them (they are empty)."""
    for path in directory.glob("*" + _OPENING):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_size == 0 and time.time() - os.fstat(fd).st_mtime > 60:
                os.unlink(path)
        except (BlockingIOError, FileNotFoundError):
            pass
        finally:
            os.close(fd)


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so a file created or renamed in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
