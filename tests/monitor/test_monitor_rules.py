"""Rules files: validated with file:line:field errors; fired over windows; scored against labels;
handed to enforcement through the contract's `decide` call."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from monitor_logs import T0, event, write_log

from safestack.errors import InputError
from safestack.monitor.analysis import analyse
from safestack.monitor.rules import (
    act,
    example_rules_path,
    fire,
    load_rules,
    read_labels,
    score_rules,
    sweep,
)
from safestack.monitor.signals import Activity
from safestack.policy import default_policy
from safestack.store import Database

GOOD = """\
rules:
  - name: high-severity
    window: 1h
    when:
      - {signal: high_severity, at_least: 2}
    action: throttle
  - name: cyber-heavy
    window: 1h
    accounts: key
    when:
      - {signal: category_flags, category: cyber, at_least: 1}
      - {signal: requests, at_least: 3}
    action: warn
    mode: enforce
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, "utf-8")
    return path


def test_the_shipped_example_rules_are_valid() -> None:
    rules = load_rules(example_rules_path())
    assert rules.rules and all(rule.mode == "shadow" for rule in rules.rules)


def test_new_rules_default_to_shadow_mode(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD))
    assert [r.mode for r in rules.rules] == ["shadow", "enforce"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("signal: high_severity", "signal: high_sevrity"),
            r"rules\.yaml:5: rules\.0\.when\.0\.signal: unknown signal 'high_sevrity'; "
            r"allowed: requests, flagged, .*high_severity",
        ),
        (
            GOOD.replace("category: cyber, ", ""),
            r"rules\.yaml:\d+: rules\.1\.when\.0: signal 'category_flags' needs a category",
        ),
        (
            GOOD.replace("at_least: 2", "at_least: 2, above: 1"),
            r"rules\.yaml:5: rules\.0\.when\.0: a condition needs exactly one of",
        ),
        (
            GOOD.replace(
                "window: 1h\n    when:\n      - {signal: high",
                "window: 1w\n    when:\n      - {signal: high",
            ),
            r"rules\.yaml:3: rules\.0\.window: a duration is",
        ),
        (GOOD.replace("action: throttle", "action: ban"), r"rules\.yaml:6: rules\.0\.action:"),
        (GOOD.replace("    mode: enforce", "    mood: enforce"), r"rules\.1\.mood: unknown field"),
    ],
)
def test_rule_file_errors_name_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(InputError, match=expected):
        load_rules(write(tmp_path, text))


def tiny_log(tmp_path: Path) -> Activity:
    events = []
    # "bad": three high-severity cyber requests in ten minutes; "noisy": one cyber flag in
    # six requests; "quiet": nothing flagged; "late": two high-severity ones, hours later.
    events += [(event("bad", m, {"cyber": 0.95}), None) for m in range(3)]
    events += [(event("bad", 5 + m), None) for m in range(5)]
    events += [(event("noisy", m, {"cyber": 0.6} if m == 0 else None), None) for m in range(6)]
    events += [(event("quiet", m), None) for m in range(6)]
    events += [(event("late", 300 + m, {"cbrn": 0.95}), None) for m in range(2)]
    url = write_log(tmp_path / "audit.db", events)
    with Database.open(url, migrate=False) as database:
        return analyse(database, default_policy()).activity


def test_fire_at_one_moment(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD)).rules
    activity = tiny_log(tmp_path)
    firings = fire(rules, activity, T0 + timedelta(minutes=30))
    assert sorted((f.rule, f.account) for f in firings) == [
        ("cyber-heavy", "key:bad"),
        ("cyber-heavy", "key:noisy"),
        ("high-severity", "key:bad"),
    ]
    high = next(f for f in firings if f.rule == "high-severity")
    assert (high.action, high.shadow, high.values) == ("throttle", True, {"high_severity": 3.0})


def test_precision_and_recall_against_labels(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD)).rules
    labels_path = tmp_path / "labels.csv"
    labels_path.write_text(
        "account,label\nkey:bad,abusive\nkey:late,abusive\nkey:noisy,benign\nkey:quiet,benign\n"
    )
    labels = read_labels(labels_path)
    firings = sweep(rules, tiny_log(tmp_path), timedelta(minutes=30))
    scores = {s.rule: s for s in score_rules(rules, firings, labels)}
    high = scores["high-severity"]  # bad and late: both abusive accounts, nothing else
    assert (high.true_positives, high.false_positives, high.false_negatives) == (2, 0, 0)
    assert (high.precision, high.recall) == (1.0, 1.0)
    cyber = scores["cyber-heavy"]  # bad (abusive) and noisy (benign); late never flagged cyber
    assert (cyber.precision, cyber.recall) == (0.5, 0.5)
    assert (scores["*"].precision, scores["*"].recall) == (pytest.approx(2 / 3), 1.0)


def test_labels_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("account,label\nkey:a,abusive\nkey:b,maybe\n")
    with pytest.raises(
        InputError, match=r"labels\.csv:3: label of 'key:b' must be abusive or benign"
    ):
        read_labels(path)


def test_act_calls_decide_with_the_contract_signature(tmp_path: Path) -> None:
    rule_file = load_rules(write(tmp_path, GOOD))
    firings = fire(rule_file.rules, tiny_log(tmp_path), T0 + timedelta(minutes=30))
    calls: list[tuple[Any, ...]] = []

    def decide(
        account: str, action: str, *, actor: str, reason: str, rule: str | None, shadow: bool
    ) -> str:
        calls.append((account, action, actor, rule, shadow, reason))
        return "recorded"

    assert act(rule_file, firings, decide) == ["recorded"] * 3
    throttle = next(c for c in calls if c[1] == "throttle")
    assert throttle[:5] == ("key:bad", "throttle", "rule:high-severity", "high-severity", True)
    assert "high_severity=3" in throttle[5]
    warn = next(c for c in calls if c[0] == "key:noisy")
    assert (warn[1], warn[4]) == ("warn", False)  # an enforce-mode rule
