"""The runtime guard: input checks under the instruction hierarchy, output checks, streaming.

`Guard(policy).check_input(conversation)` says whether to forward a request and what to forward;
`check_output(conversation, text, decision.context)` and `stream(decision.context)` check the answer.
See docs/guard.md. Importing the package registers the `guarded` red-team target (`guard.target`).
"""

from __future__ import annotations

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

# The guard's plugin on the models axis (`kind: guarded`), registered like any third-party model.
from safestack.guard import target  # noqa: F401  isort: skip

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
