"""The console's monitoring pages over HTTP (TestClient, a real SQLite file): who sees them, the
queue of accounts with their signals, rules and measures, decisions made by the signed-in person
through `monitor.enforce` (CSRF required, bad input answered 4xx), text escaped, and clusters
that respect the deployment's k."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_harness import Keys, make_keys, signed_in, target_specs, token
from fastapi import FastAPI
from fastapi.testclient import TestClient

from safestack.console import ConsoleTargets, create_app
from safestack.judge import Judge
from safestack.monitor import simulated_texts
from safestack.monitor.simulate import write_events
from safestack.policy import default_policy
from safestack.records import Action, AuditEvent, EnforcementAction
from safestack.settings import Settings
from safestack.store import Store

K = 5


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'console.db'}")
    yield opened
    opened.close()


@pytest.fixture
def keys(store: Store) -> Keys:
    return make_keys(store)


def monitor_app(store: Store, home: Path, k: int) -> FastAPI:
    """The console over `store` with k = `k` (no target is chatted with here)."""
    policy = default_policy()
    return create_app(
        Settings(home=home, monitor_min_accounts=k),
        store=store,
        policy=policy,
        targets=ConsoleTargets(target_specs("http://127.0.0.1:9/v1")),
        judge=Judge.from_policy(policy, ["rules"]),
        plugins=False,
    )


@pytest.fixture
def app(store: Store, tmp_path: Path) -> FastAPI:
    return monitor_app(store, tmp_path, K)


def event(key_id: str, minutes_ago: float, number: int, **fields: object) -> AuditEvent:
    flagged = fields.pop("scores", {})
    assert isinstance(flagged, dict)
    text = fields.pop("text", None)
    return AuditEvent(
        id=f"{key_id}-{number}",
        created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        key_id=key_id,
        endpoint="/v1/chat/completions",
        action=Action.BLOCK if flagged else Action.ALLOW,
        status_code=200,
        latency_ms=1.0,
        categories=sorted(flagged),
        scores=flagged,
        content=None
        if text is None
        else {"request": {"messages": [{"role": "user", "content": text}]}, "response": None},
    )


def prober_and_calm(store: Store) -> tuple[str, str]:
    """Two real keys: one that sent 6 high-severity violence requests in the last hour (the
    example rule `repeated-high-severity` holds for it), one that sent 5 harmless ones."""
    prober, _ = store.keys.create("prober", ["chat"])
    calm, _ = store.keys.create("calm", ["chat"])
    rows = [(event(prober.id, 5 + i, i, scores={"violence": 0.95}), None) for i in range(6)]
    rows += [(event(calm.id, 5 + i, i), None) for i in range(5)]
    write_events(store, iter(rows))
    return f"key:{prober.id}", f"key:{calm.id}"


def test_only_review_and_admin_keys_see_monitoring(app: FastAPI, keys: Keys) -> None:
    expert = signed_in(app, keys.ada)
    assert 'href="/monitor"' not in expert.get("/").text
    for path in ("/monitor", "/monitor/clusters", "/monitor/accounts/key:ssk_00000000"):
        assert expert.get(path).status_code == 403
    for secret in (keys.lead, keys.admin):
        lead = signed_in(app, secret)
        assert 'href="/monitor"' in lead.get("/").text
        assert lead.get("/monitor").status_code == 200
    assert TestClient(app).get("/monitor", follow_redirects=False).status_code == 303


def test_the_queue_shows_flagged_accounts_their_signals_and_rules(
    app: FastAPI, keys: Keys, store: Store
) -> None:
    prober, calm = prober_and_calm(store)
    lead = signed_in(app, keys.lead)
    page = lead.get("/monitor").text
    assert prober in page and calm not in page
    row = re.search(rf"<tr class=\"account\">.*?{re.escape(prober)}.*?</tr>", page, re.S)
    assert row is not None
    assert "repeated-high-severity → throttle (shadow)" in row.group(0)
    assert "<td>6</td>" in row.group(0)  # requests and flagged
    detail = lead.get(f"/monitor/accounts/{prober}").text
    assert "repeated-high-severity" in detail and "high_severity=6" in detail
    assert lead.get("/monitor?window=2y").status_code == 400
    assert lead.get("/monitor/accounts/not-an-account").status_code == 404


def test_a_decision_is_the_signed_in_persons_and_needs_csrf(
    app: FastAPI, keys: Keys, store: Store
) -> None:
    prober, calm = prober_and_calm(store)
    lead = signed_in(app, keys.lead)
    url = f"/monitor/accounts/{prober}/decisions"
    form = {"action": "suspend", "reason": "six weapons requests in an hour"}
    assert lead.post(url, data=form).status_code == 403  # no CSRF token
    assert lead.post(url, data={**form, "csrf_token": "forged"}).status_code == 403
    assert store.enforcement.decisions(limit=None) == []

    done = lead.post(url, data={**form, "csrf_token": token(lead)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/monitor/accounts/{prober}"
    (decision,) = store.enforcement.decisions(limit=None)
    assert decision.account == prober and decision.action is EnforcementAction.SUSPEND
    assert decision.actor == f"Lena Lead ({keys.lead_id})" and not decision.shadow
    assert decision.reason == form["reason"] and decision.expires_at is not None
    assert [m.id for m in store.enforcement.active().measures[prober]] == [decision.id]
    queue = lead.get("/monitor").text
    assert 'class="measure-suspend"' in queue

    throttle = {"action": "throttle", "reason": "bursts", "lasting": "15m"}
    lead.post(f"/monitor/accounts/{calm}/decisions", data={**throttle, "csrf_token": token(lead)})
    (measure,) = store.enforcement.active().measures[calm]
    assert measure.expires_at is not None
    assert timedelta(minutes=14) < measure.expires_at - measure.created_at <= timedelta(minutes=15)

    lift = {"action": "lift", "reason": "appeal granted", "csrf_token": token(lead)}
    lead.post(url, data=lift)
    assert prober not in store.enforcement.active().measures
    page = lead.get(f"/monitor/accounts/{prober}").text
    assert "appeal granted" in page and decision.id in page


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"action": "ban", "reason": "x"}, 400),
        ({"action": "warn", "reason": "   "}, 400),
        ({"action": "warn"}, 422),
        ({"action": "warn", "reason": "x", "lasting": "forever-ish"}, 400),
    ],
)
def test_bad_decision_forms_are_refused_and_nothing_is_recorded(
    app: FastAPI, keys: Keys, store: Store, form: dict[str, str], status: int
) -> None:
    prober, _ = prober_and_calm(store)
    lead = signed_in(app, keys.lead)
    response = lead.post(
        f"/monitor/accounts/{prober}/decisions", data={**form, "csrf_token": token(lead)}
    )
    assert response.status_code == status, response.text
    assert 'id="error-message"' in response.text
    assert store.enforcement.decisions(limit=None) == []


def test_a_decision_on_an_unknown_key_is_refused(app: FastAPI, keys: Keys, store: Store) -> None:
    lead = signed_in(app, keys.lead)
    response = lead.post(
        "/monitor/accounts/key:ssk_deadbeef/decisions",
        data={"action": "warn", "reason": "x", "csrf_token": token(lead)},
    )
    assert response.status_code == 404 and "ssk_deadbeef" in response.text
    assert store.enforcement.decisions(limit=None) == []


def test_what_people_typed_is_shown_as_text(app: FastAPI, keys: Keys, store: Store) -> None:
    prober, _ = prober_and_calm(store)
    _, sneaky = store.keys.create("<b>Mallory</b>", ["review"])
    lead = signed_in(app, sneaky)
    reason = '<script>alert("x")</script> & more'
    lead.post(
        f"/monitor/accounts/{prober}/decisions",
        data={"action": "warn", "reason": reason, "csrf_token": token(lead)},
    )
    for page in (lead.get(f"/monitor/accounts/{prober}").text, lead.get("/monitor").text):
        assert "<script>alert" not in page and "<b>Mallory" not in page
    detail = lead.get(f"/monitor/accounts/{prober}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in detail
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in detail


def themed_traffic(store: Store) -> list[str]:
    """A campaign of 8 accounts asking for pieces of a phishing kit, 3 novelists and 8 people
    asking about everything (3 requests each, text kept); the campaign's key ids."""
    rng = random.Random(0)
    rows = []
    campaign = [store.keys.create(f"camp{i}", ["chat"])[0].id for i in range(8)]
    banks = simulated_texts.CAMPAIGN_SLOTS["bank"]
    for number, key_id in enumerate(campaign):
        for n in range(3):
            text = simulated_texts.CAMPAIGN[(number + n) % 6].format(bank=banks[(number + n) % 4])
            rows.append((event(key_id, 30 + n, n, text=text, scores={"spam": 0.6}), None))
    for number in range(3):
        for n in range(3):
            text = simulated_texts.NOVELIST[n].format(character="the smuggler")
            rows.append((event(f"ssk_novl{number:04d}", 30 + n, n, text=text), None))
    for number in range(8):
        for n in range(3):
            text = simulated_texts.request("benign", rng)[0]
            rows.append((event(f"ssk_ppl{number:05d}", 30 + n, n, text=text), None))
    write_events(store, iter(rows))
    return campaign


