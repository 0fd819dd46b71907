"""LLM judges, one implementation for every stage: versioned packaged rubrics and one reading of a
judge's reply. The `llm-judge` detector and the red-team LLM scorers both load and read through here,
so the same answer means the same thing in the guard and in a red-team run.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from safestack.errors import PolicyError, SafestackError

# A rubric is named and versioned (`harm-v1`); a changed rubric is a new file, never an edit, as
# findings and scores record the rubric they were made under.
RUBRIC_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*-v[0-9]+")
_LEADING_COMMENT = re.compile(r"\A\s*<!--.*?-->\s*", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_WHOLE_NUMBER = re.compile(r"\s*\d+(\.0+)?\s*")


class JudgeReplyError(SafestackError):
    """An LLM judge answered, but not with what the rubric asks for."""


def rubric_names() -> list[str]:
    """The packaged rubrics (`judge/assets/rubrics/<name>-v<N>.md`)."""
    folder = resources.files("safestack.judge").joinpath("assets", "rubrics")
    return sorted(p.name.removesuffix(".md") for p in folder.iterdir() if p.name.endswith(".md"))


@lru_cache(maxsize=16)
def load_rubric(name: str, *, where: str = "rubric") -> str:
    """A packaged rubric without its header comment; the PolicyError names `where` it was asked."""
    packaged = rubric_names()
    if not RUBRIC_NAME.fullmatch(name) or name not in packaged:
        raise PolicyError(f"{where}: no packaged rubric {name!r}; available: {', '.join(packaged)}")
    folder = resources.files("safestack.judge").joinpath("assets", "rubrics")
    return _LEADING_COMMENT.sub("", folder.joinpath(f"{name}.md").read_text("utf-8"))


def parse_reply(text: str) -> dict[str, Any]:
    """The JSON object in a judge's reply: bare, in a ``` fence, or with prose around it."""
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
    raise JudgeReplyError(
        f"the reply is not valid JSON: it holds no JSON object ({shorten(text, 120)!r})"
    )


def reply_int(answer: dict[str, Any], key: str, high: int, *, where: str | None = None) -> int:
    """`answer[key]` as an integer 0..high. A whole number written as a string ("5") or a float
    (5.0) reads as that number; anything else (5.5, true, "five", missing) is an error."""
    raw = answer.get(key)
    value = raw
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise JudgeReplyError(f"{where or key} is {raw!r}, not an integer 0-{high}")
    return value


def reply_text(answer: dict[str, Any], key: str, limit: int = 500) -> str | None:
    """`answer[key]` when it is non-blank text, on one line and cut to `limit` characters."""
    value = answer.get(key)
    return shorten(value, limit) if isinstance(value, str) and value.strip() else None


def shorten(text: str, limit: int = 160) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
