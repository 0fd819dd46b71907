"""Per-account signals over sliding windows, computed from minute buckets of the audit log.

`Activity.collect` folds event frames (`auditlog`) into per-account, per-minute counts, so the
log is read once and any window ending at any time is a sum over buckets. Every event counts for
its key's account (`key:<key_id>`) and, when the gateway recorded an end user, for that user's
(`user:<key_id>:<end_user>`). `signals(at, window)` gives one row per account active in the window;
`SIGNALS` names and explains each column (the rules file may use exactly these).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from safestack.monitor.auditlog import ReadStats
from safestack.stats import wilson_bounds

# Signals of one account in one window. A rule condition names one of these.
SIGNALS: dict[str, str] = {
    "requests": "requests in the window",
    "flagged": "requests with at least one flagged category",
    "flag_rate": "flagged / requests",
    "flag_rate_low": "the 95% Wilson interval's lower bound of flag_rate",
    "flag_rate_lift": "flag_rate_low / the deployment's flag rate in the same window",
    "blocked": "requests the guard blocked",
    "block_rate": "blocked / requests",
    "block_rate_low": "the 95% Wilson interval's lower bound of block_rate",
    "block_rate_lift": "block_rate_low / the deployment's block rate in the same window",
    "high_severity": "requests with a flagged category at high severity (the policy's high band)",
    "attacks": "requests flagged for an attack on the instruction hierarchy (jailbreak, ...)",
    "burst": "the most requests the account sent in one minute",
    "distinct_categories": "how many categories were flagged",
    "novel_categories": "categories flagged in the window that the account never had flagged "
    "before it (accounts with earlier activity only)",
}
# Per category (a condition names the category too).
CATEGORY_SIGNALS: dict[str, str] = {
    "category_flags": "requests flagged for the category",
    "category_rate": "category_flags / requests",
    "category_rate_low": "the 95% Wilson interval's lower bound of category_rate",
    "category_lift": "category_rate_low / the deployment's rate for the category",
}

ACCOUNT_KINDS = ("key", "user")


@dataclass
class Activity:
    """The audit log in minute buckets: per account, per account and category, and overall."""

    buckets: pl.DataFrame  # account, minute, requests, flagged, blocked, high, attacks
    categories: pl.DataFrame  # account, minute, category, flags
    overall: pl.DataFrame  # minute, requests, flagged, blocked
    overall_categories: pl.DataFrame  # minute, category, flags
    stats: ReadStats = field(default_factory=ReadStats)

    @property
    def first(self) -> datetime | None:
        return None if self.overall.is_empty() else _moment(self.overall["minute"].min())

    @property
    def last(self) -> datetime | None:
        """The end of the last minute with events."""
        if self.overall.is_empty():
            return None
        return _moment(self.overall["minute"].max()) + timedelta(minutes=1)

    @classmethod
    def collect(
        cls, frames: Iterable[pl.DataFrame], stats: ReadStats | None = None, *, high: int = 6
    ) -> Activity:
        """Fold event frames into buckets; `high`: the lowest severity counted as high."""
        parts: list[tuple[pl.DataFrame, ...]] = [_fold(frame, high) for frame in frames]
        if not parts:
            parts = [_fold(pl.DataFrame(schema=_EVENT_COLUMNS), high)]
        return cls._summed(parts, stats or ReadStats())

    @classmethod
    def combine(cls, shards: Iterable[Activity]) -> Activity:
        """The activity of a log read in shards (each `collect`ed on its own, e.g. on Ray):
        the buckets are sums, so this is the activity of the whole log."""
        shards = list(shards)
        if not shards:
            return cls.collect([])
        stats = ReadStats()
        for shard in shards:
            stats.rows += shard.stats.rows
            stats.events += shard.stats.events
            stats.skipped.update(shard.stats.skipped)
            stats.repaired.update(shard.stats.repaired)
            for column in shard.stats.missing_columns:
                if column not in stats.missing_columns:
                    stats.missing_columns.append(column)
        parts = [(a.buckets, a.categories, a.overall, a.overall_categories) for a in shards]
        return cls._summed(parts, stats)

    @classmethod
    def _summed(cls, parts: Sequence[tuple[pl.DataFrame, ...]], stats: ReadStats) -> Activity:
        buckets, categories, overall, overall_categories = (
            pl.concat([p[i] for p in parts]) for i in range(4)
        )
        return cls(
            buckets=buckets.group_by("account", "minute").agg(pl.all().sum()).sort("minute"),
            categories=categories.group_by("account", "minute", "category")
            .agg(pl.col("flags").sum())
            .sort("minute"),
            overall=overall.group_by("minute").agg(pl.all().sum()).sort("minute"),
            overall_categories=overall_categories.group_by("minute", "category")
            .agg(pl.col("flags").sum())
            .sort("minute"),
            stats=stats,
        )

    def signals(self, at: datetime, window: timedelta) -> pl.DataFrame:
        """One row per account with requests in (at - window, at]: `account`, `kind` and SIGNALS."""
        start = at - window
        inside = (pl.col("minute") >= start) & (pl.col("minute") < at)
        base = self.overall.filter(inside).select(pl.col("requests", "flagged", "blocked").sum())
        total = int(base["requests"][0] or 0)
        base_flag = (int(base["flagged"][0] or 0) / total) if total else 0.0
        base_block = (int(base["blocked"][0] or 0) / total) if total else 0.0
        rows = (
            self.buckets.filter(inside)
            .group_by("account")
            .agg(
                pl.col("requests", "flagged", "blocked", "high", "attacks").sum(),
                pl.col("requests").max().alias("burst"),
            )
            .rename({"high": "high_severity"})
        )
        seen = self.categories.filter(pl.col("minute") < at)
        first_flag = seen.group_by("account", "category").agg(pl.col("minute").min())
        in_window = first_flag.filter(pl.col("minute") >= start)
        earlier = self.buckets.filter(pl.col("minute") < start).select("account").unique()
        novel = (
            in_window.join(earlier, on="account", how="semi")
            .group_by("account")
            .agg(pl.len().alias("novel_categories"))
        )
        distinct = (
            self.categories.filter(inside)
            .group_by("account")
            .agg(pl.col("category").n_unique().alias("distinct_categories"))
        )
        rows = (
            rows.join(novel, on="account", how="left")
            .join(distinct, on="account", how="left")
            .with_columns(
                pl.col("novel_categories", "distinct_categories").fill_null(0).cast(pl.Int64),
                pl.col("account").str.split(":").list.first().alias("kind"),
                (pl.col("flagged") / pl.col("requests")).alias("flag_rate"),
                (pl.col("blocked") / pl.col("requests")).alias("block_rate"),
            )
            .sort("account")
        )
        flag_low, _ = wilson_bounds(rows["flagged"].to_list(), rows["requests"].to_list())
        block_low, _ = wilson_bounds(rows["blocked"].to_list(), rows["requests"].to_list())
        return rows.with_columns(
            pl.Series("flag_rate_low", flag_low, dtype=pl.Float64),
            pl.Series("block_rate_low", block_low, dtype=pl.Float64),
        ).with_columns(
            _lift("flag_rate_low", base_flag).alias("flag_rate_lift"),
            _lift("block_rate_low", base_block).alias("block_rate_lift"),
        )

    def category_signals(self, at: datetime, window: timedelta) -> pl.DataFrame:
        """One row per account and flagged category in the window: CATEGORY_SIGNALS."""
        start = at - window
        inside = (pl.col("minute") >= start) & (pl.col("minute") < at)
        total = int(self.overall.filter(inside)["requests"].sum() or 0)
        base = (
            self.overall_categories.filter(inside)
            .group_by("category")
            .agg((pl.col("flags").sum() / max(total, 1)).alias("base_rate"))
        )
        requests = self.buckets.filter(inside).group_by("account").agg(pl.col("requests").sum())
        rows = (
            self.categories.filter(inside)
            .group_by("account", "category")
            .agg(pl.col("flags").sum().alias("category_flags"))
            .join(requests, on="account")
            .join(base, on="category", how="left")
            .with_columns((pl.col("category_flags") / pl.col("requests")).alias("category_rate"))
            .sort("account", "category")
        )
        low, _ = wilson_bounds(rows["category_flags"].to_list(), rows["requests"].to_list())
        rows = rows.with_columns(pl.Series("category_rate_low", low, dtype=pl.Float64))
        return rows.with_columns(
            pl.when(pl.col("base_rate") > 0)
            .then(pl.col("category_rate_low") / pl.col("base_rate"))
            .otherwise(pl.when(pl.col("category_rate_low") > 0).then(float("inf")).otherwise(0.0))
            .alias("category_lift")
        ).drop("base_rate")

    def baseline(self, at: datetime, window: timedelta) -> dict[str, float | int]:
        """The deployment's requests, flag rate and block rate in the window."""
        inside = (pl.col("minute") >= at - window) & (pl.col("minute") < at)
        sums = self.overall.filter(inside).select(pl.col("requests", "flagged", "blocked").sum())
        total = int(sums["requests"][0] or 0)
        return {
            "requests": total,
            "flag_rate": (int(sums["flagged"][0] or 0) / total) if total else 0.0,
            "block_rate": (int(sums["blocked"][0] or 0) / total) if total else 0.0,
        }


