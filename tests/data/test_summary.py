"""Run statistics and the report: merged counts, the accounting invariant, a self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from safestack.data.document import Document, Removal
from safestack.data.summary import AccountingError, RunStats, ShardStats, write_summary


def shard(name: str, reasons: list[str], kept: int = 2, errors: int = 1) -> ShardStats:
    stats = ShardStats(name, f"{name}.jsonl", read=kept + len(reasons) + errors, kept=kept)
    for i, reason in enumerate(reasons):
        doc = Document(
            f"{name}-{i}",
            "<script>alert('x')</script> " + "w" * 900,
            f"https://www.evil{i % 2}.net/p",
        )
        filter_name = reason.split(".")[0]
        stats.count_removed(
            doc, Removal(filter_name, reason, 0.9, 0.5, category="hate"), "evil.net"
        )
    for _ in range(errors):
        stats.count_error("read.invalid_json")
    return stats


def run(tmp_path: Path, *shards: ShardStats) -> RunStats:
    return RunStats(
        out_dir=tmp_path,
        inputs=[s.input for s in shards],
        pipeline={"filters": [{"name": "harm", "options": {}}]},
        policy="default@1",
        fingerprint="abc",
        shards=list(shards),
        processed=sum(s.read for s in shards),
        seconds=2.0,
    )


def test_counts_merge_across_shards(tmp_path: Path) -> None:
    stats = run(
        tmp_path, shard("a", ["harm.hate"] * 4 + ["quality.short"]), shard("b", ["harm.hate"] * 3)
    )
    data = stats.to_json()
    assert data["totals"] | {} == {
        "shards": 2,
        "read": 14,
        "kept": 4,
        "removed": 8,
        "errored": 2,
        "input_bytes": 0,
        "kept_bytes": 0,
    }
    assert list(data["removed_by_reason"].items()) == [("harm.hate", 7), ("quality.short", 1)]
    assert data["removed_by_filter"] == {"harm": 7, "quality": 1}
    assert data["removed_by_top_domain"] == {"evil.net": 8}
    assert data["errors_by_reason"] == {"read.invalid_json": 2}
    assert data["docs_per_second"] == 7.0
    samples = stats.samples()
    assert len(samples["harm.hate"]) == 5 and len(samples["quality.short"]) == 1
    assert [s["id"] for s in samples["harm.hate"]] == ["a-0", "a-1", "a-2", "a-3", "b-0"]
    assert len(samples["harm.hate"][0]["text"]) == 500


def test_counts_that_do_not_add_up_are_refused(tmp_path: Path) -> None:
    broken = shard("a", ["harm.hate"])
    broken.kept += 1
    with pytest.raises(AccountingError, match="shard a"):
        broken.check()
    with pytest.raises(AccountingError):
        write_summary(run(tmp_path, broken))
    assert not (tmp_path / "stats.json").exists()


def test_stats_json_and_a_self_contained_report(tmp_path: Path) -> None:
    stats = run(tmp_path, shard("a", ["harm.hate", "adult.domain"]))
    write_summary(stats)
    data = json.loads((tmp_path / "stats.json").read_text())
    assert data["schema_version"] == 1 and data["policy"] == "default@1"
    assert data["pipeline"]["filters"][0]["name"] == "harm"
    assert data["shards"][0]["shard"] == "a" and "samples" not in data["shards"][0]
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=", page), "no external scripts"
    assert "cdn." not in page.split("</head>")[1] and "Plotly" in page
    assert len(page) > 3_000_000  # plotly.js is inline
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)" in page
    for title in ("Removed by reason", "Removed by category", "Removed by domain (top 20)"):
        assert title in page
    assert "read.invalid_json" in page and "adult.domain" in page
