"""Small audit logs the monitoring tests build: events by hand, written to a real store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from safestack.monitor.simulate import add_end_user_column, write_events
from safestack.records import Action, AuditEvent
from safestack.store import Store

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def event(
    key: str | None,
    minute: float,
    categories: dict[str, float] | None = None,
    *,
    action: Action | None = None,
    text: str | None = None,
    number: int = 0,
) -> AuditEvent:
    """One completed chat request `minute` minutes after T0; `categories`: flagged ones and
    their scores."""
    flagged = categories or {}
    content: dict[str, Any] | None = None
    if text is not None:
        content = {"request": {"messages": [{"role": "user", "content": text}]}, "response": None}
    return AuditEvent(
        id=f"{key}-{minute}-{number}",
        created_at=T0 + timedelta(minutes=minute),
        key_id=key,
        endpoint="/v1/chat/completions",
        action=action or (Action.BLOCK if flagged else Action.ALLOW),
        status_code=200,
        latency_ms=1.0,
        categories=sorted(flagged),
        scores=flagged,
        content=content,
    )


def write_log(
    path: Path, events: Iterable[tuple[AuditEvent, str | None]], *, end_users: bool = True
) -> str:
    """A SQLite file store at `path` holding `events` (each with its end user); its URL."""
    url = f"sqlite:///{path}"
    with Store.open(url) as store:
        if end_users:
            add_end_user_column(store)
        write_events(store, iter(list(events)))
    return url
