"""C2PA content credentials: generated images and text signed with a test chain made at test time,
verified by c2pa-python, and every way they should fail: changed pixels, a changed manifest, an
untrusted or expired signer, a moved or stripped text wrapper."""

from __future__ import annotations

import datetime as dt
import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from media_images import generated_image
from PIL import Image

from c2pa_chain import certs_script, make_chain
from safestack.errors import MediaError
from safestack.media.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    ContentSigner,
    SigningCredentials,
    sign_text,
    strip_credentials,
    verify_asset,
    verify_text,
)
from safestack.media.provenance.text import encode_wrapper, find_wrappers, wrapper_length

MODEL = "test-image-model-1"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_chain(tmp_path_factory.mktemp("chain"), expired=True)


@pytest.fixture(scope="module")
def other_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_chain(tmp_path_factory.mktemp("other"))["root"].read_text()


@pytest.fixture(scope="module")
def root(chain: dict[str, Path]) -> str:
    return chain["root"].read_text()


@pytest.fixture(scope="module")
def signer(chain: dict[str, Path], root: str) -> ContentSigner:
    return ContentSigner(SigningCredentials.load(chain["chain"], chain["key"]), trust_anchors=root)


def encoded(fmt: str, seed: int = 3) -> bytes:
    buffer = io.BytesIO()
    generated_image(seed).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_signed_image_verifies_as_trusted_with_the_manifest_we_wrote(
    signer: ContentSigner, root: str, fmt: str
) -> None:
    original = encoded(fmt)
    signed = signer.sign_image(original, MODEL, title=f"generated.{fmt.lower()}")
    assert verify_asset(original, root).verdict == "unsigned"

    report = verify_asset(signed, root)
    assert report.verdict == "trusted", report.failures
    assert report.state == "Trusted" and report.failures == []
    assert report.format == f"image/{fmt.lower()}"
    assert report.claim_generator is not None and report.claim_generator.startswith("safestack ")
    assert report.actions == ["c2pa.created"]
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.model == MODEL
    assert report.signer == "safestack TEST signer"
    # Still the same picture, still an image every decoder reads.
    with Image.open(io.BytesIO(signed)) as image, Image.open(io.BytesIO(original)) as before:
        assert image.format == fmt and image.size == before.size
        assert image.tobytes() == before.tobytes()


def test_without_trust_anchors_an_intact_image_is_untrusted_not_trusted(
    signer: ContentSigner, other_root: str
) -> None:
    signed = signer.sign_image(encoded("PNG"), MODEL)
    assert verify_asset(signed).verdict == "untrusted"
    report = verify_asset(signed, other_root)
    assert report.verdict == "untrusted"
    assert [f.code for f in report.failures] == ["signingCredential.untrusted"]


def _png_with_changed_pixels(png: bytes) -> bytes:
    """Flip one bit of the compressed pixels and recompute the chunk's CRC: a valid PNG whose
    pixels differ, as an edit would leave it."""
    data = bytearray(png)
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = bytes(data[offset + 4 : offset + 8])
        if kind == b"IDAT":
            pixels = zlib.decompress(bytes(data[offset + 8 : offset + 8 + length]))
            changed = bytearray(pixels)
            changed[1] ^= 0x40  # the first pixel of the first row (byte 0 is its filter)
            chunk = zlib.compress(bytes(changed))
            crc = struct.pack(">I", zlib.crc32(b"IDAT" + chunk))
            rebuilt = struct.pack(">I", len(chunk)) + b"IDAT" + chunk + crc
            return bytes(data[:offset]) + rebuilt + bytes(data[offset + 12 + length :])
        offset += 12 + length
    raise AssertionError("no IDAT chunk")


def test_changed_pixels_verify_as_invalid(signer: ContentSigner, root: str) -> None:
    signed = signer.sign_image(encoded("PNG"), MODEL)
    tampered = _png_with_changed_pixels(signed)
    with Image.open(io.BytesIO(tampered)) as image, Image.open(io.BytesIO(signed)) as before:
        assert image.tobytes() != before.tobytes()  # a real, decodable edit
    report = verify_asset(tampered, root)
    assert report.verdict == "invalid"
    assert "assertion.dataHash.mismatch" in {f.code for f in report.failures}


