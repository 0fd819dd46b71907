"""Corpus filter throughput: safestack's default pipeline against datatrove 0.10.1, side by side.

One seeded corpus of ~2.5 KB English web pages (mostly ordinary pages that are kept, plus adult,
harmful, people-search, spam and non-English ones), filtered by safestack's `filter_corpus()`
(adult → quality → aggregator → harm) and by datatrove's JsonlReader → URLFilter →
GopherQualityFilter → GopherRepetitionFilter → JsonlWriter on LocalPipelineExecutor, each with 1
and 2 workers, each configuration in a fresh process. datatrove runs from its own venv
(`make bench-corpus` builds it):

    .venv/bin/python benchmarks/corpus_filter.py --peer-python .venv-bench-corpus/bin/python
    .venv/bin/python benchmarks/corpus_filter.py --docs 5000 --skip-peer --json

Rates are documents per CPU-second (the per-core figure; CPU time of every process of the run,
so a busy machine does not skew it) and per wall-second. One-time loading (UT1 list, models,
spaCy tokenizer) is measured apart and left out of both rates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SEED = 20261122
SHARD_DOCS = 1000  # documents per input file: a file is a shard (safestack) or a task's unit
KEEP_SHARE = 0.85  # ordinary pages; the rest are the evaluation corpus's other kinds


# --- the corpus (main venv) ---------------------------------------------------------------------


def build_corpus(n: int, out: Path, seed: int = SEED) -> dict[str, int]:
    """`n` documents in shards of SHARD_DOCS, shuffled together; returns the count per kind."""
    from safestack.data import eval_corpus

    keep = eval_corpus.benchmark_pages(round(n * KEEP_SHARE), seed=seed)
    rows: list[dict[str, Any]] = [{**p, "kind": "keep"} for p in keep]
    seen = {p["text"] for p in keep}
    others: list[dict[str, Any]] = []
    round_ = 0
    # The evaluation corpus's generator with fresh seeds: new people, orders and lengths each
    # round (a private helper, used here so the mix follows the labelled corpus exactly).
    while len(others) < n - len(rows):
        round_ += 1
        for doc in eval_corpus._docs(random.Random(seed + round_)):
            if doc["label"] != "keep" and doc["text"] not in seen:
                seen.add(doc["text"])
                kind = doc["label"].split(":", 1)[0]
                others.append(
                    {
                        "id": f"{doc['id']}-r{round_}",
                        "url": doc["url"],
                        "text": doc["text"],
                        "kind": kind,
                    }
                )
    random.Random(seed).shuffle(others)
    rows += others[: n - len(rows)]
    random.Random(seed + 1).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, SHARD_DOCS):
        with gzip.open(
            out / f"part-{start // SHARD_DOCS:04d}.jsonl.gz", "wt", encoding="utf-8"
        ) as f:
            for row in rows[start : start + SHARD_DOCS]:
                f.write(json.dumps({k: row[k] for k in ("id", "url", "text")}) + "\n")
    kinds = Counter(r["kind"] for r in rows)
    kinds["mean_chars"] = round(sum(len(r["text"]) for r in rows) / max(1, n))
    return dict(kinds)


# --- one configuration, in its own process ------------------------------------------------------


def _cpu() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_safestack(corpus: Path, out: Path, workers: int) -> dict[str, Any]:
    """filter_corpus() with the default pipeline; models are loaded before the clock starts
    (worker processes are forked from this one and inherit them)."""
    from safestack.data.document import Document
    from safestack.data.executors import filter_corpus
    from safestack.data.filters.models import FilterModels
    from safestack.data.pipeline import PipelinePlan, PipelineSpec
    from safestack.policy import Policy

    policy = Policy.default()
    spec = PipelineSpec()
    wall, cpu = time.perf_counter(), _cpu()
    sample = [Document(id="warm-up", text="A warm-up page. " * 40, url="https://example.org/")]
    models = FilterModels()
    for built in PipelinePlan.resolve(spec, policy, "<benchmark>").build(models).filters:
        built.apply(sample)
    models.scorer.clear()
    load = {"load_wall": time.perf_counter() - wall, "load_cpu": _cpu() - cpu}
    wall, cpu = time.perf_counter(), _cpu()
    stats = filter_corpus([corpus], out, spec, policy, workers=workers, force=True, models=models)
    run = {"run_wall": time.perf_counter() - wall, "run_cpu": _cpu() - cpu}
    reasons: Counter[str] = Counter()
    for shard in stats.shards:
        reasons.update(shard.removed_by_reason)
    return {
        **load,
        **run,
        "docs": sum(s.read for s in stats.shards),
        "kept": sum(s.kept for s in stats.shards),
        "removed": dict(reasons.most_common()),
    }


def _offline_url_filter() -> Any:
    """datatrove's URLFilter with tldextract's bundled suffix list: by default it fetches the
    list from publicsuffix.org on first use."""
    import tldextract
    from datatrove.pipeline.filters import URLFilter  # type: ignore[import-untyped]

    url_filter = URLFilter()
    url_filter.tldextractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    return url_filter


def load_datatrove() -> dict[str, Any]:
    """What each datatrove worker pays once: the UT1 lists parsed into sets, spaCy's blank
    English tokenizer. The first load also unpacks the archive (once per HF_HOME)."""
    from datatrove.utils.word_tokenizers import load_word_tokenizer  # type: ignore[import-untyped]

    wall, cpu = time.perf_counter(), _cpu()
    _offline_url_filter().download_data()
    first = {"first_load_wall": time.perf_counter() - wall, "first_load_cpu": _cpu() - cpu}
    wall, cpu = time.perf_counter(), _cpu()
    _offline_url_filter().download_data()
    load_word_tokenizer("en").word_tokenize("A warm-up sentence for the tokenizer.")
    return {**first, "load_wall": time.perf_counter() - wall, "load_cpu": _cpu() - cpu}


def run_datatrove(corpus: Path, out: Path, workers: int) -> dict[str, Any]:
    """JsonlReader → URLFilter → GopherQualityFilter → GopherRepetitionFilter → JsonlWriter,
    tasks = workers. Pool workers are forked (datatrove defaults to forkserver) so that their
    CPU time is this process's children's; the filters' work is the same either way."""
    from datatrove.executor import LocalPipelineExecutor  # type: ignore[import-untyped]
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader  # type: ignore[import-untyped]
    from datatrove.pipeline.writers import JsonlWriter  # type: ignore[import-untyped]

    executor = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(corpus), glob_pattern="*.jsonl.gz"),
            _offline_url_filter(),
            GopherQualityFilter(),
            GopherRepetitionFilter(),
            JsonlWriter(str(out / "kept")),
        ],
        tasks=workers,
        workers=workers,
        logging_dir=str(out / "logs"),
        skip_completed=False,
        start_method="fork",
    )
    wall, cpu = time.perf_counter(), _cpu()
    executor.run()
    run = {"run_wall": time.perf_counter() - wall, "run_cpu": _cpu() - cpu}
    steps = json.loads((out / "logs" / "stats.json").read_text("utf-8"))
    removed: Counter[str] = Counter()
    docs = kept = 0
    for step in steps:
        counts = step.get("stats", {})
        name = str(step.get("name", ""))
        if "Reader" in name or "📖" in name:
            docs = int(counts.get("documents", {}).get("total", 0) or counts.get("total", 0))
        for key, value in counts.items():
            if key.startswith("dropped_"):
                removed[f"{name.split()[-1].lower()}.{key[8:]}"] += int(value)
        if "forwarded" in counts:
            kept = int(counts["forwarded"])
    return {**run, "docs": docs, "kept": kept, "removed": dict(removed.most_common())}


