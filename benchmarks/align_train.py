"""LoRA SFT speed of `safestack align train` on the real local model: tokens per second, wall and CPU.

Trains `--steps` SFT optimizer steps (no preference stage, no evaluation) on a training set for the
default settings and for the variants named with --variant, each in a fresh output directory, and
prints one JSON line per run with the machine's load average. CPU seconds are this process's: on a
machine shared with other work, tokens per CPU second say what the run would do alone.

    .venv/bin/python benchmarks/align_train.py data/round1 --steps 20
    .venv/bin/python benchmarks/align_train.py data/round1 --steps 6 --variant default \\
        --variant attention-only --variant threads-1 --variant length-128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from safestack.align.finetune import TrainConfig, read_training_set, resolve_parent, train_model

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "attention-only": {"lora": {"targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}},
    "threads-1": {"threads": 1},
    "length-128": {"max_length": 128, "max_answer_length": 64},
    "batch-4": {"batch_size": 4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("training_set", type=Path)
    parser.add_argument("--model", default="gguf")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--accumulation", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".safestack/align/models")
    args = parser.parse_args()
    # As `safestack align train` does, before torch loads (docs/align.md, "Measured").
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")
    data = read_training_set(args.training_set)
    parent = resolve_parent(args.model, None)
    for name in args.variant or ["default"]:
        settings: dict[str, Any] = {
            "preference": "none",
            "sft_max_steps": args.steps,
            "gradient_accumulation": args.accumulation,
            "evaluate": False,
            "save_steps": 10_000,
            **VARIANTS[name],
        }
        config = TrainConfig.model_validate(settings)
        out = Path(tempfile.mkdtemp(prefix=f"align-bench-{name}-"))
        shutil.rmtree(out)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = train_model(data, parent, config, out, cache=args.cache)
        sft = result.metrics["sft"]
        print(
            json.dumps(
                {
                    "variant": name,
                    "steps": sft["steps"],
                    "sequences": sft["steps"] * config.gradient_accumulation * config.batch_size,
                    "tokens": sft["tokens"],
                    "answer_tokens": sft["answer_tokens"],
                    "train_seconds": sft["seconds"],
                    "cpu_seconds": sft["cpu_seconds"],
                    "tokens_per_s": sft["tokens_per_s"],
                    "answer_tokens_per_s": sft["answer_tokens_per_s"],
                    "tokens_per_cpu_s": sft["tokens_per_cpu_s"],
                    "load_average": [round(load, 2), *sft["load_average"]],
                    "wall_seconds_with_load_and_merge": round(time.perf_counter() - started, 1),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                }
            ),
            flush=True,
        )
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
