"""The scorecard: per category, the pre- and post-mitigation level from pinned evidence.

`assess` evaluates every threshold twice, on point estimates and at the worst end of each 95%
interval: the first gives the level, the second what the evidence cannot rule out. A threshold
over missing evidence leaves the category "not assessed" (never the floor), stale evidence is
named, the overall level is the highest tracked category, and the framework's rules are evaluated
mechanically. The scorecard's hash is what reviews and decisions sign.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.gate.evidence import (
    STAGES,
    active_evidence,
    canonical,
    get_model_version,
    sha256,
    verify_evidence,
)
from safestack.gate.framework import Framework
from safestack.gate.query import Call, Measured, Reading, evaluate, rule_holds
from safestack.records import SCHEMA_VERSION
from safestack.redteam.metrics import Rate
from safestack.store import Store, StoredEvidence, StoredModelVersion

Status = Literal["assessed", "not assessed", "not scored"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MetricReading(_Record):
    """One metric read for a threshold: its value and interval, and the evidence behind it."""

    call: str
    value: float | bool | None
    low: float | None = None
    high: float | None = None
    evidence: list[str]


class StageScore(_Record):
    status: Status
    level: str | None = Field(description="Highest level whose threshold holds on point estimates.")
    cannot_rule_out: str | None = Field(
        description="A higher level the intervals reach: 'cannot rule out <level>'."
    )
    effective: str | None = Field(description="What the rule uses; None when not assessed.")
    missing: list[str] = Field(default_factory=list, description="Metrics with no evidence.")
    readings: list[MetricReading] = Field(default_factory=list)

    def text(self) -> str:
        if self.status != "assessed":
            return self.status
        extra = f" (cannot rule out {self.cannot_rule_out})" if self.cannot_rule_out else ""
        return f"{self.level}{extra}"


class CategoryScore(_Record):
    id: str
    name: str
    tracked: bool
    pre: StageScore
    post: StageScore


class EvidenceSummary(_Record):
    id: str
    kind: str
    stage: str
    source: str
    content_hash: str
    collected_at: datetime
    stale: str | None = Field(description="Why it is stale, or None.")


class RuleResult(_Record):
    rule: str
    holds: bool
    reason: str


class Scorecard(_Record):
    schema_version: int = SCHEMA_VERSION
    framework: str
    framework_name: str
    framework_digest: str
    model: str
    version: str
    model_version_id: str
    categories: list[CategoryScore]
    overall_pre: str | None
    overall_post: str | None
    deploy: RuleResult
    develop: RuleResult
    evidence: list[EvidenceSummary]
    stale: list[str]
    assessed_at: datetime

    def digest(self) -> str:
        """sha256 of everything but the time it was computed: what reviews and decisions sign."""
        return sha256(canonical(self.model_dump(mode="json", exclude={"assessed_at"})))


class EvidenceView:
    """The query evaluator's view of a model version's pinned evidence (gate.query.Evidence)."""

    def __init__(self, items: list[StoredEvidence]) -> None:
        self.items = items

    def _runs(self, call: Call, stage: str) -> list[StoredEvidence]:
        campaign = call.arg("campaign")
        return [
            e
            for e in self.items
            if e.kind == "redteam-run"
            and e.stage == stage
            and (campaign is None or e.payload["campaign"] == campaign.value)
        ]

    def measure(self, call: Call, stage: str) -> Measured | None:
        target = call.arg("target")
        stage = str(target.value) if target is not None else stage
        if call.metric == "score":
            return self._score(call, stage)
        runs = self._runs(call, stage)
        rates: list[tuple[Rate, str]] = []
        for item in runs:
            rate = _rate_of(call, item.payload["metrics"])
            if rate is not None:
                rates.append((rate, item.id))
        successes = sum(r.successes for r, _ in rates)
        n = sum(r.n for r, _ in rates)
        if n == 0:
            return None
        pooled = Rate.of(successes, n)
        assert pooled.rate is not None and pooled.low is not None and pooled.high is not None
        return Measured(pooled.rate, pooled.low, pooled.high, tuple(i for r, i in rates if r.n))

    def _score(self, call: Call, stage: str) -> Measured | None:
        task = call.arg("task")
        metric = call.arg("metric")
        found = [
            e
            for e in self.items
            if e.kind in ("inspect-log", "json-result")
            and e.stage == stage
            and task is not None
            and e.payload["task"] == task.value
        ]
        for item in sorted(found, key=lambda e: e.collected_at, reverse=True):
            scores = item.payload["scores"]
            chosen = (
                [
                    s
                    for s in scores
                    if s["metric"] == metric.value or s["metric"].endswith(f"/{metric.value}")
                ]
                if metric is not None
                else scores[:1]
            )
            if chosen:
                s = chosen[0]
                low = s["low"] if s["low"] is not None else s["value"]
                high = s["high"] if s["high"] is not None else s["value"]
                return Measured(s["value"], low, high, (item.id,))
        return None

    def holds(self, call: Call, stage: str) -> tuple[bool, tuple[str, ...]] | None:
        target = call.arg("target")
        stage = str(target.value) if target is not None else stage
        matching = []
        for item in self.items:
            if item.kind != "finding" or item.stage != stage:
                continue
            f = item.payload
            ok = True
            for arg in call.args:
                if arg.name == "target":
                    continue
                if arg.name == "severity":
                    ok &= _cmp(f["severity"], arg.op, float(arg.value))
                else:
                    ok &= f[arg.name] == arg.value
            if ok:
                matching.append(item.id)
        return bool(matching), tuple(matching)


def _cmp(a: float, op: str, b: float) -> bool:
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "=": a == b}[op]


def _rate_of(call: Call, metrics: dict[str, object]) -> Rate | None:
    category = call.arg("category")
    attack = call.arg("attack")
    if call.metric == "asr":
        if category is None and attack is None:
            summaries = metrics["summaries"]
            assert isinstance(summaries, list)
            return Rate.model_validate(summaries[0]["asr"]) if summaries else None
        by, key = ("category", category.value) if category is not None else ("attack", attack.value)  # type: ignore[union-attr]
        rows = metrics["asr"]
        assert isinstance(rows, list)
        row = next((r for r in rows if r["by"] == by and r["key"] == key), None)
        return None if row is None else Rate.model_validate(row["asr"])
    if call.metric == "dr":
        at = call.arg("at")
        assert at is not None
        wanted = category.value if category is not None else "all"
        rows = metrics["defect_rates"]
        assert isinstance(rows, list)
        row = next(
            (r for r in rows if r["category"] == wanted and r["threshold"] == int(float(at.value))),
            None,
        )
        return None if row is None else Rate.model_validate(row["rate"])
    if call.metric == "over_refusal":
        summaries = metrics["summaries"]
        assert isinstance(summaries, list)
        return Rate.model_validate(summaries[0]["over_refusal"]) if summaries else None
    return None


def _reading(r: Reading) -> MetricReading:
    if isinstance(r.value, Measured):
        return MetricReading(
            call=r.call,
            value=r.value.value,
            low=r.value.low,
            high=r.value.high,
            evidence=list(r.evidence),
        )
    return MetricReading(call=r.call, value=r.value, evidence=list(r.evidence))


def _score_stage(framework: Framework, category: str, view: EvidenceView, stage: str) -> StageScore:
    spec = framework.categories[category]
    if not spec.thresholds:
        return StageScore(status="not scored", level=None, cannot_rule_out=None, effective=None)
    names = framework.level_names
    readings: list[Reading] = []
    point: dict[str, bool | None] = {}
    bound: dict[str, bool | None] = {}
    for level in names[1:]:
        if level not in spec.thresholds:
            continue
        node = framework.threshold(category, level)
        point[level] = evaluate(node, view, stage, "point", readings)
        bound[level] = evaluate(node, view, stage, "bound")
    reached = [lv for lv in point if point[lv]]
    level = reached[-1] if reached else names[0]
    rank = names.index(level)
    above = [lv for lv in point if names.index(lv) > rank]
    unique: dict[tuple[str, str], MetricReading] = {}
    for r in readings:
        unique.setdefault((r.call, r.stage), _reading(r))
    missing = sorted({r.call for r in readings if r.value is None})
    if any(point[lv] is None for lv in above):
        return StageScore(
            status="not assessed",
            level=None,
            cannot_rule_out=None,
            effective=None,
            missing=missing,
            readings=list(unique.values()),
        )
    possible = [lv for lv in above if bound[lv]]
    cannot = possible[-1] if possible else None
    effective = cannot if framework.precautionary and cannot else level
    return StageScore(
        status="assessed",
        level=level,
        cannot_rule_out=cannot,
        effective=effective,
        missing=missing,
        readings=list(unique.values()),
    )


def _stale(item: StoredEvidence, mv: StoredModelVersion, framework: Framework) -> str | None:
    if item.collected_at < mv.created_at:
        return (
            f"collected {item.collected_at:%Y-%m-%d %H:%M} UTC, before model version {mv.id} "
            f"was built ({mv.created_at:%Y-%m-%d %H:%M} UTC)"
        )
    effective = datetime(
        framework.effective.year, framework.effective.month, framework.effective.day, tzinfo=UTC
    )
    if item.collected_at < effective:
        return f"collected {item.collected_at:%Y-%m-%d}, before {framework.ref} took effect ({framework.effective})"
    return None


def _overall(framework: Framework, scores: list[CategoryScore], stage: str) -> str | None:
    names = framework.level_names
    tracked = [getattr(c, stage) for c in scores if c.tracked]
    if any(s.status != "assessed" for s in tracked):
        return None
    return max((s.effective for s in tracked), key=names.index, default=names[0])


def _rule(
    framework: Framework,
    name: str,
    pre: str | None,
    post: str | None,
    scores: list[CategoryScore],
    stale: list[str],
) -> RuleResult:
    text = getattr(framework.rules, name)
    result = rule_holds(framework.rule(name), framework.level_names, {"pre": pre, "post": post})
    if result is None:
        missing = [
            f"{c.id} ({stage})"
            for c in scores
            if c.tracked
            for stage in STAGES
            if getattr(c, stage).status != "assessed"
        ]
        return RuleResult(
            rule=text,
            holds=False,
            reason=f"not assessed: {', '.join(missing)}; missing evidence fails the rule",
        )
    if stale:
        return RuleResult(
            rule=text, holds=False, reason=f"stale evidence: {', '.join(stale)}; collect it again"
        )
    return RuleResult(
        rule=text,
        holds=result,
        reason=f"pre={pre}, post={post}: the rule {'holds' if result else 'does not hold'}",
    )


def assess(framework: Framework, mv: StoredModelVersion, items: list[StoredEvidence]) -> Scorecard:
    """Score a model version under a framework from its (already verified, active) evidence."""
    view = EvidenceView(items)
    categories = [
        CategoryScore(
            id=key,
            name=spec.name,
            tracked=spec.tracked,
            pre=_score_stage(framework, key, view, "pre"),
            post=_score_stage(framework, key, view, "post"),
        )
        for key, spec in framework.categories.items()
    ]
    summaries = [
        EvidenceSummary(
            id=e.id,
            kind=e.kind,
            stage=e.stage,
            source=e.source,
            content_hash=e.content_hash,
            collected_at=e.collected_at,
            stale=_stale(e, mv, framework),
        )
        for e in items
    ]
    stale = [f"{s.id} ({s.source}): {s.stale}" for s in summaries if s.stale]
    pre, post = _overall(framework, categories, "pre"), _overall(framework, categories, "post")
    return Scorecard(
        framework=framework.ref,
        framework_name=framework.name,
        framework_digest=framework.digest(),
        model=mv.model,
        version=mv.version,
        model_version_id=mv.id,
        categories=categories,
        overall_pre=pre,
        overall_post=post,
        deploy=_rule(framework, "deploy", pre, post, categories, stale),
        develop=_rule(framework, "develop", pre, post, categories, stale),
        evidence=summaries,
        stale=stale,
        assessed_at=datetime.now(UTC),
    )


def assess_model(
    store: Store, framework: Framework, model: str, version: str | None = None
) -> Scorecard:
    """Load a model version's active evidence, verify every hash, and assess it."""
    mv = get_model_version(store, model, version)
    items = active_evidence(store.gate.evidence(mv.id))
    verify_evidence(store, items)
    return assess(framework, mv, items)
