"""Running a pipeline over shards: the shard function, the local and Ray executors, `filter_corpus`.

A shard is one input file. The same `run_shard` runs in-process, in a process pool or in Ray
actors, so the outputs are byte-identical whichever executor ran them. A shard's `.done` marker is
written last: a re-run skips finished shards and redoes any that crashed half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from safestack.data.document import Document, ReadError
from safestack.data.filters.models import FilterModels
from safestack.data.pipeline import Pipeline, PipelinePlan, PipelineSpec, load_pipeline
from safestack.data.readers import detect_format, read_documents
from safestack.data.summary import RunStats, ShardStats, write_summary
from safestack.data.writers import ShardWriter
from safestack.errors import InputError
from safestack.policy import Policy, load_policy

Executor = Literal["local", "ray"]


class RunProgress(Protocol):
    """What a run reports as it goes (the CLI draws Rich bars from it)."""

    def start(self, shards: int, skipped: int) -> None: ...
    def documents(self, count: int) -> None: ...
    def shard_done(self, stats: ShardStats) -> None: ...


@dataclass(frozen=True, slots=True)
class ShardTask:
    input: str
    shard: str
    out_dir: str
    fingerprint: str


def shard_name(path: str) -> str:
    """Deterministic: the file's name (extensions dropped) plus a hash of its full path or URL."""
    full = path if "://" in path else os.path.abspath(path)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", full.rsplit("/", 1)[-1].split(".", 1)[0])[:60]
    return f"{stem or 'input'}-{hashlib.sha1(full.encode('utf-8')).hexdigest()[:8]}"


def _exists(path: str) -> bool:
    if "://" not in path:
        return os.path.isfile(path)
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    return bool(fs.isfile(inner))


def expand_inputs(inputs: Iterable[str | Path]) -> list[str]:
    """Input files in order, a local directory expanded to its readable files; InputError names
    a missing input or one whose format cannot be told."""
    found: list[str] = []
    for item in inputs:
        path = str(item)
        if "://" not in path and os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                child = os.path.join(path, name)
                if os.path.isfile(child) and not name.startswith("."):
                    try:
                        detect_format(child)
                    except InputError:
                        continue
                    found.append(child)
            continue
        if not _exists(path):
            raise InputError(f"{path}: no such input file")
        found.append(path)
    return list(dict.fromkeys(found))


def _domain(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _input_size(path: str) -> int:
    try:
        if "://" not in path:
            return os.path.getsize(path)
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path)
        return int(fs.size(inner) or 0)
    except (OSError, ValueError):
        return 0


def done_marker(out_dir: Path, shard: str) -> Path:
    return out_dir / ".done" / f"{shard}.json"


def run_shard(
    task: ShardTask, pipeline: Pipeline, on_documents: Callable[[int], None] | None = None
) -> ShardStats:
    """Read, filter and write one shard; its `.done` marker (its stats) is written last."""
    started = time.perf_counter()
    out_dir = Path(task.out_dir)
    marker = done_marker(out_dir, task.shard)
    marker.unlink(missing_ok=True)
    stats = ShardStats(
        task.shard, task.input, task.fingerprint, input_bytes=_input_size(task.input)
    )
    spec = pipeline.spec
    batch: list[Document] = []
    read_errors: list[ReadError] = []

    def flush() -> None:
        result = pipeline.process(batch)
        errors = read_errors + result.errors
        stats.read += len(batch) + len(read_errors)
        stats.kept += len(result.kept)
        for doc, removal in result.removed:
            stats.count_removed(doc, removal, _domain(doc.url))
        for error in errors:
            stats.count_error(error.reason)
        writer.write(result.kept, result.removed, errors)
        if on_documents is not None:
            on_documents(len(batch) + len(read_errors))
        batch.clear()
        read_errors.clear()

    with ShardWriter(out_dir, task.shard, spec.writer) as writer:
        for item in read_documents(task.input, spec.reader):
            if type(item) is Document:
                batch.append(item)
                if len(batch) >= spec.batch_size:
                    flush()
            else:
                assert isinstance(item, ReadError)
                read_errors.append(item)
        flush()
    stats.kept_bytes = writer.paths["kept"].stat().st_size
    stats.seconds = time.perf_counter() - started
    stats.check()
    marker.parent.mkdir(parents=True, exist_ok=True)
    temp = marker.with_name(f".{marker.name}.tmp")
    temp.write_text(json.dumps(stats.to_json(), ensure_ascii=False), "utf-8")
    os.replace(temp, marker)
    return stats