def test_changed_jpeg_data_verifies_as_invalid(signer: ContentSigner, root: str) -> None:
    signed = bytearray(signer.sign_image(encoded("JPEG"), MODEL))
    signed[-100] ^= 0x01  # in the entropy-coded pixels, before the end marker
    assert verify_asset(bytes(signed), root).verdict == "invalid"


def test_a_changed_manifest_verifies_as_invalid(signer: ContentSigner, root: str) -> None:
    signed = signer.sign_image(encoded("PNG"), MODEL)
    assert signed.count(MODEL.encode()) >= 1
    forged = signed.replace(MODEL.encode(), b"test-image-model-2")  # same length: still parses
    report = verify_asset(forged, root)
    assert report.verdict == "invalid"
    assert "assertion.hashedURI.mismatch" in {f.code for f in report.failures}


def test_expired_certificate_is_refused_before_signing(chain: dict[str, Path]) -> None:
    with pytest.raises(
        MediaError, match=r"expired-chain\.pem: the signing certificate .* expired on"
    ):
        SigningCredentials.load(chain["expired_chain"], chain["expired_key"])


def test_wrong_key_and_bad_files_are_named(chain: dict[str, Path], tmp_path: Path) -> None:
    other = make_chain(tmp_path / "other")
    with pytest.raises(MediaError, match="does not belong to the first certificate"):
        SigningCredentials.load(chain["chain"], other["key"])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(MediaError, match=r"garbage\.pem: not a PEM certificate chain"):
        SigningCredentials.load(garbage, chain["key"])
    with pytest.raises(MediaError, match=r"nope\.key: cannot read the private key"):
        SigningCredentials.load(chain["chain"], tmp_path / "nope.key")


def test_an_algorithm_the_key_cannot_sign_is_named(chain: dict[str, Path]) -> None:
    assert SigningCredentials.load(chain["chain"], chain["key"]).algorithm == "es256"
    with pytest.raises(MediaError, match="ALGORITHM is es384, but this key signs es256"):
        SigningCredentials.load(chain["chain"], chain["key"], algorithm="es384")


def test_the_key_is_never_in_the_credentials_repr(chain: dict[str, Path]) -> None:
    credentials = SigningCredentials.load(chain["chain"], chain["key"])
    assert "PRIVATE KEY" not in repr(credentials) and "PRIVATE" in credentials.key_pem.decode()


def test_signing_with_a_chain_the_trust_anchors_do_not_trust_is_refused(
    chain: dict[str, Path], other_root: str
) -> None:
    credentials = SigningCredentials.load(chain["chain"], chain["key"])
    signer = ContentSigner(credentials, trust_anchors=other_root)
    with pytest.raises(MediaError, match=r"does not verify as trusted .*untrusted"):
        signer.sign_image(encoded("PNG"), MODEL)


def test_not_an_image_is_refused(signer: ContentSigner) -> None:
    with pytest.raises(MediaError, match="not a PNG, JPEG, WebP or GIF"):
        signer.sign_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>", MODEL)


