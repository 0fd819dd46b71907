"""C2PA content credentials: what signing and verifying cost per image and per answer, beside the
baseline of encoding the image (what the image model already did) and the bytes they add.

Images are generated drawings (tests/media/media_images.py); the chain is a test-only one made by
scripts/make_test_certs.py in a temporary directory. Times are medians over --runs, one thread.

    .venv/bin/python benchmarks/provenance_sign.py             # 20 runs
    .venv/bin/python benchmarks/provenance_sign.py --runs 50 --json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "media"))
sys.path.insert(0, str(ROOT / "tests"))
from c2pa_chain import make_chain
from media_images import generated_image

from safestack.media.provenance import (
    ContentSigner,
    SigningCredentials,
    sign_text,
    verify_asset,
    verify_text,
)


def median_ms(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        chain = make_chain(Path(tmp))
        root = chain["root"].read_text()
        signer = ContentSigner(
            SigningCredentials.load(chain["chain"], chain["key"]), trust_anchors=root
        )
        for fmt, size in (("PNG", (512, 512)), ("JPEG", (512, 512)), ("PNG", (1024, 1024))):
            image = generated_image(1, size)

            def encode(image: Any = image, fmt: str = fmt) -> bytes:
                buffer = io.BytesIO()
                image.save(buffer, fmt)
                return buffer.getvalue()

            data = encode()
            signed = signer.sign_image(data, "bench-model")
            rows.append(
                {
                    "asset": f"{fmt} {size[0]}x{size[1]}",
                    "bytes": len(data),
                    "added_bytes": len(signed) - len(data),
                    "baseline_encode_ms": median_ms(encode, args.runs),
                    "sign_ms": median_ms(lambda d=data: signer.sign_image(d, "m"), args.runs),
                    "verify_ms": median_ms(lambda s=signed: verify_asset(s, root), args.runs),
                }
            )
        for chars in (500, 4000):
            text = ("The answer, generated. " * 200)[:chars]
            marked = sign_text(signer, text, "bench-model")
            rows.append(
                {
                    "asset": f"text {chars} chars",
                    "bytes": len(text.encode()),
                    "added_bytes": len(marked.encode()) - len(text.encode()),
                    "baseline_encode_ms": None,
                    "sign_ms": median_ms(lambda t=text: sign_text(signer, t, "m"), args.runs),
                    "verify_ms": median_ms(lambda m=marked: verify_text(m, root), args.runs),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| asset | size | credentials added | encode (baseline) | sign | verify |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        base = f"{r['baseline_encode_ms']:.1f} ms" if r["baseline_encode_ms"] is not None else "-"
        print(
            f"| {r['asset']} | {r['bytes']:,} B | {r['added_bytes']:,} B | {base} | "
            f"{r['sign_ms']:.1f} ms | {r['verify_ms']:.1f} ms |"
        )
    print("(sign includes verifying the result against the trust anchors before it is returned)")


if __name__ == "__main__":
    main()
