"""Readers: turn input files (JSON Lines, Parquet, WARC; local or fsspec URLs) into Documents.

First block of a corpus run. A reader never raises for one bad record: it yields a ReadError
(invalid JSON, missing text, not UTF-8, a lone surrogate, too large, corrupt file, bad WARC
record) and goes on. A UTF-8 byte-order mark before the first JSON line is skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.data.document import Document, ReadError
from safestack.errors import InputError

Format = Literal["auto", "jsonl", "parquet", "warc"]
_COMPRESSION = (".gz", ".zst", ".zstd")
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_RAW_CHARS = 1_000
_BOM = b"\xef\xbb\xbf"
# A JSON escape of a UTF-16 surrogate: json.loads joins a valid pair into one code point and keeps
# a lone one, which no UTF-8 writer can take; only lines with such an escape are walked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class ReaderOptions(BaseModel):
    """The `reader:` block of a pipeline definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format = "auto"
    """'auto' detects it from the extension (.jsonl[.gz|.zst], .parquet, .warc[.gz])."""
    text_field: str = "text"
    id_field: str = "id"
    url_field: str = "url"
    """Field names; dotted paths ('meta.url') reach into nested objects."""
    max_document_bytes: int = Field(default=10_000_000, gt=0)


def detect_format(path: str, explicit: Format = "auto") -> Literal["jsonl", "parquet", "warc"]:
    """The reader for `path`; InputError naming the file when the extension says nothing."""
    if explicit != "auto":
        return explicit
    name = path.rsplit("/", 1)[-1].lower()
    for suffix in _COMPRESSION:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(".warc") or name.endswith(".arc"):
        return "warc"
    dot = name.rfind(".")
    found = _EXTENSIONS.get(name[dot:]) if dot >= 0 else None
    if found == "jsonl":
        return "jsonl"
    if found == "parquet":
        return "parquet"
    raise InputError(
        f"{path}: cannot tell the format from the name; use .jsonl[.gz|.zst], .parquet or "
        f".warc[.gz], or set reader.format in the pipeline"
    )


def open_binary(path: str) -> AbstractContextManager[IO[bytes]]:
    """A local path or an fsspec URL (file://, memory://, s3://...), opened for binary reading."""
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rb")  # type: ignore[no-any-return]
    return open(path, "rb")


def read_documents(path: str, options: ReaderOptions) -> Iterator[Document | ReadError]:
    """Every record of `path` as a Document, or a ReadError for one that cannot be read."""
    fmt = detect_format(path, options.format)
    if fmt == "jsonl":
        yield from _read_jsonl(path, options)
    elif fmt == "parquet":
        yield from _read_parquet(path, options)
    else:
        yield from _read_warc(path, options)


def stable_id(source: str) -> str:
    """An id for a record that has none: a hash of where it was read."""
    return hashlib.blake2b(source.encode("utf-8"), digest_size=10).hexdigest()


