"""Evidence: what a scorecard is computed from, each piece pinned by id and content hash.

A model version names its pre- and post-mitigation targets; `pin_run` pins a stored red-team run's
attempts on each (metrics from `redteam.metrics`, hash of the attempts); `import_result` reads an
Inspect eval log (its JSON format, read as JSON) or a plain JSON result; `add_finding` records an
expert finding. `verify_evidence` re-hashes every item and fails naming the one that changed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import GateError
from safestack.records import SCHEMA_VERSION, Attempt
from safestack.redteam.metrics import compute_metrics
from safestack.stats import Z95, wilson_interval
from safestack.store import Store, StoredEvidence, StoredModelVersion

Stage = Literal["pre", "post"]
STAGES: tuple[Stage, ...] = ("pre", "post")
KINDS = ("redteam-run", "inspect-log", "json-result", "finding")


def canonical(value: Any) -> bytes:
    """The JSON bytes every hash in the gate is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attempts_digest(attempts: list[Attempt]) -> str:
    """sha256 over the attempts as stored (ordered by id): any rescoring or edit changes it."""
    records = sorted((a.model_dump(mode="json") for a in attempts), key=lambda r: r["id"])
    return sha256(canonical(records))


def record_hash(evidence: StoredEvidence | dict[str, Any]) -> str:
    data = evidence.model_dump(mode="json") if isinstance(evidence, BaseModel) else dict(evidence)
    data.pop("record_hash", None)
    for key in ("collected_at", "recorded_at"):
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    data["collected_at"] = _iso(data["collected_at"])
    data["recorded_at"] = _iso(data["recorded_at"])
    return sha256(canonical(data))


