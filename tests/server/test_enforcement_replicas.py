"""Suspension reaches every replica: two real `safestack serve` processes on loopback over one
store, a decision made with `safestack monitor` in a third process, and the next request on each
replica refused within a bounded wait; through Redis when configured, else through the store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from server_harness import unused_port

from safestack.store import Store
from services import REDIS_URL

SAFESTACK = str(Path(sys.executable).parent / "safestack")
# A policy of rules only: the replicas start in seconds (what is tested here is enforcement).
LIGHT_POLICY = "name: light\njudge:\n  detectors:\n    - name: rules\n"
BOUND_S = 10.0  # the default poll is 1 s; the machine may be loaded


def environment(home: Path, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
    env |= {"SAFESTACK_HOME": str(home), "SAFESTACK_POLICY": str(home / "light.yaml")}
    if redis_url:
        env["SAFESTACK_REDIS_URL"] = redis_url
    return env


@contextmanager
def replica(env: dict[str, str], log: Path) -> Iterator[str]:
    port = unused_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [SAFESTACK, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the replica did not start:\n{log.read_text()}"
        time.sleep(0.2)


def monitor(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [SAFESTACK, "monitor", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def status(url: str, secret: str, **fields: str) -> int:
    return httpx.post(
        url + "/v1/moderations",
        json={"input": "hello", **fields},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    ).status_code


def until(url: str, secret: str, expected: int, **fields: str) -> float:
    """Seconds until the replica answers `expected` (asserting it does within BOUND_S)."""
    started = time.monotonic()
    while (code := status(url, secret, **fields)) != expected:
        assert time.monotonic() - started < BOUND_S, f"{url} still answers {code}"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("through", ["store", "redis"])
def test_a_suspension_by_the_cli_reaches_every_replica(tmp_path: Path, through: str) -> None:
    (tmp_path / "light.yaml").write_text(LIGHT_POLICY)
    env = environment(tmp_path, REDIS_URL if through == "redis" else None)
    with Store.open(f"sqlite:///{tmp_path}/safestack.db") as store:
        key, secret = store.keys.create("replicas", ["moderate"])
    with ExitStack() as stack:
        logs = [tmp_path / f"replica-{n}.log" for n in (1, 2)]
        urls = [stack.enter_context(replica(env, log)) for log in logs]
        for url, log in zip(urls, logs, strict=True):
            wait_ready(url, log)
            assert status(url, secret) == 200
            assert status(url, secret, safety_identifier="alice") == 200

        # One end user of the key, by the raw id the app sends.
        alice = monitor(env, "account", key.id, "--end-user", "alice")
        monitor(env, "suspend", alice, "--reason", "weapons requests", "--by", "t&s")
        for url in urls:
            until(url, secret, 403, safety_identifier="alice")
            assert status(url, secret, safety_identifier="bob") == 200
            assert status(url, secret) == 200

        # The whole key.
        monitor(env, "suspend", f"key:{key.id}", "--reason", "campaign", "--by", "t&s")
        waits = [until(url, secret, 403, safety_identifier="bob") for url in urls]
        assert all(wait < BOUND_S for wait in waits)

        monitor(env, "lift", f"key:{key.id}", "--reason", "appeal granted", "--by", "t&s")
        for url in urls:
            until(url, secret, 200, safety_identifier="bob")
            assert status(url, secret, safety_identifier="alice") == 403  # its own, not lifted
    decisions = monitor(env, "decisions", "--json").splitlines()
    assert len(decisions) == 3
