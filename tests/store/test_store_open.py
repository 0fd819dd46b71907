"""Opening a Store: migrations, idempotence, URLs, and the errors a user sees when it goes wrong."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from safestack.errors import StoreError
from safestack.records import AuditEvent, Verdict
from safestack.store import KeyLimits, Store, head_revision
from safestack.store.migrate import _config as _alembic  # the Config the Store itself uses
from safestack.store.migrate import upgrade_schema


def test_migrations_create_the_tables_at_head(db_url: str) -> None:
    with Store.open(db_url, migrate=False) as store:
        assert store.revision() is None
        assert "judgements" not in inspect(store.engine).get_table_names()

        store.upgrade()

        assert store.revision() == head_revision()
        schema = inspect(store.engine)
        assert {
            "judgements",
            "api_keys",
            "audit_events",
            "redteam_runs",
            "attempts",
            "training_sets",
            "media_banks",
            "media_hashes",
            "media_cases",
            "models",
            "rounds",
        } <= set(schema.get_table_names())
        columns = {column["name"] for column in schema.get_columns("judgements")}
        assert columns == {
            "id",
            "created_at",
            "run_id",
            "input_digest",
            "input_text",
            "kind",
            "flagged",
            "action",
            "severity",
            "categories",
            "verdict",
            "policy",
            "schema_version",
        }
        indexed = {tuple(index["column_names"]) for index in schema.get_indexes("judgements")}
        assert {("run_id",), ("input_digest",), ("flagged",)} <= indexed
        audit_indexed = {
            tuple(index["column_names"]) for index in schema.get_indexes("audit_events")
        }
        assert {("created_at",), ("key_id",)} <= audit_indexed
        key_columns = {column["name"] for column in schema.get_columns("api_keys")}
        assert "secret_hash" in key_columns
        assert not key_columns & {"secret", "token", "key"}


def test_a_database_at_0001_upgrades_to_head_and_keeps_its_rows(
    db_url: str, blocked: Verdict
) -> None:
    # The database as the previous release left it: judgements only, revision 0001.
    with Store.open(db_url, migrate=False) as old, old.engine.begin() as connection:
        upgrade_schema(connection, "0001")
    with Store.open(db_url, migrate=False) as old:
        assert old.revision() == "0001"
        assert "api_keys" not in inspect(old.engine).get_table_names()
        old.judgements.record(blocked, "kept across the upgrade", kind="prompt", run_id="old")

    with Store.open(db_url) as store:
        assert store.revision() == head_revision()
        assert store.judgements.count(run_id="old") == 1
        key, secret = store.keys.create("after-upgrade", ["chat"])
        assert store.keys.verify(secret) == key
        store.audit.record(AuditEvent(endpoint="/v1/models", status_code=200, latency_ms=1.0))
        assert len(store.audit.events()) == 1


def test_keys_made_before_0004_get_the_servers_work_limits(db_url: str) -> None:
    with Store.open(db_url, migrate=False) as old, old.engine.begin() as connection:
        upgrade_schema(connection, "0003")
    with Store.open(db_url, migrate=False) as old, old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, secret_hash, scopes, models, created_at) "
                "VALUES ('ssk_0000beef', 'old', :hash, '[\"chat\"]', '[]', :now)"
            ),
            {"hash": "0" * 64, "now": "2026-01-01T00:00:00+00:00"},
        )

    with Store.open(db_url) as store:
        key = store.keys.get("ssk_0000beef")
        assert key is not None
        assert key.limits == KeyLimits()  # every limit the server's
        with store.engine.begin() as connection, _alembic(connection) as config:
            command.downgrade(config, "0003")
        assert "limits" not in {c["name"] for c in inspect(store.engine).get_columns("api_keys")}


def test_0002_downgrades_to_0001_without_touching_judgements(db_url: str, blocked: Verdict) -> None:
    with Store.open(db_url) as store:
        store.judgements.record(blocked, "stays", kind="prompt", run_id="r")
        with store.engine.begin() as connection, _alembic(connection) as config:
            command.downgrade(config, "0001")
        assert store.revision() == "0001"
        tables = set(inspect(store.engine).get_table_names())
        assert "judgements" in tables and not tables & {"api_keys", "audit_events"}
        assert store.judgements.count(run_id="r") == 1


def test_audit_events_of_0004_are_completed_after_the_upgrade(db_url: str) -> None:
    with Store.open(db_url, migrate=False) as old, old.engine.begin() as connection:
        upgrade_schema(connection, "0004")
        connection.execute(
            text(
                "INSERT INTO audit_events (id, created_at, endpoint, status_code, latency_ms, "
                "categories, scores, stream, schema_version) VALUES ('old', :now, "
                "'/v1/moderations', 200, 1.5, '[]', '{}', false, 1)"
            ),
            {"now": "2026-03-01 12:00:00+00:00"},
        )
    with Store.open(db_url) as store:
        [event] = store.audit.events()
        assert (event.id, event.status_code, event.completed) == ("old", 200, True)
        store.audit.start(
            AuditEvent(id="open", endpoint="/v1/chat/completions", latency_ms=0.0, completed=False)
        )
        with store.engine.begin() as connection, _alembic(connection) as config:
            command.downgrade(config, "0004")
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT id, status_code FROM audit_events ORDER BY id"))
            assert rows.all() == [("old", 200), ("open", 500)]


@pytest.mark.postgres
def test_postgresql_json_columns_are_jsonb(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        schema = inspect(store.engine)
        types = {
            (table, column["name"]): str(column["type"])
            for table in ("judgements", "api_keys", "audit_events")
            for column in schema.get_columns(table)
        }
    json_columns = [
        ("judgements", "verdict"),
        ("judgements", "categories"),
        ("api_keys", "scopes"),
        ("api_keys", "models"),
        ("audit_events", "categories"),
        ("audit_events", "scores"),
        ("audit_events", "content"),
    ]
    assert {types[column] for column in json_columns} == {"JSONB"}
    with Store.open(pg_url) as store, store.engine.connect() as connection:
        kinds = connection.exec_driver_sql(
            "SELECT DISTINCT data_type FROM information_schema.columns "
            "WHERE column_name IN ('created_at', 'revoked_at') "
            "AND table_name IN ('api_keys', 'audit_events')"
        ).scalars()
        assert set(kinds) == {"timestamp with time zone"}


def test_opening_twice_is_idempotent_and_keeps_rows(db_url: str, blocked: Verdict) -> None:
    with Store.open(db_url) as first:
        first.judgements.record(blocked, "some text", kind="prompt", run_id="r1")
    with Store.open(db_url) as second:
        assert second.revision() == head_revision()
        assert second.judgements.count() == 1


def test_a_database_newer_than_this_release_is_refused(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match=r"revision '9999'.*upgrade safestack"):
        Store.open(db_url)


@pytest.mark.postgres
def test_plain_postgresql_urls_use_psycopg_3(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    with Store.open(pg_url) as store:
        assert store.engine.dialect.driver == "psycopg"
        assert store.display_url.startswith("postgresql+psycopg://")


def test_unreachable_postgresql_names_the_url_with_the_password_masked() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("postgresql://safestack:s3cret-pw@127.0.0.1:1/safestack")

    message = str(caught.value)
    assert "postgresql+psycopg://safestack:***@127.0.0.1:1/safestack" in message
    assert "s3cret-pw" not in message
    assert "SAFESTACK_DB_URL" in message
    assert "\n" not in message
    assert "sqlalche.me" not in message
    # Raised `from None`: the CLI prints one line, with no chained driver traceback under it.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_url_that_is_not_a_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("not a url at all")


def test_sqlite_creates_the_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".safestack" / "safestack.db"
    with Store.open(f"sqlite:///{path}") as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert path.is_file()


def test_sqlite_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db.*file is not a database"):
        Store.open(f"sqlite:///{path}")


def test_sqlite_in_memory_migrates_on_the_stores_own_connection(blocked: Verdict) -> None:
    with Store.open("sqlite://") as store:
        assert store.revision() == head_revision()
        store.judgements.record(blocked, "in memory", kind="response", run_id="mem")
        assert store.judgements.count(run_id="mem") == 1


def test_replicas_opening_a_new_database_at_once_all_succeed(db_url: str) -> None:
    def open_and_close(_: int) -> str | None:
        with Store.open(db_url) as store:
            return store.revision()

    with ThreadPoolExecutor(max_workers=6) as pool:
        revisions = list(pool.map(open_and_close, range(6)))
    assert revisions == [head_revision()] * 6
