"""Building a training set from stored red-team runs: findings → deduplicated prompts → chosen
answers (templates or a writer model) → SFT, preference and KTO rows, plus the retain set, split
into train and validation by behaviour.

Everything here is deterministic for the same runs, policy, writer and options: rows are ordered by
their hashes, phrasings and splits are fixed by the seed, and no row carries a timestamp, so the
same input gives the same content hash (the set's version).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from safestack.align.findings import Finding, RunAttempts, nothing_to_learn, select
from safestack.align.retain import (
    DEFAULT_HELDOUT,
    DEFAULT_RETAIN_RATIO,
    RETAIN_SOURCES,
    RetainCandidate,
    borderline_candidates,
    borderline_ref,
    chatterbot_candidates,
    choose_retain,
    load_heldout,
    run_candidates,
)
from safestack.align.rows import (
    KINDS,
    SPLITS,
    KtoRow,
    PreferenceRow,
    Provenance,
    Row,
    SftRow,
    Split,
    Turn,
    content_hash,
)
from safestack.align.writer import AnswerWriter, Progress, Rejected, Written
from safestack.errors import InputError
from safestack.policy import Policy

DEFAULT_VALIDATION_RATIO = 0.1


@dataclass(frozen=True)
class BuildOptions:
    retain_ratio: float = DEFAULT_RETAIN_RATIO
    validation_ratio: float = DEFAULT_VALIDATION_RATIO
    seed: int = 0
    heldout_sources: tuple[str, ...] = DEFAULT_HELDOUT
    retain_sources: tuple[str, ...] = RETAIN_SOURCES

    def __post_init__(self) -> None:
        if not self.retain_ratio >= 0:
            raise InputError(f"--retain-ratio must be 0 or more, got {self.retain_ratio}")
        if not 0 <= self.validation_ratio < 1:
            raise InputError(f"--validation-ratio must be in [0, 1), got {self.validation_ratio}")
        unknown = [s for s in self.retain_sources if s not in RETAIN_SOURCES]
        if unknown:
            raise InputError(
                f"--retain-source {', '.join(unknown)}: unknown; use {', '.join(RETAIN_SOURCES)}"
            )


@dataclass
class TrainingSet:
    """The rows by kind and split, with what they were built from and what was left out."""

    rows: dict[str, dict[Split, list[Row]]]
    inputs: dict[str, Any]
    counts: dict[str, Any]
    considered: dict[str, int]
    rejected: dict[str, int]
    languages: dict[str, int]
    categories: dict[str, int]
    findings: list[Finding] = field(default_factory=list)


def build_training_set(
    runs: Sequence[RunAttempts],
    policy: Policy,
    writer: AnswerWriter,
    options: BuildOptions = BuildOptions(),
    progress: Progress | None = None,
) -> TrainingSet:
    """The training set of `runs`; NothingToLearnError when no attack in them succeeded."""
    ordered = sorted(runs, key=lambda r: r.run.id)
    selection = select(ordered)
    if not selection.findings:
        raise nothing_to_learn(ordered, selection.counts)
    rejected: Counter[str] = Counter()
    unique, duplicates = deduplicate(selection.findings)
    rejected["duplicate-prompt"] = sum(len(d) for d in duplicates.values())

    answers = writer.write(unique, policy, options.seed, progress)
    kept: list[tuple[Finding, Written]] = []
    for item, answer in zip(unique, answers, strict=True):
        if isinstance(answer, Rejected):
            rejected[answer.reason] += 1
        else:
            kept.append((item, answer))

    groups = group_findings([item for item, _ in kept])
    splits = assign_splits(groups.values(), options.validation_ratio, options.seed)
    rows: dict[str, dict[Split, list[Row]]] = {kind: {s: [] for s in SPLITS} for kind in KINDS}
    for item, answer in kept:
        group = groups[item.attempt.id]
        split = splits[group]
        for kind, row in safety_rows(item, answer, policy, group, duplicates[item.attempt.id]):
            rows[kind][split].append(row)

    heldout = load_heldout(options.heldout_sources)
    wanted = round(options.retain_ratio * len(kept))
    sources = options.retain_sources if wanted else ()
    pools, pins = retain_pools(sources, selection.helpful)
    safety_prompts = {item.prompt_hash for item in unique}
    choice = choose_retain(pools, wanted, heldout, safety_prompts, options.seed)
    rejected.update(choice.rejected)
    retain_groups = {c.group for c in choice.chosen if c.group not in splits}
    splits.update(assign_splits(retain_groups, options.validation_ratio, options.seed))
    for candidate in choice.chosen:
        rows["retain"][splits[candidate.group]].append(retain_row(candidate, policy))

    for by_split in rows.values():
        for split in SPLITS:
            by_split[split].sort(
                key=lambda r: (r.provenance.prompt_hash, r.provenance.content_hash)
            )
    counts: dict[str, Any] = {
        kind: {split: len(rows[kind][split]) for split in SPLITS} for kind in KINDS
    }
    counts["retain_wanted"] = wanted
    counts["retain_available"] = choice.available
    sft_and_retain = [r for kind in ("sft", "retain") for s in SPLITS for r in rows[kind][s]]
    return TrainingSet(
        rows=rows,
        inputs={
            "runs": [
                {
                    "id": r.run.id,
                    "name": r.run.name,
                    "campaign_hash": r.run.campaign_hash,
                    "attempts": len(r.attempts),
                }
                for r in ordered
            ],
            "policy": policy.ref,
            "seed": options.seed,
            "retain_ratio": options.retain_ratio,
            "validation_ratio": options.validation_ratio,
            "writer": writer.ref,
            "heldout": heldout.pins,
            "retain_sources": pins,
        },
        counts=counts,
        considered=dict(sorted(selection.counts.items())),
        rejected={k: v for k, v in sorted(rejected.items()) if v},
        languages=dict(sorted(Counter(r.provenance.language for r in sft_and_retain).items())),
        categories=dict(sorted(Counter(r.provenance.category for r in sft_and_retain).items())),
        findings=selection.findings,
    )


def deduplicate(findings: Sequence[Finding]) -> tuple[list[Finding], dict[str, list[str]]]:
    """One finding per normalised prompt (the first), and the attempt ids merged into each."""
    first: dict[str, Finding] = {}
    merged: dict[str, list[str]] = {}
    for item in findings:
        kept = first.setdefault(item.prompt_hash, item)
        merged.setdefault(kept.attempt.id, [])
        if kept is not item:
            merged[kept.attempt.id].append(item.attempt.id)
    return list(first.values()), {k: sorted(v) for k, v in merged.items()}


def group_findings(findings: Sequence[Finding]) -> dict[str, str]:
    """attempt id → split group: findings sharing a behaviour or a request are one group (a
    union-find over their keys), named by the group's smallest key."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for item in findings:
        first, *rest = item.group_keys
        for key in rest:
            a, b = root(first), root(key)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {item.attempt.id: root(item.group_keys[0]) for item in findings}


