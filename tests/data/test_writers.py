"""Writers: kept, removed (with the removal) and errors per shard, renamed into place only when
the shard is complete, byte-identical for identical input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safestack.data.document import Document, ReadError, Removal
from safestack.data.readers import ReaderOptions, read_documents
from safestack.data.writers import ShardWriter, WriterOptions, read_jsonl_gz

REMOVAL = Removal("quality", "quality.short", 3.0, 50.0, category=None, evidence="3 words")


def sample() -> tuple[list[Document], list[tuple[Document, Removal]], list[ReadError]]:
    kept = [
        Document("a", "kept text", "https://a.org/x", {"lang": "en"}, "in.jsonl:1"),
        Document("b", "ünïcode kept", None, {}, "in.jsonl:2"),
    ]
    removed = [(Document("c", "too short", None, {}, "in.jsonl:3"), REMOVAL)]
    errors = [ReadError("in.jsonl:4", "read.invalid_json", "not valid JSON", '{"te')]
    return kept, removed, errors


def write(out: Path, options: WriterOptions | None = None) -> ShardWriter:
    with ShardWriter(out, "part-0", options or WriterOptions()) as writer:
        writer.write(*sample())
    return writer


def test_kept_removed_and_errors_files(tmp_path: Path) -> None:
    writer = write(tmp_path)
    assert writer.paths["kept"] == tmp_path / "kept" / "part-0.jsonl.gz"
    kept = read_jsonl_gz(writer.paths["kept"])
    assert [k["id"] for k in kept] == ["a", "b"]
    assert kept[0] == {
        "id": "a",
        "text": "kept text",
        "url": "https://a.org/x",
        "source": "in.jsonl:1",
        "metadata": {"lang": "en"},
    }
    (removed,) = read_jsonl_gz(tmp_path / "removed" / "part-0.jsonl.gz")
    assert removed["id"] == "c" and removed["text"] == "too short"
    assert removed["removal"] == {
        "filter": "quality",
        "reason": "quality.short",
        "category": None,
        "score": 3.0,
        "threshold": 50.0,
        "evidence": "3 words",
    }
    (error,) = [
        json.loads(x) for x in (tmp_path / "errors" / "part-0.jsonl").read_text().splitlines()
    ]
    assert error["reason"] == "read.invalid_json" and error["source"] == "in.jsonl:4"
    assert not list(tmp_path.rglob("*.tmp")), "temporary files are renamed away"


def test_output_bytes_are_deterministic(tmp_path: Path) -> None:
    first = write(tmp_path / "one")
    second = write(tmp_path / "two")
    for key in ("kept", "removed", "errors"):
        assert first.paths[key].read_bytes() == second.paths[key].read_bytes()


def test_a_failed_shard_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "part-0", WriterOptions()) as writer:
        writer.write(*sample())
        raise RuntimeError("crash mid-shard")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_parquet_kept_documents_round_trip(tmp_path: Path) -> None:
    writer = write(tmp_path, WriterOptions(format="parquet"))
    assert writer.paths["kept"].name == "part-0.parquet"
    back = list(read_documents(str(writer.paths["kept"]), ReaderOptions()))
    kept = sample()[0]
    assert [(d.id, d.text, d.url) for d in back] == [(d.id, d.text, d.url) for d in kept]  # type: ignore[union-attr]
    assert json.loads(back[0].metadata["metadata"]) == {"lang": "en"}  # type: ignore[union-attr]
    assert back[0].metadata["source"] == "in.jsonl:1"  # type: ignore[union-attr]