def _excerpt(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw[: _RAW_CHARS * 4].decode("utf-8", "replace")[:_RAW_CHARS]
    return raw[:_RAW_CHARS]


def _pop_path(record: dict[str, Any], path: str) -> Any:
    """Remove and return the value at a (dotted) path, or None when it is not there."""
    if "." not in path or path in record:
        return record.pop(path, None)
    *parents, leaf = path.split(".")
    node: Any = record
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    return node.pop(leaf, None) if isinstance(node, dict) else None


def _document(
    record: Any, source: str, options: ReaderOptions, raw: bytes | str
) -> Document | ReadError:
    """A parsed record becomes a Document; the text, id and url leave `metadata` (no copies of text)."""
    if not isinstance(record, dict):
        return ReadError(
            source,
            "read.invalid_json",
            f"expected a JSON object with a '{options.text_field}' field, got {type(record).__name__}",
            _excerpt(raw),
        )
    text = _pop_path(record, options.text_field)
    if not isinstance(text, str):
        what = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return ReadError(
            source,
            "read.missing_text",
            f"field '{options.text_field}' is {what}; set reader.text_field in the pipeline",
            _excerpt(raw),
        )
    if len(text) * 4 > options.max_document_bytes:
        size = len(text.encode("utf-8"))
        if size > options.max_document_bytes:
            return _too_large(source, size, options, text)
    ident = _pop_path(record, options.id_field)
    url = _pop_path(record, options.url_field)
    return Document(
        id=stable_id(source) if ident is None or ident == "" else str(ident),
        text=text,
        url=url if isinstance(url, str) else None,
        metadata=record,
        source=source,
    )


def _too_large(source: str, size: int, options: ReaderOptions, raw: bytes | str) -> ReadError:
    return ReadError(
        source,
        "read.too_large",
        f"{size} bytes, more than max_document_bytes ({options.max_document_bytes}); "
        f"raise reader.max_document_bytes to keep such documents",
        _excerpt(raw),
    )


class _ZstdStream(io.RawIOBase):
    """Zstandard decompression that notices a truncated file (the stock reader stops silently)."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor()
        self._obj = self._decompressor.decompressobj()
        self._pending = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import zstandard

        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._started and not self._obj.eof:
                    raise zstandard.ZstdError("truncated zstd frame (file ends mid-frame)")
                return 0
            while chunk:
                if self._obj.eof:  # a new frame starts
                    self._obj = self._decompressor.decompressobj()
                self._started = True
                self._pending += self._obj.decompress(chunk)
                chunk = self._obj.unused_data if self._obj.eof else b""
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _corruption_errors() -> tuple[type[BaseException], ...]:
    import zstandard

    return (OSError, EOFError, zlib.error, zstandard.ZstdError)


def _decompressed(path: str, raw: IO[bytes]) -> tuple[IO[bytes] | gzip.GzipFile, str]:
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"
    if name.endswith((".zst", ".zstd")):
        return io.BufferedReader(_ZstdStream(raw), buffer_size=1 << 16), "zstd"
    return raw, "plain"


def _read_jsonl(path: str, options: ReaderOptions) -> Iterator[Document | ReadError]:
    limit = options.max_document_bytes + 2  # room for "\r\n"
    with open_binary(path) as raw:
        stream, kind = _decompressed(path, raw)
        number = 0
        try:
            while line := stream.readline(limit):
                number += 1
                source = f"{path}:{number}"
                if len(line) == limit and not line.endswith(b"\n"):
                    size = len(line) + _skip_rest_of_line(stream)
                    yield _too_large(source, size, options, line)
                    continue
                body = line.rstrip(b"\r\n")
                if number == 1 and body.startswith(_BOM):  # written by Windows tools
                    body = body[len(_BOM) :]
                if len(body) > options.max_document_bytes:
                    yield _too_large(source, len(body), options, body)
                    continue
                if not body or body.isspace():
                    continue
                yield _parse_line(body, source, options)
        except _corruption_errors() as exc:
            yield ReadError(
                f"{path}:{number + 1}",
                "read.corrupt_file",
                f"corrupt or truncated {kind} data after line {number} "
                f"(compressed byte {_tell(raw)}): {exc}; the {number} lines before it were read",
            )


def _skip_rest_of_line(stream: IO[bytes] | gzip.GzipFile) -> int:
    """Read past an oversized line in 1 MB pieces, so it never sits in memory whole."""
    skipped = 0
    while chunk := stream.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def _tell(raw: IO[bytes]) -> int | str:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return "?"


def _parse_line(body: bytes, source: str, options: ReaderOptions) -> Document | ReadError:
    try:
        line = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ReadError(
            source,
            "read.not_utf8",
            f"not valid UTF-8 (byte 0x{body[exc.start]:02x} at column {exc.start + 1}); "
            f"re-encode the file as UTF-8",
            _excerpt(body),
        )
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return ReadError(
            source,
            "read.invalid_json",
            f"not valid JSON ({exc.msg} at column {exc.colno})",
            _excerpt(line),
        )
    if _SURROGATE_ESCAPE.search(line) and _has_lone_surrogate(record):
        return ReadError(
            source,
            "read.lone_surrogate",
            "a string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), "
            "which cannot be written as UTF-8; fix the record or drop it",
            _excerpt(line),
        )
    return _document(record, source, options, line)


def _has_lone_surrogate(record: Any) -> bool:
    """Whether any key or string value in a parsed record is not encodable as UTF-8."""
    pending = [record]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _read_parquet(path: str, options: ReaderOptions) -> Iterator[Document | ReadError]:
    """Parquet, streamed by record batches; `source` is 'path#row' (row counted from 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    with open_binary(path) as raw:
        try:
            for batch in pq.ParquetFile(raw).iter_batches(batch_size=1024):
                for record in batch.to_pylist():
                    source = f"{path}#{row}"
                    row += 1
                    yield _document(record, source, options, "")
        except (pa.ArrowException, OSError) as exc:
            yield ReadError(
                f"{path}#{row}",
                "read.corrupt_file",
                f"unreadable Parquet after row {row}: {exc}; the rows before it were read",
            )


def _read_warc(path: str, options: ReaderOptions) -> Iterator[Document | ReadError]:
    """HTML (and plain-text) responses of a WARC file; `source` is 'path@offset'."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    offset = 0
    with open_binary(path) as raw:
        records = ArchiveIterator(raw)
        try:
            for record in records:
                offset = (
                    records.offset
                )  # start of this record (get_record_offset() would consume it)
                found = _warc_document(record, f"{path}@{offset}", options)
                if found is not None:
                    yield found
        except (ArchiveLoadFailed, *_corruption_errors()) as exc:
            reason = (
                "read.bad_record" if isinstance(exc, ArchiveLoadFailed) else "read.corrupt_file"
            )
            yield ReadError(
                f"{path}@{offset}",
                reason,
                f"unreadable WARC data after the record at byte {offset}: {exc}; the records before it were read",
            )


def _warc_document(record: Any, source: str, options: ReaderOptions) -> Document | ReadError | None:
    if record.rec_type != "response" or record.http_headers is None:
        return None
    content_type = record.http_headers.get_header("Content-Type") or ""
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if mime not in _HTML_TYPES and mime != "text/plain":
        return None
    length = int(record.rec_headers.get_header("Content-Length") or 0)
    if length > options.max_document_bytes:
        return _too_large(source, length, options, b"")
    uri = record.rec_headers.get_header("WARC-Target-URI")
    try:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        body = record.content_stream().read()
        charset = params.partition("charset=")[2].strip().strip("\"'") or None
        encoding = charset or detect_encoding(body, from_html_meta=mime in _HTML_TYPES) or "utf-8"
        decoded = bytes_to_str(body, encoding)
        text = extract_plain_text(decoded, main_content=True) if mime in _HTML_TYPES else decoded
    except Exception as exc:  # one bad record (bad chunking, bad encoding, parser failure)
        return ReadError(source, "read.bad_record", f"unreadable WARC record ({uri}): {exc}")
    ident = record.rec_headers.get_header("WARC-Record-ID")
    return Document(
        id=ident or stable_id(source),
        text=text,
        url=uri,
        metadata={
            "content_type": mime,
            "warc_date": record.rec_headers.get_header("WARC-Date"),
        },
        source=source,
    )
