"""Every wait on the database is bounded: connecting, a statement, a free pooled connection, another
SQLite writer. A database that does not answer is a StoreError within seconds, never a hang."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import text

from safestack.errors import StoreError
from safestack.records import AuditEvent
from safestack.store import Store, Timeouts


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_postgresql_port_that_never_answers_fails_within_the_connect_timeout(
    silent_port: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        Store.open(
            f"postgresql://postgres@127.0.0.1:{silent_port}/safestack",
            timeouts=Timeouts(connect=2),
        )
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed
    message = str(caught.value)
    assert f"cannot connect to postgresql+psycopg://postgres@127.0.0.1:{silent_port}" in message
    assert "timeout" in message and "SAFESTACK_DB_URL" in message


@pytest.mark.postgres
def test_a_postgresql_statement_over_the_limit_is_cancelled(pg_url: str) -> None:
    with Store.open(pg_url, timeouts=Timeouts(statement=0.5)) as store:
        started = time.monotonic()
        with (
            pytest.raises(StoreError, match="statement timeout"),
            store.transaction("sleeping") as session,
        ):
            session.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
        # Options already in the URL are kept beside the limit.
        with Store.open(
            pg_url + "?options=-c%20application_name%3Dsafestack-test",
            timeouts=Timeouts(statement=0.5),
        ) as other:
            with other.connect() as connection:
                shown = connection.exec_driver_sql("SHOW statement_timeout").scalar()
                name = connection.exec_driver_sql("SHOW application_name").scalar()
            assert (shown, name) == ("500ms", "safestack-test")


def test_another_sqlite_writer_holds_a_write_for_the_busy_timeout_only(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with Store.open(f"sqlite:///{path}", timeouts=Timeouts(busy=0.2)) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            store.audit.record(AuditEvent(endpoint="/v1/models", status_code=200, latency_ms=1))
        assert time.monotonic() - started < 2
        holder.execute("ROLLBACK")
        holder.close()


def test_no_free_pooled_connection_is_a_store_error_after_the_pool_timeout(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/pool.db"
    with Store.open(url, timeouts=Timeouts(pool=0.3)) as store, ExitStack() as held:
        for _ in range(15):  # SQLAlchemy's pool: 5 connections and 10 more on demand
            held.enter_context(store.engine.connect())
        started = time.monotonic()
        with pytest.raises(StoreError, match="no free database connection"):
            store.revision()
        assert time.monotonic() - started < 2
