"""Running shards: every document read ends kept, removed or errored; resume; determinism; Ray."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from safestack.data.document import Document, Removal
from safestack.data.executors import done_marker, filter_corpus, shard_name
from safestack.data.filters.base import Filter, FilterOptions, corpus_filter, filters
from safestack.data.pipeline import Pipeline, PipelineSpec, parse_pipeline
from safestack.data.summary import RunStats
from safestack.data.writers import read_jsonl_gz


class SpamOptions(FilterOptions):
    log: str = ""
    """A file that gets one line per document the filter sees (counts calls across processes)."""


@corpus_filter("test-exec-spam")
class DropSpam(Filter):
    Options = SpamOptions

    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        assert isinstance(self.options, SpamOptions)
        if self.options.log:
            with open(self.options.log, "a") as handle:
                handle.write("".join(f"{d.id}\n" for d in documents))
        return [
            self.removal("spam", 0.9, 0.5, category="spam", evidence="buy now")
            if "buy now" in d.text
            else None
            for d in documents
        ]


@corpus_filter("test-exec-fragile")
class Fragile(Filter):
    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        if any("explode" in d.text for d in documents):
            raise RuntimeError("fragile filter failed")
        return [None] * len(documents)


def spec(log: Path | None = None, **extra: object) -> PipelineSpec:
    options = {"log": str(log)} if log else {}
    return parse_pipeline(
        {
            "filters": [
                {"name": "test-exec-fragile"},
                {"name": "test-exec-spam", "options": options},
            ],
            "batch_size": 4,
            **extra,
        }
    )


def corpus(path: Path, n: int, start: int = 0) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for i in range(start, start + n):
            text = "buy now cheap pills" if i % 3 == 0 else f"an ordinary document number {i}"
            handle.write(
                json.dumps({"id": f"d{i}", "text": text, "url": f"https://www.s{i % 2}.com/"})
                + "\n"
            )
    return path


def outputs(out: Path) -> dict[str, bytes]:
    """Every output file (stats.json without timings, not the HTML report) by relative path."""
    found = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "report.html" and ".done" not in path.parts:
            data = path.read_bytes()
            if path.name == "stats.json":
                stats = json.loads(data)
                for key in ("seconds", "docs_per_second", "skipped_shards"):
                    stats.pop(key)
                for shard in stats["shards"]:
                    shard.pop("seconds")
                data = json.dumps(stats).encode()
            found[str(path.relative_to(out))] = data
    return found


def assert_accounted(run: RunStats) -> None:
    assert run.kept + run.removed + run.errored == run.read
    for shard in run.shards:
        assert shard.kept + shard.removed + shard.errored == shard.read


def test_kept_removed_and_counted(tmp_path: Path) -> None:
    source = corpus(tmp_path / "part-1.jsonl.gz", 30)
    run = filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1)
    assert (run.read, run.kept, run.removed, run.errored) == (30, 20, 10, 0)
    shard = shard_name(str(source))
    kept = read_jsonl_gz(tmp_path / "out" / "kept" / f"{shard}.jsonl.gz")
    assert [k["id"] for k in kept][:3] == ["d1", "d2", "d4"]
    removed = read_jsonl_gz(tmp_path / "out" / "removed" / f"{shard}.jsonl.gz")
    assert {r["removal"]["reason"] for r in removed} == {"test-exec-spam.spam"}
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["totals"]["read"] == 30
    assert stats["removed_by_category"] == {"spam": 10}
    assert stats["removed_by_top_domain"] == {"s0.com": 5, "s1.com": 5}
    assert done_marker(tmp_path / "out", shard).is_file()
    assert (tmp_path / "out" / "report.html").is_file()


def test_bad_input_is_counted_by_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    good = corpus(tmp_path / "good.jsonl.gz", 12)
    blob = gzip.compress(
        b"".join(
            json.dumps({"id": f"c{i}", "text": f"doc {i} " * 20}).encode() + b"\n"
            for i in range(4000)
        )
    )
    (tmp_path / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    with (tmp_path / "mixed.jsonl").open("wb") as handle:
        handle.write(b'{"text": "fine one"}\n{"text": "broken\n{"body": "no text"}\n')
        handle.write(b'{"text": "bad \xff byte"}\n{"text": "explode here"}\n{"text": "')
        for _ in range(50):
            handle.write(b"z" * 1_000_000)
        handle.write(b'"}\n{"text": "fine two"}\n')
    inputs = [good, tmp_path / "cut.jsonl.gz", tmp_path / "mixed.jsonl"]
    run = filter_corpus(inputs, tmp_path / "out", pipeline=spec(), workers=1)
    assert_accounted(run)
    errors = run.merged("errors_by_reason")
    assert errors == {
        "filter.test-exec-fragile.failed": 1,
        "read.corrupt_file": 1,
        "read.invalid_json": 1,
        "read.missing_text": 1,
        "read.not_utf8": 1,
        "read.too_large": 1,
    }
    mixed = next(s for s in run.shards if s.input.endswith("mixed.jsonl"))
    assert (mixed.read, mixed.kept, mixed.errored) == (7, 2, 5)
    lines = (tmp_path / "out" / "errors" / f"{mixed.shard}.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["reason"] for x in lines) == sorted(
        r for r in errors if r != "read.corrupt_file"
    )
    cut = next(s for s in run.shards if s.input.endswith("cut.jsonl.gz"))
    assert cut.kept > 500 and cut.errors_by_reason == {"read.corrupt_file": 1}


def test_resume_skips_finished_shards_and_force_redoes_them(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    inputs = [corpus(tmp_path / "a.jsonl.gz", 10), corpus(tmp_path / "b.jsonl.gz", 10, 10)]
    first = filter_corpus(inputs, tmp_path / "out", pipeline=spec(log), workers=1)
    assert first.skipped_shards == 0 and len(log.read_text().splitlines()) == 20
    before = outputs(tmp_path / "out")

    (tmp_path / "out" / "kept" / f"{shard_name(str(inputs[1]))}.jsonl.gz").unlink()
    done_marker(tmp_path / "out", shard_name(str(inputs[1]))).unlink()
    second = filter_corpus(inputs, tmp_path / "out", pipeline=spec(log), workers=1)
    assert second.skipped_shards == 1
    assert len(log.read_text().splitlines()) == 30  # only b was filtered again
    assert (second.read, second.kept) == (first.read, first.kept)
    assert outputs(tmp_path / "out") == before

    third = filter_corpus(inputs, tmp_path / "out", pipeline=spec(log), workers=1, force=True)
    assert third.skipped_shards == 0 and len(log.read_text().splitlines()) == 50


def test_a_changed_pipeline_redoes_done_shards(tmp_path: Path) -> None:
    source = corpus(tmp_path / "a.jsonl.gz", 8)
    filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1)
    again = filter_corpus([source], tmp_path / "out", pipeline=spec(batch_size=2), workers=1)
    assert again.skipped_shards == 0


def test_a_crash_mid_shard_leaves_it_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = corpus(tmp_path / "a.jsonl.gz", 12)
    calls = {"n": 0}
    real = Pipeline.process

    def crash_on_second_batch(self: Pipeline, batch: list[Document]):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Pipeline, "process", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1)
    assert not done_marker(tmp_path / "out", shard_name(str(source))).exists()
    assert not list((tmp_path / "out" / "kept").iterdir())
    monkeypatch.undo()
    run = filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1)
    assert run.skipped_shards == 0 and run.read == 12


def test_same_input_same_output_with_one_or_two_workers(tmp_path: Path) -> None:
    inputs = [corpus(tmp_path / f"p{i}.jsonl.gz", 25, i * 25) for i in range(3)]
    one = filter_corpus(inputs, tmp_path / "one", pipeline=spec(), workers=1)
    two = filter_corpus(inputs, tmp_path / "two", pipeline=spec(), workers=2)
    assert_accounted(two)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    assert [s.shard for s in one.shards] == [s.shard for s in two.shards]


def test_fsspec_memory_input(tmp_path: Path) -> None:
    import fsspec

    with fsspec.open("memory://exec/in.jsonl", "wb") as handle:
        handle.write(b'{"text": "buy now"}\n{"text": "hello"}\n')
    run = filter_corpus(["memory://exec/in.jsonl"], tmp_path / "out", pipeline=spec(), workers=1)
    assert (run.read, run.kept, run.removed) == (2, 1, 1)
    assert run.shards[0].input_bytes == 38


@pytest.mark.slow
def test_ray_output_equals_local_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    inputs = [corpus(tmp_path / f"p{i}.jsonl.gz", 20, i * 20) for i in range(2)]
    local = filter_corpus(inputs, tmp_path / "local", pipeline=spec(), workers=1)
    # Ray workers import this module to unpickle the test filters.
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = filter_corpus(inputs, tmp_path / "ray", pipeline=spec(), executor="ray", workers=2)
    finally:
        ray.shutdown()
    assert (remote.read, remote.kept, remote.removed) == (local.read, local.kept, local.removed)
    assert outputs(tmp_path / "local") == outputs(tmp_path / "ray")


@pytest.mark.slow
@pytest.mark.skipif(
    not all(name in filters for name in ("adult", "quality", "aggregator", "harm")),
    reason="the default filters are not registered yet",
)
def test_default_pipeline_end_to_end(tmp_path: Path) -> None:
    """Runs the real default filters; the expected split may be adjusted as they evolve."""
    source = tmp_path / "web.jsonl"
    texts = [
        "The committee met on Tuesday to discuss the new library opening hours. " * 8,
        "click here click here click here",
        "A detailed recipe: whisk two eggs with flour, add milk slowly, rest the batter. " * 6,
    ]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    run = filter_corpus([source], tmp_path / "out", workers=1)
    assert_accounted(run)
    assert run.read == 3 and run.errored == 0
    names = ("adult", "quality", "aggregator", "harm")
    assert all(reason.split(".")[0] in names for reason in run.merged("removed_by_reason"))
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["totals"]["read"] == 3


def test_a_lone_surrogate_is_an_errored_record_and_the_run_completes(tmp_path: Path) -> None:
    # Issue 17, item 6: the JSON escape \ud800 without its pair cannot be written as UTF-8.
    source = tmp_path / "surrogates.jsonl"
    source.write_text(
        '{"id": "lone", "text": "hello \\ud800 world"}\n'
        '{"id": "meta", "text": "fine text", "note": "x \\udfff"}\n'
        '{"id": "pair", "text": "a smile \\ud83d\\ude00 is a valid pair"}\n'
        '{"id": "plain", "text": "an ordinary document"}\n',
        encoding="ascii",
    )
    for attempt in range(2):  # a re-run must not abort either
        run = filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1, force=True)
        assert_accounted(run)
        assert (run.read, run.kept, run.errored) == (4, 2, 2), attempt
        assert run.merged("errors_by_reason") == {"read.lone_surrogate": 2}
    shard = shard_name(str(source))
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors" / f"{shard}.jsonl").open()]
    assert [e["source"] for e in errors] == [f"{source}:1", f"{source}:2"]
    assert "surrogate" in errors[0]["message"]
    kept = read_jsonl_gz(tmp_path / "out" / "kept" / f"{shard}.jsonl.gz")
    assert [k["id"] for k in kept] == ["pair", "plain"]
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["totals"]["errored"] == 2


def test_a_utf8_bom_on_the_first_line_is_accepted(tmp_path: Path) -> None:
    source = tmp_path / "bom.jsonl"
    source.write_bytes(
        b'\xef\xbb\xbf{"id": "b1", "text": "first"}\n{"id": "b2", "text": "second"}\n'
    )
    run = filter_corpus([source], tmp_path / "out", pipeline=spec(), workers=1)
    assert (run.read, run.kept, run.errored) == (2, 2, 0)
    kept = read_jsonl_gz(tmp_path / "out" / "kept" / f"{shard_name(str(source))}.jsonl.gz")
    assert [k["id"] for k in kept] == ["b1", "b2"]
