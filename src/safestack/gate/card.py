"""The system card: HTML and Markdown from signed evidence only, plus model-index and an ML-BOM.

`build_card` refuses unless the newest signed review or decision on the model version was made on
the scorecard the evidence gives now (a card never drifts from what was signed). Every number
carries the evidence id and run it came from, and links to that evidence's section. The HTML is
one offline page (jinja2, autoescaped, no scripts); the BOM follows CycloneDX 1.6 JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict

from safestack import __version__
from safestack.errors import GateError
from safestack.gate.decisions import LogEntry, read_log, verify_entries
from safestack.gate.framework import Framework
from safestack.gate.scorecard import Scorecard, assess_model
from safestack.redteam.metrics import Rate
from safestack.store import Store, StoredEvidence


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CardNumber(_Record):
    """One number in the card and where it came from."""

    label: str
    stage: str
    value: float | None
    low: float | None
    high: float | None
    n: int | None
    evidence: str
    source: str

    def text(self) -> str:
        if self.value is None:
            return "n/a"
        interval = (
            f" [{self.low:.1%}, {self.high:.1%}]"
            if self.low is not None and self.high is not None
            else ""
        )
        count = f" (n={self.n})" if self.n is not None else ""
        return f"{self.value:.1%}{interval}{count}"


class EvidenceSection(_Record):
    id: str
    kind: str
    stage: str
    source: str
    content_hash: str
    collected_at: datetime
    title: str
    numbers: list[CardNumber]


class SystemCard(_Record):
    model: str
    version: str
    framework: str
    framework_name: str
    framework_source: str
    scorecard: Scorecard
    scorecard_hash: str
    evidence: list[EvidenceSection]
    trail: list[LogEntry]
    generated_at: datetime


def _rate_number(label: str, stage: str, rate: dict[str, Any], item: StoredEvidence) -> CardNumber:
    r = Rate.model_validate(rate)
    return CardNumber(
        label=label,
        stage=stage,
        value=r.rate,
        low=r.low,
        high=r.high,
        n=r.n,
        evidence=item.id,
        source=item.source,
    )


def _section(item: StoredEvidence) -> EvidenceSection:
    p = item.payload
    numbers: list[CardNumber] = []
    if item.kind == "redteam-run":
        metrics = p["metrics"]
        summary = metrics["summaries"][0]
        title = f"Red-team run {p['run_id']}, campaign {p['campaign']}, target {p['target']}"
        numbers.append(_rate_number("ASR, all attacks", item.stage, summary["asr"], item))
        numbers.append(_rate_number("ASR, baseline", item.stage, summary["baseline_asr"], item))
        numbers.append(
            _rate_number("over-refusal (benign refused)", item.stage, summary["over_refusal"], item)
        )
        for row in metrics["asr"]:
            if row["by"] == "category":
                numbers.append(_rate_number(f"ASR, {row['key']}", item.stage, row["asr"], item))
        for row in metrics["defect_rates"]:
            if row["category"] == "all":
                label = f"DR-{row['threshold']} (severity >= {row['threshold']})"
                numbers.append(_rate_number(label, item.stage, row["rate"], item))
    elif item.kind in ("inspect-log", "json-result"):
        title = f"Imported evaluation {p['task']} ({item.kind}, {item.source})"
        for s in p["scores"]:
            numbers.append(
                CardNumber(
                    label=s["metric"],
                    stage=item.stage,
                    value=s["value"],
                    low=s["low"],
                    high=s["high"],
                    n=s["n"],
                    evidence=item.id,
                    source=item.source,
                )
            )
    else:
        verdict = "accepted" if p["accepted"] else "not accepted"
        title = f"Expert finding by {p['author']}: {p['category']}, severity {p['severity']} ({verdict})"
    return EvidenceSection(
        id=item.id,
        kind=item.kind,
        stage=item.stage,
        source=item.source,
        content_hash=item.content_hash,
        collected_at=item.collected_at,
        title=title,
        numbers=numbers,
    )


def build_card(
    store: Store, framework: Framework, model: str, version: str | None = None
) -> SystemCard:
    entries = read_log(store)
    verification = verify_entries(entries, store.gate.signers())
    if not verification.ok:
        raise GateError(f"the decision log does not verify: {verification.problem}")
    scorecard = assess_model(store, framework, model, version)
    digest = scorecard.digest()
    signed = [
        e
        for e in entries
        if e.kind in ("review", "decision")
        and e.model == scorecard.model
        and e.version == scorecard.version
        and e.framework == framework.ref
    ]
    if not signed:
        raise GateError(
            f"nothing about {scorecard.model_version_id} under {framework.ref} is signed yet; a "
            "card is built from a reviewed scorecard only (`safestack gate review`)"
        )
    if signed[-1].scorecard_hash != digest:
        raise GateError(
            f"the evidence changed since {signed[-1].label()} signed scorecard "
            f"{signed[-1].scorecard_hash[:12]} (now {digest[:12]}); review the new scorecard "
            "before writing a card"
        )
    used = {e.id for e in scorecard.evidence}
    items = [e for e in store.gate.evidence(scorecard.model_version_id) if e.id in used]
    related = {e.seq for e in signed}
    trail = [e for e in entries if e.seq in related or e.refers_to in related]
    return SystemCard(
        model=scorecard.model,
        version=scorecard.version,
        framework=framework.ref,
        framework_name=framework.name,
        framework_source=f"{framework.source.publisher}, {framework.source.title} ({framework.source.published}), {framework.source.url}",
        scorecard=scorecard,
        scorecard_hash=digest,
        evidence=[_section(i) for i in items],
        trail=trail,
        generated_at=datetime.now(UTC),
    )


def _anchor(evidence_id: str) -> str:
    return f"#{evidence_id}"


def to_markdown(card: SystemCard) -> str:
    """The card in Markdown, with Hugging Face `model-index` metadata as its front matter."""
    sc = card.scorecard
    out = ["---", yaml.safe_dump(model_index(card), sort_keys=False).strip(), "---", ""]
    out += [
        f"# System card: {card.model} {card.version}",
        "",
        f"Assessed under **{card.framework_name}** ({card.framework}; source: {card.framework_source}). "
        f"Scorecard sha256 `{card.scorecard_hash}`; generated {card.generated_at:%Y-%m-%d %H:%M} UTC "
        "from signed evidence only.",
        "",
        "## Scorecard",
        "",
        "| category | pre-mitigation | post-mitigation |",
        "|---|---|---|",
    ]
    for c in sc.categories:
        name = c.name if c.tracked else f"{c.name} (not tracked)"
        out.append(f"| {name} | {c.pre.text()} | {c.post.text()} |")
    out.append(
        f"| **overall** | **{sc.overall_pre or 'not assessed'}** | **{sc.overall_post or 'not assessed'}** |"
    )
    out += [
        "",
        f"- deploy rule `{sc.deploy.rule}`: {'holds' if sc.deploy.holds else 'fails'} ({sc.deploy.reason})",
        f"- develop rule `{sc.develop.rule}`: {'holds' if sc.develop.holds else 'fails'} ({sc.develop.reason})",
        "",
        "## Evidence",
        "",
    ]
    for section in card.evidence:
        out += [
            f'<a id="{section.id}"></a>',
            f"### {section.id}: {section.title}",
            "",
            f"{section.kind}, {section.stage}-mitigation, collected {section.collected_at:%Y-%m-%d %H:%M} UTC, "
            f"sha256 `{section.content_hash}`.",
            "",
        ]
        for number in section.numbers:
            out.append(f"- {number.label}: [{number.text()}]({_anchor(number.evidence)})")
        out.append("")
    out += ["## Decision trail", ""]
    for e in card.trail:
        what = e.recommendation or e.outcome or f"about entry {e.refers_to}"
        out.append(
            f"- #{e.seq} {e.time:%Y-%m-%d %H:%M} UTC, {e.kind} by {e.author} ({e.role}): "
            f"**{what}**. {e.reasons}"
            + (f" Conditions: {'; '.join(e.conditions)}." if e.conditions else "")
            + "".join(f" Dissent, {d.person}: {d.reason}." for d in e.dissent)
            + f" (signed, key {e.key_id}, entry sha256 `{e.entry_hash[:16]}`)"
        )
    return "\n".join(out) + "\n"


def model_index(card: SystemCard) -> dict[str, Any]:
    """Hugging Face model-card metadata: one `model-index` result per pinned evaluation."""
    results = []
    for section in card.evidence:
        metrics = [
            {
                "type": n.label.split(",")[0].lower().replace(" ", "_"),
                "name": f"{n.label} ({n.stage}-mitigation)",
                "value": n.value,
                "verified": False,
            }
            for n in section.numbers
            if n.value is not None
        ]
        if metrics:
            results.append(
                {
                    "task": {"type": "text-generation", "name": section.title},
                    "dataset": {"type": section.kind, "name": section.source},
                    "metrics": metrics,
                    "source": {"name": "safestack gate", "url": f"{_anchor(section.id)}"},
                }
            )
    return {"model-index": [{"name": f"{card.model}-{card.version}", "results": results}]}


def cyclonedx_bom(card: SystemCard, items: list[StoredEvidence]) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM: the model (with its model card's metrics) and the data sets used."""
    model_ref = f"model:{card.model}@{card.version}"
    metrics = [
        {
            "type": n.label,
            "value": "n/a" if n.value is None else f"{n.value:.6f}",
            "slice": f"{n.stage}-mitigation; evidence {n.evidence}",
            **(
                {
                    "confidenceInterval": {
                        "lowerBound": f"{n.low:.6f}",
                        "upperBound": f"{n.high:.6f}",
                    }
                }
                if n.low is not None and n.high is not None
                else {}
            ),
        }
        for section in card.evidence
        for n in section.numbers
    ]
    datasets: dict[str, dict[str, Any]] = {}
    for item in items:
        names = item.payload.get("behaviour_sources") or []
        if item.payload.get("dataset"):
            names = [item.payload["dataset"]]
        for name in names:
            if name:
                datasets.setdefault(
                    name,
                    {
                        "type": "data",
                        "bom-ref": f"data:{name}",
                        "name": str(name),
                        "data": [{"type": "dataset", "name": str(name)}],
                    },
                )
    sc = card.scorecard
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": card.generated_at.isoformat(),
            "tools": {
                "components": [{"type": "application", "name": "safestack", "version": __version__}]
            },
            "component": {
                "type": "machine-learning-model",
                "bom-ref": model_ref,
                "name": card.model,
                "version": card.version,
                "modelCard": {
                    "bom-ref": f"{model_ref}:card",
                    "modelParameters": {
                        "task": "text-generation",
                        "datasets": [{"ref": ref["bom-ref"]} for ref in datasets.values()],
                    },
                    "quantitativeAnalysis": {"performanceMetrics": metrics},
                    "considerations": {
                        "ethicalConsiderations": [
                            {
                                "name": f"{c.name}: pre {c.pre.text()}, post {c.post.text()}",
                                "mitigationStrategy": f"{card.framework} deploy rule '{sc.deploy.rule}'",
                            }
                            for c in sc.categories
                        ]
                    },
                },
                "properties": [
                    {"name": "safestack:gate:framework", "value": card.framework},
                    {"name": "safestack:gate:scorecard-sha256", "value": card.scorecard_hash},
                    {
                        "name": "safestack:gate:overall-post",
                        "value": sc.overall_post or "not assessed",
                    },
                ],
            },
        },
        "components": list(datasets.values()),
        "dependencies": [
            {"ref": model_ref, "dependsOn": [d["bom-ref"] for d in datasets.values()]}
        ],
    }


