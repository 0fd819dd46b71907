"""The runtime guard: input checks under the instruction hierarchy, output checks, streaming.

`Guard(policy).check_input(conversation)` says whether to forward a request and what to forward;
`check_output(conversation, text, decision.context)` and `stream(decision.context)` check the answer.
See docs/guard.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from safestack.guard.decision import (
        ForwardedMessage,
        GuardContext,
        HistoryVerdict,
        InputDecision,
        MessageVerdict,
        OutputDecision,
        Reason,
        StreamEnd,
    )
    from safestack.guard.guard import Guard
    from safestack.guard.stream import OutputStream

# Loaded on first use (PEP 562): red-team scorers import the guard's canary and overlap checks,
# which should not cost them the whole pipeline's import.
_EXPORTS = {
    "ForwardedMessage": "safestack.guard.decision",
    "GuardContext": "safestack.guard.decision",
    "HistoryVerdict": "safestack.guard.decision",
    "InputDecision": "safestack.guard.decision",
    "MessageVerdict": "safestack.guard.decision",
    "OutputDecision": "safestack.guard.decision",
    "Reason": "safestack.guard.decision",
    "StreamEnd": "safestack.guard.decision",
    "Guard": "safestack.guard.guard",
    "OutputStream": "safestack.guard.stream",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'safestack.guard' has no attribute {name!r}")


__all__ = [
    "ForwardedMessage",
    "Guard",
    "GuardContext",
    "HistoryVerdict",
    "InputDecision",
    "MessageVerdict",
    "OutputDecision",
    "OutputStream",
    "Reason",
    "StreamEnd",
]
