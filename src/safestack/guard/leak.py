"""System-prompt leak detection over an output, whole or arriving in chunks.

Two checks, both incremental so a leak cut across chunk boundaries is still seen: the canary (in a
rolling window of the latest text, wide enough for its longest spelling) and the word n-gram overlap
with the protected prompt (cumulative over the whole output).
"""

from __future__ import annotations

from dataclasses import dataclass

from safestack.judge.canary import CanaryWatch
from safestack.judge.overlap import OverlapCheck
from safestack.policy.model import OverlapSettings


@dataclass(frozen=True, slots=True)
class Leak:
    check: str  # 'canary' or 'overlap'
    severity: int
    detail: str


class LeakScanner:
    """Feed it the raw output as it arrives; it answers with the first leak it sees."""

    def __init__(self, canary: str | None, protected: tuple[str, ...], settings: OverlapSettings):
        self.settings = settings
        self._canary = CanaryWatch(canary) if canary else None
        self._overlap = OverlapCheck(
            protected, settings.ngram, settings.threshold, settings.min_ngrams
        )
        self._recent = ""

    def feed(self, chunk: str) -> Leak | None:
        if not chunk:
            return None
        if self._canary is not None:
            window = self._recent + chunk
            where = self._canary.find(window)
            if where is not None:
                return Leak("canary", 7, f"the system prompt's canary token appeared ({where})")
            self._recent = window[-self._canary.window_chars :]
        self._overlap.feed(chunk)
        return self._overlap_leak()

    def finish(self) -> Leak | None:
        self._overlap.flush()
        return self._overlap_leak()

    def _overlap_leak(self) -> Leak | None:
        found = self._overlap.leak()
        if found is None:
            return None
        overlap = found.overlap
        return Leak(
            "overlap",
            5,
            f"{overlap.share:.0%} of the system prompt's {found.n}-word sequences "
            f"({overlap.matched} of {overlap.total}) repeated in the output "
            f"(threshold {found.threshold:.0%})",
        )