def to_html(card: SystemCard) -> str:
    text = resources.files("safestack.gate").joinpath("assets", "card.html.j2").read_text("utf-8")
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        text
    )
    return template.render(card=card, sc=card.scorecard)


@dataclass(frozen=True, slots=True)
class CardFiles:
    html: Path
    markdown: Path
    bom: Path
    json: Path
    card: SystemCard

    def paths(self) -> list[Path]:
        return [self.html, self.markdown, self.bom, self.json]


def write_card(
    store: Store, framework: Framework, model: str, version: str | None, out_dir: Path | str
) -> CardFiles:
    """Write card.html, README.md (model-index front matter), bom.cdx.json and card.json."""
    import json

    card = build_card(store, framework, model, version)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = [
        e
        for e in store.gate.evidence(card.scorecard.model_version_id)
        if e.id in {s.id for s in card.evidence}
    ]
    files = CardFiles(
        out / "card.html", out / "README.md", out / "bom.cdx.json", out / "card.json", card
    )
    files.html.write_text(to_html(card), "utf-8")
    files.markdown.write_text(to_markdown(card), "utf-8")
    files.bom.write_text(json.dumps(cyclonedx_bom(card, items), indent=2), "utf-8")
    files.json.write_text(card.model_dump_json(indent=2), "utf-8")
    return files
