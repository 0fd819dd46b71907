"""C2PA content credentials for generated text: the C2PA 2.x unstructured-text embedding.

The manifest store rides at the end of the text as a `C2PATextManifestWrapper` (C2PA 2.4 §A.8):
U+FEFF, then one Unicode variation selector per byte of `C2PATXT\\0`, version 1, the store's length
(uint32, big-endian), the store and padding. Its hard binding is a `c2pa.hash.data` assertion over
the UTF-8 text with the wrapper's byte range excluded. c2pa-python 0.38 has no text format, so
the library signs a data-hashed manifest through two functions its native library exports but
its Python binding does not wrap (`c2pa_builder_data_hashed_placeholder`,
`c2pa_builder_sign_data_hashed_embeddable`), and verifies it as a sidecar manifest for the text's
bytes; the wrapper, its padding and its location are this module's. Invisible characters like
these are stripped by many text pipelines (docs/media.md, "Provenance").
"""

from __future__ import annotations

import ctypes
import io
import json
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any

import c2pa
from c2pa import c2pa as native

from safestack.errors import MediaError
from safestack.media.provenance.report import ProvenanceReport, StatusEntry, report_of
from safestack.media.provenance.signing import ContentSigner, library_context, manifest_definition

MAGIC = b"C2PATXT\x00"
VERSION = 1
HEADER = len(MAGIC) + 1 + 4  # magic, version, length
MARKER = "\ufeff"
# The library checks that a data hash's exclusion is where it finds the manifest in the asset; for
# text it finds none (no text handler), so `verify_text` checks the location itself.
_SIDECAR_LOCATION = "data hash exclusion does not match the manifest location in the asset"
_BYTES_OUT = ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))


def _bind_native() -> None:
    lib = native._lib
    lib.c2pa_builder_data_hashed_placeholder.argtypes = [
        ctypes.POINTER(native.C2paBuilder),
        ctypes.c_size_t,
        ctypes.c_char_p,
        _BYTES_OUT,
    ]
    lib.c2pa_builder_data_hashed_placeholder.restype = ctypes.c_int64
    lib.c2pa_builder_sign_data_hashed_embeddable.argtypes = [
        ctypes.POINTER(native.C2paBuilder),
        ctypes.POINTER(native.C2paSigner),
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(native.C2paStream),
        _BYTES_OUT,
    ]
    lib.c2pa_builder_sign_data_hashed_embeddable.restype = ctypes.c_int64


_bind_native()


# -- the wrapper: bytes <-> variation selectors ----------------------------------------------------
def _selector(byte: int) -> str:
    # 0-15: VARIATION SELECTOR-1..16 (U+FE00..); 16-255: VARIATION SELECTOR-17..256 (U+E0100..).
    return chr(0xFE00 + byte) if byte < 16 else chr(0xE0100 + byte - 16)


def _byte(char: str) -> int | None:
    point = ord(char)
    if 0xFE00 <= point <= 0xFE0F:
        return point - 0xFE00
    if 0xE0100 <= point <= 0xE01EF:
        return point - 0xE0100 + 16
    return None


def wrapper_length(store_length: int) -> int:
    """The wrapper's UTF-8 length for a store of `store_length` bytes: fixed before signing, so
    the exclusion can be signed. Each byte takes 3 or 4 UTF-8 bytes; padding of 0x00 (3 bytes)
    and 0x10 (4) fills the rest, and any gap of 6 or more is a sum of 3s and 4s."""
    return len(MARKER.encode()) + 4 * (HEADER + store_length) + 6


