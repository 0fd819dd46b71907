"""The real services tests use (PostgreSQL, Redis): where they are, and what a missing one means.

Locally a missing service skips its tests with a loud reason; on CI (CI=true) it fails them, as
CI machines must have both running on loopback. Imported by name from the test folders.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

PG_URL = os.environ.get("SAFESTACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SAFESTACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(message: str) -> None:
    """Fail on CI, skip elsewhere: a silent skip would hide a broken service in CI."""
    if on_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A uniquely named database on the test server (psycopg URL), dropped afterwards."""
    server = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        admin.dispose()
        first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        unavailable(
            f"PostgreSQL TESTS NOT RUN: cannot create a database on "
            f"{server.render_as_string(hide_password=True)} ({first_line}); "
            "start PostgreSQL or point SAFESTACK_TEST_PG_URL at one"
        )
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
