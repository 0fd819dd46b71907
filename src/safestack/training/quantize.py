"""The int8 copy of the encoder: ONNX Runtime's dynamic quantization of the exported float model.

The encoder's matrix products (its n-gram layers and deep-averaging network, 16 MatMul nodes) get
int8 weights, one scale per output channel, and activations quantized on the fly; everything else
stays float. It runs the accurate tier ~2x faster on one thread and is deterministic (the same float
model gives the same bytes), so `make models` writes it beside the float model and records both.
Its effect on quality is measured by `safestack models eval` (docs/models/README.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safestack.judge.builtin.embedders import ENCODER_FILE, INT8_FILE


def quantize_encoder(encoder_dir: Path) -> dict[str, object]:
    """Write `model.int8.onnx` from `model.onnx` in `encoder_dir` and record it in `build.json`
    (which must exist: the float model's build record). Returns the file's record entry."""
    from onnxruntime.quantization import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        QuantType,
        quantize_dynamic,
    )

    source = encoder_dir / ENCODER_FILE
    target = encoder_dir / INT8_FILE
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,  # one scale per output column: closer to float on long texts
        op_types_to_quantize=["MatMul"],
    )
    entry: dict[str, object] = {
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "bytes": target.stat().st_size,
        "from": "model.onnx, onnxruntime.quantization.quantize_dynamic: MatMul weights int8, "
        "per channel; activations uint8, dynamic",
    }
    record_path = encoder_dir / "build.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record.setdefault("files", {})[INT8_FILE] = entry
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return entry