def _moment(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    return value


def _lift(column: str, base: float) -> pl.Expr:
    """How many times the baseline; an account above a zero baseline is infinitely above it."""
    if base > 0:
        return pl.col(column) / base
    return pl.when(pl.col(column) > 0).then(float("inf")).otherwise(0.0)


_EVENT_COLUMNS: dict[str, Any] = {
    "at": pl.Datetime("us", "UTC"),
    "key_id": pl.Utf8,
    "end_user": pl.Utf8,
    "action": pl.Utf8,
    "categories": pl.List(pl.Utf8),
    "severity": pl.Int8,
    "attack": pl.Boolean,
}


def _fold(events: pl.DataFrame, high: int) -> tuple[pl.DataFrame, ...]:
    """One frame of events as the four bucket tables."""
    marked = events.select(
        pl.col("at").dt.truncate("1m").alias("minute"),
        pl.concat_list(
            pl.lit("key:") + pl.col("key_id"),
            pl.lit("user:") + pl.col("key_id") + pl.lit(":") + pl.col("end_user"),
        )
        .list.drop_nulls()
        .alias("account"),
        pl.lit(1, pl.Int64).alias("requests"),
        (pl.col("categories").list.len() > 0).cast(pl.Int64).alias("flagged"),
        (pl.col("action") == "block").fill_null(False).cast(pl.Int64).alias("blocked"),
        (pl.col("severity") >= high).cast(pl.Int64).alias("high"),
        pl.col("attack").cast(pl.Int64).alias("attacks"),
        pl.col("categories"),
    )
    overall = marked.group_by("minute").agg(pl.col("requests", "flagged", "blocked").sum())
    overall_categories = (
        marked.select("minute", "categories")
        .explode("categories")
        .drop_nulls("categories")
        .group_by("minute", pl.col("categories").alias("category"))
        .agg(pl.len().cast(pl.Int64).alias("flags"))
    )
    per_account = marked.explode("account").drop_nulls("account")
    buckets = per_account.group_by("account", "minute").agg(
        pl.col("requests", "flagged", "blocked", "high", "attacks").sum()
    )
    categories = (
        per_account.select("account", "minute", "categories")
        .explode("categories")
        .drop_nulls("categories")
        .group_by("account", "minute", pl.col("categories").alias("category"))
        .agg(pl.len().cast(pl.Int64).alias("flags"))
    )
    return buckets, categories, overall, overall_categories
