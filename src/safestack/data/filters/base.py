"""The filter extension point: a small class that sees a batch of documents and removes some.

Filters take batches so model-backed ones (harm, adult content) embed many documents at once;
rule-based ones loop. A filter returns one `Removal | None` per document, in order; a redacting
filter rewrites `document.text` in place and returns None.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from safestack.data.document import Document, Removal
from safestack.policy import Policy
from safestack.registry import Plugin, PluginOptions, Registry


class FilterOptions(PluginOptions):
    """Base for a filter's options block in a pipeline definition (`filters[].options`)."""


class Filter(Plugin, ABC):
    """A corpus filter: a plugin (name, version, typed options) with the policy it applies."""

    Options: ClassVar[type[FilterOptions]] = FilterOptions
    options: FilterOptions

    def __init__(self, policy: Policy, options: FilterOptions | None = None) -> None:
        super().__init__(options)
        self.policy = policy

    @abstractmethod
    def apply(self, documents: Sequence[Document]) -> list[Removal | None]:
        """One entry per document: a Removal to drop it, None to keep it (possibly rewritten)."""

    def removal(
        self,
        why: str,
        score: float,
        threshold: float,
        *,
        category: str | None = None,
        evidence: str | None = None,
    ) -> Removal:
        return Removal(
            filter=self.name,
            reason=f"{self.name}.{why}",
            score=float(score),
            threshold=float(threshold),
            category=category,
            evidence=evidence[:300] if evidence else None,
        )


filters: Registry[type[Filter]] = Registry(
    "filter",
    (
        "safestack.data.filters.adult",
        "safestack.data.filters.harm",
        "safestack.data.filters.aggregator",
        "safestack.data.filters.quality",
        "safestack.data.filters.redact",
    ),
    "safestack.filters",
)
corpus_filter = filters.register
