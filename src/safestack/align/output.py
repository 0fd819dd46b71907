"""Writing a training set: JSON Lines and Parquet per kind and split, a dataset card (README.md
whose front matter lists the configs, as the Hugging Face Hub and `datasets.load_dataset` read it),
and manifest.json, whose `version` is the sha256 of the rows.

The set is written into a staging directory beside `--out` and moved into place at the end, so a
failure leaves nothing half-written. An `--out` that already holds a different set is refused
unless `force`, and then kept beside the new one (`DIR.<old version>`), never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from safestack.align.build import TrainingSet
from safestack.align.regression import campaign_yaml
from safestack.align.rows import KINDS, SPLITS
from safestack.errors import InputError
from safestack.store import Store, StoredTrainingSet

MANIFEST = "manifest.json"
CARD = "README.md"
REGRESSION = "regression.yaml"
SCHEMA_VERSION = 1
FORMATS = {
    "sft": "chat format: {messages: [system?, user..., assistant]}; learn the last assistant turn",
    "preference": "TRL conversational preference: {prompt, chosen, rejected}",
    "kto": "TRL unpaired preference: {prompt, completion, label}",
    "retain": "chat format: benign and borderline requests with helpful answers",
}


@dataclass(frozen=True)
class WriteResult:
    version: str
    path: Path
    status: str  # "written" or "unchanged"
    previous: Path | None
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.manifest["id"])


def jsonl_files(training_set: TrainingSet) -> dict[str, bytes]:
    """'kind/split.jsonl' → its bytes: the rows as the set's content."""
    files = {}
    for kind in KINDS:
        for split in SPLITS:
            rows = training_set.rows[kind][split]
            lines = [
                json.dumps(row.model_dump(mode="json"), ensure_ascii=False) + "\n" for row in rows
            ]
            files[f"{kind}/{split}.jsonl"] = "".join(lines).encode("utf-8")
    return files


def content_version(files: dict[str, bytes]) -> str:
    """sha256 over each JSONL file's name and digest: the same rows, the same version."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name} {hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_training_set(
    training_set: TrainingSet,
    out: Path,
    *,
    force: bool = False,
    regression: dict[str, Any] | None = None,
) -> WriteResult:
    """Write the set to `out` (see the module docstring for what happens when `out` exists)."""
    pq = _parquet()
    files = jsonl_files(training_set)
    version_hash = content_version(files)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a directory; choose a directory")
    existing = read_manifest(out) if out.is_dir() else None
    if existing is not None and existing.get("version") == version_hash:
        return WriteResult(version_hash, out, "unchanged", None, existing)
    occupied = out.is_dir() and any(out.iterdir())
    if occupied and not force:
        held = (
            f"training set {str(existing.get('version', '?'))[:12]}"
            if existing is not None
            else "files that are not a safestack training set"
        )
        raise InputError(
            f"--out {out}: already holds {held}, and this build is {version_hash[:12]}; pass "
            "--force to replace it (the old one is kept beside it) or choose another --out"
        )

    manifest = build_manifest(training_set, version_hash)
    out = out.resolve()  # `--out .` has no name to stage beside
    staging = out.parent / f".{out.name}.staging-{version_hash[:12]}"
    if staging.exists():
        shutil.rmtree(staging)  # left by a build that was killed; it never held a finished set
    staging.mkdir(parents=True)
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            kind = name.split("/", 1)[0]
            rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
            write_parquet(pq, rows, kind, staging / name.replace(".jsonl", ".parquet"))
        if regression is not None:
            text = campaign_yaml(regression)
            (staging / REGRESSION).write_text(text, "utf-8")
        manifest["files"] = {
            str(path.relative_to(staging)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        (staging / CARD).write_text(dataset_card(training_set, manifest), "utf-8")
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if out.exists():
        previous = aside(out, existing)
        os.rename(out, previous)
    os.rename(staging, out)
    return WriteResult(version_hash, out, "written", previous, manifest)


def record_training_set(store: Store, result: WriteResult) -> StoredTrainingSet:
    """Keep the written set in the store (`store.training_sets`), so rounds can name it."""
    manifest = result.manifest
    return store.training_sets.record(
        result.version,
        runs=[run["id"] for run in manifest["inputs"]["runs"]],
        policy=manifest["inputs"]["policy"],
        counts=manifest["counts"],
        path=str(result.path.resolve()),
        manifest=manifest,
    )


def aside(out: Path, existing: dict[str, Any] | None) -> Path:
    """Where a replaced output directory is kept: DIR.<its version prefix>, or DIR.previous-N."""
    if existing is not None and isinstance(existing.get("version"), str):
        candidate = out.with_name(f"{out.name}.{existing['version'][:12]}")
        if not candidate.exists():
            return candidate
    number = 1
    while out.with_name(f"{out.name}.previous-{number}").exists():
        number += 1
    return out.with_name(f"{out.name}.previous-{number}")


def build_manifest(training_set: TrainingSet, version_hash: str) -> dict[str, Any]:
    try:
        safestack_version = version("safestack")
    except PackageNotFoundError:
        safestack_version = "source"
    return {
        "schema_version": SCHEMA_VERSION,
        "id": version_hash[:16],
        "version": version_hash,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_by": f"safestack {safestack_version} (safestack align data)",
        "inputs": training_set.inputs,
        "counts": training_set.counts,
        "considered": training_set.considered,
        "rejected": training_set.rejected,
        "languages": training_set.languages,
        "categories": training_set.categories,
        "formats": FORMATS,
        "files": {},
    }


def _parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise InputError(
            "writing the Parquet copy needs pyarrow: pip install 'safestack[data]'"
        ) from None
    return pq


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    string = pa.string()
    turn = pa.list_(pa.struct([("role", string), ("content", string)]))
    score = pa.list_(
        pa.struct(
            [
                ("scorer", string),
                ("version", string),
                ("value", pa.float64()),
                ("label", string),
                ("success", pa.bool_()),
                ("error", string),
            ]
        )
    )
    provenance = pa.struct(
        [
            ("schema_version", pa.int64()),
            ("source", string),
            ("run_id", string),
            ("attempt_id", string),
            ("target", string),
            ("target_model", string),
            ("probe_id", string),
            ("attack", string),
            ("converters", pa.list_(string)),
            ("behaviour_id", string),
            ("behaviour_source", string),
            ("category", string),
            ("language", string),
            ("answer_language", string),
            ("scores", score),
            ("policy", string),
            ("writer", string),
            ("template", string),
            ("writer_scores", score),
            ("prompt_hash", string),
            ("content_hash", string),
            ("group", string),
            ("duplicates", pa.list_(string)),
        ]
    )
    chat = pa.schema([("messages", turn), ("provenance", provenance)])
    return {
        "sft": chat,
        "retain": chat,
        "preference": pa.schema(
            [("prompt", turn), ("chosen", turn), ("rejected", turn), ("provenance", provenance)]
        ),
        "kto": pa.schema(
            [
                ("prompt", turn),
                ("completion", turn),
                ("label", pa.bool_()),
                ("provenance", provenance),
            ]
        ),
    }


def write_parquet(pq: Any, rows: list[dict[str, Any]], kind: str, path: Path) -> None:
    """One Parquet file; an empty split has its schema and no row group (`datasets` reads a file
    without row groups as empty, but fails on an empty row group)."""
    data = table(rows, kind)
    with pq.ParquetWriter(path, data.schema, compression="zstd") as writer:
        if rows:
            writer.write_table(data)


def table(rows: list[dict[str, Any]], kind: str) -> Any:
    """The rows as an Arrow table with the kind's fixed schema (an empty split keeps it too)."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schemas()[kind])