# --- the driver (main venv) ---------------------------------------------------------------------


def _measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Runs one configuration in a fresh process; its result is the last line it prints."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _child(kind: str, corpus: Path, out: Path, workers: int) -> None:
    if kind == "safestack":
        result = run_safestack(corpus, out, workers)
    elif kind == "datatrove":
        result = run_datatrove(corpus, out, workers)
    else:
        result = load_datatrove()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is in KiB on Linux; with workers the largest pool worker is the figure per worker.
    result["peak_rss_mb"] = (children if workers > 1 else max(own, children)) / 1024
    print(json.dumps(result))


def _rates(result: dict[str, Any], workers: int, load: dict[str, Any] | None = None) -> None:
    """Adds docs per CPU-second and per wall-second, without one-time loading. safestack loads
    before the clock; each datatrove worker loads inside the run, so its measured load is taken
    off (CPU: once per worker; wall: once, the workers load side by side)."""
    cpu, wall = result["run_cpu"], result["run_wall"]
    if load is not None:
        cpu -= workers * load["load_cpu"]
        wall -= load["load_wall"]
        result["load_wall"], result["load_cpu"] = load["load_wall"], load["load_cpu"]
    result["docs_per_cpu_s"] = result["docs"] / cpu
    result["docs_per_s"] = result["docs"] / wall
    result["docs_per_s_per_worker"] = result["docs_per_s"] / workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents in the corpus")
    parser.add_argument(
        "--peer-docs",
        type=int,
        default=4_000,
        help="documents datatrove filters (the first shards of the same corpus; it is ~15x "
        "slower, so the default keeps the run under ~10 minutes)",
    )
    parser.add_argument("--peer-python", help="python of the venv with datatrove 0.10.1")
    parser.add_argument("--skip-peer", action="store_true", help="safestack only")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", help="keep the corpus and outputs in this directory")
    parser.add_argument("--child", choices=["safestack", "datatrove", "datatrove-load"])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.corpus, args.out, args.workers[0])
        return
    if not args.skip_peer and not args.peer_python:
        parser.error("--peer-python is required (or --skip-peer); `make bench-corpus` sets it")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    try:
        report = _run_all(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)


