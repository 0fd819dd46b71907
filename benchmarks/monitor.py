"""Abuse monitoring on a simulated audit log: does it find the campaign, spare the benign, and
keep up? (docs/monitor.md, "Evaluation", has the figures.)

1. Simulates the traffic (`safestack.monitor.simulate`: benign accounts, noisy-but-benign
   researchers and novelists, single abusers, a coordinated campaign) into a fresh SQLite store.
2. Speed: reading the log and computing every account's signals over a 24 h window, events per
   minute, side by side with a baseline that reads the same rows through the store's own
   `store.audit.events()` (one pydantic AuditEvent a row) and counts per account in Python; then
   the shipped rules swept hourly over the whole log.
3. Quality: the share of benign accounts (plain and noisy) the shipped example rules ever strike,
   the abusers they catch, and the campaign: the cluster holding most of its accounts, the share
   of its accounts in it and the share of that cluster's accounts that are the campaign's.
4. The scrub: the share of seeded personal-data canaries removed, per kind, per mode; plus a hard
   set (names written in lower case) reported apart.

Run: PYTHONPATH=src .venv/bin/python benchmarks/monitor.py [--benign 3000] [--campaign 60]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # the 2-core target

from safestack.judge.builtin import BuiltinModels
from safestack.monitor import simulated_texts
from safestack.monitor.analysis import analyse
from safestack.monitor.clusters import ClusterOptions, account_recall, cluster_requests
from safestack.monitor.rules import example_rules_path, load_rules, score_rules, sweep
from safestack.monitor.scrub import Scrubber
from safestack.monitor.simulate import Simulation, add_end_user_column, simulate, write_events
from safestack.policy import default_policy
from safestack.store import Database, Store


def baseline_signals(url: str, window: timedelta) -> int:
    """The plain way: every event as an AuditEvent from the store, counted per account."""
    with Store.open(url, migrate=False) as store:
        events = store.audit.events(limit=None)
    last = max(e.created_at for e in events)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        if e.key_id is None or e.created_at < last - window:
            continue
        row = counts[f"key:{e.key_id}"]
        row[0] += 1
        row[1] += bool(e.categories)
    return len(events)


def canary_texts(
    count: int, seed: int, *, lower_names: bool = False
) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    texts, canaries, kinds = [], [], []
    for number in range(count):
        base, _ = simulated_texts.request("benign", rng)
        canary, text = simulated_texts.with_canary(base, rng, number)
        kind = simulated_texts.CANARY_KINDS[number % len(simulated_texts.CANARY_KINDS)]
        if lower_names and kind == "name":
            text, canary = text.replace(canary, canary.lower()), canary.lower()
        texts.append(text)
        canaries.append(canary)
        kinds.append(kind)
    return texts, canaries, kinds


def scrub_rates(
    scrubber: Scrubber, texts: list[str], canaries: list[str], kinds: list[str]
) -> tuple[float, dict[str, float], float]:
    started = time.perf_counter()
    scrubbed = scrubber.scrub(texts)
    elapsed = time.perf_counter() - started
    missed = Counter(k for k, c, s in zip(kinds, canaries, scrubbed, strict=True) if c in s)
    total = Counter(kinds)
    per_kind = {k: 1 - missed[k] / total[k] for k in sorted(total)}
    return 1 - sum(missed.values()) / len(texts), per_kind, elapsed / len(texts) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benign", type=int, default=3000)
    parser.add_argument("--campaign", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--canaries", type=int, default=600, help="Canary texts, patterns mode.")
    parser.add_argument("--presidio-canaries", type=int, default=120, help="The same, presidio.")
    args = parser.parse_args()
    policy = default_policy()
    models = BuiltinModels()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'audit.db'}"
        spec = Simulation(benign=args.benign, campaign=args.campaign, seed=args.seed)
        events, truth = simulate(spec, policy)
        started = time.perf_counter()
        with Store.open(url) as store:
            add_end_user_column(store)
            written = write_events(store, events)
        print(
            f"simulated {written} events, {len(truth.populations)} accounts "
            f"in {time.perf_counter() - started:.1f} s"
        )

        # -- speed ---------------------------------------------------------------------------
        started = time.perf_counter()
        with Database.open(url, migrate=False) as database:
            analysis = analyse(database, policy)
        activity = analysis.activity
        table = activity.signals(activity.last, timedelta(hours=24))  # type: ignore[arg-type]
        ours = time.perf_counter() - started
        started = time.perf_counter()
        baseline_signals(url, timedelta(hours=24))
        theirs = time.perf_counter() - started
        rules = load_rules(example_rules_path()).rules
        started = time.perf_counter()
        firings = sweep(rules, activity, timedelta(hours=1))
        swept = time.perf_counter() - started
        per_minute = written / ours * 60
        print(
            f"read + 24 h signals ({table.height} accounts): {ours:.1f} s = "
            f"{per_minute:,.0f} events/min; baseline (store.audit.events + Python): "
            f"{theirs:.1f} s = {written / theirs * 60:,.0f} events/min"
        )
        print(
            f"rules swept hourly over {spec.days:g} days: {swept:.1f} s; read + sweep: "
            f"{written / (ours + swept) * 60:,.0f} events/min"
        )

        # -- quality: rules ----------------------------------------------------------------------
        struck = {f.account for f in firings}
        populations = truth.populations
        for population in ("benign", "researcher", "novelist", "abuser", "campaign"):
            accounts = truth.accounts(population)
            hit = len(accounts & struck)
            print(
                f"  {population:<10} {hit:>4} of {len(accounts):>5} struck ({hit / max(len(accounts), 1):.2%})"
            )
        benign = {a for a, p in populations.items() if p in ("benign", "researcher", "novelist")}
        print(
            f"benign accounts ever struck (plain and noisy): {len(benign & struck)} of "
            f"{len(benign)} = {len(benign & struck) / len(benign):.2%}"
        )
        for score in score_rules(rules, firings, truth.labels()):
            print(f"  rule {score.rule:<30} precision {score.precision}  recall {score.recall}")

        # -- quality: clustering ------------------------------------------------------------------
        options = ClusterOptions(min_accounts=5)
        started = time.perf_counter()
        with Database.open(url, migrate=False) as database:
            sampled = analyse(database, policy, cluster=options).requests
        assert sampled is not None
        clustering = cluster_requests(sampled, models, options)
        clustered = time.perf_counter() - started
        campaign = truth.accounts("campaign")
        best, share = account_recall(clustering, campaign)
        purity = len(set(best.members) & campaign) / best.accounts if best else 0.0
        print(
            f"clustering {clustering.texts} sampled requests: {clustered:.1f} s, "
            f"{len(clustering.clusters)} clusters shown, {clustering.hidden_clusters} hidden"
        )
        if best is not None:
            print(
                f"campaign: cluster {best.id} '{best.label}' holds {share:.1%} of the campaign's "
                f"{len(campaign)} accounts; {purity:.1%} of its {best.accounts} accounts are the campaign's"
            )
            rank = clustering.clusters.index(best) + 1
            print(
                f"  its focus {best.focus:.2f}, rank {rank} of {len(clustering.clusters)} by focus; "
                "focus of the others: "
                + ", ".join(f"{c.focus:.2f}" for c in clustering.clusters if c is not best)
            )

    # -- the scrub ------------------------------------------------------------------------------
    for mode, count in (("patterns", args.canaries), ("presidio", args.presidio_canaries)):
        if count <= 0:
            continue
        scrubber = Scrubber(models, mode)  # type: ignore[arg-type]
        rate, per_kind, ms = scrub_rates(scrubber, *canary_texts(count, args.seed))
        kinds = ", ".join(f"{k} {v:.1%}" for k, v in per_kind.items())
        print(f"scrub {mode}: {rate:.2%} of {count} canaries removed ({kinds}); {ms:.1f} ms a text")
        rate, per_kind, _ = scrub_rates(scrubber, *canary_texts(count, args.seed, lower_names=True))
        print(f"  hard set (names in lower case): {rate:.2%} removed; names {per_kind['name']:.1%}")


if __name__ == "__main__":
    sys.exit(main())