def dataset_card(training_set: TrainingSet, manifest: dict[str, Any]) -> str:
    """README.md: the Hub's front matter (configs and splits) and what the set holds."""
    languages = sorted(lang for lang in training_set.languages if lang != "xx")
    counts = training_set.counts
    front = {
        "pretty_name": f"safestack break-fix training set {manifest['id']}",
        "language": languages or ["en"],
        "license": "other",
        "tags": ["safety", "red-teaming", "break-fix", "safestack"],
        "task_categories": ["text-generation"],
        # `datasets` cannot load a split without rows: the card lists the splits that have some
        # (the empty files are still written, with their columns).
        "configs": [
            {
                "config_name": kind,
                "data_files": [
                    {"split": split, "path": f"{kind}/{split}.parquet"}
                    for split in SPLITS
                    if counts[kind][split]
                ],
            }
            for kind in KINDS
            if any(counts[kind][split] for split in SPLITS)
        ],
    }
    table_rows = "\n".join(
        f"| `{kind}` | {counts[kind]['train']} | {counts[kind]['validation']} | {FORMATS[kind]} |"
        for kind in KINDS
    )
    runs = ", ".join(f"`{r['id']}`" for r in training_set.inputs["runs"])
    rejected = ", ".join(f"{reason}: {n}" for reason, n in training_set.rejected.items()) or "none"
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip()}
---

# safestack break-fix training set `{manifest["id"]}`

Built by `safestack align data` from the red-team run(s) {runs} under policy
`{training_set.inputs["policy"]}`; safe answers written by `{training_set.inputs["writer"]}`.
Version (sha256 of the rows): `{manifest["version"]}`.

**Content warning.** The prompts are real attacks, and the `rejected` answers of `preference` and
the `label: false` completions of `kto` are a model's harmful outputs. Review before sharing.

| config | train | validation | format |
|---|---|---|---|
{table_rows}

Train and validation are split by behaviour: the same request is never on both sides. Every row
has a `provenance` block: run, attempt, target, probe, attack, behaviour, category, language, the
run's scorer verdicts, the policy, the writer, and the prompt and content hashes.

Left out: {rejected}. `manifest.json` lists the inputs, counts and the sha256 of every file;
`regression.yaml` (when present) is the red-team campaign that replays every finding by its id.

Load it with `datasets.load_dataset("path/to/this/directory", "sft")`, or any file with
`load_dataset("parquet", data_files=...)` / `load_dataset("json", data_files=...)`.

Sources and licences: the prompts come from the behaviour sets named in the runs' campaigns (see
their licences), the chosen answers from safestack's templates (Apache-2.0) or the named writer
model, the retain set from the target's own answers, safestack's borderline set (Apache-2.0) and
chatterbot-corpus (BSD-3-Clause).
"""
