"""Store fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL tests get a database of their own, created for the session on the server at
SAFESTACK_TEST_PG_URL and dropped at the end; each test starts from an empty schema. Without a
server the PostgreSQL tests are skipped locally and fail on CI (CI=true), where one must be running.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from safestack.records import Action, Finding, Span, Verdict
from safestack.store import Store
from services import fresh_postgres_database


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh, uniquely named PostgreSQL database for this test session."""
    with fresh_postgres_database("safestack_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied, as the plain postgresql:// URL a user writes."""
    engine = create_engine(pg_database)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    return pg_database.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend, not yet opened."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/safestack.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def allowed() -> Verdict:
    """A Verdict that lets the input through."""
    return Verdict(
        flagged=False,
        action=Action.ALLOW,
        severity=0,
        category_scores={"hate": 0.02},
        policy="default@1",
        detectors=["rules@1"],
    )


@pytest.fixture
def blocked() -> Verdict:
    """A Verdict as the judge would give it, with a finding carrying a span and evidence."""
    category, severity = "hate", 6
    return Verdict(
        flagged=True,
        action=Action.BLOCK,
        severity=severity,
        flagged_categories=[category],
        category_scores={category: 0.9},
        category_severities={category: severity},
        findings=[
            Finding(
                category=category,
                score=0.9,
                severity=severity,
                detector="rules",
                detector_version="1",
                span=Span(start=4, end=9),
                evidence="vermin",
                label="slur",
            )
        ],
        normalisations=["homoglyphs-folded"],
        policy="default@1",
        detectors=["rules@1"],
    )
