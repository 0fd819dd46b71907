"""The instruction hierarchy: how much a message is trusted, and which detectors read it.

Privileged instructions (system, developer) > user requests > untrusted data (tool results,
retrieved documents). A message's place comes from its `trust` (set from its role by default), and
content whose `source` is a tool or a retrieval is untrusted whatever its role: least privilege wins.
"""

from __future__ import annotations

from safestack.policy.model import GuardScope
from safestack.records import DEFAULT_TRUST, Message, Role, Trust

_RANK = {Trust.UNTRUSTED: 0, Trust.USER: 1, Trust.PRIVILEGED: 2}


def effective_trust(message: Message) -> Trust:
    """The message's trust, lowered to untrusted when its source is a tool or a retrieval."""
    trust = message.trust or DEFAULT_TRUST[message.role]
    if message.source in ("tool", "retrieval"):
        return min(trust, Trust.UNTRUSTED, key=_RANK.__getitem__)
    return trust


def scope_of(message: Message) -> GuardScope:
    """Which entry of `guard.detectors` reads this message: its role, or 'retrieval'."""
    return "retrieval" if message.source == "retrieval" else message.role.value


def is_privileged(message: Message) -> bool:
    return effective_trust(message) is Trust.PRIVILEGED and message.role in (
        Role.SYSTEM,
        Role.DEVELOPER,
    )


def latest_turn(messages: list[Message]) -> int | None:
    """Index of the last user message: the question this request asks."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role is Role.USER and effective_trust(messages[index]) is Trust.USER:
            return index
    return None


def recent_user_turns(messages: list[Message], turns: int) -> list[int]:
    """Indices of the last `turns` user messages that hold text, oldest first."""
    found = [
        i
        for i, m in enumerate(messages)
        if m.role is Role.USER and effective_trust(m) is Trust.USER and m.content.strip()
    ]
    return found[-turns:] if turns > 0 else []
