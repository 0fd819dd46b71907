"""The strike ladder file: durations, defaults laid under a deployment's file, and mistakes named
by file, line and field like the policy's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from safestack.errors import EnforcementError
from safestack.monitor.ladder import Ladder, format_duration, load_ladder, next_rung
from safestack.records import EnforcementAction as A


def test_the_built_in_ladder() -> None:
    ladder = load_ladder(None)
    assert ladder == Ladder()
    assert ladder.warn.decay == timedelta(days=7)
    assert ladder.throttle.decay == timedelta(days=1) and ladder.throttle.rate_per_minute == 6
    assert ladder.throttle_burst() == 1
    assert ladder.suspend.decay == timedelta(days=30)
    assert "dec_42" in ladder.appeal_text("dec_42")


def test_a_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(
        "throttle: {rate_per_minute: 3}\n"
        "suspend: {decay: never}\n"
        "warn: {decay: 90m}\n"
        "appeal: 'Write to trust@example.com quoting {ref}.'\n"
    )
    ladder = load_ladder(path)
    assert ladder.throttle.rate_per_minute == 3
    assert ladder.throttle.decay == timedelta(days=1)  # kept from the built-in one
    assert ladder.suspend.decay is None
    assert ladder.warn.decay == timedelta(minutes=90)
    assert ladder.appeal_text("dec_1") == "Write to trust@example.com quoting dec_1."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("warn:\n  decay: 3 weeks\n", ":2: warn.decay: "),
        ("throttle:\n  rate_per_minute: 0\n", ":2: throttle.rate_per_minute: "),
        ("suspend:\n  decay: 0s\n", ":2: suspend.decay: the decay must be longer than 0"),
        ("warn: {decay: 1d}\nban: {decay: 1d}\n", ":2: ban: unknown field"),
        ("appeal: 'see {url}'\n", ":1: appeal: the appeal text may use only"),
    ],
)
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(text)
    with pytest.raises(EnforcementError) as caught:
        load_ladder(path)
    assert str(caught.value).startswith(f"{path}{expected}"), str(caught.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(EnforcementError, match="strike-ladder file not found"):
        load_ladder(tmp_path / "nope.yaml")


def test_each_strike_climbs_one_rung() -> None:
    assert [next_rung(level) for level in (None, A.LIFT, A.WARN, A.THROTTLE, A.SUSPEND)] == [
        A.WARN,
        A.WARN,
        A.THROTTLE,
        A.SUSPEND,
        A.SUSPEND,
    ]


def test_durations_print_back() -> None:
    assert [format_duration(d) for d in (timedelta(days=14), timedelta(hours=36), None)] == [
        "2w",
        "36h",
        "never",
    ]
