"""Messages for the benchmarks, built from the example inputs so every script measures the same text."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus(n: int, width: int) -> list[str]:
    """`n` messages of exactly `width` characters (each numbered, so no two are identical)."""
    lines = [json.loads(line)["text"] for line in (ROOT / "examples" / "inputs.jsonl").open()]
    texts = []
    for i in range(n):
        text = lines[i % len(lines)]
        while len(text) < width:
            text += " " + lines[(i + len(text)) % len(lines)]
        texts.append(f"{i} {text[:width]}")
    return texts
