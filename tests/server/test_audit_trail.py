"""No unaudited answer (issue 17, item 1): nothing goes upstream and no byte of an answer leaves
before the request's audit record is durable, in the store or in the local journal; journalled
records reach the store when it is back, also after a restart, none lost and none twice."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from server_harness import ANSWER, FakeUpstream, Gateway, GatewayFactory, unused_port, user

from safestack.policy import default_policy
from safestack.records import AuditEvent
from safestack.store import Store

CHAT = [user("How do I reset my router?")]


@contextmanager
def store_refusing_writes(gateway: Gateway) -> Iterator[None]:
    """Another writer holds the SQLite store's lock: every write the gateway tries fails once its
    busy timeout is over, as with a store that went down (reads still work)."""
    holder = sqlite3.connect(str(gateway.store.engine.url.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def stored(gateway: Gateway) -> list[AuditEvent]:
    """What the store holds now, without draining the journal first."""
    return gateway.store.audit.events(limit=None)


def wait_until(condition: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def stream_lines(gateway: Gateway, secret: str) -> tuple[int, list[str]]:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "acme-chat", "messages": CHAT, "stream": True},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    ) as response:
        return response.status_code, [line for line in response.iter_lines() if line]


# -- the journal off: the store must take the opening record -----------------------------------
def test_a_stream_is_refused_before_any_byte_when_no_audit_record_is_taken(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, audit_journal=False, db_busy_timeout=0.2)
    secret = gateway.key()
    gateway.client(secret).moderations.create(input="hello")  # the key is now cached
    with store_refusing_writes(gateway):
        status, lines = stream_lines(gateway, secret)
    assert status == 503
    assert '"code":"audit_unavailable"' in lines[0].replace(" ", "")
    assert not any(ANSWER[:12] in line for line in lines)
    assert upstream.requests == []


def test_a_chat_calls_no_upstream_when_no_audit_record_is_taken(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, audit_journal=False, db_busy_timeout=0.2)
    client = gateway.client()
    client.moderations.create(input="hello")
    with store_refusing_writes(gateway), pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="acme-chat", messages=CHAT)
    assert caught.value.status_code == 503 and caught.value.code == "audit_unavailable"
    assert upstream.requests == []
    # The store is back: requests are answered and audited as before.
    client.chat.completions.create(model="acme-chat", messages=CHAT)
    assert len(upstream.requests) == 1
    assert [e.status_code for e in gateway.audit() if e.endpoint.endswith("completions")] == [200]


# -- the journal on: it takes the records, the store gets them later ---------------------------
def test_a_stream_with_the_store_down_is_answered_once_the_journal_has_its_record(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, db_busy_timeout=0.2, audit_drain_seconds=0.1)
    secret = gateway.key()
    gateway.client(secret).moderations.create(input="hello")
    with store_refusing_writes(gateway):
        status, lines = stream_lines(gateway, secret)
        assert status == 200
        assert lines[-1] == "data: [DONE]" and '"safestack"' in lines[-2]
        assert not any('"error"' in line for line in lines)
        chat_events = [e for e in stored(gateway) if e.endpoint == "/v1/chat/completions"]
        assert chat_events == []  # the store has not taken them yet
    assert len(upstream.requests) == 1
    # The store is back: the background drain moves the journalled record in, completed.
    [event] = wait_until(
        lambda: [e for e in stored(gateway) if e.endpoint.endswith("completions") and e.completed]
    )
    assert event.status_code == 200 and event.stream
    assert event.output_digest is not None


def test_a_chat_with_the_store_down_is_answered_once_the_journal_has_its_record(
    start_gateway: GatewayFactory, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream.url, db_busy_timeout=0.2, audit_drain_seconds=0.1)
    client = gateway.client()
    client.moderations.create(input="hello")
    with store_refusing_writes(gateway):
        raw = client.chat.completions.with_raw_response.create(model="acme-chat", messages=CHAT)
        request_id = raw.headers["x-safestack-request-id"]
        assert raw.parse().choices[0].message.content == ANSWER
    assert len(upstream.requests) == 1
    event = wait_until(
        lambda: next((e for e in stored(gateway) if e.id == request_id and e.completed), None)
    )
    assert event.status_code == 200 and event.output_digest is not None


def test_journalled_records_survive_a_restart_and_are_drained_by_the_next_gateway(
    start_gateway: GatewayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = {
        "db_url": f"sqlite:///{tmp_path}/restart.db",
        "audit_journal_dir": tmp_path / "journal",
        "db_busy_timeout": 0.2,
        "audit_drain_seconds": 0.1,
    }
    first = start_gateway(upstream.url, **settings)
    client = first.client()
    client.moderations.create(input="hello")
    ids = []
    with store_refusing_writes(first):
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(model="acme-chat", messages=CHAT)
            ids.append(raw.headers["x-safestack-request-id"])
        raw = client.moderations.with_raw_response.create(input="still here")
        ids.append(raw.headers["x-safestack-request-id"])
        first.stop()  # its last drain fails too: the records stay in the journal
    assert list((tmp_path / "journal").rglob("*.jsonl"))
    assert not {e.id for e in stored(first)} & set(ids)

    second = start_gateway(upstream.url, **settings)  # drains what the first one left

    def drained() -> list[AuditEvent]:
        events = [e for e in stored(second) if e.id in ids and e.completed]
        return events if len(events) == len(ids) else []

    assert all(e.status_code == 200 for e in wait_until(drained))
    assert len(stored(second)) == len({e.id for e in stored(second)}) == 5


def test_a_gateway_killed_mid_request_leaves_every_record_for_the_next_one(
    start_gateway: GatewayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """`kill -9` with three answered requests and a stream under way, none drained yet: the next
    gateway finds all four, the stream as accepted and never completed."""
    home = tmp_path / "home"
    policy = tmp_path / "patterns.yaml"
    data = default_policy().model_dump(mode="json")  # the quick-loading detectors only
    for scope, names in data["guard"]["detectors"].items():
        data["guard"]["detectors"][scope] = [n for n in names if n in ("rules", "elections")]
    data["judge"]["detectors"] = [d for d in data["judge"]["detectors"] if d["name"] == "rules"]
    policy.write_text(yaml.safe_dump(data))
    port = unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    env.update(SAFESTACK_HOME=str(home), SAFESTACK_AUDIT_DRAIN_SECONDS="3600")
    command = [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(port)]
    command += ["--upstream", upstream.url, "--policy", str(policy)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded machine loads the policy slowly
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        with Store.open(f"sqlite:///{home}/safestack.db") as store:
            _, secret = store.keys.create("crash", ["chat"])
        headers = {"authorization": f"Bearer {secret}"}
        body = {"model": "acme-chat", "messages": CHAT}
        ids = []
        for _ in range(3):
            answer = httpx.post(
                url + "/v1/chat/completions", json=body, headers=headers, timeout=30
            )
            assert answer.status_code == 200
            ids.append(answer.headers["x-safestack-request-id"])
        upstream.chunk_delay = 0.2
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json={**body, "stream": True},
            headers=headers,
            timeout=30,
        ) as streaming:
            ids.append(streaming.headers["x-safestack-request-id"])
            lines = streaming.iter_lines()  # kept: dropping it would close the connection
            next(lines)  # the stream is under way
            process.kill()
            process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    with Store.open(f"sqlite:///{home}/safestack.db") as store:
        assert not {e.id for e in store.audit.events()} & set(ids)  # all in the journal only
    successor = start_gateway(
        upstream.url,
        db_url=f"sqlite:///{home}/safestack.db",
        audit_journal_dir=home / "audit-journal",
    )

    def recovered() -> list[AuditEvent]:
        events = [e for e in stored(successor) if e.id in ids]
        return events if len(events) == len(ids) else []

    events = {e.id: e for e in wait_until(recovered, seconds=60)}
    assert [events[i].status_code for i in ids] == [200, 200, 200, None]
    assert [events[i].completed for i in ids] == [True, True, True, False]
    assert events[ids[-1]].stream and events[ids[-1]].input_digest is not None
