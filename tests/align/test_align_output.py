"""Writing a training set: JSON Lines and Parquet with the same rows, a dataset card the Hub and
`datasets` read, a manifest whose version is stable, the store record, and nothing lost on a rerun."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from safestack.align import (
    BuildOptions,
    TemplateWriter,
    TrainingSet,
    build_training_set,
    load_runs,
    record_training_set,
    regression_campaign,
    write_training_set,
)
from safestack.errors import InputError
from safestack.policy import default_policy
from safestack.store import Store

FILES = {
    f"{kind}/{split}.{ext}"
    for kind in ("sft", "preference", "kto", "retain")
    for split in ("train", "validation")
    for ext in ("jsonl", "parquet")
}


def built(store: Store, seed: int = 0) -> TrainingSet:
    options = BuildOptions(
        retain_ratio=1.0, validation_ratio=0.34, retain_sources=("run", "borderline"), seed=seed
    )
    return build_training_set(load_runs(store, ["r1"]), default_policy(), TemplateWriter(), options)


def listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def test_every_kind_and_split_is_written_as_jsonl_and_parquet(store: Store, tmp_path: Path) -> None:
    training_set = built(store)
    out = tmp_path / "set"
    result = write_training_set(
        training_set, out, regression=regression_campaign(load_runs(store, ["r1"]))
    )
    assert result.status == "written"
    assert listing(out) == FILES | {"README.md", "manifest.json", "regression.yaml"}
    for name in sorted(f for f in FILES if f.endswith(".jsonl")):
        lines = [json.loads(line) for line in (out / name).read_text("utf-8").splitlines()]
        kind, split = name.removesuffix(".jsonl").split("/")
        assert lines == [r.model_dump(mode="json") for r in training_set.rows[kind][split]]
        table = pq.read_table(out / name.replace(".jsonl", ".parquet"))
        assert table.to_pylist() == lines, name
    kto = [json.loads(line) for line in (out / "kto/train.jsonl").read_text().splitlines()]
    assert set(kto[0]) == {"prompt", "completion", "label", "provenance"}
    assert {row["label"] for row in kto} == {True, False}


def test_an_empty_split_keeps_its_columns_and_stays_off_the_card(
    store: Store, tmp_path: Path
) -> None:
    options = BuildOptions(retain_ratio=0.0, validation_ratio=0.0)
    training_set = build_training_set(
        load_runs(store, ["r1"]), default_policy(), TemplateWriter(), options
    )
    write_training_set(training_set, tmp_path / "set")
    table = pq.read_table(tmp_path / "set/sft/validation.parquet")
    assert (table.num_rows, table.schema.names) == (0, ["messages", "provenance"])
    assert pq.ParquetFile(tmp_path / "set/sft/validation.parquet").metadata.num_row_groups == 0
    assert (tmp_path / "set/retain/train.jsonl").read_bytes() == b""
    # `datasets` cannot load a split without rows, so the card lists only those with some.
    front = yaml.safe_load((tmp_path / "set/README.md").read_text().split("---\n")[1])
    assert {c["config_name"]: [f["split"] for f in c["data_files"]] for c in front["configs"]} == {
        "sft": ["train"],
        "preference": ["train"],
        "kto": ["train"],
    }


def test_the_manifest_counts_inputs_and_pins_every_file(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = write_training_set(built(store), out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == result.version and manifest["id"] == result.version[:16]
    assert manifest["counts"]["sft"] == {"train": 3, "validation": 1}
    assert manifest["rejected"] == {"duplicate-prompt": 1, "retain-heldout": 1}
    assert manifest["inputs"]["runs"] == [
        {"id": "r1", "name": "unit-align", "campaign_hash": "c" * 64, "attempts": 11}
    ]
    assert manifest["inputs"]["policy"] == "safestack-default@2026.12.1"
    assert set(manifest["inputs"]["heldout"]) == {"benign-lookalikes"}
    assert set(manifest["files"]) == FILES  # the card and the manifest itself come after
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_the_same_input_gives_the_same_version_in_another_directory(
    store: Store, tmp_path: Path
) -> None:
    first = write_training_set(built(store), tmp_path / "one")
    second = write_training_set(built(store), tmp_path / "two")
    assert first.version == second.version
    for name in sorted(f for f in FILES if f.endswith(".jsonl")):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert write_training_set(built(store, seed=3), tmp_path / "three").version != first.version


def test_the_card_front_matter_lists_each_config_and_split(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "set"
    write_training_set(built(store), out)
    text = (out / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["sft", "preference", "kto", "retain"]
    for config in front["configs"]:
        for data_file in config["data_files"]:
            assert (out / data_file["path"]).is_file()
    assert front["language"] == ["en", "fr"]
    assert "Content warning" in text


def test_a_rebuild_is_unchanged_and_a_different_set_is_refused(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "set"
    first = write_training_set(built(store), out)
    before = {name: (out / name).read_bytes() for name in listing(out)}
    assert write_training_set(built(store), out).status == "unchanged"

    other = built(store, seed=5)
    with pytest.raises(
        InputError, match=rf"already holds training set {first.version[:12]}.*--force"
    ):
        write_training_set(other, out)
    assert {name: (out / name).read_bytes() for name in listing(out)} == before

    replaced = write_training_set(other, out, force=True)
    assert replaced.previous == tmp_path / f"set.{first.version[:12]}"
    assert {n: (replaced.previous / n).read_bytes() for n in listing(replaced.previous)} == before
    assert json.loads((out / "manifest.json").read_text())["version"] == replaced.version
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_an_output_directory_with_other_files_is_not_overwritten(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=r"not a safestack training set.*--force"):
        write_training_set(built(store), out)
    assert listing(out) == {"notes.txt"}
    result = write_training_set(built(store), out, force=True)
    assert result.previous is not None
    assert (result.previous / "notes.txt").read_text() == "keep me"


def test_the_set_is_recorded_once_in_the_store_by_its_version(store: Store, tmp_path: Path) -> None:
    result = write_training_set(built(store), tmp_path / "set")
    stored = record_training_set(store, result)
    again = record_training_set(store, write_training_set(built(store), tmp_path / "copy"))
    assert (stored.id, stored.version) == (again.id, again.version) == (result.id, result.version)
    assert again.path == str((tmp_path / "copy").resolve())
    assert [s.id for s in store.training_sets.all()] == [stored.id]
    assert store.training_sets.get(stored.id) == again
    assert store.training_sets.get(result.version[:10]) == again
    assert store.training_sets.get("0000000000") is None
    assert stored.runs == ["r1"] and stored.counts["retain"] == {"train": 3, "validation": 1}
