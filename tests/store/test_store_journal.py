"""The audit journal: durable appends, drains into the store that lose nothing and add nothing
twice, segments shared safely by several appenders, and writes that fail cleanly."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import wait
from datetime import UTC, datetime
from pathlib import Path

import pytest

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.store import Store, Timeouts
from safestack.store.journal import SEGMENT, AuditJournal, journal_directory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _opening(id: str) -> AuditEvent:
    return AuditEvent(
        id=id, created_at=T0, endpoint="/v1/chat/completions", latency_ms=0.5, completed=False
    )


def _completion(id: str, status: int = 200) -> AuditEvent:
    return AuditEvent(
        id=id, created_at=T0, endpoint="/v1/chat/completions", latency_ms=9.0, status_code=status
    )


@pytest.fixture
def journal(tmp_path: Path) -> AuditJournal:
    opened = AuditJournal(tmp_path / "journal")
    yield opened
    opened.close()


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SEGMENT))


def test_an_appended_event_is_on_disk_when_its_future_is_done(journal: AuditJournal) -> None:
    journal.append(_opening("a")).result(timeout=10)
    [segment] = _segments(journal.directory)
    assert AuditEvent.model_validate_json(segment.read_bytes().splitlines()[0]).id == "a"


def test_a_drain_moves_events_into_the_store_and_deletes_them(
    journal: AuditJournal, store: Store
) -> None:
    for future in [journal.append(_opening("a")), journal.append(_completion("a"))]:
        future.result(timeout=10)
    journal.append(_opening("b")).result(timeout=10)

    drained = journal.drain(store.audit)

    assert drained.records == 3  # records; a's two are one row in the store
    events = {e.id: e for e in store.audit.events()}
    assert events["a"].completed and events["a"].status_code == 200
    assert not events["b"].completed and events["b"].status_code is None
    # Only the fresh (empty) segment this process appends to is left.
    [segment] = _segments(journal.directory)
    assert segment.stat().st_size == 0
    assert journal.drain(store.audit).records == 0


def test_a_drain_repeated_after_a_crash_adds_nothing_twice(
    journal: AuditJournal, store: Store, tmp_path: Path
) -> None:
    # A crash between the store's commit and the segment's deletion: the segment is drained again.
    for id in ("a", "b", "c"):
        journal.append(_completion(id)).result(timeout=10)
    journal.append(_opening("d")).result(timeout=10)
    journal.rotate()
    kept = tmp_path / "kept"
    kept.mkdir()
    for segment in _segments(journal.directory):
        shutil.copy(segment, kept / segment.name)
    first = journal.drain(store.audit)
    for segment in kept.iterdir():
        shutil.copy(segment, journal.directory / segment.name)

    second = journal.drain(store.audit)

    assert first.records == second.records == 4
    events = store.audit.events(limit=None)
    assert sorted(e.id for e in events) == ["a", "b", "c", "d"]
    assert {e.id: e.completed for e in events} == {"a": True, "b": True, "c": True, "d": False}


def test_an_opening_record_drained_late_never_undoes_its_completion(
    journal: AuditJournal, store: Store
) -> None:
    store.audit.complete(_completion("x", status=502))  # the store took the outcome directly
    journal.append(_opening("x")).result(timeout=10)  # the opening went to the journal
    journal.drain(store.audit)
    [event] = store.audit.events()
    assert event.completed and event.status_code == 502


def test_a_store_that_is_down_keeps_the_segment_for_the_next_drain(
    journal: AuditJournal, tmp_path: Path
) -> None:
    journal.append(_completion("kept")).result(timeout=10)
    url = f"sqlite:///{tmp_path}/busy.db"
    with Store.open(url, timeouts=Timeouts(busy=0.1)) as store:
        holder = sqlite3.connect(f"{tmp_path}/busy.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the store says no
        with pytest.raises(StoreError, match="locked"):
            journal.drain(store.audit)
        holder.execute("ROLLBACK")
        assert journal.drain(store.audit).records == 1
        assert [e.id for e in store.audit.events()] == ["kept"]


def test_a_live_journals_open_segment_is_not_taken_by_another(
    journal: AuditJournal, store: Store
) -> None:
    other = AuditJournal(journal.directory)  # another worker process on the same directory
    try:
        other.append(_completion("theirs")).result(timeout=10)
        journal.append(_completion("ours")).result(timeout=10)
        journal.drain(store.audit)
        assert [e.id for e in store.audit.events()] == ["ours"]
    finally:
        other.close()  # its process ends: its segment is free for anyone to drain
    journal.drain(store.audit)
    assert sorted(e.id for e in store.audit.events()) == ["ours", "theirs"]


def test_a_torn_last_line_is_skipped_and_the_rest_drained(
    journal: AuditJournal, store: Store
) -> None:
    journal.append(_completion("whole")).result(timeout=10)
    journal.close()  # "the process died" mid-write: the last line is cut short
    [segment] = _segments(journal.directory)
    with segment.open("ab") as file:
        file.write(_completion("torn").model_dump_json().encode()[:40])
    successor = AuditJournal(journal.directory)
    try:
        drained = successor.drain(store.audit)
    finally:
        successor.close()
    assert (drained.records, drained.skipped_lines) == (1, 1)
    assert [e.id for e in store.audit.events()] == ["whole"]


def test_a_failed_write_is_reported_and_leaves_no_half_line(
    journal: AuditJournal, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal.append(_completion("before")).result(timeout=10)
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    failed = journal.append(_completion("lost"))
    wait([failed], timeout=10)
    assert isinstance(failed.exception(), OSError)
    monkeypatch.setattr(os, "write", real_write)

    journal.append(_completion("after")).result(timeout=10)
    drained = journal.drain(store.audit)
    assert drained.skipped_lines == 0
    assert sorted(e.id for e in store.audit.events()) == ["after", "before"]


def test_a_journal_that_cannot_be_created_says_where_and_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="SAFESTACK_AUDIT_JOURNAL_DIR"):
        AuditJournal(blocker / "journal")


def test_each_database_has_its_own_journal_directory(tmp_path: Path) -> None:
    one = journal_directory(tmp_path, "sqlite:///one.db")
    assert one == journal_directory(tmp_path, "sqlite:///one.db")
    assert one != journal_directory(tmp_path, "postgresql+psycopg://gw@db/safestack")


def test_processes_appending_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """Four processes append 200 events each to one directory while this one drains (the
    journal's own property: one backend is enough)."""
    store = Store.open(f"sqlite:///{tmp_path}/store.db")
    directory = tmp_path / "shared"
    writer = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime
        from safestack.records import AuditEvent
        from safestack.store.journal import AuditJournal
        journal = AuditJournal(__import__("pathlib").Path({str(directory)!r}))
        futures = [
            journal.append(AuditEvent(
                id=f"{{sys.argv[1]}}-{{i}}", endpoint="/v1/moderations", status_code=200,
                latency_ms=1.0,
            ))
            for i in range(200)
        ]
        for future in futures:
            future.result(timeout=60)
        journal.close()
        """
    )
    journal = AuditJournal(directory)
    try:
        processes = [
            subprocess.Popen([sys.executable, "-c", writer, f"p{n}"], env=os.environ)
            for n in range(4)
        ]
        while any(p.poll() is None for p in processes):
            journal.drain(store.audit)
            time.sleep(0.05)
        assert [p.returncode for p in processes] == [0, 0, 0, 0]
        journal.drain(store.audit)
        ids = [e.id for e in store.audit.events(limit=None)]
    finally:
        journal.close()
        store.close()
    assert len(ids) == len(set(ids)) == 800


def test_an_unsynced_append_is_done_when_written_and_synced_with_its_batch(
    journal: AuditJournal, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sync = os.fdatasync
    syncing = threading.Event()
    release = threading.Event()

    def slow_sync(fd: int) -> None:
        syncing.set()
        release.wait(10)
        real_sync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_sync)
    unsynced = journal.append(_completion("outcome"), sync=False)
    synced = journal.append(_opening("opening"))
    assert syncing.wait(10)
    unsynced.result(timeout=10)  # written: the disk's sync is still under way
    assert not synced.done()
    release.set()
    synced.result(timeout=10)
    assert journal.drain(store.audit).records == 2


def test_a_failed_sync_fails_the_synced_appends_and_keeps_what_was_written(
    journal: AuditJournal, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_sync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken_sync)
    synced = journal.append(_opening("a"))
    wait([synced], timeout=10)
    assert isinstance(synced.exception(), OSError)
    monkeypatch.undo()
    journal.append(_completion("b")).result(timeout=10)  # a fresh segment
    journal.drain(store.audit)
    # The caller of "a" wrote it to the store itself; the journal's copy adds nothing twice.
    assert sorted(e.id for e in store.audit.events()) == ["a", "b"]


def test_an_outage_grows_one_segment_not_one_per_drain(
    journal: AuditJournal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("safestack.store.journal.DRAIN_BATCH", 2)  # several transactions
    path = tmp_path / "busy.db"
    with Store.open(f"sqlite:///{path}", timeouts=Timeouts(busy=0.05)) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        for n in range(5):
            journal.append(_completion(f"e{n}")).result(timeout=10)
            with pytest.raises(StoreError):
                journal.drain(store.audit)
        assert len(_segments(journal.directory)) == 2  # the one waiting, the one appended to
        holder.execute("ROLLBACK")
        holder.close()
        assert journal.drain(store.audit).records == 5
        assert len(store.audit.events()) == 5