def assign_splits(groups: Iterable[str], ratio: float, seed: int) -> dict[str, Split]:
    """Each group wholly in train or validation: groups ordered by a seeded hash, the first
    round(ratio × n) (at least one when there are two or more and ratio > 0) to validation."""
    unique = sorted(
        set(groups), key=lambda g: hashlib.sha256(f"{seed}:split:{g}".encode()).hexdigest()
    )
    count = round(len(unique) * ratio)
    if ratio > 0 and len(unique) >= 2:
        count = min(max(count, 1), len(unique) - 1)
    return {g: "validation" if i < count else "train" for i, g in enumerate(unique)}


def safety_rows(
    item: Finding, answer: Written, policy: Policy, group: str, duplicates: list[str]
) -> list[tuple[str, Row]]:
    """The SFT row, the preference pair and the two KTO rows of one finding."""
    attempt = item.attempt
    prompt = list(item.prompt)
    chosen = [Turn(role="assistant", content=answer.text)]
    rejected = [Turn(role="assistant", content=(attempt.response or "").strip())]

    def provenance(data: dict[str, Any]) -> Provenance:
        return Provenance(
            source="finding",
            run_id=attempt.run_id,
            attempt_id=attempt.id,
            target=attempt.target,
            target_model=attempt.target_model,
            probe_id=attempt.probe_id,
            attack=attempt.attack,
            converters=list(attempt.converters),
            behaviour_id=attempt.behaviour_id,
            behaviour_source=attempt.behaviour_source,
            category=attempt.category,
            language=item.language,
            answer_language=answer.language,
            scores=item.scores,
            policy=policy.ref,
            writer=answer.writer,
            template=answer.template,
            writer_scores=list(answer.scores),
            prompt_hash=item.prompt_hash,
            content_hash=content_hash(data),
            group=group,
            duplicates=duplicates,
        )

    def dump(value: list[Turn]) -> list[dict[str, str]]:
        return [turn.model_dump() for turn in value]

    sft = {"messages": dump(prompt + chosen)}
    pair = {"prompt": dump(prompt), "chosen": dump(chosen), "rejected": dump(rejected)}
    bad = {"prompt": dump(prompt), "completion": dump(rejected), "label": False}
    good = {"prompt": dump(prompt), "completion": dump(chosen), "label": True}
    return [
        ("sft", SftRow(messages=prompt + chosen, provenance=provenance(sft))),
        (
            "preference",
            PreferenceRow(
                prompt=prompt, chosen=chosen, rejected=rejected, provenance=provenance(pair)
            ),
        ),
        (
            "kto",
            KtoRow(prompt=prompt, completion=rejected, label=False, provenance=provenance(bad)),
        ),
        ("kto", KtoRow(prompt=prompt, completion=chosen, label=True, provenance=provenance(good))),
    ]


