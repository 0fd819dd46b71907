"""A traffic simulator for monitoring: realistic audit logs with known abusers, written to a store.

Populations: benign accounts (most of them end users of a few app keys, the rest keys of their
own), noisy-but-benign ones (security researchers, novelists) whose requests are often flagged at
medium severity, a handful of single abusers (high-severity requests, attacks on the instruction
hierarchy, one scripted burst) and a coordinated campaign of many fresh keys whose requests each
look mild. Texts come from the templates in `simulated_texts.py`, written by the team (no real
person's data); a share of benign requests carries seeded personal-data canaries, so the scrub can
be measured. Categories and scores are drawn per population (the judge is not run: a simulated log
of 100,000 requests is written in seconds); the truth comes back as labels.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from safestack.monitor import simulated_texts as texts
from safestack.monitor.auditlog import TABLE, audit_columns
from safestack.policy import Policy
from safestack.records import Action, AuditEvent
from safestack.store import Database
from safestack.store.audit import audit_row
from safestack.store.tables import AuditEventRow

SIMULATION_SECRET = b"safestack-simulator"  # stands in for the deployment's monitor_secret


class Simulation(BaseModel):
    """How much of each population; `days` of traffic ending at `end`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benign: int = Field(default=3000, ge=0)
    researchers: int = Field(default=15, ge=0)
    novelists: int = Field(default=15, ge=0)
    abusers: int = Field(default=5, ge=0)
    campaign: int = Field(default=60, ge=0)
    requests_per_account: float = Field(default=30.0, gt=0, description="Mean, benign accounts.")
    app_keys: int = Field(default=8, ge=1, description="Keys whose end users are accounts.")
    app_share: float = Field(default=0.7, ge=0, le=1, description="Benign accounts behind apps.")
    days: float = Field(default=3.0, gt=0)
    end: datetime = datetime(2026, 12, 1, tzinfo=UTC)
    content: bool = Field(default=True, description="Keep request text (audit_content).")
    canary_share: float = Field(default=0.02, ge=0, le=1, description="Benign requests with PII.")
    seed: int = 0


@dataclass
class Truth:
    """What the simulator knows: each account's population and label, and the canaries seeded."""

    populations: dict[str, str] = field(default_factory=dict)
    canaries: list[str] = field(default_factory=list)
    events: int = 0

    def labels(self) -> dict[str, str]:
        return {
            a: ("abusive" if p in ("abuser", "campaign") else "benign")
            for a, p in self.populations.items()
        }

    def accounts(self, population: str) -> set[str]:
        return {a for a, p in self.populations.items() if p == population}

    def labels_csv(self) -> str:
        rows = ["account,label", *(f"{a},{label}" for a, label in sorted(self.labels().items()))]
        return "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    population: str
    key_id: str
    end_user: str | None
    requests: int


def end_user_id(key_id: str, identifier: str, secret: bytes = SIMULATION_SECRET) -> str:
    """As the gateway hashes `safety_identifier`: hex HMAC-SHA256 under the deployment's secret."""
    return hmac.new(secret, f"{key_id}:{identifier}".encode(), hashlib.sha256).hexdigest()


def simulate(
    spec: Simulation, policy: Policy
) -> tuple[Iterator[tuple[AuditEvent, str | None]], Truth]:
    """The events (each with its end user, or None) in time order, and the truth."""
    rng = random.Random(spec.seed)
    truth = Truth()
    accounts = list(_accounts(spec, rng))
    for account in accounts:
        truth.populations[account.name] = account.population
    start = spec.end - timedelta(days=spec.days)
    planned: list[tuple[datetime, _Account, int]] = []
    for account in accounts:
        times = _times(account, start, spec, rng)
        planned.extend((t, account, i) for i, t in enumerate(times))
    planned.sort(key=lambda p: p[0])
    truth.events = len(planned)

    def events() -> Iterator[tuple[AuditEvent, str | None]]:
        for at, account, number in planned:
            yield _event(at, account, number, spec, policy, rng, truth), account.end_user

    return events(), truth


