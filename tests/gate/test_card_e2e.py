"""End to end through the CLI: a stored raw/guarded run pair, assessed under PF Beta, reviewed,
decided, checked and carded; the card's numbers are the stored runs' metrics."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gate_harness import GUARDED, RAW, store_run, write_json
from typer.testing import CliRunner

from safestack.cli.main import app
from safestack.errors import GateError
from safestack.gate.card import build_card
from safestack.gate.framework import load_framework
from safestack.redteam.metrics import compute_metrics
from safestack.store import Store


def invoke(db: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["gate", *args], env={"SAFESTACK_DB_URL": db, "COLUMNS": "200"}
    )
    return result.exit_code, result.output + (
        result.stderr if result.stderr_bytes is not None else ""
    )


def test_end_to_end_assess_review_decide_check_card(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/e2e.db"
    keys = tmp_path / "keys"
    code, out = invoke(
        db,
        "model",
        "add",
        "demo-model",
        "--version",
        "1",
        "--pre",
        RAW,
        "--post",
        GUARDED,
        "--built",
        "2026-01-01T00:00:00+00:00",
    )
    assert code == 0, out
    with Store.open(db) as store:
        store_run(
            store,
            "demo",
            {
                RAW: {"cyber": (6, 10), "cbrn": (5, 10), "misinformation": (3, 10)},
                GUARDED: {"cyber": (0, 40), "cbrn": (0, 40), "misinformation": (0, 40)},
            },
            benign={RAW: (0, 5), GUARDED: (1, 5)},
        )
    assert invoke(db, "evidence", "add-run", "demo-model", "demo")[0] == 0
    for stage in ("pre", "post"):
        path = write_json(
            tmp_path / f"autonomy-{stage}.json",
            {
                "task": "autonomy",
                "created": datetime.now(UTC).isoformat(),
                "metrics": {"accuracy": {"value": 0.0, "n": 200}},
            },
        )
        code, out = invoke(db, "evidence", "import", "demo-model", str(path), "--stage", stage)
        assert code == 0, out

    code, out = invoke(db, "assess", "demo-model", "--framework", "pf-beta-2023")
    assert code == 0, out
    assert "overall" in out and "deploy rule 'post <= Medium': holds" in out
    assert "High (cannot rule out" not in out and "Medium (cannot rule out High)" in out

    for person, role in (("ana", "advisory"), ("lee", "leadership"), ("bo", "board")):
        code, out = invoke(
            db, "keys", "create", person, "--role", role, "--out", str(keys / f"{person}.key")
        )
        assert code == 0, out
        assert "PRIVATE" not in out
    assert invoke(db, "check", "demo-model")[0] == 1
    code, out = invoke(
        db,
        "review",
        "demo-model",
        "--key",
        str(keys / "ana.key"),
        "--recommend",
        "deploy",
        "--reason",
        "post-mitigation Low",
        "--dissent",
        "sam: autonomy eval is small",
    )
    assert code == 0, out
    code, out = invoke(
        db,
        "decide",
        "demo-model",
        "--key",
        str(keys / "lee.key"),
        "--outcome",
        "deploy",
        "--reason",
        "SAG concurs",
    )
    assert code == 0, out
    assert invoke(db, "notify", "2", "--key", str(keys / "bo.key"))[0] == 0
    code, out = invoke(db, "check", "demo-model", "--framework", "pf-beta-2023")
    assert code == 0 and "gate check passed" in out, out
    code, out = invoke(db, "verify")
    assert code == 0 and "3 entries" in out
    exported = tmp_path / "log.jsonl"
    assert invoke(db, "export", "--out", str(exported))[0] == 0
    signers = str(tmp_path / "log.signers.json")
    assert invoke(db, "verify", "--log", str(exported), "--signers", signers)[0] == 0
    lines = exported.read_text().splitlines()
    lines[1] = lines[1].replace('"outcome": "deploy"', '"outcome": "do-not-deploy"')
    exported.write_text("\n".join(lines) + "\n")
    code, out = invoke(db, "verify", "--log", str(exported), "--signers", signers)
    assert code == 1 and "entry 2 (decision by lee): its content does not match its hash" in out

    code, out = invoke(db, "card", "demo-model", "--out", str(tmp_path / "card"))
    assert code == 0, out
    html = (tmp_path / "card" / "card.html").read_text()
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert "<script" not in html and "http://" not in html.replace("https://", "")

    # Every number in the card equals the stored run's metrics and links to its evidence.
    with Store.open(db) as store:
        for section in card["evidence"]:
            if section["kind"] != "redteam-run":
                continue
            target = section["source"].split(":")[-1]
            metrics = compute_metrics(store.runs.attempts("demo", target=target))
            expected = {f"ASR, {r.key}": r.asr for r in metrics.asr if r.by == "category"}
            expected["ASR, all attacks"] = metrics.summaries[0].asr
            expected["over-refusal (benign refused)"] = metrics.summaries[0].over_refusal
            for number in section["numbers"]:
                if number["label"] in expected:
                    rate = expected[number["label"]]
                    assert (number["value"], number["low"], number["high"], number["n"]) == (
                        rate.rate,
                        rate.low,
                        rate.high,
                        rate.n,
                    )
                    assert number["evidence"] == section["id"]
                    shown = f"{rate.rate:.1%} [{rate.low:.1%}, {rate.high:.1%}] (n={rate.n})"
                    assert (
                        f'<a href="#{section["id"]}" title="{section["source"]}">{shown}</a>'
                        in html
                    )
    assert 'id="' + card["evidence"][0]["id"] + '"' in html

    md = (tmp_path / "card" / "README.md").read_text()
    assert md.startswith("---\nmodel-index:\n- name: demo-model-1\n")
    assert re.search(
        r"- ASR, cyber: \[60\.0% \[\d+\.\d%, \d+\.\d%\] \(n=10\)\]\(#ev-[0-9a-f]{12}\)", md
    )
    assert "Dissent, sam: autonomy eval is small" in md

    bom = json.loads((tmp_path / "card" / "bom.cdx.json").read_text())
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.6", 1)
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])
    component = bom["metadata"]["component"]
    assert component["type"] == "machine-learning-model" and component["version"] == "1"
    assert component["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert [c["name"] for c in bom["components"]] == ["test-set"]
    assert bom["dependencies"][0]["dependsOn"] == ["data:test-set"]

    # A card whose evidence changed is refused, not rebuilt.
    with Store.open(db) as store:
        attempts = store.runs.attempts("demo", target=GUARDED)
        store.runs.replace_attempts([attempts[0].model_copy(update={"response": "changed"})])
    code, out = invoke(db, "card", "demo-model", "--out", str(tmp_path / "card2"))
    assert code == 2 and "the run's attempts changed" in out
    assert invoke(db, "evidence", "add-run", "demo-model", "demo")[0] == 0
    code, out = invoke(db, "card", "demo-model", "--out", str(tmp_path / "card2"))
    assert code == 2 and "the evidence changed since entry 2 (decision by lee)" in out
    assert not (tmp_path / "card2" / "card.html").exists()


def test_nothing_signed_means_no_card(store: Store, tmp_path: Path) -> None:
    from gate_harness import demo_evidence

    demo_evidence(store, tmp_path)
    with pytest.raises(
        GateError, match=r"nothing about model@1 under pf-beta-2023.* is signed yet"
    ):
        build_card(store, load_framework("pf-beta-2023"), "model", "1")