def test_unreadable_files_are_errors_not_verdicts(signer: ContentSigner) -> None:
    with pytest.raises(MediaError, match="not a format content credentials can be read from"):
        verify_asset(bytes(range(256)) * 8)
    signed = signer.sign_image(encoded("PNG"), MODEL)
    with pytest.raises(MediaError, match="corrupt or truncated image/png"):
        verify_asset(signed[: len(signed) // 2])
    # A manifest broken beyond parsing is still a verdict: invalid, never unsigned or trusted.
    damaged = bytearray(signed)
    damaged[signed.find(b"jumb") + 20] ^= 0xFF
    report = verify_asset(bytes(damaged))
    assert report.verdict == "invalid" and report.failures[0].code == "manifest.unreadable"


def test_a_certificate_that_expired_after_signing_verifies_as_expired(tmp_path: Path) -> None:
    script = certs_script()
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    ca = script._issue("root", None, ca=True, not_before=now - day, not_after=now + day)
    inter = script._issue("inter", ca, ca=True, not_before=now - day, not_after=now + day)
    brief = script._issue(
        "brief", inter, ca=False, not_before=now - day, not_after=now + dt.timedelta(seconds=2)
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "chain.pem").write_bytes(
        brief.cert.public_bytes(pem) + inter.cert.public_bytes(pem)
    )
    script._write_key(tmp_path / "signer.key", brief.key)
    anchors = ca.cert.public_bytes(pem).decode()
    signer = ContentSigner(
        SigningCredentials.load(tmp_path / "chain.pem", tmp_path / "signer.key"),
        trust_anchors=anchors,
    )
    signed = signer.sign_image(encoded("PNG"), MODEL)
    assert verify_asset(signed, anchors).verdict == "trusted"
    time.sleep(
        max(0.0, (brief.cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() + 1.1)
    )
    report = verify_asset(signed, anchors)
    assert report.verdict == "expired"
    assert "signingCredential.expired" in {f.code for f in report.failures}


# -- text ----------------------------------------------------------------------------------------
ANSWER = "To reset the router, hold the button for ten seconds. Café au lait, naïve résumé."


def test_signed_text_verifies_and_reads_the_same(signer: ContentSigner, root: str) -> None:
    signed = sign_text(signer, ANSWER, "chat-model-7")
    assert signed.startswith(ANSWER) and len(signed) > len(ANSWER)
    assert strip_credentials(signed) == ANSWER
    report = verify_text(signed, root)
    assert report.verdict == "trusted", report.failures
    assert report.model == "chat-model-7" and report.actions == ["c2pa.created"]
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert verify_text(signed).verdict == "untrusted"
    assert verify_text(ANSWER).verdict == "unsigned"


def test_text_is_signed_nfc_normalised(signer: ContentSigner, root: str) -> None:
    decomposed = "Cafe\u0301"  # e + combining acute: NFC makes it one character
    signed = sign_text(signer, decomposed, "m")
    assert strip_credentials(signed) == "Caf\u00e9"
    assert verify_text(signed, root).verdict == "trusted"


def test_edited_text_moved_or_doubled_wrappers_are_invalid(
    signer: ContentSigner, root: str
) -> None:
    signed = sign_text(signer, ANSWER, "m")
    edited = signed.replace("ten seconds", "two seconds")
    report = verify_text(edited, root)
    assert report.verdict == "invalid"
    assert "assertion.dataHash.mismatch" in {f.code for f in report.failures}

    [wrapper], _ = find_wrappers(signed)
    mark = signed[wrapper.start : wrapper.end]
    moved = "Note: " + ANSWER + mark
    assert verify_text(moved, root).verdict == "invalid"
    assert verify_text(signed + " " + mark, root).failures[0].code == (
        "manifest.text.multipleWrappers"
    )
    corrupt = ANSWER + mark[:200]  # cut short: the length says more than is there
    assert verify_text(corrupt, root).failures[0].code == "manifest.text.corruptedWrapper"
    for cut in (9, 10, 14):  # the magic alone, with the version, with part of the length
        report = verify_text(ANSWER + mark[:cut], root)
        assert report.failures[0].code == "manifest.text.corruptedWrapper", cut
    # What many pipelines do to invisible characters: the credentials are simply gone.
    assert verify_text(strip_credentials(signed), root).verdict == "unsigned"


def test_text_smuggled_into_the_excluded_range_is_invalid(signer: ContentSigner, root: str) -> None:
    """The hash skips the wrapper's signed byte range; text put there (paid for with padding, so
    every hashed byte is unchanged) must not verify: the wrapper has to fill the range exactly."""
    signed = sign_text(signer, ANSWER, "m")
    [wrapper], _ = find_wrappers(signed)
    mark = signed[wrapper.start : wrapper.end]
    # Padding is 0x00 selectors (3 UTF-8 bytes each) then 0x10 ones (4 each): drop two 0x00s.
    body = mark.rstrip(chr(0xE0100))
    tail = mark[len(body) :]
    padding = "\ufe00" * 2
    assert body.endswith(padding)
    smuggled = ANSWER + "PWNED!" + body[: -len(padding)] + tail
    assert len(smuggled.encode()) == len(signed.encode())
    report = verify_text(smuggled, root)
    assert report.verdict == "invalid"
    assert "the wrapper is at" in (report.failures[-1].explanation or "")


def test_wrapper_length_is_exact_whatever_the_bytes() -> None:
    for store in (b"", b"\x00" * 40, b"\xff" * 40, bytes(range(256))):
        assert len(encode_wrapper(store).encode()) == wrapper_length(len(store))