def _iso(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat()


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- model versions ---------------------------------------------------------------------------


def model_version_id(model: str, version: str) -> str:
    return f"{model}@{version}"


def register_model_version(
    store: Store,
    model: str,
    version: str,
    *,
    pre_target: str,
    post_target: str,
    description: str = "",
    built_at: datetime | None = None,
) -> StoredModelVersion:
    """Register a model version; evidence collected before `built_at` (default now) is stale."""
    if not model.strip() or not version.strip():
        raise GateError("a model version needs a model name and a version")
    if pre_target == post_target:
        raise GateError(
            f"the pre- and post-mitigation targets must differ (both are '{pre_target}'): the "
            "scorecard compares the raw model with its mitigated twin"
        )
    record = StoredModelVersion(
        id=model_version_id(model, version),
        model=model,
        version=version,
        pre_target=pre_target,
        post_target=post_target,
        description=description,
        created_at=_aware(built_at or datetime.now(UTC)),
    )
    store.gate.add_model_version(record)
    return record


def get_model_version(store: Store, model: str, version: str | None) -> StoredModelVersion:
    """The named version, or the newest registered one when `version` is None."""
    if version is None:
        versions = store.gate.model_versions(model)
        if not versions:
            raise GateError(
                f"model '{model}' has no registered version; run `safestack gate model add "
                f"{model} --version V --pre TARGET --post TARGET`"
            )
        return versions[0]
    found = store.gate.model_version(model, version)
    if found is None:
        raise GateError(
            f"model version '{model_version_id(model, version)}' is not registered; see "
            "`safestack gate model list`"
        )
    return found


# --- pinning ----------------------------------------------------------------------------------


def _evidence_id(
    mv: StoredModelVersion, kind: str, stage: str, source: str, content_hash: str
) -> str:
    return "ev-" + sha256(f"{mv.id}|{kind}|{stage}|{source}|{content_hash}".encode())[:12]


def _pin(
    store: Store,
    mv: StoredModelVersion,
    *,
    kind: str,
    stage: Stage,
    source: str,
    content_hash: str,
    collected_at: datetime,
    payload: dict[str, Any],
) -> StoredEvidence:
    evidence_id = _evidence_id(mv, kind, stage, source, content_hash)
    if any(e.id == evidence_id for e in store.gate.evidence(mv.id)):
        raise GateError(f"evidence {evidence_id} ({kind} {source}, {stage}) is already pinned")
    draft: dict[str, Any] = {
        "id": evidence_id,
        "model_version_id": mv.id,
        "kind": kind,
        "stage": stage,
        "source": source,
        "content_hash": content_hash,
        "collected_at": _aware(collected_at),
        "recorded_at": datetime.now(UTC),
        "payload": json.loads(canonical(payload)),
        "record_hash": "",
        "schema_version": SCHEMA_VERSION,
    }
    draft["record_hash"] = record_hash(draft)
    evidence = StoredEvidence(**draft)
    store.gate.add_evidence(evidence)
    return evidence


def pin_run(store: Store, mv: StoredModelVersion, run_id: str) -> list[StoredEvidence]:
    """Pin a stored red-team run: one evidence item per target of the model version it covers."""
    run = store.runs.get(run_id)
    if run is None:
        raise GateError(f"no stored red-team run '{run_id}'; see `safestack redteam runs`")
    pinned = []
    unchanged = []
    existing = {e.id for e in store.gate.evidence(mv.id)}
    for stage, target in (("pre", mv.pre_target), ("post", mv.post_target)):
        attempts = store.runs.attempts(run_id, target=target)
        if not attempts:
            continue
        digest = attempts_digest(attempts)
        source = f"run:{run_id}:{target}"
        if _evidence_id(mv, "redteam-run", stage, source, digest) in existing:
            unchanged.append(source)
            continue
        metrics = compute_metrics(attempts)
        behaviours = [
            b.get("source") for b in run.campaign.get("behaviours", []) if isinstance(b, dict)
        ]
        payload = {
            "run_id": run_id,
            "campaign": run.name,
            "campaign_hash": run.campaign_hash,
            "target": target,
            "target_model": attempts[0].target_model,
            "attempts": len(attempts),
            "behaviour_sources": behaviours,
            "metrics": metrics.model_dump(mode="json"),
        }
        collected = max(_aware(a.started_at) for a in attempts)
        pinned.append(
            _pin(
                store,
                mv,
                kind="redteam-run",
                stage=stage,  # type: ignore[arg-type]
                source=source,
                content_hash=digest,
                collected_at=collected,
                payload=payload,
            )
        )
    if not pinned and unchanged:
        raise GateError(
            f"run '{run_id}' is already pinned to {mv.id} unchanged ({', '.join(unchanged)})"
        )
    if not pinned:
        stored = sorted({a.target for a in store.runs.attempts(run_id)})
        raise GateError(
            f"run '{run_id}' has no attempts on '{mv.pre_target}' or '{mv.post_target}' (the "
            f"targets of {mv.id}); its targets are: {', '.join(stored) or 'none'}"
        )
    return pinned


class ImportedScore(BaseModel):
    """One metric of an imported evaluation, with its 95% interval when the source gives one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = None


class ImportedResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["inspect-log", "json-result"]
    task: str
    model: str | None = None
    created: datetime
    scores: list[ImportedScore] = Field(min_length=1)
    dataset: str | None = None


def _interval(
    value: float, stderr: float | None, n: int | None
) -> tuple[float | None, float | None]:
    if stderr is not None:
        return value - Z95 * stderr, value + Z95 * stderr
    if n and 0.0 <= value <= 1.0:
        return wilson_interval(round(value * n), n)
    return None, None


def read_inspect_log(path: Path, data: dict[str, Any]) -> ImportedResult:
    """An Inspect (`inspect-ai`) eval log in its JSON format: `eval`, `results.scores[].metrics`."""
    where = f"{path}: Inspect log"
    if not isinstance(data.get("eval"), dict):
        raise GateError(f"{where}: no 'eval' object; is this an Inspect .json log?")
    status = data.get("status")
    if status != "success":
        raise GateError(f"{where}: status is {status!r}, not 'success'; only finished evals count")
    eval_ = data["eval"]
    results = data.get("results")
    if not isinstance(results, dict) or not isinstance(results.get("scores"), list):
        raise GateError(f"{where}: no results.scores list")
    n = results.get("completed_samples") or results.get("total_samples")
    scores = []
    for index, scorer in enumerate(results["scores"]):
        metrics = scorer.get("metrics") if isinstance(scorer, dict) else None
        if not isinstance(metrics, dict):
            raise GateError(f"{where}: results.scores[{index}].metrics is missing")
        stderr = (
            metrics.get("stderr", {}).get("value")
            if isinstance(metrics.get("stderr"), dict)
            else None
        )
        for name, metric in metrics.items():
            if name == "stderr" or not isinstance(metric, dict):
                continue
            value = metric.get("value")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise GateError(
                    f"{where}: results.scores[{index}].metrics.{name}.value is not a number"
                )
            low, high = _interval(float(value), stderr if name in ("accuracy", "mean") else None, n)
            label = name if scorer.get("name") in (None, name) else f"{scorer['name']}/{name}"
            scores.append(ImportedScore(metric=label, value=float(value), low=low, high=high, n=n))
    if not scores:
        raise GateError(f"{where}: results.scores holds no numeric metric")
    dataset = (
        eval_.get("dataset", {}).get("name") if isinstance(eval_.get("dataset"), dict) else None
    )
    return ImportedResult(
        format="inspect-log",
        task=str(eval_.get("task", "")).split("/")[-1],
        model=eval_.get("model"),
        created=_created(where, eval_.get("created")),
        scores=scores,
        dataset=dataset,
    )


def read_json_result(path: Path, data: dict[str, Any]) -> ImportedResult:
    """A plain JSON result: {"task", "created", "model"?, "dataset"?, "metrics": {name: value or
    {"value", "n"?, "low"?, "high"?}}}; docs/gate.md shows one."""
    where = f"{path}: JSON result"
    for field in ("task", "created", "metrics"):
        if field not in data:
            raise GateError(f"{where}: required field '{field}' is missing")
    if not isinstance(data["metrics"], dict) or not data["metrics"]:
        raise GateError(f"{where}: 'metrics' must be a non-empty mapping of name -> value")
    scores = []
    for name, raw in data["metrics"].items():
        entry = raw if isinstance(raw, dict) else {"value": raw}
        value = entry.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise GateError(f"{where}: metrics.{name}.value must be a number, got {value!r}")
        n = entry.get("n")
        low, high = entry.get("low"), entry.get("high")
        if low is None and high is None:
            low, high = _interval(float(value), entry.get("stderr"), n)
        scores.append(ImportedScore(metric=name, value=float(value), low=low, high=high, n=n))
    return ImportedResult(
        format="json-result",
        task=str(data["task"]),
        model=data.get("model"),
        created=_created(where, data["created"]),
        scores=scores,
        dataset=data.get("dataset"),
    )


def _created(where: str, value: Any) -> datetime:
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        raise GateError(f"{where}: 'created' must be an ISO 8601 time, got {value!r}") from None


def import_result(store: Store, mv: StoredModelVersion, path: Path, stage: Stage) -> StoredEvidence:
    """Pin an Inspect eval log (.json) or a plain JSON result file to a model version's stage."""
    if stage not in STAGES:
        raise GateError(f"stage must be 'pre' or 'post', got {stage!r}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GateError(f"{path}: evaluation result file not found") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GateError(
            f"{path}: not JSON ({exc}); Inspect's binary .eval logs must be converted: "
            "inspect log convert --to json"
        ) from None
    if not isinstance(data, dict):
        raise GateError(f"{path}: expected a JSON object")
    result = read_inspect_log(path, data) if "eval" in data else read_json_result(path, data)
    return _pin(
        store,
        mv,
        kind=result.format,
        stage=stage,
        source=f"file:{path.name}",
        content_hash=sha256(raw),
        collected_at=result.created,
        payload=result.model_dump(mode="json"),
    )


class Finding(BaseModel):
    """An expert's finding (console or red-team review): category, severity 0-7, accepted or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    severity: int = Field(ge=0, le=7)
    accepted: bool
    summary: str = Field(min_length=1)
    author: str = Field(min_length=1)


def add_finding(
    store: Store, mv: StoredModelVersion, finding: Finding, stage: Stage
) -> StoredEvidence:
    from safestack.policy import default_policy

    known = default_policy().categories
    if finding.category not in known:
        raise GateError(
            f"finding category '{finding.category}' is not a policy category; use one of "
            f"{', '.join(known)}"
        )
    payload = finding.model_dump(mode="json")
    now = datetime.now(UTC)
    return _pin(
        store,
        mv,
        kind="finding",
        stage=stage,
        source=f"finding:{finding.author}:{now.isoformat()}",
        content_hash=sha256(canonical(payload)),
        collected_at=now,
        payload=payload,
    )


# --- verifying --------------------------------------------------------------------------------


def active_evidence(items: list[StoredEvidence]) -> list[StoredEvidence]:
    """The newest pin of each (kind, stage, source): re-pinning a grown run supersedes the old pin."""
    latest: dict[tuple[str, str, str], StoredEvidence] = {}
    for item in items:
        latest[(item.kind, item.stage, item.source)] = item
    return sorted(latest.values(), key=lambda e: (e.recorded_at, e.id))


def verify_evidence(store: Store, items: list[StoredEvidence]) -> None:
    """Re-hash every item; the first that changed (row edited, run rescored) fails by name."""
    for item in items:
        if record_hash(item) != item.record_hash:
            raise GateError(
                f"evidence {item.id} ({item.source}): its stored record changed since it was "
                "pinned (record hash mismatch); pin the evidence again and re-assess"
            )
        if item.kind == "redteam-run":
            payload = item.payload
            attempts = store.runs.attempts(payload["run_id"], target=payload["target"])
            if not attempts:
                raise GateError(
                    f"evidence {item.id} ({item.source}): run '{payload['run_id']}' has no "
                    f"attempts on '{payload['target']}' any more; the evidence is missing"
                )
            current = attempts_digest(attempts)
            if current != item.content_hash:
                raise GateError(
                    f"evidence {item.id} ({item.source}): the run's attempts changed since they "
                    f"were pinned (hash {item.content_hash[:12]} -> {current[:12]}); run "
                    f"`safestack gate evidence add-run` again to pin the new results"
                )
        elif item.kind == "finding" and sha256(canonical(item.payload)) != item.content_hash:
            raise GateError(f"evidence {item.id} ({item.source}): content hash mismatch")
