"""Loading a local Hugging Face model for the `hf-classifier` and `hf-llama-guard` detectors.

torch and transformers are imported only when a detector is built, so a server installed without
the `hf` extra still imports safestack; nothing is downloaded, the model must be a local directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from safestack.errors import DetectorError

INSTALL_HINT = "pip install torch==2.13.0 'safestack[hf]'"


def load_local_model(
    name: str,
    model_dir: Path,
    model_class: str,
    device: str,
    check: Callable[[Any], object] = lambda config: None,
) -> tuple[Any, Any, Any]:
    """(torch, tokenizer, model) from a local directory, or a DetectorError that says the fix.

    `check` sees the model's config before the weights load, so a bad option fails fast.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DetectorError(
            name, f"needs torch and transformers ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    if not model_dir.is_dir():
        raise DetectorError(
            name,
            f"model directory {model_dir} does not exist; options.model must be a local directory",
        )
    try:
        config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError ...
        raise DetectorError(name, f"cannot read the model config in {model_dir}: {exc}") from exc
    check(config)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = getattr(transformers, model_class).from_pretrained(
            model_dir, config=config, local_files_only=True
        )
        model.to(device)
    except Exception as exc:
        raise DetectorError(name, f"cannot load {model_class} from {model_dir}: {exc}") from exc
    model.eval()
    return torch, tokenizer, model
