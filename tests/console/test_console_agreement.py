"""Cohen's kappa and its bootstrap interval, checked against scikit-learn's cohen_kappa_score."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sklearn.metrics import cohen_kappa_score

from safestack.console.agreement import agreement, bootstrap_interval, cohen_kappa
from safestack.policy import default_policy
from safestack.store.console import ExpertFinding, Review

PAIRS = [
    ([0, 1, 2, 3, 3, 2, 1, 0, 3, 3], [0, 1, 2, 3, 2, 2, 0, 0, 3, 1]),
    ([1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0]),
    ([2, 2, 3, 3], [3, 3, 2, 2]),
]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_kappa_matches_scikit_learn(a: list[int], b: list[int]) -> None:
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_edge_cases() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0
    assert bootstrap_interval([1], [1]) is None
    low, high = bootstrap_interval(*PAIRS[0])  # type: ignore[misc]
    assert -1.0 <= low <= cohen_kappa(*PAIRS[0]) <= high <= 1.0  # type: ignore[operator]
    assert bootstrap_interval(*PAIRS[0]) == bootstrap_interval(*PAIRS[0])  # seeded


def finding(index: int, category: str, severity: int, judged: int) -> ExpertFinding:
    now = datetime.now(UTC)
    return ExpertFinding(
        id=f"f{index}",
        engagement_id="e",
        turn_id=f"t{index}",
        expert="ssk_00000001",
        target="alpha",
        category=category,
        severity=severity,
        technique="x",
        language="en",
        note="",
        ideal_answer="",
        judge={"category_severities": {category: judged}, "policy": "p"},
        status="open",
        version=1,
        created_at=now,
        updated_at=now,
    )


def test_agreement_per_category_on_severity_bands() -> None:
    findings = [
        finding(0, "violence", 6, 7),  # high / high
        finding(1, "violence", 4, 1),  # medium / very low
        finding(2, "violence", 2, 3),  # low / low
        finding(3, "cyber", 5, 4),
    ]
    now = datetime.now(UTC)
    reviews = [
        Review(
            id="r0",
            finding_id="f0",
            reviewer="l",
            decision="agree",
            category="violence",
            severity=6,
            reason="ok",
            created_at=now,
        ),
        Review(
            id="r1",
            finding_id="f1",
            reviewer="l",
            decision="reject",
            category="violence",
            severity=4,
            reason="no",
            created_at=now,
        ),
    ]
    rows = {(k.category, k.pair): k for k in agreement(findings, reviews, default_policy())}
    judge = rows[("violence", "expert vs judge")]
    assert judge.n == 3 and judge.kappa == pytest.approx(
        cohen_kappa_score([3, 2, 1], [3, 0, 1]), abs=1e-4
    )
    reviewer = rows[("violence", "expert vs reviewer")]
    assert reviewer.n == 2 and reviewer.observed == 0.5  # a rejection reads as the lowest band
    assert rows[("all", "expert vs judge")].n == 4
    assert ("cyber", "expert vs reviewer") not in rows
    assert not any(pair == "expert vs expert" for _, pair in rows)


def test_two_experts_on_one_answer_are_a_pair() -> None:
    first = finding(0, "violence", 6, 7)
    second = finding(1, "violence", 3, 7).model_copy(update={"turn_id": "t0", "expert": "ssk_2"})
    again = finding(2, "violence", 0, 7).model_copy(update={"turn_id": "t0"})  # same expert: no
    rows = {
        (k.category, k.pair): k for k in agreement([first, second, again], [], default_policy())
    }
    pair = rows[("violence", "expert vs expert")]
    assert pair.n == 1 and pair.observed == 0.0
