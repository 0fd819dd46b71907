"""The matching index: exact MD5/SHA-256 lookups and PDQ near-neighbour search by Hamming distance.

PDQ search is multi-index hashing (Norouzi et al., "Fast search in Hamming space with multi-index
hashing", CVPR 2012) on faiss' IndexBinaryMultiHash: the 256 bits are cut into 16 chunks of 16 bits.
Two hashes at most 31 bits apart differ in at most one bit in some chunk (16 chunks x 2 bits = 32),
so probing each chunk's bucket for the query and its 16 one-bit neighbours finds every match: recall
is exact, not approximate. faiss' own neighbour probing (`nflip`) is slow, so the neighbours are
sent as 16 extra queries with bit j of every chunk flipped, and distances re-measured here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np

from safestack.store import ActiveHash

PDQ_BITS = 256
CHUNKS = 16
CHUNK_BITS = PDQ_BITS // CHUNKS
# This structure guarantees recall up to 2 * CHUNKS - 1 bits; farther hashes may be missed.
MAX_EXACT_DISTANCE = 2 * CHUNKS - 1


def _flip_masks() -> np.ndarray:
    """Row 0: no flip; row j+1 flips bit j of every 16-bit chunk (bytes 2c and 2c+1)."""
    masks = np.zeros((CHUNK_BITS + 1, PDQ_BITS // 8), dtype=np.uint8)
    for bit in range(CHUNK_BITS):
        for chunk in range(CHUNKS):
            masks[bit + 1, 2 * chunk + bit // 8] |= 1 << (bit % 8)
    return masks


_FLIPS = _flip_masks()


@dataclass(frozen=True)
class IndexHit:
    """One indexed entry a query came close to: which entry, which query row, how far."""

    entry: ActiveHash
    query: int
    distance: int


class HashIndex:
    """Every active bank entry, ready to match. Built once, then read by any number of threads.

    PDQ entries are kept as columns (codes, ids, bank numbers, qualities), not as objects: a million
    of them take about 100 MB here rather than about a gigabyte of records.
    """

    def __init__(self, entries: Iterable[ActiveHash], *, min_quality: int = 50) -> None:
        self.exact: dict[tuple[str, str], list[ActiveHash]] = {}
        self.untrusted = 0
        banks: dict[str, int] = {}
        ids: list[str] = []
        bank_of: list[int] = []
        qualities: list[int] = []
        codes = bytearray()
        for entry in entries:
            if entry.kind != "pdq":
                self.exact.setdefault((entry.kind, entry.value), []).append(entry)
            elif entry.quality is not None and entry.quality < min_quality:
                self.untrusted += 1  # kept in the bank, but too bland to match on
            else:
                ids.append(entry.id)
                bank_of.append(banks.setdefault(entry.bank, len(banks)))
                qualities.append(-1 if entry.quality is None else entry.quality)
                codes += bytes.fromhex(entry.value)
        self._finish(
            np.frombuffer(bytes(codes), dtype=np.uint8).reshape(-1, PDQ_BITS // 8),
            ids,
            np.array(bank_of, dtype=np.int32),
            list(banks),
            np.array(qualities, dtype=np.int16),
        )

    def _finish(
        self,
        codes: np.ndarray,
        ids: list[str] | None,
        bank_of: np.ndarray,
        banks: list[str],
        qualities: np.ndarray,
    ) -> None:
        self.codes = np.ascontiguousarray(codes, dtype=np.uint8)
        self._ids = ids  # None: entries are named by their row (benchmarks)
        self._bank_of = bank_of
        self._banks = banks
        self._qualities = qualities
        self._index = faiss.IndexBinaryMultiHash(PDQ_BITS, CHUNKS, CHUNK_BITS)
        self._index.nflip = 0
        if len(self.codes):
            self._index.add(self.codes)

    @classmethod
    def from_codes(cls, codes: np.ndarray, bank: str = "bench") -> HashIndex:
        """An index over raw PDQ codes (n x 32 bytes), entries named by row: for benchmarks."""
        index = cls.__new__(cls)
        index.exact = {}
        index.untrusted = 0
        n = len(codes)
        index._finish(codes, None, np.zeros(n, np.int32), [bank], np.full(n, -1, np.int16))
        return index

    def pdq_entry(self, row: int) -> ActiveHash:
        """The PDQ entry at `row` of the index, as the store holds it."""
        quality = int(self._qualities[row])
        return ActiveHash(
            id=str(row) if self._ids is None else self._ids[row],
            bank=self._banks[int(self._bank_of[row])],
            kind="pdq",
            value=self.codes[row].tobytes().hex(),
            quality=None if quality < 0 else quality,
        )

    def __len__(self) -> int:
        return len(self.codes) + sum(len(v) for v in self.exact.values())

    def lookup(self, kind: str, value: str) -> list[ActiveHash]:
        """Entries whose MD5 or SHA-256 is exactly `value`."""
        return self.exact.get((kind, value), [])

    def search(self, queries: np.ndarray, max_distance: int) -> list[IndexHit]:
        """Entries within `max_distance` bits of any row of `queries` (k x 32 bytes)."""
        if not len(self.codes) or not len(queries):
            return []
        if max_distance > MAX_EXACT_DISTANCE:
            return self._scan(queries, max_distance)
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        probes = (queries[:, None, :] ^ _FLIPS[None, :, :]).reshape(-1, PDQ_BITS // 8)
        # A probe is CHUNKS bits from its query at most, so a match is within this of the probe.
        limits, _, ids = self._index.range_search(probes, max_distance + CHUNKS + 1)
        per_probe = np.diff(limits).astype(np.int64)
        rows = np.repeat(np.arange(len(probes)) // len(_FLIPS), per_probe)
        pairs = np.unique(np.stack([rows, ids]), axis=1)
        if not pairs.size:
            return []
        distances = np.bitwise_count(queries[pairs[0]] ^ self.codes[pairs[1]]).sum(
            axis=1, dtype=np.int64
        )
        keep = distances <= max_distance
        return [
            IndexHit(entry=self.pdq_entry(int(i)), query=int(q), distance=int(d))
            for q, i, d in zip(pairs[0][keep], pairs[1][keep], distances[keep], strict=True)
        ]

    def _scan(self, queries: np.ndarray, max_distance: int) -> list[IndexHit]:
        """Every entry compared: for distances the chunked index cannot guarantee."""
        hits = []
        for q, query in enumerate(queries):
            distances = np.bitwise_count(self.codes ^ query).sum(axis=1, dtype=np.int64)
            for i in np.flatnonzero(distances <= max_distance):
                hits.append(IndexHit(self.pdq_entry(int(i)), q, int(distances[i])))
        return hits
