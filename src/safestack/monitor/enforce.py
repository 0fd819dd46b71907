"""Enforcement decisions: warn, throttle, suspend or lift an account, by hand or by a rule.

`Enforcer.decide` is the one way a decision is made (the CLI's `safestack monitor suspend ...`
and the rules of `safestack monitor run` both call it): it fills in the rung's decay and the
throttle's rate from the ladder, appends the decision to the store's enforcement log (append-only,
audited: who or which rule, why, when, shadow or enforced), announces it to the gateway replicas
(monitor/propagation.py) and queues its alert for the webhooks (monitor/alerts.py) without
waiting for them. The gateway obeys what the log holds (server/enforcement.py); shadow decisions
are recorded and never enforced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from safestack.errors import EnforcementError
from safestack.monitor.alerts import AlertCounts, AlertSender, alert_payload
from safestack.monitor.identity import check_account, hash_end_user, user_account
from safestack.monitor.ladder import Ladder, load_ladder, next_rung
from safestack.monitor.propagation import announce
from safestack.records import EnforcementAction, EnforcementDecision
from safestack.settings import Settings
from safestack.store import Store

log = logging.getLogger("safestack.monitor")

# The contract's name for the record `decide` returns.
Decision = EnforcementDecision

_DEFAULT_DECAY: object = object()  # "the ladder's", told apart from None ("never")


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """An account's measures in force and the decisions that made them (a key account's status
    also holds its own measures only; its end users have their own)."""

    account: str
    measures: list[EnforcementDecision] = field(default_factory=list)

    @property
    def level(self) -> EnforcementAction | None:
        """The strictest measure in force; None when none is."""
        if not self.measures:
            return None
        return max((m.action for m in self.measures), key=lambda action: action.rank)


class Enforcer:
    """Makes decisions against one store with one ladder; alerts through `alerts` when given."""

    def __init__(
        self,
        store: Store,
        ladder: Ladder | None = None,
        *,
        alerts: AlertSender | None = None,
        redis_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.ladder = ladder or Ladder()
        self.alerts = alerts
        self.redis_url = redis_url
        self._clock = clock

    def decide(
        self,
        account: str,
        action: str,
        *,
        actor: str,
        reason: str,
        rule: str | None,
        shadow: bool,
        decay: timedelta | object | None = _DEFAULT_DECAY,
    ) -> EnforcementDecision:
        """Record one decision and return it. `action`: warn, throttle, suspend or lift; `actor`:
        `rule:<name>` or a person; `shadow`: record what would be done, enforce nothing; `decay`:
        how long the measure lasts (None: until lifted), the ladder's rung when not given.
        An EnforcementError names what is wrong; a StoreError when the log cannot be written."""
        check_account(account)
        try:
            chosen = EnforcementAction(action)
        except ValueError:
            raise EnforcementError(
                f"action {action!r} is not one of warn, throttle, suspend, lift"
            ) from None
        now = self._clock()
        expires_at = None
        rate = burst = None
        if chosen is not EnforcementAction.LIFT:
            lasts = self.ladder.rung(chosen).decay if decay is _DEFAULT_DECAY else decay
            if lasts is not None:
                if not isinstance(lasts, timedelta) or lasts <= timedelta(0):
                    raise EnforcementError(f"decay must be a positive duration, got {lasts!r}")
                expires_at = now + lasts
        if chosen is EnforcementAction.THROTTLE:
            rate, burst = self.ladder.throttle.rate_per_minute, self.ladder.throttle_burst()
        try:
            decision = EnforcementDecision(
                created_at=now,
                account=account,
                action=chosen,
                actor=actor.strip(),
                reason=reason.strip(),
                rule=rule,
                shadow=shadow,
                expires_at=expires_at,
                rate_per_minute=rate,
                burst=burst,
            )
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise EnforcementError(f"decision {where}: {problem['msg']}") from None
        self.store.enforcement.append(decision)
        mode = "shadow" if shadow else "enforced"
        log.info(
            "decision %s: %s %s (%s) by %s: %s", decision.id, chosen, account, mode, actor, reason
        )
        if not shadow:
            announce(self.redis_url)
        if self.alerts is not None:
            appeal = (
                None if chosen is EnforcementAction.LIFT else self.ladder.appeal_text(decision.id)
            )
            self.alerts.send(alert_payload(decision, appeal))
        return decision

    def strike(
        self,
        account: str,
        *,
        actor: str,
        reason: str,
        rule: str | None = None,
        shadow: bool = False,
    ) -> EnforcementDecision:
        """One rung up the ladder from the account's current measure (warn when it has none)."""
        action = next_rung(self.status(account).level)
        return self.decide(
            account, action.value, actor=actor, reason=reason, rule=rule, shadow=shadow
        )

    def status(self, account: str, now: datetime | None = None) -> AccountStatus:
        """The account's measures in force now, from the store."""
        check_account(account)
        active = self.store.enforcement.active(now or self._clock())
        return AccountStatus(account, active.measures.get(account, []))

    def close(self, timeout: float = 10.0) -> AlertCounts | None:
        """Deliver the queued alerts for at most `timeout` seconds; their counts."""
        return self.alerts.close(timeout) if self.alerts is not None else None


def end_user_secret(store: Store, settings: Settings) -> str:
    """The deployment's end-user hashing key: the setting, else the store's own."""
    if settings.monitor_secret is not None:
        return settings.monitor_secret.get_secret_value()
    return store.enforcement.end_user_secret()


def end_user_account(store: Store, settings: Settings, key_id: str, identifier: str) -> str:
    """The account of the end user a key's requests name as `identifier` (its raw id)."""
    return user_account(key_id, hash_end_user(identifier, end_user_secret(store, settings)))


def enforcer_for(store: Store, settings: Settings) -> Enforcer:
    """The deployment's enforcer: its ladder, its webhooks and its Redis, from the settings.
    Close it (`close()`) when done, so queued alerts get their chance."""
    alerts = None
    if settings.monitor_webhooks:
        alerts = AlertSender(
            settings.monitor_webhooks,
            retries=settings.monitor_alert_retries,
            timeout=settings.monitor_alert_timeout,
        )
    return Enforcer(
        store,
        load_ladder(settings.monitor_ladder),
        alerts=alerts,
        redis_url=settings.redis_url,
    )
