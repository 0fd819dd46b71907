"""The enforcement log on SQLite and PostgreSQL: decisions appended and read back, what is in
force (lapsed and lifted measures left out, shadow ones never in), the end-user hashing key made
once, and audit rows from before migration 0011 still readable."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, text

from safestack.records import AuditEvent, EnforcementAction, EnforcementDecision
from safestack.store import Store
from safestack.store.migrate import _config as _alembic  # the Config the Store itself uses
from safestack.store.migrate import upgrade_schema

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = "key:ssk_0000beef"
USER = "user:ssk_0000beef:" + "ab" * 32


def decision(account: str, action: str, at: datetime, **fields: object) -> EnforcementDecision:
    return EnforcementDecision(
        account=account,
        action=EnforcementAction(action),
        actor="alice",
        reason=f"{action} test",
        created_at=at,
        **fields,  # type: ignore[arg-type]
    )


def test_decisions_are_appended_and_read_back_newest_first(store: Store) -> None:
    first = decision(KEY, "warn", T0, expires_at=T0 + timedelta(days=7))
    second = decision(USER, "suspend", T0 + timedelta(minutes=1), rule="bursts")
    store.enforcement.append(first)
    store.enforcement.append(second)

    assert store.enforcement.decisions() == [second, first]
    assert store.enforcement.decisions(account=USER) == [second]
    # A key's account lists its end users' decisions too.
    assert store.enforcement.decisions(account=KEY) == [second, first]
    assert store.enforcement.decisions(since=T0 + timedelta(seconds=30)) == [second]
    assert store.enforcement.version() == 2


def test_active_leaves_out_lapsed_lifted_and_shadow_measures(store: Store) -> None:
    now = T0 + timedelta(hours=2)
    lapsed = decision(KEY, "warn", T0, expires_at=T0 + timedelta(hours=1))
    shadow = decision(USER, "suspend", T0, shadow=True)
    throttled = decision(USER, "throttle", T0, expires_at=T0 + timedelta(days=1), rate_per_minute=6)
    suspended = decision(KEY, "suspend", T0 + timedelta(minutes=5))
    for made in (lapsed, shadow, throttled, suspended):
        store.enforcement.append(made)

    active = store.enforcement.active(now)
    assert active.measures == {KEY: [suspended], USER: [throttled]}
    assert active.version == 4
    assert active.counts == {
        ("warn", "enforced"): 1,
        ("suspend", "shadow"): 1,
        ("throttle", "enforced"): 1,
        ("suspend", "enforced"): 1,
    }

    # A lift ends what came before it; a shadow lift ends nothing.
    store.enforcement.append(decision(KEY, "lift", T0 + timedelta(minutes=30), shadow=True))
    assert store.enforcement.active(now).measures[KEY] == [suspended]
    store.enforcement.append(decision(KEY, "lift", T0 + timedelta(minutes=30)))
    assert KEY not in store.enforcement.active(now).measures
    assert store.enforcement.active(now).measures[USER] == [throttled]  # its own account
    # A measure after the lift is in force again.
    again = decision(KEY, "suspend", T0 + timedelta(hours=1))
    store.enforcement.append(again)
    assert store.enforcement.active(now).measures[KEY] == [again]
    # The throttle lapses with its decay.
    assert USER not in store.enforcement.active(T0 + timedelta(days=2)).measures


def test_the_log_has_no_way_to_change_a_decision(store: Store) -> None:
    assert not {
        name
        for name in dir(store.enforcement)
        if name.startswith(("update", "delete", "remove", "edit", "set", "purge"))
    }


def test_the_end_user_secret_is_made_once_and_shared(db_url: str) -> None:
    with Store.open(db_url) as first:
        secrets: list[str] = []
        threads = [
            threading.Thread(target=lambda: secrets.append(first.enforcement.end_user_secret()))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with Store.open(db_url) as second:
        secrets.append(second.enforcement.end_user_secret())
    assert len(set(secrets)) == 1
    assert len(secrets[0]) == 64 and int(secrets[0], 16)


def test_audit_rows_from_before_0011_read_without_an_end_user(db_url: str) -> None:
    with Store.open(db_url, migrate=False) as old, old.engine.begin() as connection:
        upgrade_schema(connection, "0009")
        connection.execute(
            text(
                "INSERT INTO audit_events (id, created_at, endpoint, status_code, latency_ms, "
                "categories, scores, stream, schema_version, completed) VALUES ('old', :now, "
                "'/v1/moderations', 200, 1.5, '[]', '{}', false, 1, true)"
            ),
            {"now": "2026-03-01 12:00:00+00:00"},
        )
    with Store.open(db_url) as store:
        [event] = store.audit.events()
        assert (event.id, event.end_user, event.enforcement) == ("old", None, None)
        hashed = "cd" * 32
        store.audit.record(
            AuditEvent(
                id="new",
                endpoint="/v1/moderations",
                status_code=403,
                latency_ms=1.0,
                end_user=hashed,
                enforcement="suspend:dec_1",
            )
        )
        newest = store.audit.events()[0]
        assert (newest.end_user, newest.enforcement) == (hashed, "suspend:dec_1")
        # 0011 downgrades cleanly, keeping the rows.
        with store.engine.begin() as connection, _alembic(connection) as config:
            command.downgrade(config, "0009")
        schema = inspect(store.engine)
        assert "end_user" not in {c["name"] for c in schema.get_columns("audit_events")}
        assert "enforcement_decisions" not in schema.get_table_names()
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 2


def test_a_journalled_event_from_before_end_users_still_drains(store: Store) -> None:
    """A journal line written by the previous release has neither end_user nor enforcement."""
    line = AuditEvent(endpoint="/v1/moderations", status_code=200, latency_ms=1.0).model_dump(
        mode="json"
    )
    del line["end_user"], line["enforcement"]
    old = AuditEvent.model_validate(line)
    assert store.audit.absorb([old]) == 1
    [event] = store.audit.events()
    assert (event.id, event.end_user, event.enforcement) == (old.id, None, None)
