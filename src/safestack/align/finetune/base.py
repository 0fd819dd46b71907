"""Which model a fine-tune starts from, and its weights as a transformers directory.

`--model` names a GGUF file (`gguf`: the embedded Gemma 3 270M), a transformers model directory,
or a model of the lineage (`safestack align models`). A GGUF file is read into transformers once
(dequantised to float32: about 2 minutes for Gemma 3 270M) and kept as a plain model directory in
the cache, so later rounds load it in seconds. The id is the one red-team runs record for it:
`<name>@<sha12>` (`gemma3-270m-q4_k_m@a5fd3b62230a`), so lineage and runs name the same model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safestack.errors import InputError
from safestack.models.base import ModelError
from safestack.models.gguf import DEFAULT_MODEL, load_gguf_transformers, locate_gguf
from safestack.store import Store

IDENTITY = "safestack.json"  # in a merged model directory: its lineage id and parent


@dataclass(frozen=True)
class ParentModel:
    """The model a fine-tune starts from."""

    id: str
    name: str
    source: str  # "gguf", "directory" or "lineage"
    gguf: Path | None  # the GGUF file, when it comes from one
    directory: Path | None  # the transformers directory (None until a GGUF is converted)
    target: dict[str, Any]  # the red-team target spec that talks to this model


def _directory_id(directory: Path) -> str:
    """`<folder>@<sha12>` over the config and weight files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.suffix in (".json", ".safetensors", ".bin") and path.name != IDENTITY:
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    return f"{directory.name}@{digest.hexdigest()[:12]}"


def resolve_parent(spec: str, store: Store | None) -> ParentModel:
    """What `--model` names (see the module docstring); an InputError says what it accepts."""
    if spec == "gguf" or spec.endswith(".gguf"):
        given = None if spec == "gguf" else Path(spec)
        name = given.stem if given else DEFAULT_MODEL
        try:
            path, sha256 = locate_gguf(given, name)
        except ModelError as exc:
            raise InputError(f"--model {spec}: {exc}") from None
        target: dict[str, Any] = {"kind": "gguf"}
        if given is not None:
            target["options"] = {"path": str(path.resolve())}
        return ParentModel(f"{name}@{sha256[:12]}", name, "gguf", path, None, target)
    directory = Path(spec)
    if directory.is_dir():
        if not (directory / "config.json").is_file():
            raise InputError(
                f"--model {spec}: the directory holds no config.json; give a transformers model "
                "directory (save_pretrained), a .gguf file, 'gguf' or a stored model id"
            )
        directory = directory.resolve()
        identity = _identity(directory)
        model_id = identity or _directory_id(directory)
        return ParentModel(
            model_id,
            directory.name,
            "directory",
            None,
            directory,
            {"kind": "transformers", "options": {"path": str(directory), "model_name": model_id}},
        )
    found = store.models.get(spec) if store is not None else None
    if found is None:
        raise InputError(
            f"--model {spec}: not 'gguf', a .gguf file, a model directory or a stored model id "
            "(safestack align models lists them)"
        )
    if found.kind == "base" and found.target.get("kind") == "gguf":
        return resolve_parent(str(found.target.get("options", {}).get("path", "gguf")), store)
    path = Path(found.path)
    if not (path / "config.json").is_file():
        raise InputError(
            f"--model {spec}: model {found.id} was at {path}, which holds no model any more; "
            "train it again or point --model at where it is now"
        )
    return ParentModel(found.id, found.name, "lineage", None, path, found.target)


def _identity(directory: Path) -> str | None:
    try:
        data = json.loads((directory / IDENTITY).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return str(data["id"]) if isinstance(data, dict) and "id" in data else None


def convert_gguf(
    base: ParentModel, cache: Path, threads: int, note: Callable[[str], object] = print
) -> ParentModel:
    """The base as a transformers directory: converted from its GGUF once, then from the cache."""
    if base.directory is not None:
        return base
    assert base.gguf is not None
    directory = cache / base.id.replace("@", "-")
    if (directory / IDENTITY).is_file():
        return _with_directory(base, directory)
    note(f"reading {base.gguf} into transformers, once (about 2 minutes; kept in {directory})")
    import torch
    from transformers import AutoModelForCausalLM

    try:
        tokenizer, lm = load_gguf_transformers(base.id, base.gguf, threads)
    except ModelError as exc:
        raise InputError(f"--model: {exc}") from None
    # transformers marks a model read from GGUF as quantised, and refuses to save or train it;
    # the weights are plain float32 already, so they move into a fresh model of the same config.
    config = lm.config
    settings = config.to_dict()
    settings.pop("quantization_config", None)
    auto: Any = AutoModelForCausalLM
    clean: Any = auto.from_config(type(config).from_dict(settings), dtype=torch.float32)
    clean.load_state_dict(lm.state_dict(), strict=True)
    clean.tie_weights()
    staging = cache / f".{directory.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    clean.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / IDENTITY).write_text(
        json.dumps({"id": base.id, "gguf": str(base.gguf)}, indent=2) + "\n", "utf-8"
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return _with_directory(base, directory)


def _with_directory(base: ParentModel, directory: Path) -> ParentModel:
    return ParentModel(base.id, base.name, base.source, base.gguf, directory, base.target)
