"""Latency and throughput of the judge on this machine: per detector and for the default set.

Run: .venv/bin/python benchmarks/judge_latency.py [--messages 2000]
Prints p50/p99 per message (one at a time, one thread) and messages/s batched, for short
(~60-character) and medium (~500-character) messages built from the example inputs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from corpus import corpus  # benchmarks/corpus.py: scripts run from this folder's parent

from safestack.judge import Judge
from safestack.judge.builtin import BuiltinModels
from safestack.policy import default_policy


def measure(judge: Judge, texts: list[str]) -> tuple[float, float, float]:
    judge.check(texts[0])  # load models before timing
    samples = []
    for text in texts:
        start = time.perf_counter()
        judge.check(text)
        samples.append((time.perf_counter() - start) * 1000)
    prepared = [judge.prepare(t) for t in texts]
    start = time.perf_counter()
    for i in range(0, len(prepared), 64):
        judge.check_batch(prepared[i : i + 64])
    batched = len(texts) / (time.perf_counter() - start)
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98], batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    policy = default_policy()
    models = BuiltinModels()  # this run's, shared by its three judges
    print(f"cpus={os.cpu_count()} messages={args.messages}")
    print(f"{'detectors':<12} {'length':>6} {'p50 ms':>8} {'p99 ms':>8} {'batched msg/s':>14}")
    for only in (["rules"], ["pii"], None):
        judge = Judge.from_policy(policy, only=only, models=models)
        label = "+".join(only) if only else "default"
        for width in (60, 500):
            count = args.messages if only == ["rules"] else max(200, args.messages // 5)
            p50, p99, rate = measure(judge, corpus(count, width))
            print(f"{label:<12} {width:>6} {p50:>8.3f} {p99:>8.3f} {rate:>14,.0f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {rss:.0f} MB")


if __name__ == "__main__":
    main()