def _load_done(task: ShardTask) -> ShardStats | None:
    marker = done_marker(Path(task.out_dir), task.shard)
    try:
        stats = ShardStats.from_json(json.loads(marker.read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return stats if stats.fingerprint == task.fingerprint else None


# --- local executor: one pipeline per worker process, built by the pool's initializer ---------

# The worker process's own pipeline: a pool initializer can hand state to tasks no other way.
_WORKER: tuple[Pipeline, Any] | None = None


def _init_worker(plan: PipelinePlan, models: FilterModels, queue: Any) -> None:
    global _WORKER
    _WORKER = (plan.build(models), queue)


def _worker_run(task: ShardTask) -> ShardStats:
    assert _WORKER is not None, "worker not initialised"
    pipeline, queue = _WORKER
    return run_shard(task, pipeline, queue.put)


def run_local(
    tasks: Sequence[ShardTask],
    plan: PipelinePlan,
    workers: int,
    progress: RunProgress | None,
    models: FilterModels | None = None,
) -> list[ShardStats]:
    """In this process for one worker; otherwise a process pool, each worker building the
    pipeline once (a forked worker inherits `models` as loaded so far)."""
    models = models if models is not None else FilterModels()
    if workers <= 1 or len(tasks) <= 1:
        pipeline = plan.build(models)
        done = []
        for task in tasks:
            stats = run_shard(task, pipeline, progress.documents if progress else None)
            if progress:
                progress.shard_done(stats)
            done.append(stats)
        return done
    import multiprocessing

    context = multiprocessing.get_context()
    queue = context.SimpleQueue()
    results: dict[str, ShardStats] = {}
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(plan, models, queue),
    ) as pool:
        pending = {pool.submit(_worker_run, task) for task in tasks}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            while not queue.empty():
                count = queue.get()
                if progress:
                    progress.documents(count)
            for future in finished:
                try:
                    stats = future.result()
                except BaseException:
                    pool.shutdown(cancel_futures=True)  # finished shards stay done; stop the rest
                    raise
                results[stats.shard] = stats
                if progress:
                    progress.shard_done(stats)
    return [results[t.shard] for t in tasks]


# --- Ray executor: the same shard function in Ray actors -------------------------------------


class _RayShardWorker:
    def __init__(self, plan: PipelinePlan, models: FilterModels) -> None:
        self.pipeline = plan.build(models)

    def run(self, task: ShardTask) -> dict[str, Any]:
        return run_shard(task, self.pipeline).to_json()


def run_ray(
    tasks: Sequence[ShardTask],
    plan: PipelinePlan,
    workers: int,
    progress: RunProgress | None,
    models: FilterModels | None = None,
    *,
    local_mode: bool = False,
) -> list[ShardStats]:
    """Ray actors, one pipeline each; joins a running Ray (ray.init(address=...)) if there is one."""
    import ray

    models = models if models is not None else FilterModels()
    owned = not ray.is_initialized()
    if owned:
        if local_mode:  # deprecated in Ray; passed only when asked for (debugging)
            ray.init(num_cpus=workers, include_dashboard=False, local_mode=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False)
    try:
        return _run_actors(ray, tasks, plan, workers, progress, models)
    finally:
        if owned:
            ray.shutdown()


def _run_actors(
    ray: Any,
    tasks: Sequence[ShardTask],
    plan: PipelinePlan,
    workers: int,
    progress: RunProgress | None,
    models: FilterModels,
) -> list[ShardStats]:
    from ray.util import ActorPool

    worker_cls = ray.remote(num_cpus=1)(_RayShardWorker)
    actors = [worker_cls.remote(plan, models) for _ in range(max(1, min(workers, len(tasks))))]
    results: dict[str, ShardStats] = {}
    pool = ActorPool(actors)
    for raw in pool.map_unordered(lambda actor, task: actor.run.remote(task), list(tasks)):
        stats = ShardStats.from_json(raw)
        results[stats.shard] = stats
        if progress:
            progress.documents(stats.read)
            progress.shard_done(stats)
    for actor in actors:
        ray.kill(actor)
    return [results[t.shard] for t in tasks]


def filter_corpus(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    pipeline: PipelineSpec | str | Path | None = None,
    policy: Policy | str | Path | None = None,
    executor: Executor = "local",
    workers: int | None = None,
    *,
    force: bool = False,
    progress: RunProgress | None = None,
    ray_local_mode: bool = False,
    models: FilterModels | None = None,
) -> RunStats:
    """Filter `inputs` into `out_dir` (kept/, removed/, errors/, stats.json, report.html).

    Shards finished by an earlier run with the same pipeline and policy are skipped unless `force`.
    `models`: the run's filter models (new ones by default; pass loaded ones to keep model
    loading out of a measurement).
    """
    started = time.perf_counter()
    if isinstance(pipeline, PipelineSpec):
        spec, source = pipeline, "<pipeline>"
    else:
        spec, source = load_pipeline(pipeline)
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    plan = PipelinePlan.resolve(spec, policy, source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_inputs(inputs)
    for path in paths:
        detect_format(path, spec.reader.format)
    by_name = {shard_name(p): p for p in reversed(paths)}  # one shard per file, first spelling wins
    tasks = [
        ShardTask(by_name[n], n, str(out), plan.fingerprint)
        for n in dict.fromkeys(map(shard_name, paths))
    ]
    done: dict[str, ShardStats] = {}
    if not force:
        for task in tasks:
            stats = _load_done(task)
            if stats is not None:
                done[task.shard] = stats
    todo = [t for t in tasks if t.shard not in done]
    if progress:
        progress.start(len(tasks), len(done))
    count = workers or os.cpu_count() or 1
    models = models if models is not None else FilterModels()
    if executor == "ray":
        fresh = run_ray(todo, plan, count, progress, models, local_mode=ray_local_mode)
    elif executor == "local":
        fresh = run_local(todo, plan, count, progress, models)
    else:
        raise InputError(f"unknown executor {executor!r}; use 'local' or 'ray'")
    done.update((s.shard, s) for s in fresh)
    run = RunStats(
        out_dir=out,
        inputs=paths,
        pipeline=spec.model_dump(mode="json"),
        policy=policy.ref,
        fingerprint=plan.fingerprint,
        shards=[done[t.shard] for t in tasks],
        skipped_shards=len(tasks) - len(todo),
        processed=sum(s.read for s in fresh),
        seconds=time.perf_counter() - started,
    )
    write_summary(run)
    return run