def retain_row(candidate: RetainCandidate, policy: Policy) -> SftRow:
    messages = [*candidate.prompt, Turn(role="assistant", content=candidate.answer)]
    data = {"messages": [turn.model_dump() for turn in messages]}
    attempt = candidate.finding.attempt if candidate.finding is not None else None
    scores = candidate.finding.scores if candidate.finding is not None else []
    return SftRow(
        messages=messages,
        provenance=Provenance(
            source=candidate.source,
            run_id=attempt.run_id if attempt else None,
            attempt_id=attempt.id if attempt else None,
            target=attempt.target if attempt else None,
            target_model=attempt.target_model if attempt else None,
            probe_id=attempt.probe_id if attempt else None,
            attack=attempt.attack if attempt else None,
            converters=list(attempt.converters) if attempt else [],
            behaviour_id=attempt.behaviour_id if attempt else None,
            behaviour_source=attempt.behaviour_source if attempt else None,
            category=candidate.category,
            language=candidate.language,
            answer_language=candidate.language,
            scores=list(scores),
            policy=policy.ref,
            writer=candidate.writer,
            prompt_hash=candidate.prompt_hash,
            content_hash=content_hash(data),
            group=candidate.group,
        ),
    )


def retain_pools(
    sources: Sequence[str], helpful: Sequence[Finding]
) -> tuple[list[tuple[str, list[RetainCandidate]]], dict[str, str]]:
    """The retain candidates of each requested source, in priority order, and their pins."""
    pools: list[tuple[str, list[RetainCandidate]]] = []
    pins: dict[str, str] = {}
    for name in RETAIN_SOURCES:
        if name not in sources:
            continue
        if name == "run":
            pools.append((name, run_candidates(helpful)))
            pins[name] = f"{len(helpful)} benign attempts answered helpfully"
        elif name == "borderline":
            pools.append((name, borderline_candidates()))
            pins[name] = borderline_ref()
        else:
            candidates, pin = chatterbot_candidates()
            pools.append((name, candidates))
            pins[name] = pin
    return pools, pins
