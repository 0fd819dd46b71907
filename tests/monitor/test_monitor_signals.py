"""Per-account signals from a small known log, read back from a real store (SQLite and
PostgreSQL), and audit rows of older schemas read without failing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from monitor_logs import T0, event, write_log

from safestack.monitor.analysis import analyse
from safestack.monitor.signals import Activity
from safestack.policy import default_policy
from safestack.stats import wilson_interval
from safestack.store import Database, Store
from services import fresh_postgres_database

HOUR = timedelta(hours=1)


def known_log() -> list[tuple[object, str | None]]:
    events = []
    # key A: ten requests, one a minute; four flagged (two cyber at high severity, a jailbreak,
    # a violence one at medium).
    flags = {2: {"cyber": 0.9}, 3: {"cyber": 0.95}, 5: {"jailbreak": 0.7}, 7: {"violence": 0.55}}
    events += [(event("A", m, flags.get(m)), None) for m in range(10)]
    # key B: fifteen single requests, then five in one minute; nothing flagged.
    events += [(event("B", m), None) for m in range(10, 25)]
    events += [(event("B", 30.2, number=n), None) for n in range(5)]
    # two end users of one app key; u1 has one harassment flag.
    events += [
        (event("app", 40 + m, {"harassment": 0.6} if m == 0 else None), "u1") for m in range(4)
    ]
    events += [(event("app", 50 + m), "u2") for m in range(2)]
    events.append((event(None, 5), None))  # auth off: counts for the baseline only
    # The next hour: A tries a category it never had flagged, and a new key C starts.
    events.append((event("A", 70, {"cbrn": 0.95}), None))
    events.append((event("A", 71, {"cyber": 0.9}), None))
    events.append((event("C", 80, {"cyber": 0.9}), None))
    return events  # type: ignore[return-value]


def activity_of(url: str) -> Activity:
    with Database.open(url, migrate=False) as database:
        return analyse(database, default_policy()).activity


def row(table: pl.DataFrame, account: str) -> dict[str, object]:
    found = table.filter(pl.col("account") == account)
    assert found.height == 1, f"{account} not in {table['account'].to_list()}"
    return found.row(0, named=True)


def test_signals_of_a_known_log(tmp_path: Path) -> None:
    activity = activity_of(write_log(tmp_path / "audit.db", known_log()))
    table = activity.signals(T0 + HOUR, HOUR)
    assert sorted(table["account"]) == ["key:A", "key:B", "key:app", "user:app:u1", "user:app:u2"]
    base = 5 / 37  # 37 requests in the hour, 5 flagged (the keyless one counts here too)
    a = row(table, "key:A")
    assert (a["requests"], a["flagged"], a["blocked"]) == (10, 4, 4)
    assert (a["high_severity"], a["attacks"], a["burst"], a["distinct_categories"]) == (2, 1, 1, 3)
    assert a["flag_rate"] == pytest.approx(0.4)
    assert a["flag_rate_low"] == pytest.approx(wilson_interval(4, 10)[0])
    assert a["flag_rate_lift"] == pytest.approx(wilson_interval(4, 10)[0] / base)
    b = row(table, "key:B")
    assert (b["requests"], b["flagged"], b["burst"], b["flag_rate_lift"]) == (20, 0, 5, 0.0)
    u1 = row(table, "user:app:u1")
    assert (u1["kind"], u1["requests"], u1["flagged"]) == ("user", 4, 1)
    app = row(table, "key:app")
    assert (app["kind"], app["requests"], app["flagged"]) == ("key", 6, 1)
    assert activity.baseline(T0 + HOUR, HOUR) == {
        "requests": 37,
        "flag_rate": pytest.approx(base),
        "block_rate": pytest.approx(base),
    }


def test_category_signals_against_the_deployment_rate(tmp_path: Path) -> None:
    activity = activity_of(write_log(tmp_path / "audit.db", known_log()))
    table = activity.category_signals(T0 + HOUR, HOUR)
    cyber = table.filter((pl.col("account") == "key:A") & (pl.col("category") == "cyber")).row(
        0, named=True
    )
    low = wilson_interval(2, 10)[0]
    assert (cyber["category_flags"], cyber["category_rate"]) == (2, 0.2)
    assert cyber["category_rate_low"] == pytest.approx(low)
    assert cyber["category_lift"] == pytest.approx(low / (2 / 37))


def test_novelty_counts_only_categories_new_to_an_account_with_history(tmp_path: Path) -> None:
    activity = activity_of(write_log(tmp_path / "audit.db", known_log()))
    table = activity.signals(T0 + 2 * HOUR, HOUR)
    assert row(table, "key:A")["novel_categories"] == 1  # cbrn; cyber was seen in the first hour
    assert row(table, "key:C")["novel_categories"] == 0  # no history before the window


def test_postgresql_gives_the_same_signals(tmp_path: Path) -> None:
    sqlite = activity_of(write_log(tmp_path / "audit.db", known_log()))
    with fresh_postgres_database("safestack_monitor") as url:
        with Store.open(url) as store:
            from safestack.monitor.simulate import add_end_user_column, write_events

            add_end_user_column(store)
            write_events(store, iter(known_log()))  # type: ignore[arg-type]
        postgres = activity_of(url)
    for at in (T0 + HOUR, T0 + 2 * HOUR):
        assert postgres.signals(at, HOUR).equals(sqlite.signals(at, HOUR))


def test_rows_of_older_schemas_and_missing_fields_are_counted_not_fatal(tmp_path: Path) -> None:
    """An audit table from before `completed` and `end_user`, with a row missing its time, one
    with an unreadable time and one with malformed categories."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE audit_events (id TEXT PRIMARY KEY, created_at DATETIME, key_id TEXT, "
            "endpoint TEXT, categories JSON, scores JSON)"
        )
        connection.exec_driver_sql(
            "INSERT INTO audit_events VALUES "
            "('1', '2026-12-01 00:00:01.000000', 'K', '/v1/chat/completions', '[\"cyber\"]', '{\"cyber\": 0.9}'),"
            "('2', NULL, 'K', '/v1/chat/completions', '[]', '{}'),"
            "('3', 'yesterday', 'K', '/v1/chat/completions', '[]', '{}'),"
            "('4', '2026-12-01 00:00:02.000000', 'K', '/v1/chat/completions', 'not json', '{}')"
        )
    engine.dispose()
    activity = activity_of(url)
    stats = activity.stats.as_dict()
    assert stats["rows"] == 4 and stats["events"] == 2
    assert stats["skipped"] == {"no or unreadable created_at": 2}
    assert stats["repaired"] == {"malformed categories (read as none)": 1}
    assert set(stats["missing_columns"]) == {"action", "end_user"}
    k = row(activity.signals(T0 + HOUR, HOUR), "key:K")
    assert (k["requests"], k["flagged"], k["high_severity"]) == (2, 1, 1)
