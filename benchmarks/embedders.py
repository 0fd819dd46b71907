"""Speed and memory of the two embedding tiers on this machine, plus the encoder's build record.

Run: .venv/bin/python benchmarks/embedders.py [--messages 2000]
Each measurement runs in a fresh process pinned to its cores (one core for per-message latency,
two for batched throughput) so thread pools size themselves as they would in production. Prints
p50/p99 per message, messages/s batched, resident memory of a process holding both tiers, and the
build time and size of each tier from its build.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from corpus import corpus  # benchmarks/corpus.py: scripts run from this folder's parent

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (60, 500)  # characters; the fast tier's target is per <= 512-character message


def per_message(encode: Any, texts: list[str]) -> tuple[float, float]:
    encode(texts[:10])  # warm up
    samples = []
    for text in texts:
        start = time.perf_counter()
        encode([text])
        samples.append((time.perf_counter() - start) * 1000)
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


def batched(encode: Any, texts: list[str], batch: int) -> float:
    encode(texts[:batch])
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encode(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, from /proc."""
    fields = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def worker(kind: str, messages: int) -> dict[str, Any]:
    from safestack.judge.builtin import BuiltinModels
    from safestack.judge.builtin.embedders import OnnxEncoder, StaticEmbedder, models_dir
    from safestack.judge.builtin.use_m3 import Vocabulary

    cores = len(os.sched_getaffinity(0))
    result: dict[str, Any] = {"kind": kind, "cores": cores}
    if kind == "memory":
        before = rss_mb()[0]
        models = BuiltinModels()
        static, onnx = models.static_embedder(), models.encoder(threads=2)
        loaded = rss_mb()[0]
        for width in WIDTHS:
            texts = corpus(256, width)
            static.encode(texts)
            onnx.encode(texts)
        now, peak = rss_mb()
        result |= {
            "rss_before_mb": before,
            "rss_loaded_mb": loaded,
            "rss_after_encoding_mb": now,
            "rss_peak_mb": peak,
            "torch_imported": "torch" in sys.modules,
            "transformers_imported": "transformers" in sys.modules,
        }
        return result
    if kind.startswith("static"):
        model: Any = StaticEmbedder(Vocabulary.installed())
        count, batch = messages, 1024
    else:
        model = OnnxEncoder(models_dir() / "encoder", Vocabulary.installed(), threads=cores)
        count, batch = max(200, messages // 10), 32
    for width in WIDTHS:
        texts = corpus(count, width)
        if kind.endswith("single"):
            p50, p99 = per_message(model.encode, texts)
            result[str(width)] = {"p50_ms": p50, "p99_ms": p99}
        else:
            result[str(width)] = {"msg_per_s": batched(model.encode, texts, batch), "batch": batch}
    return result


def run_worker(kind: str, cores: int, messages: int) -> dict[str, Any]:
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "RAYON_NUM_THREADS": str(cores),  # the tokenizers' thread pool
        "OMP_NUM_THREADS": str(cores),
    }
    pinned = sorted(os.sched_getaffinity(0))[:cores]
    here = str(Path(__file__).parent)
    code = (
        f"import os, sys, json; os.sched_setaffinity(0, {set(pinned)!r}); "
        f"sys.path.insert(0, {here!r}); import embedders; "
        f"print(json.dumps(embedders.worker({kind!r}, {messages})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def build_records() -> list[dict[str, Any]]:
    from safestack.judge.builtin.embedders import models_dir

    records = []
    for tier in ("encoder",):
        path = models_dir() / tier / "build.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"cpus={cores} messages={args.messages} (encoder: {max(200, args.messages // 10)})")

    print(
        f"\n{'tier':<20} {'chars':>5} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'msg/s 1 core':>13} {'msg/s 2 cores':>14}"
    )
    for tier, name in (("static", "fast (USE token bag)"), ("encoder", "encoder (ONNX, tuned)")):
        single = run_worker(f"{tier}-single", 1, args.messages)
        one = run_worker(f"{tier}-batched", 1, args.messages)
        two = run_worker(f"{tier}-batched", min(2, cores), args.messages)
        for width in WIDTHS:
            w = str(width)
            print(
                f"{name:<20} {width:>5} {single[w]['p50_ms']:>7.3f} {single[w]['p99_ms']:>7.3f} "
                f"{one[w]['msg_per_s']:>13,.0f} {two[w]['msg_per_s']:>14,.0f}"
            )

    memory = run_worker("memory", min(2, cores), args.messages)
    print(
        f"\nresident memory, one process with both tiers: {memory['rss_before_mb']:.0f} MB after "
        f"imports, {memory['rss_loaded_mb']:.0f} MB loaded, {memory['rss_after_encoding_mb']:.0f} MB "
        f"after encoding, peak {memory['rss_peak_mb']:.0f} MB "
        f"(torch imported: {memory['torch_imported']}, transformers imported: "
        f"{memory['transformers_imported']})"
    )

    for record in build_records():
        size = record["files"]["model.onnx"]["bytes"] / 1e6
        print(
            f"\nencoder build: {size:.1f} MB ONNX, {record['build_seconds']} s on "
            f"{record['machine']}, {record['settings']['steps']} steps; base "
            f"{record['base']['package']} {record['base']['version']}"
        )


if __name__ == "__main__":
    main()
