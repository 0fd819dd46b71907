"""Screening an image against the hash banks: `MediaScreen.screen(image_bytes) -> MediaVerdict`.

Exact MD5/SHA-256 matches come first, then PDQ with all eight rotations and flips of the image. The
gateway owns one MediaScreen (built from the store at start-up, `reload()`-ed when banks change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from safestack.media.decode import ImageLimits
from safestack.media.hashing import DIHEDRAL, ImageHashes, Variant, hash_image
from safestack.media.index import HashIndex
from safestack.settings import Settings
from safestack.store import ActiveHash, HashKind, Store

VERDICT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MatchOptions:
    """How close is a match: PDQ Hamming distance and the least quality trusted (both sides)."""

    max_distance: int = 31
    min_quality: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> MatchOptions:
        return cls(max_distance=settings.media_max_distance, min_quality=settings.media_min_quality)


class MediaMatch(BaseModel):
    """One bank entry an image matched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bank: str
    entry_id: str
    kind: HashKind
    value: str = Field(description="The bank's hash that matched.")
    distance: int = Field(description="PDQ Hamming distance; 0 for an exact MD5/SHA-256 match.")
    variant: Variant | Literal["bytes"] = Field(
        description="Which rotation/flip of the image matched; 'bytes' for MD5/SHA-256."
    )


class MediaVerdict(BaseModel):
    """What screening one image found: its hashes and every bank entry it matched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = VERDICT_SCHEMA_VERSION
    matched: bool
    matches: list[MediaMatch]
    hashes: ImageHashes
    pdq_trusted: bool = Field(
        description="False when the image's PDQ quality is below the minimum."
    )
    max_distance: int
    min_quality: int
    index_size: int
    latency_ms: float


class MediaScreen:
    """The banks' index and the limits images are decoded under; thread-safe, reloadable."""

    def __init__(
        self,
        index: HashIndex,
        *,
        limits: ImageLimits | None = None,
        options: MatchOptions | None = None,
    ) -> None:
        self._index = index
        self.limits = limits or ImageLimits()
        self.options = options or MatchOptions()
        self._lock = threading.Lock()

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[ActiveHash],
        *,
        limits: ImageLimits | None = None,
        options: MatchOptions | None = None,
    ) -> MediaScreen:
        options = options or MatchOptions()
        return cls(
            HashIndex(entries, min_quality=options.min_quality), limits=limits, options=options
        )

    @classmethod
    def from_store(
        cls, store: Store, settings: Settings, *, banks: Iterable[str] | None = None
    ) -> MediaScreen:
        """Every active entry of the store's banks (or of those named), limits from settings."""
        limits = ImageLimits(
            max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels
        )
        return cls.from_entries(
            store.media_banks.active(banks),
            limits=limits,
            options=MatchOptions.from_settings(settings),
        )

    @property
    def index(self) -> HashIndex:
        return self._index

    def reload(self, store: Store, *, banks: Iterable[str] | None = None) -> None:
        """Rebuild the index from the store; screening goes on against the old one meanwhile."""
        fresh = HashIndex(store.media_banks.active(banks), min_quality=self.options.min_quality)
        with self._lock:
            self._index = fresh

    def screen(self, data: bytes, *, name: str = "image") -> MediaVerdict:
        """Hash `data` and match it; a MediaError if it cannot be decoded (never forward it then)."""
        started = time.perf_counter()
        hashes = hash_image(data, self.limits, name=name)
        return self.match(hashes, started=started)

    def match(self, hashes: ImageHashes, *, started: float | None = None) -> MediaVerdict:
        """Match already computed hashes (`safestack media match` hashes once, matches per bank)."""
        started = time.perf_counter() if started is None else started
        index = self._index
        matches: list[MediaMatch] = []
        for kind, value in (("md5", hashes.md5), ("sha256", hashes.sha256)):
            matches.extend(
                MediaMatch(
                    bank=e.bank,
                    entry_id=e.id,
                    kind=e.kind,
                    value=e.value,
                    distance=0,
                    variant="bytes",
                )
                for e in index.lookup(kind, value)
            )
        trusted = hashes.quality >= self.options.min_quality
        if trusted:
            variants: list[Variant] = list(DIHEDRAL)  # type: ignore[arg-type]
            queries = np.frombuffer(
                b"".join(bytes.fromhex(hashes.dihedral[v]) for v in variants), dtype=np.uint8
            ).reshape(len(variants), -1)
            best: dict[str, MediaMatch] = {}
            for hit in index.search(queries, self.options.max_distance):
                found = best.get(hit.entry.id)
                if found is None or hit.distance < found.distance:
                    best[hit.entry.id] = MediaMatch(
                        bank=hit.entry.bank,
                        entry_id=hit.entry.id,
                        kind="pdq",
                        value=hit.entry.value,
                        distance=hit.distance,
                        variant=variants[hit.query],
                    )
            matches.extend(sorted(best.values(), key=lambda m: (m.distance, m.bank, m.entry_id)))
        return MediaVerdict(
            matched=bool(matches),
            matches=matches,
            hashes=hashes,
            pdq_trusted=trusted,
            max_distance=self.options.max_distance,
            min_quality=self.options.min_quality,
            index_size=len(index),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
