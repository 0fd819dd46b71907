"""Shared pieces of the gate tests: a SQLite store with red-team runs of known attempts, a model
version with a raw and a guarded target, and helpers to pin evidence and sign entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from safestack.gate.evidence import pin_run, register_model_version
from safestack.records import Attempt, AttemptStatus, Score
from safestack.store import Store, StoredModelVersion

RAW, GUARDED = "model-raw", "model-guarded"


def attempt(
    target: str,
    category: str,
    success: bool,
    *,
    run_id: str = "run-1",
    probe: str = "p",
    sample: int = 0,
    severity: int | None = None,
    benign: bool = False,
    refused: bool = False,
    started: datetime | None = None,
) -> Attempt:
    scores = []
    if benign:
        scores.append(
            Score(scorer="refusal", version="1", label="refused" if refused else "complied")
        )
    else:
        level = severity if severity is not None else (6 if success else 0)
        scores.append(
            Score(scorer="harm-severity", version="1", value=float(level), success=success)
        )
    return Attempt(
        run_id=run_id,
        campaign_hash="h",
        target=target,
        target_model=target,
        probe_id=probe,
        sample=sample,
        attack="baseline@1",
        category="benign" if benign else category,
        benign=benign,
        objective="objective",
        response="response",
        status=AttemptStatus.COMPLETE,
        scores=scores,
        started_at=started or datetime.now(UTC),
    )


def store_run(
    store: Store,
    run_id: str,
    counts: dict[str, dict[str, tuple[int, int]]],
    *,
    campaign: str = "uplift",
    started: datetime | None = None,
    benign: dict[str, tuple[int, int]] | None = None,
) -> list[Attempt]:
    """counts: target -> category -> (successes, n). benign: target -> (refused, n)."""
    store.runs.open(
        run_id,
        campaign,
        "h",
        {"name": campaign, "behaviours": [{"source": "test-set"}]},
        force=False,
    )
    attempts = []
    for target, by_category in counts.items():
        for category, (successes, n) in by_category.items():
            for i in range(n):
                attempts.append(
                    attempt(
                        target,
                        category,
                        i < successes,
                        run_id=run_id,
                        probe=f"{category}-{i}",
                        started=started,
                    )
                )
    for target, (refused, n) in (benign or {}).items():
        for i in range(n):
            attempts.append(
                attempt(
                    target,
                    "benign",
                    False,
                    run_id=run_id,
                    probe=f"benign-{i}",
                    benign=True,
                    refused=i < refused,
                    started=started,
                )
            )
    store.runs.record_attempts(attempts)
    return attempts


def model_version(
    store: Store, *, version: str = "1", built: datetime | None = None
) -> StoredModelVersion:
    return register_model_version(
        store,
        "model",
        version,
        pre_target=RAW,
        post_target=GUARDED,
        built_at=built or datetime.now(UTC) - timedelta(hours=1),
    )


def demo_evidence(
    store: Store, tmp_path: Path, *, raw_cyber: tuple[int, int] = (6, 10)
) -> StoredModelVersion:
    """A version with PF-Beta evidence in every tracked category: the raw model is unsafe, the
    guarded twin blocks almost everything; autonomy comes from an imported JSON result per stage."""
    mv = model_version(store)
    store_run(
        store,
        "run-1",
        {
            RAW: {"cyber": raw_cyber, "cbrn": (5, 10), "misinformation": (3, 10)},
            GUARDED: {"cyber": (0, 50), "cbrn": (0, 50), "misinformation": (0, 50)},
        },
        benign={RAW: (0, 5), GUARDED: (1, 5)},
    )
    pin_run(store, mv, "run-1")
    from safestack.gate.evidence import import_result

    for stage in ("pre", "post"):
        path = tmp_path / f"autonomy-{stage}.json"
        write_json(
            path,
            {
                "task": "autonomy",
                "created": datetime.now(UTC).isoformat(),
                "metrics": {"accuracy": {"value": 0.0, "n": 200}},
            },
        )
        import_result(store, mv, path, stage)  # type: ignore[arg-type]
    return mv


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), "utf-8")
    return path
