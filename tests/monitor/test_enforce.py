"""Decisions by hand and by rule (`Enforcer.decide`, the contract the rules call): recorded with
who, why, when and the mode; decay from the ladder; lift; strikes; alerts that never hold the
decision up, and a webhook that is down logged and counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from safestack.errors import EnforcementError
from safestack.monitor.alerts import ALERT_SCHEMA, AlertSender
from safestack.monitor.enforce import Enforcer, end_user_account, enforcer_for
from safestack.monitor.identity import hash_end_user
from safestack.monitor.ladder import Ladder
from safestack.records import EnforcementAction
from safestack.settings import Settings
from safestack.store import Store
from webhook_receiver import webhook

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/monitor.db") as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def enforcer(store: Store, clock: Clock) -> Enforcer:
    return Enforcer(store, Ladder(), clock=clock)


KEY = "key:ssk_1a2b3c4d"


def test_a_rule_decision_is_recorded_with_who_why_when_and_mode(
    enforcer: Enforcer, store: Store
) -> None:
    made = enforcer.decide(
        KEY,
        "throttle",
        actor="rule:bursts",
        reason="120 requests in 10 s",
        rule="bursts",
        shadow=False,
    )
    assert made.account == KEY and made.action is EnforcementAction.THROTTLE
    assert (made.actor, made.rule, made.shadow, made.created_at) == (
        "rule:bursts",
        "bursts",
        False,
        T0,
    )
    assert made.expires_at == T0 + timedelta(days=1)  # the ladder's throttle decay
    assert (made.rate_per_minute, made.burst) == (6, 1)
    assert store.enforcement.decisions() == [made]
    assert enforcer.status(KEY).level is EnforcementAction.THROTTLE


def test_a_shadow_decision_is_recorded_and_never_in_force(enforcer: Enforcer, store: Store) -> None:
    made = enforcer.decide(KEY, "suspend", actor="rule:new", reason="r", rule="new", shadow=True)
    assert store.enforcement.decisions() == [made] and made.shadow
    assert enforcer.status(KEY).level is None
    assert store.enforcement.active(T0).measures == {}


def test_measures_lapse_with_their_decay(enforcer: Enforcer, clock: Clock) -> None:
    enforcer.decide(KEY, "warn", actor="alice", reason="r", rule=None, shadow=False)
    enforcer.decide(
        KEY, "suspend", actor="alice", reason="r", rule=None, shadow=False, decay=timedelta(hours=2)
    )
    assert enforcer.status(KEY).level is EnforcementAction.SUSPEND
    clock.now = T0 + timedelta(hours=2, seconds=1)
    assert enforcer.status(KEY).level is EnforcementAction.WARN  # the suspension lapsed
    clock.now = T0 + timedelta(days=8)
    assert enforcer.status(KEY).level is None


def test_no_decay_lasts_until_lifted_and_lift_restores(enforcer: Enforcer, clock: Clock) -> None:
    enforcer.decide(KEY, "suspend", actor="alice", reason="r", rule=None, shadow=False, decay=None)
    clock.now = T0 + timedelta(days=3650)
    assert enforcer.status(KEY).level is EnforcementAction.SUSPEND
    lift = enforcer.decide(
        KEY, "lift", actor="bob", reason="appeal granted", rule=None, shadow=False
    )
    assert lift.expires_at is None and lift.action is EnforcementAction.LIFT
    assert enforcer.status(KEY).level is None


def test_strikes_climb_the_ladder(enforcer: Enforcer, clock: Clock) -> None:
    levels = []
    for minute in range(4):
        clock.now = T0 + timedelta(minutes=minute)
        levels.append(enforcer.strike(KEY, actor="alice", reason="again").action)
    assert levels == ["warn", "throttle", "suspend", "suspend"]


@pytest.mark.parametrize(
    ("account", "action", "actor", "reason", "message"),
    [
        ("ssk_1a2b3c4d", "warn", "a", "r", "is not 'key:<key id>'"),
        ("user:ssk_1a2b3c4d:alice@example.com", "warn", "a", "r", "64-hex hash"),
        (KEY, "ban", "a", "r", "action 'ban' is not one of warn, throttle, suspend, lift"),
        (KEY, "warn", "  ", "r", "decision actor: String should have at least 1 character"),
        (KEY, "warn", "a", "", "decision reason"),
    ],
)
def test_a_bad_decision_is_refused_and_nothing_is_recorded(
    enforcer: Enforcer,
    store: Store,
    account: str,
    action: str,
    actor: str,
    reason: str,
    message: str,
) -> None:
    with pytest.raises(EnforcementError, match=message.replace("(", r"\(")):
        enforcer.decide(account, action, actor=actor, reason=reason, rule=None, shadow=False)
    assert store.enforcement.decisions() == []


def test_end_user_accounts_hash_the_raw_id_with_the_deployment_secret(store: Store) -> None:
    settings = Settings(monitor_secret="s3cret")
    account = end_user_account(store, settings, "ssk_1a2b3c4d", "alice@example.com")
    assert account == "user:ssk_1a2b3c4d:" + hash_end_user("alice@example.com", "s3cret")
    assert "alice" not in account
    # Without a setting: the store's own key, stable, and not the same pseudonym.
    own = end_user_account(store, Settings(), "ssk_1a2b3c4d", "alice@example.com")
    assert own == end_user_account(store, Settings(), "ssk_1a2b3c4d", "alice@example.com")
    assert own != account


def test_every_decision_alerts_the_webhooks(store: Store, tmp_path: Path) -> None:
    with webhook() as hook:
        enforcer = enforcer_for(store, Settings(home=tmp_path, monitor_webhooks=[hook.url]))
        made = enforcer.decide(KEY, "suspend", actor="rule:r", reason="why", rule="r", shadow=True)
        counts = enforcer.close(timeout=10)
    assert counts is not None and (counts.sent, counts.failed) == (1, 0)
    [alert] = hook.received
    assert alert["schema"] == ALERT_SCHEMA and alert["mode"] == "shadow"
    assert alert["decision"]["id"] == made.id and made.id in alert["appeal"]


def test_a_webhook_that_hangs_never_holds_up_the_decision(store: Store) -> None:
    with webhook(hang=True) as slow, webhook() as fine:
        alerts = AlertSender([slow.url, fine.url], retries=0, timeout=20)
        enforcer = Enforcer(store, alerts=alerts)
        made = enforcer.decide(KEY, "warn", actor="alice", reason="r", rule=None, shadow=False)
        # The decision is back while the slow webhook still holds the alert's connection.
        assert slow.arrived.wait(10) and not slow.received
        assert store.enforcement.decisions() == [made]
        deadline = time.monotonic() + 10
        while not fine.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fine.received  # the other webhook is not held up either
        assert slow.hang is not None
        slow.hang.set()
        counts = alerts.close(timeout=10)
    assert (counts.sent, counts.failed, counts.undelivered) == (2, 0, 0)


def test_a_webhook_that_is_down_is_retried_logged_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook(status=503) as down:
        alerts = AlertSender([down.url], retries=2, backoff_s=0.01)
        enforcer = Enforcer(store, alerts=alerts)
        enforcer.decide(KEY, "warn", actor="alice", reason="r", rule=None, shadow=False)
        counts = alerts.close(timeout=10)
    assert down.tries == 3  # the first try and two retries
    assert (counts.sent, counts.retried, counts.failed) == (0, 2, 1)
    assert "failed after 3 tries (HTTP 503)" in caplog.text
    assert "secret-token-123" not in caplog.text  # a webhook's path may hold its token


def test_a_refused_connection_counts_too(store: Store) -> None:
    with webhook() as hook:
        url = hook.url
    alerts = AlertSender([url], retries=1, backoff_s=0.01)
    Enforcer(store, alerts=alerts).decide(
        KEY, "warn", actor="a", reason="r", rule=None, shadow=False
    )
    counts = alerts.close(timeout=10)
    assert (counts.sent, counts.failed) == (0, 1)


def test_a_webhook_that_is_not_http_is_refused() -> None:
    with pytest.raises(EnforcementError, match="is not an http:// or https:// URL"):
        AlertSender(["ftp://example.com/hook"])
