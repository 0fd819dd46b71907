"""The held-out evaluation corpus and its report: well-formed, reproducible, free of real-looking
personal data, and scored above floors set just under the measured numbers (docs/data-filter.md)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import safestack.cli.main  # noqa: F401  (registers the sub-commands on the app)
from safestack.cli.app import app
from safestack.data.eval_corpus import corpus_path
from safestack.data.eval_heldout import EMAIL_DOMAINS, build, heldout_path
from safestack.data.evaluate import EvalReport, evaluate_heldout
from safestack.policy import default_policy
from safestack.stats import wilson_interval as wilson

LABELS = {
    "keep",
    "adult",
    "aggregator",
    "spam",
    "non_english",
    "harm:hate",
    "harm:harassment",
    "harm:violence",
    "harm:self-harm",
    "harm:illicit",
}
EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
# North American numbers in the shapes the corpus writes: (312) 555-0147, 312-555-0147,
# 312.555.0147, +1 312 555 0147; the exchange and line must be the reserved 555-0100..0199.
PHONE = re.compile(r"\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")


def reserved(domain: str) -> bool:
    """An RFC 2606 / RFC 6761 name: example.com/.org/.net or under .test, .invalid, .example."""
    names = (*EMAIL_DOMAINS, "test", "invalid", "example")
    return any(domain == n or domain.endswith("." + n) for n in names)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_heldout_parses_has_every_label_and_rebuilds_identically(tmp_path: Path) -> None:
    docs = rows(heldout_path())
    assert len(docs) >= 400
    assert len({d["id"] for d in docs}) == len(docs)
    for doc in docs:
        assert set(doc) == {"id", "url", "text", "label", "source", "note"}
        assert doc["label"] in LABELS, doc["id"]
        assert doc["text"].strip() and doc["url"].startswith("https://")
    assert set(Counter(d["label"] for d in docs)) == LABELS
    assert len({d["source"] for d in docs}) >= 40
    assert build(tmp_path / "h.jsonl").read_bytes() == heldout_path().read_bytes()


def test_heldout_shares_no_text_with_the_tuning_corpus() -> None:
    tuning = {p for d in rows(corpus_path()) for p in d["text"].split("\n\n") if len(p) > 60}
    heldout = {p for d in rows(heldout_path()) for p in d["text"].split("\n\n") if len(p) > 60}
    assert not tuning & heldout


def test_heldout_personal_data_is_reserved_and_synthetic() -> None:
    emails = phones = 0
    for doc in rows(heldout_path()):
        for domain in EMAIL.findall(doc["text"]):
            emails += 1
            assert reserved(domain), (doc["id"], domain)
        for number in PHONE.findall(doc["text"]):
            phones += 1
            digits = re.sub(r"\D", "", number)
            assert digits[-7:-4] == "555" and digits[-4:-2] == "01", (doc["id"], number)
        assert not re.search(r"\b\d{3}-\d{2}-\d{4}\b", doc["text"]), doc["id"]  # no SSN shapes
    assert emails > 100 and phones > 200  # the checks above ran on real material


def test_wilson_interval_matches_the_published_example() -> None:
    # Newcombe 1998 (Stat Med 17:857-872), table I: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson(81, 263)
    assert round(low, 4) == 0.2553 and round(high, 4) == 0.3662
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.fixture(scope="module")
def report() -> EvalReport:
    return evaluate_heldout(default_policy())


def test_heldout_numbers_meet_measured_floors(report: EvalReport) -> None:
    # Measured once on the held-out corpus (docs/data-filter.md); floors a little under them.
    floors = {
        "adult": (0.95, 0.95),  # measured 1.000 / 1.000
        "quality": (0.95, 0.95),  # 1.000 / 1.000
        "aggregator": (0.95, 0.75),  # 1.000 / 0.800
        "harm": (0.82, 0.70),  # 0.872 / 0.750 (document-harm; was 0.791 / 0.340)
    }
    for name, (precision, recall) in floors.items():
        score = report.filters[name]
        assert score.precision >= precision, (name, score.precision)
        assert score.recall >= recall, (name, score.recall)
    assert report.pipeline.precision >= 0.94 and report.pipeline.recall >= 0.75  # 0.963 / 0.780
    assert report.confusion["keep"]["kept"] >= 218  # 221 of 230
    assert report.split == "held-out" and report.documents == len(rows(heldout_path()))


def test_cli_eval_heldout_prints_the_table_and_writes_markdown(
    report: EvalReport, tmp_path: Path
) -> None:
    out = tmp_path / "eval.md"
    result = CliRunner().invoke(app, ["data", "eval", "--heldout", "--markdown", str(out)])
    assert result.exit_code == 0, result.stdout
    harm = report.filters["harm"]
    for text in ("held-out", "heldout.jsonl", "pipeline", f"{harm.precision:.3f}"):
        assert text in result.stdout
    assert f"misclassified documents: {len(report.misclassified)}" in result.stdout
    written = out.read_text("utf-8")
    assert "held-out split" in written and "Misclassified documents" in written
