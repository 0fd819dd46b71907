"""Media safety: images hashed (PDQ, MD5, SHA-256) and matched against banks of known material.

It matches known material; it does not classify unknown material (docs/media.md). The gateway holds
one `MediaScreen` and calls `screen(image_bytes) -> MediaVerdict` before anything else.
"""

from safestack.media.bank_files import FORMATS, BankFile, BankFormat, Problem, read_bank_file
from safestack.media.cases import open_case
from safestack.media.decode import ALLOWED_FORMATS, ImageLimits, decode_image
from safestack.media.hashing import DIHEDRAL, ImageHashes, hash_image
from safestack.media.index import HashIndex, IndexHit
from safestack.media.screen import MatchOptions, MediaMatch, MediaScreen, MediaVerdict

__all__ = [
    "ALLOWED_FORMATS",
    "DIHEDRAL",
    "FORMATS",
    "BankFile",
    "BankFormat",
    "HashIndex",
    "ImageHashes",
    "ImageLimits",
    "IndexHit",
    "MatchOptions",
    "MediaMatch",
    "MediaScreen",
    "MediaVerdict",
    "Problem",
    "decode_image",
    "hash_image",
    "open_case",
    "read_bank_file",
]
