"""`safestack data` as a user runs it: the summary table, output paths, resume, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.data.document import Document, Removal
from safestack.data.filters.base import Filter, corpus_filter
from safestack.data.pipeline import PipelineSpec, parse_pipeline
from safestack.data.writers import read_jsonl_gz

runner = CliRunner()


@corpus_filter("test-cli-spam")
class CliSpam(Filter):
    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        return [self.removal("spam", 1.0, 0.5) if "spam" in d.text else None for d in documents]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def setup(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in ("spam spam", "hello", "fine")) + "{oops\n"
    )
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("filters:\n  - name: test-cli-spam\n")
    return source, pipeline


def test_filter_prints_the_summary_and_where_the_outputs_are(tmp_path: Path) -> None:
    source, pipeline = setup(tmp_path)
    out = tmp_path / "out"
    args = (
        "data",
        "filter",
        str(source),
        "--out",
        str(out),
        "--pipeline",
        str(pipeline),
        "-w",
        "1",
    )
    code, stdout, _ = run(*args)
    assert code == 0, stdout
    for row in ("read", "kept", "removed", "errored", "test-cli-spam.spam", "read.invalid_json"):
        assert row in stdout
    assert f"stats:  {out / 'stats.json'}" in stdout and f"report: {out / 'report.html'}" in stdout
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["totals"]["kept"], stats["totals"]["removed"], stats["totals"]["errored"]) == (
        2,
        1,
        1,
    )

    code, _, stderr = run(*args)
    assert code == 0 and "1 of 1 shards already done" in stderr


def test_unknown_filter_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    source, pipeline = setup(tmp_path)
    pipeline.write_text("filters:\n  - name: test-cli-spam\n  - name: no-such-filter\n")
    code, _, stderr = run(
        "data", "filter", str(source), "--out", str(tmp_path / "o"), "--pipeline", str(pipeline)
    )
    assert code == 2
    assert stderr.startswith(f"error: {pipeline}: filters[1].name: unknown filter 'no-such-filter'")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_missing_input_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl.gz"
    _, pipeline = setup(tmp_path)
    code, _, stderr = run(
        "data", "filter", str(missing), "--out", str(tmp_path / "o"), "--pipeline", str(pipeline)
    )
    assert code == 2
    assert stderr == f"error: {missing}: no such input file\n"


def test_show_pipeline_prints_the_effective_default(tmp_path: Path) -> None:
    code, stdout, _ = run("data", "show-pipeline")
    assert code == 0
    assert parse_pipeline(yaml.safe_load(stdout)) == PipelineSpec()
    _, pipeline = setup(tmp_path)
    code, stdout, _ = run("data", "show-pipeline", "--pipeline", str(pipeline))
    shown = parse_pipeline(yaml.safe_load(stdout))
    assert [f.name for f in shown.filters] == ["test-cli-spam"] and shown.batch_size == 256


def test_the_sample_crawl_ends_as_each_record_expects(tmp_path: Path) -> None:
    """examples/crawl (the README's `data filter` example) with the default pipeline: every record
    says what should happen to it (`expect`: keep, a reason code or its filter), and it does."""
    sample = Path(__file__).resolve().parents[2] / "examples" / "crawl"
    inputs = sorted(str(p) for p in sample.glob("*.jsonl"))
    assert len(inputs) == 2
    out = tmp_path / "out"
    code, stdout, _ = run("data", "filter", *inputs, "--out", str(out), "--workers", "1")
    assert code == 0, stdout
    expected: dict[str, str] = {}
    for path in inputs:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.endswith("}"):
                record = json.loads(line)
                expected[record["id"]] = record["expect"]
    outcome = {r["id"]: "keep" for p in (out / "kept").glob("*.gz") for r in read_jsonl_gz(p)}
    for path in (out / "removed").glob("*.gz"):
        for record in read_jsonl_gz(path):
            reason, want = record["removal"]["reason"], expected[record["id"]]
            # 'quality' in the sample stands for any quality rule
            outcome[record["id"]] = want if reason.startswith(f"{want}.") else reason
    assert outcome == expected
    errors = [json.loads(x) for p in (out / "errors").glob("*") for x in p.read_text().splitlines()]
    assert [(e["reason"], e["source"].rsplit("/", 1)[-1]) for e in errors] == [
        ("read.invalid_json", "part-0001.jsonl:9")
    ]
