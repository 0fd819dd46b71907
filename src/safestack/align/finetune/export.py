"""What a fine-tune leaves behind: the LoRA adapter, the merged model, and a red-team target.

The merged model is the base with the adapter folded in (`merge_and_unload`), saved with its
tokenizer, the chat template it was trained with and a generation config that ends a turn where
training taught it to, so the `transformers` target answers as the model learnt. `target.yaml`
beside it is the snippet a campaign's `targets:` takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from safestack.align.finetune.base import IDENTITY
from safestack.align.finetune.encode import end_of_turn_ids


def merge(
    base_model: Any, adapter: Path, tokenizer: Any, out: Path, identity: dict[str, Any]
) -> Path:
    """Fold `adapter` into `base_model` and save model, tokenizer and identity to `out`."""
    from peft import PeftModel

    merged: Any = PeftModel.from_pretrained(base_model, adapter).merge_and_unload()
    stops = end_of_turn_ids(tokenizer)
    merged.generation_config.eos_token_id = stops if len(stops) > 1 else stops[0]
    if tokenizer.pad_token_id is not None:
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / IDENTITY).write_text(json.dumps(identity, indent=2) + "\n", "utf-8")
    return out


def target_spec(model_id: str, merged: Path, name: str) -> dict[str, Any]:
    """The red-team target that talks to the merged model (runtime: transformers)."""
    return {
        "name": name,
        "kind": "transformers",
        "options": {"path": str(merged.resolve()), "model_name": model_id, "dtype": "float32"},
    }


def write_target(spec: dict[str, Any], path: Path, note: str) -> Path:
    text = f"# {note}\n" + yaml.safe_dump({"targets": [spec]}, sort_keys=False)
    path.write_text(text, "utf-8")
    return path
