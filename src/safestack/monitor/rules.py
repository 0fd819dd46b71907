"""Monitoring rules: conditions over an account's signals, an action and a mode, in one YAML file.

Validated like the policy (`file:line: field: what is wrong`); a condition naming an unknown signal
lists the allowed ones. A rule fires for an account when every condition holds over the rule's
window; `fire` evaluates at one moment (`monitor run`), `sweep` at every step over the history
(`monitor rules evaluate`, the simulator's evaluation). New rules run in shadow mode: their
decisions are logged, nothing is enforced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import InputError
from safestack.monitor.signals import CATEGORY_SIGNALS, SIGNALS, Activity
from safestack.yamlfile import read_yaml, validate

Action = Literal["warn", "throttle", "suspend"]
Mode = Literal["shadow", "enforce"]
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
HINT = "check the spelling against docs/monitor.md (Rules)"


def parse_duration(value: str) -> timedelta:
    """'30m', '6h', '7d' as a timedelta."""
    match = _DURATION.match(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"a duration is a positive number of minutes, hours or days such as "
            f"30m, 6h or 7d, got {value!r}"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """`signal` compared with one bound: above (>), at_least (>=), below (<) or at_most (<=)."""

    signal: str
    category: str | None = Field(default=None, description="For the category_* signals.")
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None

    @field_validator("signal")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SIGNALS and value not in CATEGORY_SIGNALS:
            allowed = ", ".join([*SIGNALS, *CATEGORY_SIGNALS])
            raise ValueError(f"unknown signal '{value}'; allowed: {allowed}")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> Condition:
        bounds = [
            b for b in ("above", "at_least", "below", "at_most") if getattr(self, b) is not None
        ]
        if len(bounds) != 1:
            raise ValueError(
                "a condition needs exactly one of above, at_least, below, at_most "
                f"(got {', '.join(bounds) or 'none'})"
            )
        per_category = self.signal in CATEGORY_SIGNALS
        if per_category and self.category is None:
            raise ValueError(f"signal '{self.signal}' needs a category (e.g. category: cyber)")
        if not per_category and self.category is not None:
            raise ValueError(f"signal '{self.signal}' is not per category; remove category")
        return self

    def expression(self) -> pl.Expr:
        column = pl.col(self.column)
        if self.above is not None:
            return column > self.above
        if self.at_least is not None:
            return column >= self.at_least
        if self.below is not None:
            return column < self.below
        assert self.at_most is not None
        return column <= self.at_most

    @property
    def column(self) -> str:
        return f"{self.signal}:{self.category}" if self.category else self.signal

    def describe(self) -> str:
        for name, symbol in (("above", ">"), ("at_least", ">="), ("below", "<"), ("at_most", "<=")):
            value = getattr(self, name)
            if value is not None:
                return f"{self.column} {symbol} {value:g}"
        return self.column


class Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    window: str = Field(default="24h", description="The sliding window: 30m, 6h, 7d.")
    accounts: Literal["any", "key", "user"] = Field(
        default="any", description="Which accounts: keys, end users of keys, or both."
    )
    when: tuple[Condition, ...] = Field(min_length=1, description="All must hold.")
    action: Action
    mode: Mode = Field(default="shadow", description="New rules log what they would do first.")

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def span(self) -> timedelta:
        return parse_duration(self.window)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.when)


class RuleFile(_Strict):
    schema_version: Literal[1] = 1
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(twice)}")
        return rules


def load_rules(path: str | Path) -> RuleFile:
    """Read and validate a rules file; a RuleError-like InputError names file, line and field."""
    data, root = read_yaml(path, InputError, "rules")
    return validate(RuleFile, data, str(path), root, InputError, HINT)


def example_rules_path() -> Path:
    """The shipped example rules (`monitor/assets/rules.yaml`)."""
    return Path(str(resources.files("safestack.monitor").joinpath("assets", "rules.yaml")))


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule holding for one account at one moment, with the values that made it hold."""

    rule: str
    account: str
    at: datetime
    action: Action
    shadow: bool
    values: dict[str, float]

    def reason(self, rule: Rule) -> str:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.values.items())
        return f"rule {rule.name} ({rule.describe()}) over {rule.window}: {shown}"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def fire(rules: Sequence[Rule], activity: Activity, at: datetime) -> list[Firing]:
    """Every (rule, account) that holds over the rule's window ending at `at`."""
    firings: list[Firing] = []
    cache: dict[timedelta, pl.DataFrame] = {}
    for rule in rules:
        table = cache.get(rule.span)
        if table is None:
            table = cache[rule.span] = _signal_table(activity, at, rule.span, rules)
        if table.is_empty():
            continue
        if rule.accounts != "any":
            table = table.filter(pl.col("kind") == rule.accounts)
        columns = [c.column for c in rule.when]
        for column in columns:
            if column not in table.columns:
                table = table.with_columns(pl.lit(0.0).alias(column))
        matched = table.filter(pl.all_horizontal([c.expression() for c in rule.when]))
        for row in matched.select("account", *dict.fromkeys(columns)).iter_rows(named=True):
            values = {c: float(row[c]) for c in dict.fromkeys(columns)}
            firings.append(
                Firing(rule.name, row["account"], at, rule.action, rule.mode == "shadow", values)
            )
    return firings


