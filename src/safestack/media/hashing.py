"""Hashes of an image: PDQ (perceptual, with its quality and the eight dihedral variants) and
MD5/SHA-256 of the bytes (exact copies). `hash_image` is the whole of it: bytes in, ImageHashes out.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pdqhash
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from safestack.media.decode import ImageLimits, decode_image

# The order pdqhash.compute_dihedral returns its hashes in (pdqhash-python's README).
DIHEDRAL = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip-vertical",
    "flip-horizontal",
    "rotate90-flip-vertical",
    "rotate90-flip-horizontal",
)
Variant = Literal[
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip-vertical",
    "flip-horizontal",
    "rotate90-flip-vertical",
    "rotate90-flip-horizontal",
]
# PDQ is computed on at most this many pixels a side: Meta's reference hasher downsamples to
# 512 first too (hashing.pdf, "PDQ"); it bounds time and memory and barely moves the hash.
PDQ_MAX_SIDE = 512
HASHES_SCHEMA_VERSION = 1


class ImageHashes(BaseModel):
    """Every hash of one image, hex-encoded as ThreatExchange and HMA write them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = HASHES_SCHEMA_VERSION
    md5: str
    sha256: str
    pdq: str = Field(description="256-bit PDQ hash, 64 hex digits.")
    quality: int = Field(description="PDQ quality 0-100; below ~50 the hash is not distinctive.")
    dihedral: dict[Variant, str] = Field(
        description="PDQ of the image rotated and flipped, by transformation (original included)."
    )
    format: str
    width: int
    height: int


def hash_image(data: bytes, limits: ImageLimits, *, name: str = "image") -> ImageHashes:
    """Decode `data` safely and hash it; a MediaError if it cannot be decoded."""
    decoded = decode_image(data, limits, name=name)
    image = decoded.image
    if max(image.size) > PDQ_MAX_SIDE:
        image = image.copy()
        image.thumbnail((PDQ_MAX_SIDE, PDQ_MAX_SIDE), Image.Resampling.BILINEAR)
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    vectors, quality = pdqhash.compute_dihedral(pixels)
    dihedral = {variant: pdq_hex(vector) for variant, vector in zip(DIHEDRAL, vectors, strict=True)}
    return ImageHashes(
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        pdq=dihedral["original"],
        quality=int(quality),
        dihedral=dihedral,
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
    )


def pdq_hex(vector: np.ndarray) -> str:
    """pdqhash's 256 bits (most significant first) as the 64 hex digits of Meta's format."""
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def pdq_bytes(value: str) -> bytes:
    """64 hex digits to the 32 bytes the index stores."""
    return bytes.fromhex(value)
