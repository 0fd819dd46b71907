"""The OpenAI moderation response shape, with safestack's own fields added under `safestack`.

Used by `safestack judge --file` and, later, by the server's `/v1/moderations`, so clients written
for OpenAI's API read safestack's answers unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any

from safestack.policy import Policy
from safestack.records import Verdict

# The categories of OpenAI's omni-moderation API, in its order.
OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def moderation_result(verdict: Verdict) -> dict[str, Any]:
    """One entry of `results`: OpenAI's fields for its 13 categories, the rest under `safestack`."""
    flagged = set(verdict.flagged_categories)
    # Which inputs (text, image) a category's score came from: a sub-category's count for its parent.
    applied: dict[str, set[str]] = {}
    for finding in verdict.findings:
        kind = "image" if finding.source == "image" else "text"
        for category in {finding.category, finding.category.split("/", 1)[0]}:
            applied.setdefault(category, set()).add(kind)
    return {
        "flagged": verdict.flagged,
        "categories": {c: c in flagged for c in OPENAI_CATEGORIES},
        "category_scores": {c: verdict.category_scores.get(c, 0.0) for c in OPENAI_CATEGORIES},
        "category_applied_input_types": {
            c: sorted(applied.get(c, ())) if c in verdict.category_scores else []
            for c in OPENAI_CATEGORIES
        },
        "safestack": {
            "schema_version": verdict.schema_version,
            "action": verdict.action.value,
            "severity": verdict.severity,
            "flagged_categories": verdict.flagged_categories,
            "category_scores": verdict.category_scores,
            "category_severities": verdict.category_severities,
            "findings": [
                f.model_dump(mode="json", exclude={"schema_version"}) for f in verdict.findings
            ],
            "normalisations": verdict.normalisations,
            "failures": [
                f.model_dump(mode="json", exclude={"schema_version"}) for f in verdict.failures
            ],
            "policy": verdict.policy,
            "detectors": verdict.detectors,
        },
    }


def moderation_response(verdicts: list[Verdict], policy: Policy) -> dict[str, Any]:
    return {
        "id": f"modr-{uuid.uuid4().hex}",
        "model": f"safestack/{policy.ref}",
        "results": [moderation_result(v) for v in verdicts],
    }
