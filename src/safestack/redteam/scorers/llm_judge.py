"""Asking an LLM judge from a red-team scorer: the packaged rubric as the system message, the data
as a JSON string, and the reply read by the judge's one reader (`safestack.judge.rubrics`).
"""

from __future__ import annotations

import json
from typing import Any

from safestack.judge.rubrics import parse_reply
from safestack.models.base import ChatModel, GenerationSettings
from safestack.records import Message, Role

JUDGE_SETTINGS = GenerationSettings(temperature=0.0, max_tokens=400, seed=0)


async def ask_judge(model: ChatModel, system: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send the rubric and the data (as a JSON string, so it cannot pose as rubric); parse the JSON."""
    messages = [
        Message(role=Role.SYSTEM, content=system),
        Message(role=Role.USER, content=json.dumps(payload, ensure_ascii=False)),
    ]
    completion = await model.complete(messages, JUDGE_SETTINGS)
    return parse_reply(completion.text)
