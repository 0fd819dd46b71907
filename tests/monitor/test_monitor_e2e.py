"""The issue's "done means", end to end: simulated traffic sent with the official openai client
through two real gateway replicas on loopback (uvicorn, in this process, over one SQLite store;
the default policy's built-in models judge every request), then the shipped analysis on what they
audited. The campaign is found as one cluster; rules first run in shadow mode record what they
would do and enforce nothing; switched to enforce, they throttle the campaign's accounts and, as
the campaign keeps pushing, suspend them; the threat report and the dashboard are written; the
suspended keys' next requests are refused (403) by both replicas while benign keys pass.

The deployment keeps request text (`audit_content`), as one that clusters its traffic must
(docs/monitor.md, Clusters): without it themes are only combinations of flagged categories.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import openai
from server_harness import FakeUpstream, Gateway, GatewayFactory

from safestack.monitor import simulated_texts
from safestack.monitor.analysis import Analysis, analyse
from safestack.monitor.clusters import ClusterOptions, account_recall, cluster_requests
from safestack.monitor.enforce import Enforcer
from safestack.monitor.report import threat_report, write_dashboard, write_threat_report
from safestack.monitor.rules import Firing, act, fire, load_rules
from safestack.policy import default_policy
from safestack.records import EnforcementAction
from safestack.server import PolicyCache

CAMPAIGN, BENIGN = 6, 6
ANSWERED = (200, 400)  # the guard blocks some campaign requests (400): answered, not refused
SETTINGS = {"audit_content": True, "monitor_poll_seconds": 0.1, "monitor_secret": "e2e-secret"}
RULES = """\
schema_version: 1
rules:
  - name: campaign-throttle
    description: Much of an account's traffic is flagged, if only mildly.
    window: 1h
    accounts: key
    when:
      - {{signal: requests, at_least: 6}}
      - {{signal: flag_rate_low, above: 0.05}}
    action: throttle
    mode: {mode}
  - name: campaign-suspend
    description: The account keeps pushing past a throttle.
    window: 1h
    accounts: key
    when:
      - {{signal: requests, at_least: 14}}
      - {{signal: flagged, at_least: 2}}
    action: suspend
    mode: {mode}
