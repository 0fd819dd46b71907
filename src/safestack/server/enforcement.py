"""The gateway obeys the enforcement log: suspended accounts refused (403), throttled ones held to a
lower rate, warned ones answered with a warning header, per key and per end user.

`EnforcementState` is this replica's copy of what is in force (`store.enforcement.active`),
re-read when the log grows: noticed through Redis's version key when Redis answers, else by asking
the store every `monitor_poll_seconds` (monitor/propagation.py). Requests look measures up in
memory, never in the store, so a store that is down or frozen delays nothing: the last state read
stays in force (accounts known suspended stay refused, fail closed) and measures still lapse on
time. `enforce_key` runs for every authenticated request, before its rate limit; `enforce_end_user`
once a route has read the body, which names the end user (`safety_identifier`, else `user`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from safestack.errors import StoreError
from safestack.monitor.identity import (
    IDENTITY_FIELDS,
    MAX_IDENTIFIER_CHARS,
    hash_end_user,
    key_account,
    user_account,
)
from safestack.monitor.ladder import Ladder
from safestack.monitor.propagation import VERSION_KEY
from safestack.records import EnforcementAction, EnforcementDecision
from safestack.server.auth import limit_rate, limiter_unavailable
from safestack.server.errors import ApiError, bad_request
from safestack.server.storecalls import StoreCalls
from safestack.settings import Settings
from safestack.store import ActiveMeasures, Store

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from safestack.server.calls import Call
    from safestack.server.gateway import Gateway

log = logging.getLogger("safestack.server")

# Header values must be Latin-1 without control characters; reasons are free text.
_UNSAFE_HEADER = re.compile(r"[^\x20-\x7e]")
_MAX_WARNING = 300


class EnforcementState:
    """What is in force, as this replica last read it from the store."""

    def __init__(self, store: Store, calls: StoreCalls, settings: Settings, ladder: Ladder) -> None:
        self.store = store
        self.calls = calls
        self.ladder = ladder
        self.poll_s = settings.monitor_poll_seconds
        self.store_check_s = settings.monitor_store_check_seconds
        self._secret = (
            settings.monitor_secret.get_secret_value() if settings.monitor_secret else None
        )
        self.active = ActiveMeasures(version=-1)
        self.read_at: float | None = None  # monotonic time of the last successful read
        self.first_try = asyncio.Event()
        self._checked_store_at = -math.inf
        self._redis: Redis | None = None
        self._redis_version: bytes | str | None = None
        self._redis_failing = False
        self._store_failing = False
        if settings.redis_url:
            from redis.asyncio import Redis

            timeout = min(1.0, self.poll_s)
            try:
                self._redis = Redis.from_url(
                    settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            except ValueError:
                log.error("enforcement: the Redis URL is not valid; watching the store only")

    # -- reading the log ---------------------------------------------------------------------
    async def refresh(self) -> bool:
        """One check: re-read the log if it grew (or Redis says so); True if it was re-read."""
        announced = await self._redis_changed()
        now = time.monotonic()
        due = announced is None or now - self._checked_store_at >= self.store_check_s
        if not announced and not due:
            return False
        try:
            if not announced:
                version = await self.calls.run(self.store.enforcement.version)
                self._checked_store_at = now
                if version == self.active.version:
                    self.read_at = time.monotonic()
                    self._recovered()
                    return False
            active = await self.calls.run(self.store.enforcement.active, datetime.now(UTC))
        except StoreError as exc:
            if not self._store_failing:
                log.error(
                    "enforcement: the store cannot be read (%s); keeping the last known "
                    "measures (%d accounts)",
                    exc,
                    len(self.active.measures),
                )
                self._store_failing = True
            return False
        self._checked_store_at = now
        self.active = active
        self.read_at = time.monotonic()
        self._recovered()
        return True

    def _recovered(self) -> None:
        if self._store_failing:
            log.warning("enforcement: the store can be read again")
            self._store_failing = False

    async def _redis_changed(self) -> bool | None:
        """Whether Redis's version key moved since the last look; None without an answer."""
        if self._redis is None:
            return None
        from redis.exceptions import RedisError

        try:
            version = await self._redis.get(VERSION_KEY)
        except (RedisError, OSError) as exc:
            if not self._redis_failing:
                log.error(
                    "enforcement: Redis does not answer (%s); watching the store instead",
                    type(exc).__name__,
                )
                self._redis_failing = True
            return None
        if self._redis_failing:
            log.warning("enforcement: Redis answers again")
            self._redis_failing = False
        changed = version != self._redis_version
        self._redis_version = version
        return changed

    async def refresh_periodically(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("enforcement: checking for new decisions failed")
            finally:
                self.first_try.set()
            await asyncio.sleep(self.poll_s)

    async def started(self) -> None:
        """Wait for the first read of the log (at most the store calls' deadline): a request
        the replica takes as it starts is judged against the log, yet never waits longer."""
        if not self.first_try.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.first_try.wait(), self.calls.deadline)
            self.first_try.set()  # waited once: later requests do not wait again

    def in_force(self, account: str, now: datetime | None = None) -> list[EnforcementDecision]:
        now = now or datetime.now(UTC)
        return [m for m in self.active.measures.get(account, ()) if m.active(now)]

    def age(self) -> float:
        """Seconds since the log was last read (checked unchanged or re-read); inf before."""
        return math.inf if self.read_at is None else time.monotonic() - self.read_at

    async def end_user_secret(self) -> str:
        """The hashing key: the deployment's, else the store's (read once; a StoreError when
        the store cannot be read before it was)."""
        if self._secret is None:
            self._secret = await self.calls.run(self.store.enforcement.end_user_secret)
        return self._secret

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


