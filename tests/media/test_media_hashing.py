"""Hashing and safe decoding: the hashes of generated images, and every bad file refused clearly."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pdqhash
import pytest
from media_images import encode, generated_image
from PIL import Image

from safestack.errors import MediaError
from safestack.media import DIHEDRAL, ImageLimits, hash_image

LIMITS = ImageLimits()


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_hashes_are_pdq_md5_and_sha256_of_the_image() -> None:
    image = generated_image(1)
    data = encode(image)
    hashes = hash_image(data, LIMITS)
    vector, quality = pdqhash.compute(np.asarray(image))
    assert hashes.pdq == np.packbits(vector).tobytes().hex()
    assert hashes.quality == quality >= 50
    assert hashes.md5 == hashlib.md5(data).hexdigest()
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert (hashes.format, hashes.width, hashes.height) == ("PNG", 320, 240)
    assert list(hashes.dihedral) == list(DIHEDRAL)
    assert hashes.dihedral["original"] == hashes.pdq


def test_pdq_hex_is_meta_format_most_significant_bit_first() -> None:
    # pdqhash gives bit 255 first; Meta's hex prints word 15 first: the same order.
    vector = np.zeros(256, dtype=np.uint8)
    vector[0] = 1  # bit 255
    vector[255] = 1  # bit 0
    from safestack.media.hashing import pdq_hex

    assert pdq_hex(vector) == "80" + "00" * 30 + "01"


def test_a_dihedral_variant_is_the_hash_of_the_rotated_image() -> None:
    image = generated_image(2)
    hashes = hash_image(encode(image), LIMITS)
    rotated = hash_image(encode(image.transpose(Image.Transpose.ROTATE_90)), LIMITS)
    assert distance(rotated.pdq, hashes.pdq) > 64
    assert min(distance(rotated.pdq, v) for v in hashes.dihedral.values()) <= 8


def test_a_flat_image_has_low_quality() -> None:
    flat = Image.new("RGB", (200, 200), (120, 120, 120))
    assert hash_image(encode(flat), LIMITS).quality < 50


def test_gif_first_frame_and_webp_and_jpeg_decode() -> None:
    first, second = generated_image(3), generated_image(4)
    gif = io.BytesIO()
    first.save(gif, "GIF", save_all=True, append_images=[second])
    from_gif = hash_image(gif.getvalue(), LIMITS)
    assert from_gif.format == "GIF"
    assert distance(from_gif.pdq, hash_image(encode(first), LIMITS).pdq) <= 31
    assert hash_image(encode(first, "WEBP"), LIMITS).format == "WEBP"
    assert hash_image(encode(first, "JPEG"), LIMITS).format == "JPEG"


def test_svg_is_refused_as_not_allowed() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(MediaError, match=r"upload.svg: SVG is not an allowed image type"):
        hash_image(svg, LIMITS, name="upload.svg")


def test_other_image_types_are_refused_by_name() -> None:
    with pytest.raises(MediaError, match=r"BMP is not an allowed image type; send PNG, JPEG"):
        hash_image(encode(generated_image(5), "BMP"), LIMITS)


def test_garbage_and_empty_files_are_refused() -> None:
    with pytest.raises(MediaError, match="not a readable image"):
        hash_image(b"hello, not an image at all", LIMITS)
    with pytest.raises(MediaError, match="empty"):
        hash_image(b"", LIMITS)


def test_a_truncated_image_is_refused_not_crashed() -> None:
    data = encode(generated_image(6), "JPEG")
    with pytest.raises(MediaError, match="truncated or corrupt"):
        hash_image(data[: len(data) // 2], LIMITS)
    png = encode(generated_image(6))
    with pytest.raises(MediaError, match="truncated or corrupt"):
        hash_image(png[: len(png) // 2], LIMITS)


def test_too_many_bytes_is_refused_before_decoding() -> None:
    data = encode(generated_image(7))
    with pytest.raises(MediaError, match=r"over the limit of 1000 \(SAFESTACK_MEDIA_MAX_BYTES\)"):
        hash_image(data, ImageLimits(max_bytes=1000))


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be `width` x `height` (one zlib stream of zero rows)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * (height * (1 + (width + 7) // 8)), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [4_000, 8_000])  # over the limit; over twice it (Pillow errors)
def test_a_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    bomb = _bomb_png(side, side)
    assert len(bomb) < 200_000
    with pytest.raises(MediaError, match=rf"{side}x{side} pixels is over the limit.*decompression"):
        hash_image(bomb, ImageLimits(max_pixels=10_000_000))


def test_a_large_image_is_hashed_at_512_pixels_a_side() -> None:
    big = generated_image(8).resize((2400, 1800))
    hashes = hash_image(encode(big, "JPEG"), LIMITS)
    assert (hashes.width, hashes.height) == (2400, 1800)
    assert distance(hashes.pdq, hash_image(encode(generated_image(8)), LIMITS).pdq) <= 31