def _run_all(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    corpus = root / "corpus"
    started = time.perf_counter()
    kinds = build_corpus(args.docs, corpus)
    report: dict[str, Any] = {
        "docs": args.docs,
        "corpus": kinds,
        "corpus_seconds": time.perf_counter() - started,
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "runs": [],
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["HF_HOME"] = str(root / "hf-home")  # datatrove unpacks its UT1 archive under it
    script = str(Path(__file__).resolve())
    load = None
    peer_corpus = root / "peer-corpus"
    if not args.skip_peer:
        shutil.rmtree(peer_corpus, ignore_errors=True)
        peer_corpus.mkdir(parents=True)
        shards = sorted(corpus.glob("*.jsonl.gz"))[: max(1, -(-args.peer_docs // SHARD_DOCS))]
        for shard in shards:
            (peer_corpus / shard.name).symlink_to(shard)
        load = _measure(
            [args.peer_python, script, "--child", "datatrove-load", "--workers", "1"], env
        )
        report["datatrove_load"] = load
    for workers in args.workers:
        configs = [("safestack", sys.executable, corpus)]
        if not args.skip_peer:
            configs.append(("datatrove", args.peer_python, peer_corpus))
        for tool, python, source in configs:
            out = root / f"out-{tool}-{workers}"
            cmd = [python, script, "--child", tool, "--workers", str(workers)]
            result = _measure([*cmd, "--corpus", str(source), "--out", str(out)], env)
            _rates(result, workers, load if tool == "datatrove" else None)
            result.update(tool=tool, workers=workers, loadavg_after=os.getloadavg())
            report["runs"].append(result)
            shutil.rmtree(out, ignore_errors=True)
    for tool in ("safestack", "datatrove"):
        runs = {r["workers"]: r for r in report["runs"] if r["tool"] == tool}
        if 1 in runs and 2 in runs:
            report[f"{tool}_scaling_wall"] = runs[2]["docs_per_s"] / (2 * runs[1]["docs_per_s"])
            report[f"{tool}_scaling_cpu"] = runs[2]["docs_per_cpu_s"] / runs[1]["docs_per_cpu_s"]
    peers = [r for r in report["runs"] if r["tool"] == "datatrove"]
    if peers:
        per_core = {r["workers"]: r["docs_per_cpu_s"] for r in peers}
        for run in report["runs"]:
            if run["tool"] == "safestack" and run["workers"] in per_core:
                run["x_datatrove_per_core"] = run["docs_per_cpu_s"] / per_core[run["workers"]]
    report["loadavg_after"] = os.getloadavg()
    return report


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    kinds = ", ".join(f"{k} {v:,}" for k, v in report["corpus"].items() if k != "mean_chars")
    console.print(
        f"Corpus: {report['docs']:,} documents, mean {report['corpus']['mean_chars']:,} "
        f"characters ({kinds}); {report['cpus']} CPUs; load average before "
        f"{', '.join(f'{x:.1f}' for x in report['loadavg_before'])}, after "
        f"{', '.join(f'{x:.1f}' for x in report['loadavg_after'])}"
    )
    table = Table(title="Corpus filter throughput (one-time loading excluded)")
    columns = ("tool", "workers", "docs", "kept", "docs/CPU-s", "docs/s", "docs/s/worker")
    for column in (*columns, "× datatrove/core", "RSS/worker MB", "load s wall/CPU"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for run in report["runs"]:
        ratio = run.get("x_datatrove_per_core")
        table.add_row(
            run["tool"],
            str(run["workers"]),
            f"{run['docs']:,}",
            f"{run['kept'] / max(1, run['docs']):.1%}",
            f"{run['docs_per_cpu_s']:,.0f}",
            f"{run['docs_per_s']:,.0f}",
            f"{run['docs_per_s_per_worker']:,.0f}",
            f"{ratio:.1f}×" if ratio else "-",
            f"{run['peak_rss_mb']:,.0f}",
            f"{run['load_wall']:.1f}/{run['load_cpu']:.1f}",
        )
    console.print(table)
    for tool in ("safestack", "datatrove"):
        if f"{tool}_scaling_wall" in report:
            console.print(
                f"{tool} 1 → 2 workers: wall {report[f'{tool}_scaling_wall']:.0%} of linear, "
                f"per-core CPU rate {report[f'{tool}_scaling_cpu']:.0%} of the 1-worker one"
            )
    for run in report["runs"]:
        top = ", ".join(f"{k} {v:,}" for k, v in list(run["removed"].items())[:8])
        console.print(f"{run['tool']} ({run['workers']} worker(s)) removed: {top}")


if __name__ == "__main__":
    main()
