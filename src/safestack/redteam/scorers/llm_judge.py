"""LLM judges for the red-team scorers: a packaged rubric as the system prompt, the data as JSON, and
the JSON object in the judge's reply read strictly (an unreadable reply is an error, not a score).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from safestack.errors import SafestackError
from safestack.models.base import ChatModel, GenerationSettings
from safestack.records import Message, Role

_JUDGE_SETTINGS = GenerationSettings(temperature=0.0, max_tokens=400, seed=0)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class JudgeReplyError(SafestackError):
    """An LLM judge answered, but not with what the rubric asks for."""


@cache
def load_rubric(name: str) -> str:
    """A packaged rubric (`redteam/assets/rubrics/<name>.md`) without its header comment."""
    folder = resources.files("safestack.redteam").joinpath("assets", "rubrics")
    path = folder.joinpath(f"{name}.md")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name) or not path.is_file():
        raise SafestackError(f"no packaged red-team rubric {name!r} in {folder}")
    return re.sub(r"\A\s*<!--.*?-->\s*", "", path.read_text("utf-8"), flags=re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a judge's reply: bare, fenced, or with prose around it."""
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise JudgeReplyError(f"the judge's reply holds no JSON object: {text[:120]!r}")


def bounded_int(answer: dict[str, Any], key: str, high: int) -> int:
    """`answer[key]` as an integer 0..high; numbers written as strings or 5.0 are accepted."""
    raw = answer.get(key)
    if isinstance(raw, str) and re.fullmatch(r"\s*\d+(\.0+)?\s*", raw):
        raw = float(raw)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= high:
        raise JudgeReplyError(f"'{key}' in the judge's reply is {raw!r}, not an integer 0-{high}")
    return raw


async def ask_judge(model: ChatModel, system: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send the rubric and the data (as a JSON string, so it cannot pose as rubric); parse the JSON."""
    messages = [
        Message(role=Role.SYSTEM, content=system),
        Message(role=Role.USER, content=json.dumps(payload, ensure_ascii=False)),
    ]
    completion = await model.complete(messages, _JUDGE_SETTINGS)
    return parse_json_object(completion.text)


def reply_text(answer: dict[str, Any], key: str) -> str | None:
    value = answer.get(key)
    return value[:500] if isinstance(value, str) and value.strip() else None