"""


def send(gateway: Gateway, secret: str, text: str) -> int:
    """One chat request with the official client; its HTTP status."""
    try:
        gateway.client(secret).chat.completions.create(
            model="acme-chat", messages=[{"role": "user", "content": text}]
        )
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def campaign_text(account: int, number: int) -> str:
    """The campaign's pieces of a phishing kit, each mild on its own (the simulator's)."""
    template = simulated_texts.CAMPAIGN[(account + number) % len(simulated_texts.CAMPAIGN)]
    banks = simulated_texts.CAMPAIGN_SLOTS["bank"]
    return template.format(bank=banks[account % len(banks)])


def benign_text(rng: random.Random) -> str:
    return simulated_texts.request("benign", rng)[0]


def account(secret: str) -> str:
    return f"key:{secret.split('.')[0]}"


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.05)


def test_a_campaign_through_two_gateways_is_found_throttled_suspended_and_reported(
    start_gateway: GatewayFactory, upstream: FakeUpstream, policies: PolicyCache, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path}/shared.db"
    replica_a = start_gateway(upstream.url, db_url=db_url, **SETTINGS)
    replica_b = start_gateway(upstream.url, db_url=db_url, **SETTINGS)
    store = replica_a.store
    campaign = [replica_a.key() for _ in range(CAMPAIGN)]
    benign = [replica_b.key() for _ in range(BENIGN)]
    campaign_accounts = {account(s) for s in campaign}
    benign_accounts = {account(s) for s in benign}
    rng = random.Random(0)

    def analysed(cluster: bool = False) -> Analysis:
        replica_a.trail.drain_now()
        replica_b.trail.drain_now()
        options = ClusterOptions(min_accounts=4, min_cluster_size=5) if cluster else None
        return analyse(store, default_policy(), cluster=options)

    def run(mode: str) -> list[Firing]:
        rules_path = tmp_path / f"rules-{mode}.yaml"
        rules_path.write_text(RULES.format(mode=mode), "utf-8")
        rules = load_rules(rules_path)
        activity = analysed().activity
        assert activity.last is not None
        firings = fire(rules.rules, activity, activity.last)
        act(rules, firings, enforcer.decide)
        return firings

    enforcer = Enforcer(store)

    # Traffic: the campaign's fresh keys through replica A, people through replica B.
    for number in range(8):
        for index, secret in enumerate(campaign):
            assert send(replica_a, secret, campaign_text(index, number)) in ANSWERED
    for secret in benign:
        for _ in range(4):
            assert send(replica_b, secret, benign_text(rng)) == 200

    # Shadow mode: the throttle rule would act on exactly the campaign; nothing is enforced.
    shadow = run("shadow")
    activity = analysed().activity
    assert activity.last is not None
    signals = activity.signals(activity.last, timedelta(hours=1))
    assert {f.account for f in shadow} == campaign_accounts, signals.select(
        "account", "requests", "flagged", "flag_rate_low"
    ).rows()
    assert {f.rule for f in shadow} == {"campaign-throttle"}
    recorded = store.enforcement.decisions(limit=None)
    assert {d.account for d in recorded} == campaign_accounts
    assert all(d.shadow and d.actor == "rule:campaign-throttle" for d in recorded)
    assert store.enforcement.active().measures == {}
    time.sleep(0.3)  # a few polls: a shadow decision must not reach the gateways
    assert all(send(replica_a, campaign[0], campaign_text(0, n)) in ANSWERED for n in range(3))

    # Enforce: the campaign is throttled (the built-in ladder: 6 a minute, burst 1) on both
    # replicas; people are not.
    enforced = run("enforce")
    assert {f.account for f in enforced} == campaign_accounts
    throttles = [d for d in store.enforcement.decisions(limit=None) if not d.shadow]
    assert {d.action for d in throttles} == {EnforcementAction.THROTTLE}
    probe = campaign[1]
    for replica in (replica_a, replica_b):  # each replica has its own in-memory rate limiter
        wait_until(lambda r=replica: send(r, probe, campaign_text(1, 0)) == 429)  # type: ignore[misc]
        assert send(replica, probe, campaign_text(1, 1)) == 429
    assert [send(replica_a, benign[0], benign_text(rng)) for _ in range(3)] == [200] * 3

    # The campaign keeps pushing (refused requests are audited too): the suspend rule fires.
    for number in range(8):
        for index, secret in enumerate(campaign):
            assert send(replica_a, secret, campaign_text(index, number)) in (*ANSWERED, 429)
    pushed = run("enforce")
    suspended = {f.account for f in pushed if f.rule == "campaign-suspend"}
    assert suspended == campaign_accounts
    in_force = store.enforcement.active().measures
    assert set(in_force) == campaign_accounts
    for measures in in_force.values():
        assert EnforcementAction.SUSPEND in {m.action for m in measures}

    # Every replica refuses the suspended keys' next request; people pass on both.
    for replica in (replica_a, replica_b):
        wait_until(lambda r=replica: send(r, campaign[2], campaign_text(2, 0)) == 403)  # type: ignore[misc]
        for secret in campaign:
            assert send(replica, secret, campaign_text(0, 0)) == 403
        for secret in benign:
            assert send(replica, secret, benign_text(rng)) == 200

    # The campaign is one theme holding its accounts and nobody else; the threat report says
    # which of them the rules actioned; the dashboard has no external resource.
    analysis = analysed(cluster=True)
    assert analysis.requests is not None
    clustering = cluster_requests(
        analysis.requests, policies.models, ClusterOptions(min_accounts=4, min_cluster_size=5)
    )
    found, recall = account_recall(clustering, campaign_accounts)
    assert found is not None and recall >= 0.9, clustering.model_dump_json(indent=2)
    assert set(found.members) <= campaign_accounts
    all_firings = shadow + enforced + pushed
    assert not benign_accounts & {f.account for f in all_firings}
    report = threat_report(analysis.activity, clustering, all_firings)
    json_path, md_path = write_threat_report(report, tmp_path / "report")
    theme = next(t for t in report["themes"] if t["id"] == found.id)
    assert set(theme["accounts_actioned"]) == set(found.members)
    assert found.id in md_path.read_text("utf-8") and json_path.exists()
    dashboard = write_dashboard(
        analysis.activity, clustering, all_firings, tmp_path / "report"
    ).read_text("utf-8")
    assert "<script src=" not in dashboard and "<link " not in dashboard
