"""The evaluation corpus and report: well-formed, reproducible, and scored above measured floors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from safestack.data.eval_corpus import build, corpus_path
from safestack.data.evaluate import EvalReport, evaluate_filters
from safestack.policy import default_policy

LABELS = {"keep", "adult", "aggregator", "spam", "non_english"}


def test_corpus_is_well_formed_and_rebuilds_identically(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in corpus_path().read_text("utf-8").splitlines()]
    assert len(rows) >= 300
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == {"id", "url", "text", "label", "source", "note"}
        assert row["label"] in LABELS or row["label"].startswith("harm:")
    counts = Counter(r["label"].split(":")[0] for r in rows)
    assert min(counts.values()) >= 50
    assert build(tmp_path / "c.jsonl").read_bytes() == corpus_path().read_bytes()


def test_synthetic_people_use_reserved_numbers() -> None:
    rows = [json.loads(line) for line in corpus_path().read_text("utf-8").splitlines()]
    for row in rows:
        if row["label"] == "aggregator":
            assert "555-01" in row["text"]


@pytest.fixture(scope="module")
def report() -> EvalReport:
    return evaluate_filters(default_policy())


def test_report_numbers_meet_measured_floors(report: EvalReport) -> None:
    # Measured on this corpus (docs/data-filter.md); floors sit a little under the figures.
    floors = {
        "adult": (0.95, 0.95),
        "quality": (0.95, 0.95),
        "aggregator": (0.95, 0.95),
        "harm": (0.95, 0.95),  # 1.000 / 1.000 (thresholds were set on this corpus)
    }
    for name, (precision, recall) in floors.items():
        score = report.filters[name]
        assert score.precision >= precision, name
        assert score.recall >= recall, name
    assert report.confusion["keep"]["kept"] >= 295


def test_report_markdown_has_the_tables(report: EvalReport) -> None:
    text = report.to_markdown()
    assert "| aggregator |" in text and "By source group" in text and "| sex-ed | keep |" in text
