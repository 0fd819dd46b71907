"""Monitoring pages (issue 15): the review queue of accounts, one account's signals, decisions and
actions, and the clusters of the traffic. For keys with the `review` or `admin` scope.

The pages read what `safestack monitor` reads (the audit log, through `monitor.analysis`, and the
enforcement log) and act through the one way a decision is made, `monitor.enforce`'s
`Enforcer.decide`, with the signed-in person as the decision's actor. Clusters respect the
deployment's k (`monitor_min_accounts`): a cluster of fewer accounts is never described, only
counted. Every form carries the session's CSRF token (checked by the app for every page).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safestack.console.engagements import policy_of, store_of
from safestack.console.pages import ConsolePage
from safestack.console.rendering import render
from safestack.console.session import LEAD_SCOPES, Principal, User
from safestack.errors import EnforcementError
from safestack.judge.builtin import BuiltinModels
from safestack.monitor.analysis import analyse
from safestack.monitor.auditlog import Period, ReadStats
from safestack.monitor.clusters import Clustering, ClusterOptions, cluster_requests
from safestack.monitor.enforce import Enforcer, enforcer_for
from safestack.monitor.identity import check_account, parent_key_account
from safestack.monitor.ladder import parse_duration
from safestack.monitor.rules import Firing, RuleFile, example_rules_path, fire, load_rules
from safestack.records import EnforcementAction, EnforcementDecision
from safestack.settings import Settings

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
SHOWN_SIGNALS = (
    "requests",
    "flagged",
    "flag_rate_low",
    "flag_rate_lift",
    "blocked",
    "high_severity",
    "attacks",
    "burst",
    "novel_categories",
)
QUEUE_LIMIT = 200
ACTIONS = ("warn", "throttle", "suspend", "lift")


@dataclass
class AccountRow:
    """One account of the queue: its signals over the window, the rules that hold for it now,
    its measures in force and how many enforced strikes the log holds against it."""

    account: str
    signals: dict[str, Any] = field(default_factory=dict)
    firing: list[Firing] = field(default_factory=list)
    in_force: list[EnforcementDecision] = field(default_factory=list)
    strikes: int = 0

    @property
    def level(self) -> EnforcementAction | None:
        if not self.in_force:
            return None
        return max((m.action for m in self.in_force), key=lambda action: action.rank)

    def order(self) -> tuple[int, int, int, str]:
        rank = self.level.rank if self.level is not None else 0
        flagged = int(self.signals.get("flagged") or 0)
        return (-rank, -len(self.firing), -flagged, self.account)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _rules(settings: Settings) -> RuleFile:
    return load_rules(settings.monitor_rules or example_rules_path())


def _window(value: str) -> tuple[str, timedelta]:
    if value not in WINDOWS:
        raise HTTPException(400, f"window must be one of {', '.join(WINDOWS)}, got {value!r}")
    return value, WINDOWS[value]


def _account(value: str) -> str:
    try:
        return check_account(value)
    except EnforcementError as exc:
        raise HTTPException(404, str(exc)) from None


def _signals_now(
    request: Request, window: timedelta, now: datetime
) -> tuple[pl.DataFrame, list[Firing], RuleFile, ReadStats]:
    """Every account's signals over `window` ending now and the deployment's rules that hold."""
    rules = _rules(_settings(request))
    longest = max([window, *(r.span for r in rules.rules)])
    analysis = analyse(store_of(request), policy_of(request), Period(since=now - longest))
    activity = analysis.activity
    table = activity.signals(now, window)
    return table, fire(rules.rules, activity, now), rules, activity.stats


def _queue(request: Request, window: timedelta) -> tuple[list[AccountRow], ReadStats]:
    """Accounts worth a look: flagged traffic in the window, a rule holding now, a measure in
    force or a decision in the log; the strictest measure first, then rules, then flags."""
    now = datetime.now(UTC)
    store = store_of(request)
    table, firings, _, stats = _signals_now(request, window, now)
    rows: dict[str, AccountRow] = {}
    for values in table.iter_rows(named=True):
        if values["flagged"] or values["blocked"]:
            rows[values["account"]] = AccountRow(values["account"], values)
    by_account = {values["account"]: values for values in table.iter_rows(named=True)}
    for firing in firings:
        row = rows.setdefault(firing.account, AccountRow(firing.account))
        row.signals = by_account.get(firing.account, row.signals)
        row.firing.append(firing)
    for account, measures in store.enforcement.active(now).measures.items():
        row = rows.setdefault(account, AccountRow(account, by_account.get(account, {})))
        row.in_force = measures
    for decision in store.enforcement.decisions(limit=None):
        if decision.shadow or decision.action is EnforcementAction.LIFT:
            continue
        row = rows.setdefault(
            decision.account, AccountRow(decision.account, by_account.get(decision.account, {}))
        )
        row.strikes += 1
    ordered = sorted(rows.values(), key=AccountRow.order)
    return ordered[:QUEUE_LIMIT], stats


@dataclass
class _Clusters:
    """The last clustering the page computed (clustering embeds text: not on every view)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    models: BuiltinModels | None = None
    result: Clustering | None = None
    computed_at: datetime | None = None
    window: str = "7d"

    def compute(self, request: Request, window: str) -> None:
        settings = _settings(request)
        options = ClusterOptions(min_accounts=settings.monitor_min_accounts)
        since = datetime.now(UTC) - WINDOWS[window]
        with self.lock:
            if self.models is None:
                self.models = BuiltinModels()
            analysis = analyse(
                store_of(request), policy_of(request), Period(since=since), cluster=options
            )
            assert analysis.requests is not None
            self.result = cluster_requests(analysis.requests, self.models, options)
            self.computed_at = datetime.now(UTC)
            self.window = window


