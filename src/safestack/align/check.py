"""`safestack align check MODEL`: re-run a series' regression suite against a model.

The suite (`align round` writes `OUT/regression.yaml`; `align regression` writes one per run) holds
every finding trained on, each a fixed probe with the id `finding:<attempt id>`; the model is put
in as its only target and every probe is replayed. A probe whose attack succeeds again is reported
by its finding id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from safestack.align.evaluation import SetScores, aimed_at, round_target, system_prompt_of
from safestack.align.finetune import ParentModel
from safestack.align.rounds import AttemptHook, read_campaign_file, run_set
from safestack.align.rows import sha256_json
from safestack.errors import InputError
from safestack.judge.builtin import BuiltinModels
from safestack.policy import Policy
from safestack.store import Store


def checked_target(model: ParentModel) -> dict[str, Any]:
    """The target a check talks to: a trained model converted to GGUF (`align gguf`, `align round
    --gguf`: `model.gguf` and `target-gguf.yaml` beside its `merged/` directory) is replayed
    through llama.cpp, as its round measured it, and far faster than the float32 transformers
    target; any other model through its own target."""
    if model.source == "lineage" and model.directory is not None:
        spec_file = model.directory.parent / "target-gguf.yaml"
        if spec_file.is_file() and (model.directory.parent / "model.gguf").is_file():
            try:
                spec = (yaml.safe_load(spec_file.read_text("utf-8")) or {})["targets"][0]
            except (yaml.YAMLError, KeyError, IndexError, TypeError, OSError):
                spec = None  # not what align gguf writes: keep the model's own target
            if isinstance(spec, dict) and (spec.get("options") or {}).get("model_name") == model.id:
                return {key: value for key, value in spec.items() if key != "name"}
    return dict(model.target)


@dataclass(frozen=True)
class CheckResult:
    run_id: str
    scores: SetScores  # headline: the share of probes that broke; `broken`: their finding ids


def check_model(
    store: Store,
    policy: Policy,
    model: ParentModel,
    suite: Path,
    *,
    run_id: str | None = None,
    home: Path | None = None,
    models: BuiltinModels | None = None,
    console: Console | None = None,
    on_run: AttemptHook | None = None,
) -> CheckResult:
    """Replay every probe of `suite` against `model` (resuming a stored run of the same check)."""
    if not suite.is_file():
        raise InputError(
            f"--suite {suite}: no such file; align round writes OUT/regression.yaml and "
            "align regression RUN --out FILE writes one"
        )
    data = read_campaign_file(suite)
    fixed = [b for b in data["behaviours"] if b["source"] == "fixed"]
    if not fixed:
        raise InputError(
            f"--suite {suite}: holds no fixed probes (behaviours with source: fixed); it is not "
            "a regression suite"
        )
    target = round_target(checked_target(model), 0, system_prompt_of(data))
    target["name"] = "check"
    rid = run_id or f"check-{sha256_json([model.id, data])[:16]}"
    aimed = aimed_at(data, target, str(data["name"]), f"--suite {suite}")
    scores = run_set(
        store,
        policy,
        rid,
        "regression",
        aimed,
        home=home,
        models=models if models is not None else BuiltinModels(),
        console=console or Console(stderr=True),
        on_run=on_run,
    )
    return CheckResult(rid, scores)
