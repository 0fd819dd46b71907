"""The built-in detectors end to end (normalise, chunk, embed, head, cascade), as the judge runs them.

Run: .venv/bin/python benchmarks/builtin_detectors.py [--messages 3000]
Prints, for `harm` and `attack`: fast-tier p50/p99 per message on one thread, fast-tier messages/s
batched (2 worker processes, one per core), the cascade's p50/p99 and escalation rate with the
default band and budget, and the peak resident memory of a serving process (which must not import
torch).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def corpus(n: int) -> list[str]:
    """Messages of up to 512 characters built from the example inputs and the model-card data."""
    seeds = [json.loads(line)["text"] for line in (ROOT / "examples" / "inputs.jsonl").open()]
    built = ROOT / "build" / "models" / "examples.jsonl"
    if built.exists():  # real prompts and documents, cut to the 512-character bound
        seeds += [t for t in (json.loads(line)["text"] for line in built.open()) if len(t) >= 200][
            :5000
        ]
    return [seeds[i % len(seeds)][:512] for i in range(n)]


def _samples(texts: list[str]) -> list[object]:
    from safestack.judge import Sample, normalise

    return [Sample(normalise(t)) for t in texts]


def _throughput(args: tuple[str, list[str]]) -> float:
    os.environ["OMP_NUM_THREADS"] = "1"
    from safestack.judge import create_detector
    from safestack.policy import default_policy

    name, texts = args
    detector = create_detector(name, default_policy(), {"tiers": "fast"})
    samples = _samples(texts)
    detector.detect_batch(samples[:64])
    start = time.perf_counter()
    for i in range(0, len(samples), 256):
        detector.detect_batch(samples[i : i + 256])  # type: ignore[arg-type]
    return len(samples) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    from safestack.judge import create_detector
    from safestack.judge.builtin import BuiltinModels
    from safestack.policy import default_policy

    models = BuiltinModels()  # this run's: each model loads once, before the clock starts
    texts = corpus(args.messages)
    print(
        f"cpus={os.cpu_count()} messages={len(texts)} mean_chars={np.mean([len(t) for t in texts]):.0f}"
    )
    print(f"{'detector':<8} {'tier':<8} {'p50 ms':>8} {'p99 ms':>8} {'escalated':>9}")
    for name in ("harm", "attack"):
        for tiers in ("fast", "cascade"):
            detector = create_detector(name, default_policy(), {"tiers": tiers}, models=models)
            samples = _samples(texts)
            detector.detect(samples[0])  # type: ignore[arg-type]
            timings, escalated = [], 0
            for sample in samples:
                start = time.perf_counter()
                findings = detector.detect(sample)  # type: ignore[arg-type]
                timings.append((time.perf_counter() - start) * 1000)
                escalated += any((f.evidence or "").startswith("[accurate]") for f in findings)
            p50, p99 = np.percentile(timings, [50, 99])
            rate = f"{escalated / len(samples):.1%}" if tiers == "cascade" else "-"
            print(f"{name:<8} {tiers:<8} {p50:>8.3f} {p99:>8.3f} {rate:>9}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak resident memory, one process with both tiers loaded: {rss:.0f} MB; torch imported: {'torch' in sys.modules}"
    )
    with ProcessPoolExecutor(max_workers=2) as pool:
        halves = [texts[: len(texts) // 2], texts[len(texts) // 2 :]]
        for name in ("harm", "attack"):
            rates = list(pool.map(_throughput, [(name, h) for h in halves]))
            print(f"{name} fast tier batched on 2 cores: {sum(rates):,.0f} messages/s")


if __name__ == "__main__":
    main()