def monitor_page() -> ConsolePage:
    """The monitoring pages under /monitor (review and admin keys)."""
    router = APIRouter(prefix="/monitor")
    clusters = _Clusters()
    made: list[Enforcer] = []

    def enforcer(request: Request) -> Enforcer:
        """The deployment's enforcer (ladder, webhooks, Redis), made once: its alert threads
        deliver in the background for the console's life."""
        if not made:
            made.append(enforcer_for(store_of(request), _settings(request)))
        return made[0]

    @router.get("", response_class=HTMLResponse)
    def queue(request: Request, user: User, window: str = "24h") -> Response:
        name, span = _window(window)
        rows, stats = _queue(request, span)
        return render(
            request,
            "monitor/queue.html",
            rows=rows,
            window=name,
            windows=list(WINDOWS),
            shown=SHOWN_SIGNALS,
            stats=stats,
        )

    @router.get("/accounts/{account}", response_class=HTMLResponse)
    def account_view(request: Request, account: str, user: User, window: str = "24h") -> Response:
        account = _account(account)
        name, span = _window(window)
        now = datetime.now(UTC)
        table, firings, rules, _ = _signals_now(request, span, now)
        found = table.filter(pl.col("account") == account)
        signals = found.row(0, named=True) if found.height else {}
        store = store_of(request)
        return render(
            request,
            "monitor/account.html",
            account=account,
            window=name,
            windows=list(WINDOWS),
            signals=signals,
            shown=SHOWN_SIGNALS,
            firing=[f for f in firings if f.account == account],
            rules={r.name: r for r in rules.rules},
            in_force=store.enforcement.active(now).measures.get(account, []),
            decisions=store.enforcement.decisions(account=account, limit=200),
            actions=ACTIONS,
        )

    def decide_all(
        request: Request, user: User, accounts: list[str], form: _DecisionForm, note: str = ""
    ) -> int:
        """Record `form`'s decision on each account whose key is in the store; how many."""
        store = store_of(request)
        made = 0
        for account in accounts:
            key_id = parent_key_account(account).removeprefix("key:")
            if store.keys.get(key_id) is None:
                continue
            try:
                enforcer(request).decide(
                    account,
                    form.action,
                    actor=_actor(user),
                    reason=form.reason + note,
                    rule=None,
                    shadow=False,
                    **form.options,
                )
            except EnforcementError as exc:
                raise HTTPException(400, str(exc)) from None
            made += 1
        return made

    @router.post("/accounts/{account}/decisions")
    def decide(request: Request, account: str, user: User, form: DecisionForm) -> Response:
        account = _account(account)
        if not decide_all(request, user, [account], form):
            key_id = parent_key_account(account).removeprefix("key:")
            raise HTTPException(404, f"no API key '{key_id}' in this store")
        return RedirectResponse(f"/monitor/accounts/{account}", status_code=303)

    @router.post("/clusters/{cluster_id}/decisions", response_class=HTMLResponse)
    def decide_cluster(
        request: Request, cluster_id: str, user: User, form: DecisionForm
    ) -> Response:
        shown = clusters.result.clusters if clusters.result is not None else []
        found = next((c for c in shown if c.id == cluster_id), None)
        if found is None:
            raise HTTPException(404, f"no cluster '{cluster_id}' shown: cluster again first")
        members = [a for a in found.members if _well_formed(a)]
        made = decide_all(request, user, members, form, f" (cluster {found.id}: {found.label})")
        return render(
            request,
            "monitor/decided.html",
            cluster=found,
            action=form.action,
            made=made,
            skipped=len(found.members) - made,
        )

    @router.get("/clusters", response_class=HTMLResponse)
    def clusters_view(request: Request, user: User) -> Response:
        return render(
            request,
            "monitor/clusters.html",
            clustering=clusters.result,
            computed_at=clusters.computed_at,
            window=clusters.window,
            windows=list(WINDOWS),
            min_accounts=_settings(request).monitor_min_accounts,
            actions=ACTIONS,
        )

    @router.post("/clusters")
    def recompute(request: Request, user: User, window: Annotated[str, Form()] = "7d") -> Response:
        name, _ = _window(window)
        clusters.compute(request, name)
        return RedirectResponse("/monitor/clusters", status_code=303)

    return ConsolePage(
        name="monitor", title="Monitoring", nav_path="/monitor", router=router, scopes=LEAD_SCOPES
    )


@dataclass(frozen=True)
class _DecisionForm:
    """A decision form, checked: 400 naming the field otherwise."""

    action: str
    reason: str
    options: dict[str, Any]

    @classmethod
    def parse(
        cls,
        action: Annotated[str, Form()],
        reason: Annotated[str, Form(max_length=1900)],
        lasting: Annotated[str, Form(max_length=20)] = "",
    ) -> _DecisionForm:
        if action not in ACTIONS:
            raise HTTPException(400, f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if not reason.strip():
            raise HTTPException(400, "reason: give one; it is kept with the decision")
        options: dict[str, Any] = {}
        if lasting.strip() and action != "lift":
            try:
                options["decay"] = parse_duration(lasting.strip())
            except ValueError as exc:
                raise HTTPException(400, f"lasting: {exc}") from None
        return cls(action, reason.strip(), options)


DecisionForm = Annotated[_DecisionForm, Depends(_DecisionForm.parse)]


def _well_formed(account: str) -> bool:
    try:
        check_account(account)
    except EnforcementError:
        return False
    return True


def _actor(user: Principal) -> str:
    """Who a console decision names: the key's name and id (the person signed in)."""
    return f"{user.name} ({user.id})"[:200]