def encode_wrapper(store: bytes) -> str:
    body = MAGIC + bytes([VERSION]) + struct.pack(">I", len(store)) + store
    wrapper = MARKER + "".join(_selector(b) for b in body)
    gap = wrapper_length(len(store)) - len(wrapper.encode())
    fours = gap % 3  # 4*fours leaves a multiple of 3
    return wrapper + _selector(0x00) * ((gap - 4 * fours) // 3) + _selector(0x10) * fours


@dataclass(frozen=True)
class Wrapper:
    start: int  # character offsets in the text
    end: int
    store: bytes


def find_wrappers(text: str) -> tuple[list[Wrapper], int]:
    """The well-formed wrappers in `text`, and how many runs carried the magic but were corrupt."""
    found: list[Wrapper] = []
    corrupt = 0
    index = text.find(MARKER)
    while index != -1:
        end = index + 1
        run = bytearray()
        while end < len(text) and (value := _byte(text[end])) is not None:
            run.append(value)
            end += 1
        if run.startswith(MAGIC):
            store = _store_of(bytes(run))
            if store is None:
                corrupt += 1
            else:
                found.append(Wrapper(index, end, store))
        index = text.find(MARKER, end)
    return found, corrupt


def _store_of(run: bytes) -> bytes | None:
    """The manifest store a selector run carries, or None when its frame is malformed."""
    if len(run) < HEADER or run[len(MAGIC)] != VERSION:
        return None
    (length,) = struct.unpack(">I", run[len(MAGIC) + 1 : HEADER])
    if HEADER + length > len(run) or run[HEADER + length :].strip(b"\x00\x10"):
        return None  # shorter than it says, or something other than padding after the store
    return run[HEADER : HEADER + length]


def strip_credentials(text: str) -> str:
    """The text without its wrapper(s)."""
    wrappers, _ = find_wrappers(text)
    for wrapper in reversed(wrappers):
        text = text[: wrapper.start] + text[wrapper.end :]
    return text


# -- signing and verifying ------------------------------------------------------------------------
def sign_text(signer: ContentSigner, text: str, model: str) -> str:
    """`text` (NFC-normalised) followed by a signed C2PA text manifest."""
    if find_wrappers(text)[0]:
        raise MediaError("the text already carries C2PA content credentials")
    text = unicodedata.normalize("NFC", text)
    definition = {**manifest_definition(model), "format": "text/plain"}
    library_signer = signer.library_signer()
    builder = c2pa.Builder(json.dumps(definition), context=library_context(signer.trust_anchors))
    with builder:
        placeholder = _call_bytes(
            native._lib.c2pa_builder_data_hashed_placeholder,
            builder._handle,
            library_signer.reserve_size(),
            b"application/c2pa",
        )
        start = len(text.encode())
        length = wrapper_length(len(placeholder))
        data_hash = {
            "exclusions": [{"start": start, "length": length}],
            "name": "jumbf manifest",
            "alg": "sha256",
            "hash": [],
            "pad": [],
        }
        # The library hashes the text itself; the excluded range only has to be there.
        asset = c2pa.Stream(io.BytesIO(text.encode() + b"\x00" * length))
        store = _call_bytes(
            native._lib.c2pa_builder_sign_data_hashed_embeddable,
            builder._handle,
            library_signer._handle,
            json.dumps(data_hash).encode(),
            b"application/c2pa",
            asset._stream,
        )
    if len(store) != len(placeholder):  # the exclusion signed would not fit the wrapper
        raise MediaError(
            f"the signed text manifest is {len(store)} bytes where {len(placeholder)} were reserved"
        )
    signed = text + encode_wrapper(store)
    signer._check_trusted(verify_text(signed, signer.trust_anchors))
    return signed


def verify_text(text: str, trust_anchors: str | None = None) -> ProvenanceReport:
    """Verify the C2PA text manifest embedded in `text`."""
    wrappers, corrupt = find_wrappers(text)
    if len(wrappers) > 1:
        return _invalid("manifest.text.multipleWrappers", f"{len(wrappers)} wrappers in the text")
    if not wrappers:
        if corrupt:
            return _invalid("manifest.text.corruptedWrapper", "a wrapper that does not decode")
        return ProvenanceReport(verdict="unsigned", format="text/plain")
    wrapper = wrappers[0]
    data = text.encode()
    start = len(text[: wrapper.start].encode())
    length = len(text[wrapper.start : wrapper.end].encode())
    try:
        reader = c2pa.Reader(
            "application/octet-stream",
            io.BytesIO(data),
            manifest_data=wrapper.store,
            context=library_context(trust_anchors),
        )
    except c2pa.C2paError as exc:
        return _invalid("manifest.unreadable", str(exc).strip()[:300])
    with reader:
        state = reader.get_validation_state()
        results = reader.get_validation_results()
        manifest = reader.get_active_manifest()
        exclusions = _exclusions(json.loads(reader.detailed_json()), manifest)
    report = report_of(
        state, results, manifest, format="text/plain", ignore=frozenset({_SIDECAR_LOCATION})
    )
    if exclusions != [(start, length)]:  # the wrapper moved, or the binding names another range
        failure = StatusEntry(
            code="assertion.dataHash.mismatch",
            explanation=f"the data hash excludes {exclusions}, the wrapper is at {(start, length)}",
        )
        return report.model_copy(
            update={"verdict": "invalid", "failures": [*report.failures, failure]}
        )
    return report


def _exclusions(detailed: dict[str, Any], manifest: dict[str, Any] | None) -> list[tuple[int, int]]:
    label = (manifest or {}).get("label")
    store = detailed.get("manifests", {}).get(label, {}).get("assertion_store", {})
    data_hash = store.get("c2pa.hash.data") or {}
    return [(int(e["start"]), int(e["length"])) for e in data_hash.get("exclusions", [])]


def _invalid(code: str, explanation: str) -> ProvenanceReport:
    return ProvenanceReport(
        verdict="invalid",
        format="text/plain",
        failures=[StatusEntry(code=code, explanation=explanation)],
    )


def _call_bytes(function: Any, *args: Any) -> bytes:
    """Call a native function returning a byte count and bytes it allocated; free them."""
    out = ctypes.POINTER(ctypes.c_ubyte)()
    size = function(*args, ctypes.byref(out))
    if size < 0 or not out:
        raise MediaError(
            f"the C2PA library could not sign the text: {native._read_native_error() or 'unknown'}"
        )
    try:
        return ctypes.string_at(out, size)
    finally:
        native._lib.c2pa_free(out)
