"""How fast a decision reaches a gateway replica, and what watching for decisions costs the store.

Run: PYTHONPATH=src .venv/bin/python benchmarks/enforcement_propagation.py [--rounds 20]
         [--redis-url redis://127.0.0.1:6379/0] [--poll 1.0]

One gateway (`create_app`, uvicorn on loopback, a rules-only policy, SQLite) per mode:
- `store`: no Redis; the replica asks the store for the log's length every `--poll` seconds;
- `redis`: the decider bumps Redis's version key; the replica polls Redis every `--poll` seconds
  and the store only every `monitor_store_check_seconds` (30 s, the default).
Per round: suspend a key with `Enforcer.decide` (what `safestack monitor suspend` runs), then time
until the gateway answers it 403; lift, and time until it answers 200 again; each decision at a
random moment of the poll cycle. The baseline is the poll interval itself: a replica that notices
at its next check waits poll/2 on average, the whole interval at worst.
Reported: median / p90 / max of both waits, and the store reads the replica made per minute.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from safestack.monitor.enforce import Enforcer
from safestack.policy import load_policy
from safestack.server import PolicyCache, create_app
from safestack.server.ratelimit import MemoryRateLimiter
from safestack.settings import Settings
from safestack.store import Store
from safestack.store.enforcement import EnforcementLog

LIGHT_POLICY = "name: light\njudge:\n  detectors:\n    - name: rules\n"


def serve(app: Any) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def measure(mode: str, rounds: int, poll: float, redis_url: str | None, home: Path) -> None:
    reads = {"version": 0, "active": 0}
    version, active = EnforcementLog.version, EnforcementLog.active

    def counted_version(self: EnforcementLog) -> int:
        reads["version"] += 1
        return version(self)

    def counted_active(self: EnforcementLog, now: Any = None) -> Any:
        reads["active"] += 1
        return active(self, now)

    EnforcementLog.version = counted_version  # type: ignore[method-assign]
    EnforcementLog.active = counted_active  # type: ignore[method-assign]
    settings = Settings(
        home=home / mode,
        monitor_poll_seconds=poll,
        redis_url=redis_url if mode == "redis" else None,
    )
    store = Store.open(f"sqlite:///{home}/{mode}.db")
    policy = home / "light.yaml"
    policy.write_text(LIGHT_POLICY)
    app = create_app(
        settings,
        store=store,
        limiter=MemoryRateLimiter(),
        policies=PolicyCache(load_policy(policy)),
    )
    server, url = serve(app)
    _, secret = store.keys.create("bench", ["moderate"])
    account = "key:" + secret.split(".")[0]
    enforcer = Enforcer(store, redis_url=settings.redis_url)
    client = httpx.Client(headers={"authorization": f"Bearer {secret}"}, timeout=30)

    def until(status: int) -> float:
        started = time.perf_counter()
        while client.post(url + "/v1/moderations", json={"input": "hi"}).status_code != status:
            time.sleep(0.005)
        return time.perf_counter() - started

    until(200)
    suspend, lift = [], []
    reads.update(version=0, active=0)
    started = time.monotonic()
    for _ in range(rounds):
        # At a random moment of the replica's poll cycle, as decisions come in practice.
        time.sleep(random.uniform(0, poll))
        enforcer.decide(account, "suspend", actor="bench", reason="r", rule=None, shadow=False)
        suspend.append(until(403))
        time.sleep(random.uniform(0, poll))
        enforcer.decide(account, "lift", actor="bench", reason="r", rule=None, shadow=False)
        lift.append(until(200))
    minutes = (time.monotonic() - started) / 60
    server.should_exit = True
    time.sleep(0.5)
    store.close()
    EnforcementLog.version, EnforcementLog.active = version, active  # type: ignore[method-assign]

    def summary(waits: list[float]) -> str:
        ordered = sorted(waits)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        return (
            f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, max {ordered[-1]:.2f} s"
        )

    print(f"{mode:6} poll {poll:g} s, {rounds} rounds")
    print(f"  suspend -> first 403: {summary(suspend)}")
    print(f"  lift    -> first 200: {summary(lift)}")
    print(
        f"  store reads per minute: {reads['version'] / minutes:.1f} length checks, "
        f"{reads['active'] / minutes:.1f} re-reads of what is in force"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        for mode in ("store", "redis"):
            measure(mode, args.rounds, args.poll, args.redis_url, Path(home))


if __name__ == "__main__":
    main()
