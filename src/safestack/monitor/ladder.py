"""The strike ladder: warn, then throttle, then suspend, each lapsing after its decay period.

Built in by default; a deployment's YAML file (SAFESTACK_MONITOR_LADDER) replaces any part of it
and is validated like the policy, a mistake named by file, line and field:

    warn:     {decay: 7d}
    throttle: {decay: 1d, rate_per_minute: 6, burst: 2}
    suspend:  {decay: 30d}      # null: until lifted
    appeal: "Write to trust@example.com quoting {ref}."
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from safestack.errors import EnforcementError
from safestack.records import EnforcementAction
from safestack.yamlfile import read_yaml, validate

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(value: Any) -> Any:
    """'90s', '15m', '12h', '7d', '2w' or a number of seconds as a timedelta; None and 'never'
    stay None (no decay: until lifted); anything else is left for pydantic to refuse."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
        return None
    if isinstance(value, bool):
        return value  # refused below: true is not a duration
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write e.g. 90s, 15m, 12h, 7d, 2w, or never"
            )
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


Duration = Annotated[timedelta | None, BeforeValidator(parse_duration)]


def format_duration(value: timedelta | None) -> str:
    """'7d', '12h', '90s', ... or 'never'."""
    if value is None:
        return "never"
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("decay", check_fields=False)
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("the decay must be longer than 0 (or never)")
        return value


class Rung(_Part):
    decay: Duration = Field(description="How long the measure lasts; null (never): until lifted.")


class ThrottleRung(Rung):
    rate_per_minute: int = Field(
        default=6, gt=0, description="Requests per minute while throttled."
    )
    burst: int | None = Field(
        default=None, gt=0, description="Requests at once; rate_per_minute // 4 (1 at least) unset."
    )


class Ladder(BaseModel):
    """The rungs and what a refused or warned client is told about appealing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: Rung = Rung(decay=timedelta(days=7))
    throttle: ThrottleRung = ThrottleRung(decay=timedelta(days=1))
    suspend: Rung = Rung(decay=timedelta(days=30))
    appeal: str = Field(
        default="to appeal, contact the operator of this service quoting reference {ref}",
        min_length=1,
        max_length=500,
        description="Told to a warned, throttled or suspended client; {ref} is the decision id.",
    )

    @field_validator("appeal")
    @classmethod
    def _one_reference(cls, value: str) -> str:
        try:
            value.format(ref="dec_0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"the appeal text may use only the placeholder {{ref}} ({exc!r}); "
                "write literal braces as {{ and }}"
            ) from None
        return value

    def rung(self, action: EnforcementAction) -> Rung:
        if action is EnforcementAction.WARN:
            return self.warn
        if action is EnforcementAction.THROTTLE:
            return self.throttle
        if action is EnforcementAction.SUSPEND:
            return self.suspend
        raise ValueError(f"'{action}' is not a rung of the ladder")

    def throttle_burst(self) -> int:
        return self.throttle.burst or max(1, self.throttle.rate_per_minute // 4)

    def appeal_text(self, decision_id: str) -> str:
        return self.appeal.format(ref=decision_id)


def next_rung(current: EnforcementAction | None) -> EnforcementAction:
    """The measure a new strike brings: one rung above the account's current one (warn when it
    has none); a suspended account's strike suspends it again (a fresh decay)."""
    if current is None or current is EnforcementAction.LIFT:
        return EnforcementAction.WARN
    if current is EnforcementAction.WARN:
        return EnforcementAction.THROTTLE
    return EnforcementAction.SUSPEND


def load_ladder(path: str | Path | None) -> Ladder:
    """The ladder in `path` laid over the built-in one; the built-in one for None.
    A bad file fails with `file:line: field: problem`."""
    if path is None:
        return Ladder()
    data, root = read_yaml(path, EnforcementError, "strike-ladder")
    merged = Ladder().model_dump()
    for name, value in data.items():
        given = merged.get(name)
        merged[name] = (
            {**given, **value} if isinstance(given, dict) and isinstance(value, dict) else value
        )
    return validate(
        Ladder,
        merged,
        str(path),
        root,
        EnforcementError,
        "the fields are warn, throttle, suspend and appeal (docs/monitor-enforcement.md)",
    )
