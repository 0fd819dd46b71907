"""Readers: every record becomes a Document or a ReadError with its reason; one bad record never
stops the file, and corruption keeps what was read before it."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from safestack.data.document import Document, ReadError
from safestack.data.readers import ReaderOptions, detect_format, read_documents, stable_id
from safestack.errors import InputError

OPTS = ReaderOptions()


def lines(*records: object) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def read(path: Path | str, options: ReaderOptions = OPTS) -> list[Document | ReadError]:
    return list(read_documents(str(path), options))


def docs(items: list[Document | ReadError]) -> list[Document]:
    return [i for i in items if isinstance(i, Document)]


def errors(items: list[Document | ReadError]) -> list[ReadError]:
    return [i for i in items if isinstance(i, ReadError)]


def test_jsonl_documents_carry_id_url_source_and_the_other_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        lines(
            {"id": 7, "text": "hello", "url": "https://x.org/a", "lang": "en"},
            b"   ",
            {"text": "no id"},
        )
    )
    first, second = read(path)
    assert isinstance(first, Document) and isinstance(second, Document)
    assert (first.id, first.text, first.url, first.metadata) == (
        "7",
        "hello",
        "https://x.org/a",
        {"lang": "en"},
    )
    assert first.source == f"{path}:1"
    assert second.source == f"{path}:3"  # blank lines are skipped but still counted
    assert second.id == stable_id(f"{path}:3") and len(second.id) == 20


def test_dotted_fields_reach_into_nested_objects(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(lines({"doc": {"body": "nested", "meta": {"u": "https://y.org"}}, "k": 1}))
    options = ReaderOptions(text_field="doc.body", url_field="doc.meta.u", id_field="k")
    (doc,) = docs(read(path, options))
    assert (doc.text, doc.url, doc.id) == ("nested", "https://y.org", "1")
    assert doc.metadata == {"doc": {"meta": {}}}  # the text is not kept twice


def test_bad_lines_become_errors_and_the_file_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        lines(
            {"text": "one"},
            b'{"text": "broken',
            {"body": "no text field"},
            {"text": 42},
            b'{"text": "caf\xe9"}',
            b"[1, 2]",
            {"text": "last"},
        )
    )
    items = read(path)
    assert [d.text for d in docs(items)] == ["one", "last"]
    found = [(e.reason, e.source) for e in errors(items)]
    assert found == [
        ("read.invalid_json", f"{path}:2"),
        ("read.missing_text", f"{path}:3"),
        ("read.missing_text", f"{path}:4"),
        ("read.not_utf8", f"{path}:5"),
        ("read.invalid_json", f"{path}:6"),
    ]
    not_utf8 = errors(items)[3]
    assert "0xe9" in not_utf8.message and not_utf8.raw is not None and "caf" in not_utf8.raw


def test_gzip_and_zstd_are_read_by_extension(tmp_path: Path) -> None:
    payload = lines({"text": "a"}, {"text": "b"})
    (tmp_path / "x.jsonl.gz").write_bytes(gzip.compress(payload))
    (tmp_path / "x.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload))
    for name in ("x.jsonl.gz", "x.jsonl.zst"):
        assert [d.text for d in docs(read(tmp_path / name))] == ["a", "b"]


def _many(n: int) -> bytes:
    return lines(*({"id": i, "text": f"document {i} " + "x" * 200} for i in range(n)))


def test_truncated_gzip_keeps_what_came_before_and_counts_one_error(tmp_path: Path) -> None:
    blob = gzip.compress(_many(5000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    items = read(path)
    kept = docs(items)
    assert 1000 < len(kept) < 5000
    assert [d.id for d in kept] == [str(i) for i in range(len(kept))]
    (error,) = [e for e in errors(items) if e.reason == "read.corrupt_file"]
    assert error is items[-1]
    assert "gzip" in error.message and "compressed byte" in error.message


def test_garbage_inside_gzip_is_a_corrupt_file(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(_many(5000)))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\x00" * 64
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(blob))
    items = read(path)
    assert errors(items)[-1].reason == "read.corrupt_file"
    assert len(docs(items)) > 100


def test_truncated_zstd_is_noticed(tmp_path: Path) -> None:
    blob = zstandard.ZstdCompressor().compress(_many(5000))
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(blob[: len(blob) // 2])
    items = read(path)
    assert items[-1].reason == "read.corrupt_file"  # type: ignore[union-attr]
    assert "truncated" in items[-1].message  # type: ignore[union-attr]
    assert len(docs(items)) > 1000


def test_a_50_mb_document_is_an_error_and_never_loaded_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.write(lines({"text": "before"}))
        handle.write(b'{"text": "')
        for _ in range(50):
            handle.write(b"y" * 1_000_000)
        handle.write(b'"}\n')
        handle.write(lines({"text": "after"}))
    tracemalloc.start()
    items = read(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [d.text for d in docs(items)] == ["before", "after"]
    (error,) = errors(items)
    assert error.reason == "read.too_large" and error.source == f"{path}:2"
    assert "50000013 bytes" in error.message
    assert peak < 30_000_000  # at most one max_document_bytes buffer, not 50 MB (and copies)


def test_too_large_follows_the_configured_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(lines({"text": "x" * 500}, {"text": "ok"}))
    items = read(path, ReaderOptions(max_document_bytes=100))
    assert [type(i).__name__ for i in items] == ["ReadError", "Document"]


def test_parquet_is_streamed_with_row_sources(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table(
        {
            "id": ["a", None, "c"],
            "content": [{"body": "one"}, {"body": "two"}, {"body": None}],
            "url": ["https://a.org", None, None],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    items = read(path, ReaderOptions(text_field="content.body"))
    a, b = docs(items)
    assert (a.id, a.text, a.url, a.source) == ("a", "one", "https://a.org", f"{path}#0")
    assert b.id == stable_id(f"{path}#1")
    (error,) = errors(items)
    assert (error.reason, error.source) == ("read.missing_text", f"{path}#2")


def test_a_corrupt_parquet_file_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    (error,) = read(path)
    assert isinstance(error, ReadError) and error.reason == "read.corrupt_file"


def _warc(path: Path, *, broken: bool = False) -> None:
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        page = (
            "<html><head><title>T</title></head><body><nav>menu</nav><main><article>"
            "<h1>Un café</h1><p>" + "A long paragraph about coffee in Paris. " * 20 + "</p>"
            "</article></main></body></html>"
        ).encode("latin-1")
        http = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html; charset=iso-8859-1")], protocol="HTTP/1.1"
        )
        writer.write_record(
            writer.create_warc_record(
                "https://cafe.example/page", "response", payload=io.BytesIO(page), http_headers=http
            )
        )
        image = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                "https://cafe.example/logo.png",
                "response",
                payload=io.BytesIO(b"\x89PNG"),
                http_headers=image,
            )
        )
        utf8 = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        body = "<html><body><p>Zweite Seite über Tee, ganz ohne Zeichensatz.</p></body></html>"
        writer.write_record(
            writer.create_warc_record(
                "https://tea.example/",
                "response",
                payload=io.BytesIO(body.encode("utf-8")),
                http_headers=utf8,
            )
        )
    if broken:
        with path.open("ab") as handle:
            handle.write(gzip.compress(b"HELLO this is no WARC record\r\n\r\n"))


def test_warc_html_responses_become_text_with_url_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    _warc(path)
    first, second = read(path)
    assert isinstance(first, Document) and isinstance(second, Document)
    assert first.url == "https://cafe.example/page"
    assert "Un café" in first.text and "coffee in Paris" in first.text
    assert "<p>" not in first.text
    assert first.source == f"{path}@0" and first.id.startswith("<urn:uuid:")
    assert "über Tee" in second.text and second.source.startswith(f"{path}@")
    assert int(second.source.rsplit("@", 1)[1]) > 0


def test_a_broken_warc_record_is_an_error_after_the_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    _warc(path, broken=True)
    items = read(path)
    assert len(docs(items)) == 2
    assert errors(items)[-1].reason == "read.bad_record"


def test_fsspec_urls_are_read(tmp_path: Path) -> None:
    with fsspec.open("memory://corpus/part.jsonl.gz", "wb") as handle:
        handle.write(gzip.compress(lines({"text": "from memory"})))
    (doc,) = read("memory://corpus/part.jsonl.gz")
    assert isinstance(doc, Document) and doc.text == "from memory"
    assert doc.source == "memory://corpus/part.jsonl.gz:1"
    local = tmp_path / "f.jsonl"
    local.write_bytes(lines({"text": "file url"}))
    assert docs(read(f"file://{local}"))[0].text == "file url"


def test_format_detection_by_extension() -> None:
    assert detect_format("a/b.JSONL.GZ") == "jsonl"
    assert detect_format("s3://x/y.warc.gz") == "warc"
    assert detect_format("y.parquet") == "parquet"
    assert detect_format("y.txt", "jsonl") == "jsonl"
    with pytest.raises(InputError, match=r"y\.txt: cannot tell the format"):
        detect_format("y.txt")