# -- applying it to a request ------------------------------------------------------------------
async def enforce_key(gateway: Gateway, call: Call) -> dict[str, str]:
    """The key's measures, then its rate limit (the throttle's when it is throttled): 403 when
    the key is suspended, 429 past its rate. Returns the headers to send."""
    assert call.key is not None
    state = gateway.enforcement
    await state.started()
    measures = state.in_force(key_account(call.key.id))
    throttle = _apply(gateway, call, measures, "key")
    try:
        return await limit_rate(
            call.key,
            gateway.limiter,
            gateway.settings,
            throttle=(throttle.rate_per_minute, throttle.burst) if throttle else None,
        )
    except ApiError as error:
        if throttle is not None and error.status == 429:
            gateway.metrics.enforced_refusals.labels("throttle", "key").inc()
            error.message += f" (throttled by decision {throttle.id}; {_appeal(gateway, throttle)})"
        raise


async def enforce_end_user(gateway: Gateway, call: Call, payload: dict[str, Any]) -> None:
    """Hash the end user the body names (recorded in the audit event, never the raw id) and
    apply that end user's measures: 403 when suspended, 429 past a throttle, a warning header."""
    identifier = end_user_identifier(payload)
    if identifier is None:
        return
    state = gateway.enforcement
    call.end_user = hash_end_user(identifier, await state.end_user_secret())
    if call.key is None:
        return  # no key, no account (--no-auth): recorded only
    account = user_account(call.key.id, call.end_user)
    throttle = _apply(gateway, call, state.in_force(account), "user")
    if throttle is None:
        return
    rate, burst = throttle.rate_per_minute or 1, throttle.burst or 1
    try:
        decision = await gateway.limiter.acquire(account, rate, burst)
    except Exception as exc:
        raise limiter_unavailable(exc) from None
    if not decision.allowed:
        gateway.metrics.enforced_refusals.labels("throttle", "user").inc()
        retry = max(1, math.ceil(decision.retry_after))
        raise ApiError(
            429,
            f"this end user is throttled to {rate} requests per minute (decision {throttle.id}: "
            f"{throttle.reason}); retry after {retry} s; {_appeal(gateway, throttle)}",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": str(retry), "x-safestack-appeal": throttle.id},
        )


def end_user_identifier(payload: dict[str, Any]) -> str | None:
    """The raw end-user id of a request: `safety_identifier`, else `user`; None when it names
    none (absent, null or empty); a 400 when the field is not a string or too long."""
    for name in IDENTITY_FIELDS:
        value = payload.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise bad_request(f"'{name}' must be a string identifying the end user", param=name)
        if len(value) > MAX_IDENTIFIER_CHARS:
            raise bad_request(
                f"'{name}' is {len(value):,} characters, over the limit of "
                f"{MAX_IDENTIFIER_CHARS}; send a hash of the user's id (OpenAI allows 64)",
                param=name,
            )
        return value
    return None


def _apply(
    gateway: Gateway, call: Call, measures: Iterable[EnforcementDecision], whose: str
) -> EnforcementDecision | None:
    """Note each measure on the call; raise the suspension; return the throttle, if any."""
    throttle = None
    for measure in sorted(measures, key=lambda m: -m.action.rank):
        call.enforcement.append(f"{measure.action}:{measure.id}")
        if measure.action is EnforcementAction.SUSPEND:
            gateway.metrics.enforced_refusals.labels("suspend", whose).inc()
            raise suspended(gateway, measure, whose)
        if measure.action is EnforcementAction.THROTTLE and throttle is None:
            throttle = measure
        elif measure.action is EnforcementAction.WARN:
            gateway.metrics.enforcement_warnings.labels(whose).inc()
            warning = _header_text(f"{measure.reason} (decision {measure.id})")
            previous = call.headers.get("x-safestack-warning")
            call.headers["x-safestack-warning"] = f"{previous} | {warning}" if previous else warning
    return throttle


def suspended(gateway: Gateway, decision: EnforcementDecision, whose: str) -> ApiError:
    who = "this API key" if whose == "key" else "this end user (safety_identifier)"
    until = (
        f"until {decision.expires_at:%Y-%m-%d %H:%M} UTC"
        if decision.expires_at is not None
        else "until lifted"
    )
    return ApiError(
        403,
        f"{who} is suspended {until}: {decision.reason}; {_appeal(gateway, decision)}",
        type="permission_error",
        code="account_suspended",
        headers={"x-safestack-appeal": decision.id},
    )


def _appeal(gateway: Gateway, decision: EnforcementDecision) -> str:
    return gateway.enforcement.ladder.appeal_text(decision.id)


def _header_text(text: str) -> str:
    clean = _UNSAFE_HEADER.sub("?", text)
    return clean if len(clean) <= _MAX_WARNING else clean[: _MAX_WARNING - 3] + "..."