def clustered(app: FastAPI, secret: str) -> str:
    lead = signed_in(app, secret)
    assert "not clustered yet" in lead.get("/monitor/clusters").text
    assert lead.post("/monitor/clusters", data={"window": "24h"}).status_code == 403  # no CSRF
    done = lead.post("/monitor/clusters", data={"window": "24h", "csrf_token": token(lead)})
    assert done.status_code == 200
    assert "last clustered" in lead.get("/monitor/clusters").text
    return done.text


def test_clusters_are_shown_with_their_accounts_when_they_span_k(
    app: FastAPI, keys: Keys, store: Store
) -> None:
    campaign = themed_traffic(store)
    page = clustered(app, keys.lead)
    assert f"k = {K}" in page
    sections = re.findall(r'<section class="card cluster".*?</section>', page, re.S)
    assert sections, page
    for section in sections:  # every cluster shown spans at least k accounts
        assert len(set(re.findall(r"<code>(key:ssk_\w+)</code>", section))) >= K
    holding = [s for s in sections if f"key:{campaign[0]}" in s]
    assert len(holding) == 1 and all(f"key:{k}" in holding[0] for k in campaign)
    assert "verification" in holding[0]  # a distinctive term of the campaign

    # Act on the whole cluster: one decision per account, by the signed-in person.
    lead = signed_in(app, keys.lead)
    cluster_id = re.search(r'id="cluster-(c\d+)"', holding[0]).group(1)  # type: ignore[union-attr]
    form = {"action": "suspend", "reason": "phishing kit campaign"}
    url = f"/monitor/clusters/{cluster_id}/decisions"
    assert lead.post(url, data=form).status_code == 403  # no CSRF token
    done = lead.post(url, data={**form, "csrf_token": token(lead)})
    assert done.status_code == 200, done.text
    decisions = store.enforcement.decisions(limit=None)
    assert {d.account for d in decisions} == {f"key:{k}" for k in campaign}
    assert all(d.actor == f"Lena Lead ({keys.lead_id})" for d in decisions)
    assert all(d.reason.startswith("phishing kit campaign (cluster c") for d in decisions)
    missing = lead.post("/monitor/clusters/c99/decisions", data={**form, "csrf_token": token(lead)})
    assert missing.status_code == 404


def test_clusters_spanning_fewer_than_k_accounts_are_never_shown(
    keys: Keys, store: Store, tmp_path: Path
) -> None:
    themed_traffic(store)
    page = clustered(monitor_app(store, tmp_path, 30), keys.lead)  # k above every cluster
    counts = re.search(r'id="cluster-counts">0 shown, (\d+) hidden', page)
    assert counts is not None and int(counts.group(1)) >= 1, page
    assert "key:ssk_" not in page and 'class="card cluster"' not in page
