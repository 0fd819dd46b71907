"""The analysis in shards: Parquet shards folded one by one, here or on Ray, add up to the
activity of the whole log (the same signals and rule firings as one pass over one export)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from monitor_logs import event, write_log
from polars.testing import assert_frame_equal

from safestack.errors import InputError
from safestack.monitor.analysis import analyse
from safestack.monitor.auditlog import export_parquet
from safestack.monitor.rules import example_rules_path, load_rules, sweep
from safestack.monitor.shards import analyse_shards
from safestack.monitor.signals import Activity
from safestack.policy import default_policy
from safestack.store import Store


def sharded_log(tmp_path: Path, shards: int = 3) -> tuple[Path, list[Path]]:
    """A small log exported whole and in `shards` pieces (an account spans several)."""
    rows = []
    for minute in range(90):
        rows.append((event("ssk_calm0000", minute, number=minute), None))
        flagged = {"violence": 0.95} if minute % 3 == 0 else None
        rows.append((event("ssk_prob0000", minute + 0.5, flagged, number=minute), "ab" * 32))
        if minute % 10 == 0:
            attack = {"jailbreak": 0.9}
            rows.append((event("ssk_atk00000", minute, attack, number=minute), None))
    url = write_log(tmp_path / "log.db", rows)
    whole = tmp_path / "whole.parquet"
    with Store.open(url) as store:
        export_parquet(store, whole)
    frame = pl.read_parquet(whole).sort("created_at")
    size = -(-frame.height // shards)
    paths = []
    for index in range(shards):
        path = tmp_path / f"shard-{index}.parquet"
        frame.slice(index * size, size).write_parquet(path)
        paths.append(path)
    return whole, paths


def same(left: Activity, right: Activity) -> None:
    assert left.last is not None and left.last == right.last and left.first == right.first
    for window in (timedelta(minutes=30), timedelta(hours=24)):
        assert_frame_equal(
            left.signals(left.last, window).sort("account"),
            right.signals(right.last, window).sort("account"),
        )
    rules = load_rules(example_rules_path()).rules
    step = timedelta(minutes=15)
    assert sorted(map(repr, sweep(rules, left, step))) == sorted(
        map(repr, sweep(rules, right, step))
    )
    assert left.stats.events == right.stats.events and left.stats.rows == right.stats.rows


def test_shards_folded_here_add_up_to_the_whole_log(tmp_path: Path) -> None:
    whole, shards = sharded_log(tmp_path)
    policy = default_policy()
    one_pass = analyse(whole, policy).activity
    assert one_pass.signals(one_pass.last, timedelta(hours=24)).height == 4  # type: ignore[arg-type]
    same(one_pass, analyse_shards(shards, policy))


def test_shards_folded_on_ray_add_up_to_the_whole_log(tmp_path: Path) -> None:
    whole, shards = sharded_log(tmp_path)
    policy = default_policy()
    same(analyse(whole, policy).activity, analyse_shards(shards, policy, executor="ray"))


def test_missing_shards_and_unknown_executors_are_named(tmp_path: Path) -> None:
    _, shards = sharded_log(tmp_path, shards=2)
    policy = default_policy()
    with pytest.raises(InputError, match=r"nowhere\.parquet: Parquet shard not found"):
        analyse_shards([*shards, tmp_path / "nowhere.parquet"], policy)
    with pytest.raises(InputError, match="unknown executor 'spark'"):
        analyse_shards(shards, policy, executor="spark")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no shards"):
        analyse_shards([], policy)
