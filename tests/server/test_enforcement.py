"""The gateway obeys enforcement decisions: end users hashed (never stored raw), suspended keys
and end users refused (403 with a reason and an appeal reference), throttled ones held to a lower
rate, warned ones told in a header; measures lapse and lifts restore; shadow decisions change
nothing; decisions reach the gateway through Redis or, without it, the store; a store that cannot
be read keeps the known suspensions in force and holds nothing else up; a webhook that is down
changes nothing for the gateway."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_harness import FakeUpstream, Gateway, GatewayFactory, unused_port, user
from sqlalchemy import make_url
from tcp_proxy import proxy_to

from safestack.monitor.alerts import AlertSender
from safestack.monitor.enforce import Enforcer
from safestack.monitor.identity import hash_end_user, key_account, user_account
from safestack.monitor.ladder import Ladder, ThrottleRung
from safestack.store import Store
from services import REDIS_URL, fresh_postgres_database
from webhook_receiver import webhook

SECRET = "deployment-secret-for-tests"
FAST = {"monitor_poll_seconds": 0.1, "monitor_secret": SECRET}
RAW = "alice.smith@example.com"
OTHER = "bob.jones@example.com"


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.05)


def moderate(gateway: Gateway, secret: str, **fields: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/moderations",
        json={"input": "hello there", **fields},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )


def key_id(secret: str) -> str:
    return secret.split(".")[0]


def account_of(secret: str, raw: str) -> str:
    return user_account(key_id(secret), hash_end_user(raw, SECRET))


@pytest.fixture
def fast_gateway(start_gateway: GatewayFactory, upstream: FakeUpstream) -> Gateway:
    return start_gateway(upstream.url, **FAST)


def test_end_users_are_hashed_and_never_stored_raw(
    start_gateway: GatewayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(upstream.url, audit_content=True, **FAST)
    client = gateway.client()
    client.moderations.create(input="hello", extra_body={"safety_identifier": RAW})
    client.chat.completions.create(
        model="acme-chat", messages=[user("Hi!")], safety_identifier=OTHER, user="legacy-77"
    )
    client.chat.completions.create(model="acme-chat", messages=[user("Hi!")], user="legacy-77")
    client.moderations.create(input="hello")

    events = sorted(gateway.audit(), key=lambda e: e.created_at)
    assert [e.end_user for e in events] == [
        hash_end_user(RAW, SECRET),
        hash_end_user(OTHER, SECRET),  # safety_identifier wins over user
        hash_end_user("legacy-77", SECRET),
        None,
    ]
    kept = events[1].content
    assert kept is not None
    assert kept["request"]["safety_identifier"] == f"hmac-sha256:{events[1].end_user}"
    assert kept["request"]["user"] == "<not kept>"
    assert upstream.requests[0]["safety_identifier"] == OTHER  # forwarded as the app sent it
    # Nowhere on disk: not in the database, its WAL, nor the audit journal.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for raw in (RAW, OTHER, "legacy-77"):
                assert raw.encode() not in data, f"{raw} in {path}"


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"safety_identifier": 42}, "safety_identifier"), ({"user": "u" * 257}, "user")],
)
def test_a_bad_identifier_is_a_400_naming_the_field(
    fast_gateway: Gateway, fields: dict[str, Any], param: str
) -> None:
    answer = moderate(fast_gateway, fast_gateway.key(), **fields)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param


def test_a_suspended_end_user_is_refused_while_the_keys_other_users_pass(
    fast_gateway: Gateway,
) -> None:
    secret = fast_gateway.key()
    enforcer = Enforcer(fast_gateway.store)
    made = enforcer.decide(
        account_of(secret, RAW),
        "suspend",
        actor="alice",
        reason="repeated weapons requests",
        rule=None,
        shadow=False,
    )
    wait_until(lambda: moderate(fast_gateway, secret, safety_identifier=RAW).status_code == 403)

    refused = moderate(fast_gateway, secret, safety_identifier=RAW)
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "account_suspended")
    assert "repeated weapons requests" in error["message"] and made.id in error["message"]
    assert refused.headers["x-safestack-appeal"] == made.id
    assert moderate(fast_gateway, secret, safety_identifier=OTHER).status_code == 200
    assert moderate(fast_gateway, secret, user=OTHER).status_code == 200
    assert moderate(fast_gateway, secret).status_code == 200
    audited = [e for e in fast_gateway.audit() if e.status_code == 403]
    assert audited and all(e.enforcement == f"suspend:{made.id}" for e in audited)
    assert audited[0].end_user == hash_end_user(RAW, SECRET)

    enforcer.decide(
        account_of(secret, RAW), "lift", actor="bob", reason="appeal", rule=None, shadow=False
    )
    wait_until(lambda: moderate(fast_gateway, secret, safety_identifier=RAW).status_code == 200)


def test_a_suspended_key_is_refused_on_every_endpoint_with_the_openai_client(
    fast_gateway: Gateway,
) -> None:
    secret = fast_gateway.key()
    other = fast_gateway.client()
    client = fast_gateway.client(secret)
    Enforcer(fast_gateway.store).decide(
        key_account(key_id(secret)), "suspend", actor="a", reason="abuse", rule=None, shadow=False
    )
    wait_until(lambda: moderate(fast_gateway, secret).status_code == 403)
    for call in (
        lambda: client.moderations.create(input="hello"),
        lambda: client.chat.completions.create(model="acme-chat", messages=[user("Hi")]),
        lambda: client.models.list(),
    ):
        with pytest.raises(openai.PermissionDeniedError) as caught:
            call()
        assert caught.value.code == "account_suspended"
    other.moderations.create(input="hello")  # another key is untouched


def test_a_warning_is_a_header_and_an_audit_note(fast_gateway: Gateway) -> None:
    secret = fast_gateway.key()
    made = Enforcer(fast_gateway.store).decide(
        key_account(key_id(secret)),
        "warn",
        actor="alice",
        reason="café: policy reminder\r\nx-evil: 1",
        rule=None,
        shadow=False,
    )
    wait_until(lambda: "x-safestack-warning" in moderate(fast_gateway, secret).headers)
    answer = moderate(fast_gateway, secret)
    assert answer.status_code == 200
    warning = answer.headers["x-safestack-warning"]
    assert warning.startswith("caf?: policy reminder??x-evil: 1") and made.id in warning
    assert "x-evil" not in answer.headers
    assert any(e.enforcement == f"warn:{made.id}" for e in fast_gateway.audit())


def test_a_throttle_lowers_the_rate_and_lapses_with_its_decay(fast_gateway: Gateway) -> None:
    secret = fast_gateway.key()
    ladder = Ladder(throttle=ThrottleRung(decay=timedelta(seconds=3), rate_per_minute=1, burst=2))
    made = Enforcer(fast_gateway.store, ladder).decide(
        key_account(key_id(secret)), "throttle", actor="a", reason="bursts", rule=None, shadow=False
    )
    wait_until(lambda: moderate(fast_gateway, secret).status_code == 429)
    refused = moderate(fast_gateway, secret)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 1
    assert made.id in refused.json()["error"]["message"]
    assert refused.headers["x-ratelimit-limit-requests"] == "1"
    wait_until(lambda: moderate(fast_gateway, secret).status_code == 200)  # lapsed, no re-read
    assert made.expires_at is not None


def test_a_throttled_end_user_has_a_bucket_of_its_own(fast_gateway: Gateway) -> None:
    secret = fast_gateway.key()
    ladder = Ladder(throttle=ThrottleRung(decay=timedelta(hours=1), rate_per_minute=1, burst=1))
    Enforcer(fast_gateway.store, ladder).decide(
        account_of(secret, RAW), "throttle", actor="a", reason="r", rule=None, shadow=False
    )
    wait_until(lambda: moderate(fast_gateway, secret, safety_identifier=RAW).status_code == 429)
    assert moderate(fast_gateway, secret, safety_identifier=OTHER).status_code == 200
    assert moderate(fast_gateway, secret).status_code == 200


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    text = httpx.get(gateway.url + "/metrics", timeout=30).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_shadow_decisions_are_counted_and_never_enforced(fast_gateway: Gateway) -> None:
    secret = fast_gateway.key()
    enforcer = Enforcer(fast_gateway.store)
    for action in ("warn", "throttle", "suspend"):
        enforcer.decide(
            key_account(key_id(secret)),
            action,
            actor="rule:new",
            reason="r",
            rule="new",
            shadow=True,
        )
    total = "safestack_enforcement_decisions_total"
    wait_until(lambda: metric(fast_gateway, total, action="suspend", mode="shadow") == 1)
    for _ in range(3):
        answer = moderate(fast_gateway, secret)
        assert answer.status_code == 200 and "x-safestack-warning" not in answer.headers
    assert all(e.enforcement is None for e in fast_gateway.audit())
    assert metric(fast_gateway, total, action="suspend", mode="enforced") == 0

    enforcer.decide(
        key_account(key_id(secret)), "suspend", actor="a", reason="r", rule=None, shadow=False
    )
    wait_until(lambda: moderate(fast_gateway, secret).status_code == 403)
    assert metric(fast_gateway, total, action="suspend", mode="enforced") == 1
    refusals = "safestack_enforced_refusals_total"
    assert metric(fast_gateway, refusals, action="suspend", account="key") >= 1


def test_with_redis_down_decisions_come_from_the_store(
    start_gateway: GatewayFactory, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{unused_port()}/0"
    gateway = start_gateway(upstream.url, redis_url=dead, monitor_store_check_seconds=3600, **FAST)
    secret = gateway.key()
    Enforcer(gateway.store, redis_url=dead).decide(
        key_account(key_id(secret)), "suspend", actor="a", reason="r", rule=None, shadow=False
    )
    wait_until(lambda: moderate(gateway, secret).status_code == 403, seconds=5)
    assert "Redis does not answer" in caplog.text and "watching the store instead" in caplog.text
    assert "announcing a decision in Redis failed" in caplog.text


@pytest.fixture
def redis_running() -> Iterator[None]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not running: {exc}")
    yield
    client.close()


@pytest.mark.usefixtures("redis_running")
def test_with_redis_a_decision_is_announced_without_asking_the_store(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(
        upstream.url, redis_url=REDIS_URL, monitor_store_check_seconds=3600, **FAST
    )
    quiet, loud = gateway.key(), gateway.key()
    assert moderate(gateway, quiet).status_code == 200  # the first look at the store is done
    # Not announced (no Redis for the decider): the store is checked only hourly here.
    Enforcer(gateway.store).decide(
        key_account(key_id(quiet)), "suspend", actor="a", reason="r", rule=None, shadow=False
    )
    time.sleep(1.0)
    assert moderate(gateway, quiet).status_code == 200
    # Announced in Redis: re-read at once, with the unannounced one too.
    Enforcer(gateway.store, redis_url=REDIS_URL).decide(
        key_account(key_id(loud)), "suspend", actor="a", reason="r", rule=None, shadow=False
    )
    wait_until(lambda: moderate(gateway, loud).status_code == 403, seconds=5)
    assert moderate(gateway, quiet).status_code == 403


@pytest.mark.postgres
def test_a_store_that_cannot_be_read_keeps_known_suspensions_and_holds_nothing_up(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    with fresh_postgres_database("safestack_enforce") as pg_url:
        server = make_url(pg_url)
        with proxy_to(server.host or "127.0.0.1", server.port or 5432) as proxy:
            via_proxy = server.set(port=proxy.port).render_as_string(hide_password=False)
            gateway = start_gateway(
                upstream.url,
                db_url=via_proxy,
                db_connect_timeout=2,
                db_statement_timeout=1,
                db_busy_timeout=1,
                **FAST,
            )
            secret = gateway.key()
            with Store.open(pg_url) as direct:
                Enforcer(direct).decide(
                    account_of(secret, RAW),
                    "suspend",
                    actor="a",
                    reason="r",
                    rule=None,
                    shadow=False,
                )
            wait_until(lambda: moderate(gateway, secret, safety_identifier=RAW).status_code == 403)
            proxy.freeze()
            time.sleep(1.0)  # the replica's checks of the store now fail
            deadline = (
                gateway.settings.db_connect_timeout + gateway.settings.db_statement_timeout + 1
            )
            for _ in range(3):
                assert moderate(gateway, secret, safety_identifier=RAW).status_code == 403
                started = time.monotonic()
                assert moderate(gateway, secret, safety_identifier=OTHER).status_code == 200
                assert time.monotonic() - started < deadline
            age = metric(gateway, "safestack_enforcement_state_age_seconds")
            assert age >= 1.0
            proxy.thaw()
            wait_until(lambda: metric(gateway, "safestack_enforcement_state_age_seconds") < 1.0)


def test_a_webhook_that_is_down_changes_nothing_for_the_gateway(fast_gateway: Gateway) -> None:
    secret, other = fast_gateway.key(), fast_gateway.key()
    with webhook(hang=True) as hanging:
        alerts = AlertSender([hanging.url], retries=3)
        Enforcer(fast_gateway.store, alerts=alerts).decide(
            key_account(key_id(secret)), "suspend", actor="a", reason="r", rule=None, shadow=False
        )
        wait_until(lambda: moderate(fast_gateway, secret).status_code == 403)
        assert moderate(fast_gateway, other).status_code == 200
        assert hanging.arrived.is_set() and not hanging.received  # still held by the webhook
        counts = alerts.close(timeout=0.5)
    assert counts.sent == 0
