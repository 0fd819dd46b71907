"""What the audit trail costs per request: the journal's durable append against the store's commit.

Run: PYTHONPATH=src .venv/bin/python benchmarks/audit_trail.py [--requests 300]
         [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--baseline-src ../main/src]

Two parts, loopback only. Each takes its samples in rounds, one sample of every variant per
round, so that a machine whose load changes (a shared one) weighs on every variant alike.
1. The write itself, in this process: one AuditEvent made durable by `AuditJournal.append`
   (write + fdatasync), and by `AuditLog.absorb` on SQLite (synchronous=FULL) and on PostgreSQL;
   then 16 threads appending at once (they share fdatasyncs: group commit).
2. End to end: `safestack serve` with the `patterns` policy (so the guard's time does not hide the
   audit's) in front of the instant upstream of `gateway.py`, per store (SQLite, PostgreSQL) and
   per mode: the journal on (the default: the opening record and the outcome appended to the
   journal, drained into the store in the background) or off (both written to the store
   directly); with `--baseline-src`, also that checkout's safestack on each store (a version
   without the journal writes one record at the end, to the store). Per variant: p50/p99 of a
   non-streamed three-turn chat and of a one-message moderation, one request at a time, and the
   mean wait for the audit record from the gateway's `safestack_audit_wait_seconds`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from gateway import (  # benchmarks/ is not a package
    MESSAGES,
    free_port,
    latencies,
    percentile,
    wait_for,
    write_policy,
)


def ms(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):6.2f} ms  p99 {percentile(samples, 0.99):6.2f} ms"


def event() -> Any:
    from safestack.records import AuditEvent

    return AuditEvent(endpoint="/v1/chat/completions", status_code=200, latency_ms=3.2)


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def primitives(count: int, pg_url: str | None, directory: Path) -> None:
    from safestack.store import Store
    from safestack.store.journal import AuditJournal

    journal = AuditJournal(directory / "journal")
    stores = {"SQLite": Store.open(f"sqlite:///{directory}/primitives.db")}
    if pg_url:
        stores["PostgreSQL"] = Store.open(pg_url)
    samples: dict[str, list[float]] = {"journal append": []}
    samples.update({f"store commit, {name}": [] for name in stores})
    try:
        for _ in range(count):
            samples["journal append"].append(timed(lambda: journal.append(event()).result()))
            for name, store in stores.items():
                samples[f"store commit, {name}"].append(
                    timed(lambda store=store: store.audit.absorb([event()]))
                )
        for label, values in samples.items():
            print(f"  {label:<36} {ms(values)}")
        concurrent: list[float] = []

        def appender() -> None:
            for _ in range(count // 16 + 1):
                concurrent.append(timed(lambda: journal.append(event()).result()))

        threads = [threading.Thread(target=appender) for _ in range(16)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = len(concurrent) / (time.perf_counter() - started)
        print(f"  {'journal append, 16 threads at once':<36} {ms(concurrent)}  ({rate:,.0f}/s)")
    finally:
        journal.close()
        for store in stores.values():
            store.close()


def fresh_pg_database(server_url: str) -> str:
    from sqlalchemy import create_engine, make_url

    server = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"safestack_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    admin.dispose()


class Variant:
    """One `safestack serve` process and its samples."""

    def __init__(self, label: str, env_extra: dict[str, str], upstream: str, home: Path) -> None:
        from safestack.store import Store

        self.label = label
        home.mkdir(parents=True, exist_ok=True)
        policy = write_policy("patterns", home)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESTACK_")}
        env.update(SAFESTACK_HOME=str(home), **env_extra)
        command = [str(Path(sys.executable).parent / "safestack"), "serve", "--port", str(port)]
        command += ["--upstream", upstream, "--log-level", "warning", "--policy", str(policy)]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_for(self.base + "/healthz", self.process)
        url = env_extra.get("SAFESTACK_DB_URL", f"sqlite:///{home}/safestack.db")
        with Store.open(url) as store:
            _, secret = store.keys.create("bench", ["chat", "moderate"], rate_per_minute=10**9)
        self.headers = {"authorization": f"Bearer {secret}"}
        self.chat: list[float] = []
        self.moderation: list[float] = []

    def sample(self, client: httpx.Client) -> None:
        self.chat += latencies(client, self.base + "/v1/chat/completions", self.headers, 1)
        started = time.perf_counter()
        answer = client.post(
            self.base + "/v1/moderations",
            json={"input": MESSAGES[3]["content"]},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text
        self.moderation.append((time.perf_counter() - started) * 1000)

    def audit_waits(self, client: httpx.Client) -> str:
        """Mean wait per record kind, from the gateway's histogram (absent before this release)."""
        text = client.get(self.base + "/metrics").text
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for line in text.splitlines():
            for kind in ("opening", "outcome"):
                if line.startswith(f'safestack_audit_wait_seconds_sum{{record="{kind}"}}'):
                    sums[kind] = float(line.split()[-1])
                if line.startswith(f'safestack_audit_wait_seconds_count{{record="{kind}"}}'):
                    counts[kind] = float(line.split()[-1])
        if not counts:
            return "audit wait: not measured by this version"
        return "audit wait (mean): " + ", ".join(
            f"{kind} {1000 * sums[kind] / counts[kind]:.2f} ms" for kind in counts
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def end_to_end(args: Any, pg: str | None, scratch: Path) -> None:
    port = free_port()
    here = Path(__file__).parent / "gateway.py"
    upstream = subprocess.Popen([sys.executable, str(here), "--upstream-server", str(port)])
    variants: list[Variant] = []
    created: list[str] = []
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", upstream)
        url = f"http://127.0.0.1:{port}/v1"
        stores = {"SQLite": {}} | ({"PostgreSQL": {"SAFESTACK_DB_URL": pg}} if pg else {})
        for store, env in stores.items():
            for journal in ("true", "false"):
                mode = "journal" if journal == "true" else "store direct"
                home = scratch / f"{store}-{journal}"
                env_extra = {**env, "SAFESTACK_AUDIT_JOURNAL": journal}
                variants.append(Variant(f"{store}, {mode}", env_extra, url, home))
            if args.baseline_src:  # its own database: an older schema
                home = scratch / f"{store}-baseline"
                env_extra = {"PYTHONPATH": args.baseline_src}
                if store == "PostgreSQL":
                    baseline_pg = fresh_pg_database(args.pg_url)
                    created.append(baseline_pg)
                    env_extra["SAFESTACK_DB_URL"] = baseline_pg
                variants.append(Variant(f"{store}, baseline", env_extra, url, home))
        direct: list[float] = []
        with httpx.Client(timeout=60) as client:
            for variant in variants:  # warm: connections, caches, the model list
                for _ in range(10):
                    variant.sample(client)
                variant.chat.clear()
                variant.moderation.clear()
            for _ in range(args.requests):
                direct += latencies(client, url + "/chat/completions", {}, 1)
                for variant in variants:
                    variant.sample(client)
            print(f"`safestack serve`, patterns policy; direct to the upstream: {ms(direct)}")
            for variant in variants:
                print(f"  {variant.label:<24} chat {ms(variant.chat)}")
                print(f"  {'':<24} moderation {ms(variant.moderation)}")
                print(f"  {'':<24} {variant.audit_waits(client)}")
    finally:
        for variant in variants:
            variant.stop()
        for database in created:
            drop_pg_database(database)
        upstream.terminate()
        upstream.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline-src", help="another checkout's src/ to compare with")
    parser.add_argument("--skip-primitives", action="store_true")
    args = parser.parse_args()
    pg = fresh_pg_database(args.pg_url) if args.pg_url else None
    try:
        with tempfile.TemporaryDirectory() as scratch:
            if not args.skip_primitives:
                print("one audit record made durable, in process:")
                primitives(args.requests, pg, Path(scratch))
            end_to_end(args, pg, Path(scratch))
    finally:
        if pg:
            drop_pg_database(pg)


if __name__ == "__main__":
    main()