def _signal_table(
    activity: Activity, at: datetime, window: timedelta, rules: Sequence[Rule]
) -> pl.DataFrame:
    """SIGNALS per account, plus one column per category signal the rules name."""
    table = activity.signals(at, window)
    wanted = {(c.signal, c.category) for r in rules for c in r.when if c.category is not None}
    if not wanted or table.is_empty():
        return table
    per_category = activity.category_signals(at, window)
    for signal, category in sorted(wanted, key=lambda w: (w[0], w[1] or "")):
        column = f"{signal}:{category}"
        values = per_category.filter(pl.col("category") == category).select(
            "account", pl.col(signal).cast(pl.Float64).alias(column)
        )
        table = table.join(values, on="account", how="left").with_columns(
            pl.col(column).fill_null(0.0)
        )
    return table


def sweep(
    rules: Sequence[Rule], activity: Activity, step: timedelta, *, until: datetime | None = None
) -> list[Firing]:
    """`fire` at every `step` from the first event's minute + step through the last event."""
    first, last = activity.first, until or activity.last
    if first is None or last is None:
        return []
    firings: list[Firing] = []
    at = first + step
    while True:
        at = min(at, last)
        firings.extend(fire(rules, activity, at))
        if at >= last:
            break
        at += step
    return firings


class Decide(Protocol):
    """The enforcement side's decision call (the monitoring contract)."""

    def __call__(
        self,
        account: str,
        action: str,
        *,
        actor: str,
        reason: str,
        rule: str | None,
        shadow: bool,
    ) -> Any: ...


def act(rules: RuleFile, firings: Iterable[Firing], decide: Decide) -> list[Any]:
    """Hand each firing to `decide`: actor `rule:<name>`, shadow as the rule's mode says."""
    by_name = {r.name: r for r in rules.rules}
    return [
        decide(
            f.account,
            f.action,
            actor=f"rule:{f.rule}",
            reason=f.reason(by_name[f.rule]),
            rule=f.rule,
            shadow=f.shadow,
        )
        for f in firings
    ]


Label = Literal["abusive", "benign"]


def read_labels(path: Path) -> dict[str, Label]:
    """A labels file: CSV lines `account,label` (a header line is allowed) or a YAML mapping;
    labels are `abusive` or `benign`."""
    if not path.is_file():
        raise InputError(f"{path}: labels file not found")
    labels: dict[str, Label] = {}
    if path.suffix in (".yaml", ".yml", ".json"):
        data, _ = read_yaml(path, InputError, "labels")
        items: Iterable[tuple[int, str, Any]] = ((0, str(k), v) for k, v in data.items())
    else:
        lines = path.read_text("utf-8").splitlines()
        items = (
            (number, *line.split(",", 1)) if "," in line else (number, line, None)  # type: ignore[misc]
            for number, line in enumerate(lines, 1)
            if line.strip() and not line.startswith("#")
        )
    for number, account, label in items:
        account = account.strip()
        value = str(label).strip().lower() if label is not None else ""
        if number == 1 and account == "account":
            continue
        if value not in ("abusive", "benign"):
            where = f"{path}:{number}" if number else str(path)
            raise InputError(
                f"{where}: label of '{account}' must be abusive or benign, got {label!r}"
            )
        labels[account] = value  # type: ignore[assignment]
    return labels


@dataclass(frozen=True, slots=True)
class RuleScore:
    rule: str
    fired_accounts: int
    true_positives: int
    false_positives: int
    false_negatives: int
    unlabelled: int

    @property
    def precision(self) -> float | None:
        fired = self.true_positives + self.false_positives
        return self.true_positives / fired if fired else None

    @property
    def recall(self) -> float | None:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired_accounts": self.fired_accounts,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "unlabelled": self.unlabelled,
            "precision": self.precision,
            "recall": self.recall,
        }


def score_rules(
    rules: Sequence[Rule], firings: Iterable[Firing], labels: dict[str, Label]
) -> list[RuleScore]:
    """Precision and recall of each rule (and of all together, `*`): an account counts as
    flagged by a rule when the rule fired for it at any step of the history."""
    fired: dict[str, set[str]] = {r.name: set() for r in rules}
    for firing in firings:
        fired[firing.rule].add(firing.account)
    abusive = {a for a, label in labels.items() if label == "abusive"}
    scores = []
    names: list[tuple[str, set[str]]] = [(r.name, fired[r.name]) for r in rules]
    names.append(("*", set().union(*fired.values()) if fired else set()))
    for name, accounts in names:
        labelled = {a for a in accounts if a in labels}
        tp = len(labelled & abusive)
        scores.append(
            RuleScore(
                rule=name,
                fired_accounts=len(accounts),
                true_positives=tp,
                false_positives=len(labelled) - tp,
                false_negatives=len(abusive - accounts),
                unlabelled=len(accounts - labelled),
            )
        )
    return scores