def _accounts(spec: Simulation, rng: random.Random) -> Iterator[_Account]:
    apps = [f"app{n:02d}" for n in range(spec.app_keys)]

    def count(mean: float) -> int:
        return max(1, int(rng.expovariate(1 / mean)) + 1)

    for n in range(spec.benign):
        if rng.random() < spec.app_share:
            key = rng.choice(apps)
            user = end_user_id(key, f"customer-{n}")
            yield _Account(
                f"user:{key}:{user}", "benign", key, user, count(spec.requests_per_account)
            )
        else:
            key = f"dev{n:05d}"
            yield _Account(f"key:{key}", "benign", key, None, count(spec.requests_per_account))
    for n in range(spec.researchers):
        yield _Account(f"key:sec{n:03d}", "researcher", f"sec{n:03d}", None, count(80))
    for n in range(spec.novelists):
        key = rng.choice(apps)
        user = end_user_id(key, f"writer-{n}")
        yield _Account(f"user:{key}:{user}", "novelist", key, user, count(60))
    for n in range(spec.abusers):
        yield _Account(f"key:abu{n:03d}", "abuser", f"abu{n:03d}", None, 40 + rng.randrange(40))
    for n in range(spec.campaign):
        yield _Account(f"key:cmp{n:03d}", "campaign", f"cmp{n:03d}", None, 8 + rng.randrange(12))


def _times(
    account: _Account, start: datetime, spec: Simulation, rng: random.Random
) -> list[datetime]:
    span = spec.days * 86400
    if account.population == "campaign":
        # A coordinated campaign runs in one stretch of the period.
        begin = span * 0.55
        return [
            start + timedelta(seconds=begin + rng.random() * span * 0.3)
            for _ in range(account.requests)
        ]
    times = [start + timedelta(seconds=rng.random() * span) for _ in range(account.requests)]
    if account.population == "abuser" and account.key_id.endswith("000"):
        burst = start + timedelta(seconds=rng.random() * (span - 120))
        times += [burst + timedelta(seconds=i * 0.4) for i in range(150)]  # a scripted burst
    return times


def _event(
    at: datetime,
    account: _Account,
    number: int,
    spec: Simulation,
    policy: Policy,
    rng: random.Random,
    truth: Truth,
) -> AuditEvent:
    text, flagged = texts.request(account.population, rng)
    if account.population == "benign" and rng.random() < spec.canary_share:
        canary, text = texts.with_canary(text, rng, len(truth.canaries))
        truth.canaries.append(canary)
    scores = {c: round(rng.uniform(0.0, 0.3), 3) for c in rng.sample(texts.BACKGROUND, 2)}
    scores.update(flagged)
    categories = sorted(c for c, s in flagged.items() if s >= policy.threshold(c))
    action = Action.ALLOW
    for category in categories:
        candidate = policy.action(category, policy.severity_from_score(scores[category]))
        if candidate.rank > action.rank:
            action = candidate
    body: dict[str, Any] = {"model": "assistant-1", "messages": [{"role": "user", "content": text}]}
    if account.end_user is not None:
        body["safety_identifier"] = "<hashed>"
    return AuditEvent(
        id=hashlib.sha256(
            f"{spec.seed}:{account.name}:{number}:{at.isoformat()}".encode()
        ).hexdigest()[:32],
        created_at=at,
        key_id=account.key_id,
        endpoint="/v1/chat/completions",
        model="assistant-1",
        action=action,
        status_code=200,
        latency_ms=round(rng.uniform(20, 400), 1),
        categories=categories,
        scores=dict(sorted(scores.items())),
        policy=policy.ref,
        input_digest=hashlib.sha256(text.encode()).hexdigest(),
        content={"request": body, "response": None} if spec.content else None,
    )


def add_end_user_column(database: Database) -> bool:
    """Add `audit_events.end_user` where the schema lacks it (what migration 0011 does), so a
    simulated log keeps its end users on a store of an older schema; True when it was added."""
    if "end_user" in audit_columns(database):
        return False
    with database.connect() as connection, connection.begin():
        connection.execute(sa.text(f"ALTER TABLE {TABLE} ADD COLUMN end_user VARCHAR(64)"))
    return True


def write_events(
    database: Database,
    events: Iterator[tuple[AuditEvent, str | None]],
    *,
    batch_rows: int = 5000,
) -> int:
    """Insert the events into `audit_events`, with `end_user` where the schema has the column
    (migration 0011); returns how many."""
    has_end_user = "end_user" in audit_columns(database)
    columns = [sa.column(c.name, c.type) for c in AuditEventRow.__table__.columns]
    if has_end_user:
        columns.append(sa.column("end_user", sa.String(64)))
    table = sa.table(TABLE, *columns)
    written = 0
    batch: list[dict[str, Any]] = []
    with database.connect() as connection:
        for event, end_user in events:
            row = audit_row(event)
            if has_end_user:
                row["end_user"] = end_user
            batch.append(row)
            if len(batch) >= batch_rows:
                written += _insert(connection, table, batch)
        written += _insert(connection, table, batch)
    return written


def _insert(connection: sa.Connection, table: sa.TableClause, batch: list[dict[str, Any]]) -> int:
    if not batch:
        return 0
    with connection.begin():
        connection.execute(sa.insert(table), batch)
    count = len(batch)
    batch.clear()
    return count
