"""Opening a match case: what the gateway (or a batch scan) does with a MediaVerdict that matched.

The case keeps the image's hashes, the matches and the request's context; never the image.
"""

from __future__ import annotations

from typing import Any

from safestack.media.screen import MediaVerdict
from safestack.store import CaseMatch, MediaCase, Store


def open_case(
    store: Store, verdict: MediaVerdict, context: dict[str, Any] | None = None
) -> MediaCase:
    """Record `verdict` (which must have matched) as an open case for review."""
    if not verdict.matched:
        raise ValueError("only a verdict that matched opens a case")
    hashes = verdict.hashes
    return store.media_cases.open(
        md5=hashes.md5,
        sha256=hashes.sha256,
        pdq=hashes.pdq,
        quality=hashes.quality,
        matches=[CaseMatch.model_validate(m.model_dump()) for m in verdict.matches],
        context=context,
    )
