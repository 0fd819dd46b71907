"""Media matching: PDQ index speed and recall at a million hashes, and PDQ's false-match rate and
robustness on generated images (no real photos, never abusive material).

Part 1 (index): n random 256-bit hashes plus planted near matches (0 to 31 bits from a banked hash);
build time and memory of `HashIndex`, per-query latency (a query is the eight rotations/flips of an
image, as `MediaScreen` sends it), and recall of the index against a brute-force scan on a sample.
Part 2 (images): generated images (tests/media/media_images.py), half banked, the other half
queried: the false-match rate at distance <= 31; then edited copies of banked images: the share
that still match, per edit, and how far crops can go.

    .venv/bin/python benchmarks/media_match.py                  # 1M hashes, 2000 images
    .venv/bin/python benchmarks/media_match.py --n 100000 --images 400 --json
    .venv/bin/python benchmarks/media_match.py --skip-images --compare-faiss   # needs faiss-cpu
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "media"))
from media_images import TRANSFORMS, crop, encode, generated_image

from safestack.media import HashIndex, ImageLimits, MediaScreen, hash_image
from safestack.store import ActiveHash


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def flip_bits(codes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1)
    for row, count in enumerate(counts):
        bits[row, rng.choice(256, int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def bench_index(args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    codes = rng.integers(0, 256, (args.n, 32), dtype=np.uint8)
    before = rss_mb()
    started = time.perf_counter()
    index = HashIndex.from_codes(codes)
    build_s = time.perf_counter() - started
    index_mb = rss_mb() - before

    planted_rows = rng.choice(args.n, args.queries, replace=False)
    planted_dist = rng.integers(0, 32, args.queries)
    near = flip_bits(codes[planted_rows], planted_dist, rng)
    latencies = []
    found_planted = 0
    for q in range(args.queries):
        # Row 0 is the near copy; the other seven stand for its rotations and flips.
        queries = np.vstack([near[q : q + 1], rng.integers(0, 256, (7, 32), dtype=np.uint8)])
        started = time.perf_counter()
        hits = index.search(queries, 31)
        latencies.append((time.perf_counter() - started) * 1000)
        found_planted += any(int(h.entry.id) == planted_rows[q] for h in hits)

    agree = total = 0
    for q in range(min(args.recall_sample, args.queries)):
        distances = np.bitwise_count(codes ^ near[q]).sum(axis=1, dtype=np.int64)
        expected = set(np.flatnonzero(distances <= 31).tolist())
        got = {int(h.entry.id) for h in index.search(near[q : q + 1], 31)}
        agree += len(expected & got)
        total += len(expected)
    return {
        "hashes": args.n,
        "build_s": round(build_s, 2),
        "index_rss_mb": round(index_mb, 1),
        "query_p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
        "planted_found": f"{found_planted}/{args.queries}",
        "recall_vs_brute_force": f"{agree}/{total}",
    }


def bench_faiss(args: argparse.Namespace) -> dict[str, object]:
    """The same search on faiss' IndexBinaryMultiHash (16 x 16 bits), neighbours sent as probes."""
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    codes = rng.integers(0, 256, (args.n, 32), dtype=np.uint8)
    before = rss_mb()
    started = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.add(codes)
    build_s = time.perf_counter() - started
    index_mb = rss_mb() - before
    flips = np.zeros((17, 32), dtype=np.uint8)
    for bit in range(16):
        for chunk in range(16):
            flips[bit + 1, 2 * chunk + bit // 8] |= 1 << (bit % 8)
    latencies = []
    for _ in range(min(args.queries, 200)):
        queries = rng.integers(0, 256, (8, 32), dtype=np.uint8)
        started = time.perf_counter()
        probes = (queries[:, None, :] ^ flips[None]).reshape(-1, 32)
        index.range_search(probes, 31 + 16 + 1)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "build_s": round(build_s, 2),
        "index_rss_mb": round(index_mb, 1),
        "query_p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }


def bench_images(args: argparse.Namespace) -> dict[str, object]:
    limits = ImageLimits()
    started = time.perf_counter()
    hashed = [hash_image(encode(generated_image(seed)), limits) for seed in range(args.images)]
    hash_ms = (time.perf_counter() - started) * 1000 / args.images
    half = args.images // 2
    entries = [
        ActiveHash(id=str(s), bank="gen", kind="pdq", value=h.pdq, quality=h.quality)
        for s, h in enumerate(hashed[:half])
    ]
    screen = MediaScreen.from_entries(entries)
    false_matches = sum(screen.match(h).matched for h in hashed[half:])
    # How close do unrelated images come? The nearest banked hash of each, over all 8 variants.
    banked = np.frombuffer(b"".join(bytes.fromhex(h.pdq) for h in hashed[:half]), np.uint8)
    banked = banked.reshape(half, 32)
    nearest = []
    for h in hashed[half:]:
        variants = np.frombuffer(b"".join(bytes.fromhex(v) for v in h.dihedral.values()), np.uint8)
        d = np.bitwise_count(banked[None] ^ variants.reshape(8, 1, 32)).sum(axis=2)
        nearest.append(int(d.min()))
    low_quality = sum(h.quality < 50 for h in hashed)

    sample = range(min(args.edit_sample, half))
    edits: dict[str, str] = {}
    for name, edit in TRANSFORMS.items():
        hit = sum(
            any(m.entry_id == str(s) for m in screen.screen(edit(generated_image(s))).matches)
            for s in sample
        )
        edits[name] = f"{hit}/{len(sample)}"
    crops: dict[str, str] = {}
    for share in (0.01, 0.02, 0.03, 0.04):
        hit = sum(
            any(
                m.entry_id == str(s)
                for m in screen.screen(encode(crop(generated_image(s), share))).matches
            )
            for s in sample
        )
        crops[f"{share:.0%} a side"] = f"{hit}/{len(sample)}"
    return {
        "images": args.images,
        "hash_ms_per_image": round(hash_ms, 2),
        "quality_below_50": low_quality,
        "false_matches": f"{false_matches}/{args.images - half} unrelated vs {half} banked",
        "nearest_unrelated_distance_min_p1_p50": [
            int(np.min(nearest)),
            int(np.percentile(nearest, 1)),
            int(np.percentile(nearest, 50)),
        ],
        "edited_copies_matched": edits,
        "crops_matched": crops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="hashes in the index")
    parser.add_argument("--queries", type=int, default=1000, help="planted near-match queries")
    parser.add_argument("--recall-sample", type=int, default=100, help="queries brute-forced")
    parser.add_argument("--images", type=int, default=2000, help="generated images, half banked")
    parser.add_argument("--edit-sample", type=int, default=100, help="banked images edited")
    parser.add_argument("--compare-faiss", action="store_true", help="also time faiss (faiss-cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {
        "load_average": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "index": bench_index(args),
    }
    if args.compare_faiss:
        report["faiss_multihash"] = bench_faiss(args)
    if not args.skip_images:
        report["images"] = bench_images(args)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
