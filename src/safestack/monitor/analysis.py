"""One pass over the audit log for every monitoring command: the minute buckets the signals and
rules read and, when clustering, the sample of requests it embeds.

The log streams in batches (`auditlog`) and is folded as it goes, so memory grows with the number
of accounts and active minutes, not with the events. For logs that outgrow one machine the same
fold runs per shard (one Parquet export per day, say) and the bucket tables concatenate: they are
sums, so `Activity.collect` over the shards' tables is the whole log's (docs/monitor.md, Scale).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from safestack.monitor.auditlog import EventReader, Period, read_parquet, read_store
from safestack.monitor.clusters import ClusterOptions, sample_requests
from safestack.monitor.signals import Activity
from safestack.policy import Policy
from safestack.store import Database


@dataclass(frozen=True, slots=True)
class Analysis:
    activity: Activity
    requests: pl.DataFrame | None  # the sample to cluster, when asked for


def analyse(
    source: Database | Path,
    policy: Policy,
    period: Period | None = None,
    *,
    cluster: ClusterOptions | None = None,
    batch_rows: int = 20_000,
) -> Analysis:
    """Read `source` (a database, or a Parquet export) once: the activity and, with `cluster`,
    the requests to cluster."""
    reader = EventReader(policy, with_text=cluster is not None)
    period = period or Period()
    if isinstance(source, Path):
        frames = read_parquet(source, reader, period, batch_rows=batch_rows)
    else:
        frames = read_store(source, reader, period, batch_rows=batch_rows)
    kept: list[pl.DataFrame] = []

    def tee() -> Iterator[pl.DataFrame]:
        for frame in frames:
            if cluster is not None:
                kept.append(
                    frame.select("at", "key_id", "end_user", "categories", "text").filter(
                        pl.col("text").is_not_null() | (pl.col("categories").list.len() > 0)
                    )
                )
            yield frame

    high = policy.severity.bands["high"][0]
    activity = Activity.collect(tee(), reader.stats, high=high)
    requests = sample_requests(kept, cluster) if cluster is not None else None
    return Analysis(activity, requests)
