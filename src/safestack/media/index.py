"""The matching index: exact MD5/SHA-256 lookups and PDQ near-neighbour search by Hamming distance.

PDQ search is multi-index hashing (Norouzi et al., "Fast search in Hamming space with multi-index
hashing", CVPR 2012): the 256 bits are cut into 16 chunks of 16 bits, each with a table from chunk
value to the rows holding it. Two hashes at most 31 bits apart differ in at most one bit in some
chunk (16 chunks x 2 bits = 32), so looking up each chunk of the query and its 16 one-bit
neighbours finds every match: recall is exact, not approximate. The tables are numpy arrays (rows
sorted by chunk value, plus offsets), so a lookup is a slice and a query is a few vector operations.
faiss' IndexBinaryMultiHash does the same and was measured 3-4x slower to query and 9x slower to
build at a million hashes (benchmarks/media_match.py --compare-faiss).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from safestack.store import ActiveHash

PDQ_BITS = 256
PDQ_BYTES = PDQ_BITS // 8
CHUNKS = 16
CHUNK_BITS = PDQ_BITS // CHUNKS
# This structure guarantees recall up to 2 * CHUNKS - 1 bits; farther searches scan everything.
MAX_EXACT_DISTANCE = 2 * CHUNKS - 1
# A chunk value and its 16 one-bit neighbours.
_FLIPS = np.concatenate([[0], 1 << np.arange(CHUNK_BITS)]).astype(np.int64)
_CHUNK_OF = np.arange(CHUNKS)[None, :, None]


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
            np.frombuffer(bytes(codes), dtype=np.uint8).reshape(-1, PDQ_BYTES),
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
        self.codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        self._ids = ids  # None: entries are named by their row (benchmarks)
        self._bank_of = bank_of
        self._banks = banks
        self._qualities = qualities
        self._words = self.codes.view(np.uint64)  # 4 words a hash, for popcounts
        chunks = self.codes.view(">u2")  # 16 big-endian 16-bit chunks a hash
        # Per chunk: the rows sorted by that chunk's value, and where each value's run starts.
        self._rows = np.argsort(chunks, axis=0, kind="stable").astype(np.int32).T.copy()
        self._starts = np.zeros((CHUNKS, (1 << CHUNK_BITS) + 1), dtype=np.int64)
        for chunk in range(CHUNKS):
            counts = np.bincount(chunks[:, chunk], minlength=1 << CHUNK_BITS)
            np.cumsum(counts, out=self._starts[chunk, 1:])

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
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        if not len(self.codes) or not len(queries):
            return []
        if max_distance > MAX_EXACT_DISTANCE:
            return self._scan(queries, max_distance)
        keys = queries.view(">u2").astype(np.int64)[:, :, None] ^ _FLIPS[None, None, :]
        chunk_of = np.broadcast_to(_CHUNK_OF, keys.shape).ravel()
        query_of = np.broadcast_to(np.arange(len(queries))[:, None, None], keys.shape).ravel()
        keys = keys.ravel()
        starts = self._starts[chunk_of, keys]
        lengths = self._starts[chunk_of, keys + 1] - starts
        # Every (bucket, position) pair, flattened: bucket b contributes lengths[b] rows.
        bucket = np.repeat(np.arange(len(keys)), lengths)
        offset = np.arange(len(bucket)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = self._rows[chunk_of[bucket], starts[bucket] + offset]
        asked = query_of[bucket]
        distances = np.bitwise_count(self._words[rows] ^ queries.view(np.uint64)[asked]).sum(
            axis=1, dtype=np.int64
        )
        keep = distances <= max_distance
        near = distances[keep]
        # A row found through several chunks is one hit.
        pairs, first = np.unique(asked[keep] * len(self.codes) + rows[keep], return_index=True)
        return [
            IndexHit(
                entry=self.pdq_entry(int(pair % len(self.codes))),
                query=int(pair // len(self.codes)),
                distance=int(near[i]),
            )
            for pair, i in zip(pairs, first, strict=True)
        ]

    def _scan(self, queries: np.ndarray, max_distance: int) -> list[IndexHit]:
        """Every entry compared: for distances the chunked index cannot guarantee."""
        hits = []
        for q, query in enumerate(queries):
            distances = np.bitwise_count(self._words ^ query.view(np.uint64)).sum(
                axis=1, dtype=np.int64
            )
            for i in np.flatnonzero(distances <= max_distance):
                hits.append(IndexHit(self.pdq_entry(int(i)), q, int(distances[i])))
        return hits
