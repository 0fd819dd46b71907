"""The analysis of a log too large for one pass: one fold per shard (a Parquet export each, e.g.
one `safestack monitor export` a day), in this process or on Ray, then the shards' activities
added up (`Activity.combine`: the minute buckets are sums, so the result is the whole log's).

Ray runs one task per shard, as the corpus filter's Ray executor runs one per input shard
(`safestack.data.executors`), and joins a running Ray (`ray.init(address=...)` before the call)
when there is one; otherwise it starts one with `workers` CPUs for the call and shuts it down.
The clustering sample is not gathered this way (docs/monitor.md, Scale): signals and rules only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from safestack.errors import InputError
from safestack.monitor.analysis import analyse
from safestack.monitor.auditlog import Period
from safestack.monitor.signals import Activity
from safestack.policy import Policy

Executor = Literal["local", "ray"]


def fold_shard(path: Path, policy: Policy, period: Period | None = None) -> Activity:
    """One shard's activity (a Ray task runs this)."""
    return analyse(path, policy, period).activity


def analyse_shards(
    paths: Sequence[Path],
    policy: Policy,
    period: Period | None = None,
    *,
    executor: Executor = "local",
    workers: int = 2,
) -> Activity:
    """The activity of the log the Parquet shards `paths` hold together."""
    if not paths:
        raise InputError("no shards: give at least one Parquet export")
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: Parquet shard not found ({len(missing)} missing)")
    if executor == "local":
        return Activity.combine(fold_shard(Path(p), policy, period) for p in paths)
    if executor == "ray":
        return Activity.combine(_on_ray([Path(p) for p in paths], policy, period, workers))
    raise InputError(f"unknown executor {executor!r}; use 'local' or 'ray'")


def _on_ray(
    paths: list[Path], policy: Policy, period: Period | None, workers: int
) -> list[Activity]:
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs Ray: pip install 'safestack[ray]'") from None
    owned = not ray.is_initialized()
    if owned:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        task: Any = ray.remote(num_cpus=1)(fold_shard)
        policy_ref = ray.put(policy)
        done: list[Activity] = ray.get([task.remote(p, policy_ref, period) for p in paths])
        return done
    finally:
        if owned:
            ray.shutdown()
