"""The enforcement log: every decision on an account (warn, throttle, suspend, lift), append-only.

`monitor` appends decisions (`store.enforcement.append`); the gateway reads what is in force
(`active`) and notices new decisions by the log's length (`version`). Nothing is updated or
deleted: a measure ends when it lapses (`expires_at`) or when a later `lift` reverses it. The
end-user hashing key a deployment without SAFESTACK_MONITOR_SECRET uses is kept here too
(`end_user_secret`), created once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from safestack.records import EnforcementAction, EnforcementDecision
from safestack.store.audit import aware
from safestack.store.database import Database
from safestack.store.tables import EnforcementDecisionRow, MonitorSecretRow

_END_USER_SECRET = "end_user"
# Accounts per IN (...) when reading lifts: far below every backend's parameter limit.
_ACCOUNTS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class ActiveMeasures:
    """What is in force at one moment: measures not lapsed nor lifted, per account, and the
    log's length and decision counts by action and mode when it was read."""

    version: int
    measures: dict[str, list[EnforcementDecision]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)


class EnforcementLog:
    """The enforcement_decisions table: `store.enforcement`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def append(self, decision: EnforcementDecision) -> None:
        """Add one decision; committed when this returns."""
        with self._database.transaction("recording an enforcement decision") as session:
            session.execute(insert(EnforcementDecisionRow), [decision_row(decision)])

    def decisions(
        self,
        *,
        account: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[EnforcementDecision]:
        """Decisions newest first, optionally of one account (a `key:` account also lists its
        end users' decisions) and/or at or after `since` (tz-aware)."""
        filters: list[ColumnElement[bool]] = []
        if account is not None:
            own = EnforcementDecisionRow.account == account
            if account.startswith("key:"):
                users = "user:" + account.removeprefix("key:") + ":%"
                own = own | EnforcementDecisionRow.account.like(users)
            filters.append(own)
        if since is not None:
            filters.append(EnforcementDecisionRow.created_at >= aware(since, "since"))
        query = (
            select(EnforcementDecisionRow)
            .where(*filters)
            .order_by(EnforcementDecisionRow.seq.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self._database.transaction("reading enforcement decisions") as session:
            return [decision_from_row(row) for row in session.scalars(query)]

    def version(self) -> int:
        """How many decisions the log holds: it only grows, so a change means a new one."""
        with self._database.transaction("reading the enforcement log") as session:
            count = session.scalar(select(func.count()).select_from(EnforcementDecisionRow))
            return int(count or 0)

    def active(self, now: datetime | None = None) -> ActiveMeasures:
        """The enforced measures in force at `now` (default: the present), by account."""
        now = aware(now or datetime.now(UTC), "now")
        table = EnforcementDecisionRow
        with self._database.transaction("reading enforcement decisions") as session:
            counts = {
                (action, "shadow" if shadow else "enforced"): int(count)
                for action, shadow, count in session.execute(
                    select(table.action, table.shadow, func.count()).group_by(
                        table.action, table.shadow
                    )
                )
            }
            rows = session.scalars(
                select(table)
                .where(
                    table.shadow.is_(False),
                    table.action != EnforcementAction.LIFT.value,
                    (table.expires_at.is_(None)) | (table.expires_at > now),
                )
                .order_by(table.seq)
            ).all()
            measures: dict[str, list[EnforcementDecision]] = {}
            for row in rows:
                measures.setdefault(row.account, []).append(decision_from_row(row))
            lifted = self._last_lifts(session, list(measures))
        version = sum(counts.values())
        for account, lift in lifted.items():
            kept = [m for m in measures[account] if m.created_at > lift]
            if kept:
                measures[account] = kept
            else:
                del measures[account]
        return ActiveMeasures(version, measures, counts)

    def _last_lifts(self, session: Any, accounts: list[str]) -> dict[str, datetime]:
        """The time of each account's latest enforced lift."""
        table = EnforcementDecisionRow
        lifts: dict[str, datetime] = {}
        for start in range(0, len(accounts), _ACCOUNTS_PER_QUERY):
            chunk = accounts[start : start + _ACCOUNTS_PER_QUERY]
            query = (
                select(table.account, func.max(table.created_at))
                .where(
                    table.account.in_(chunk),
                    table.action == EnforcementAction.LIFT.value,
                    table.shadow.is_(False),
                )
                .group_by(table.account)
            )
            for account, when in session.execute(query):
                # SQLite returns max() of a datetime column as text, without the column's type.
                lifts[account] = _as_utc(when)
        return lifts

    def end_user_secret(self) -> str:
        """The store's end-user hashing key: 32 random bytes (hex), made by the first caller and
        the same for every later one, in every process (insert-if-absent, then read)."""
        table = MonitorSecretRow
        row = {
            "name": _END_USER_SECRET,
            "value": secrets.token_hex(32),
            "created_at": datetime.now(UTC),
        }
        with self._database.transaction("reading the end-user hashing key") as session:
            dialect = session.get_bind().dialect.name
            statement: postgresql.Insert | sqlite.Insert
            if dialect == "postgresql":
                statement = postgresql.insert(table)
            else:
                statement = sqlite.insert(table)
            session.execute(statement.on_conflict_do_nothing(index_elements=["name"]), [row])
            value = session.scalar(select(table.value).where(table.name == _END_USER_SECRET))
        return str(value)


def decision_row(decision: EnforcementDecision) -> dict[str, Any]:
    row = decision.model_dump(mode="json")
    row["created_at"] = decision.created_at
    row["expires_at"] = decision.expires_at
    return row


def decision_rows(decisions: Iterable[EnforcementDecision]) -> list[dict[str, Any]]:
    return [decision_row(decision) for decision in decisions]


def decision_from_row(row: EnforcementDecisionRow) -> EnforcementDecision:
    return EnforcementDecision.model_validate(
        {name: getattr(row, name) for name in EnforcementDecision.model_fields}
    )


def _as_utc(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
