"""The models corpus filters load (harm-model document scorer, presidio, py3langid), owned by one
pipeline build (`PipelinePlan.build`, one per worker) and handed to its filters; loaded on first
use, never kept by a module. A filter built alone makes its own. The built-in harm model's
embedders and heads live in the run's `BuiltinModels` (`builtin`).
"""

from __future__ import annotations

from typing import Any

from safestack.data.filters.base import Filter, FilterOptions
from safestack.data.filters.scoring import DocumentScorer
from safestack.judge.builtin import BuiltinModels
from safestack.policy import Policy


class FilterModels:
    """Loaded models for one run of the filters. Pickled (to a spawned or Ray worker) it travels
    empty and loads there, into the worker's own `BuiltinModels`; a forked worker inherits what is
    already loaded. `builtin`: the caller's loaded built-in models (a new registry by default)."""

    def __init__(self, builtin: BuiltinModels | None = None) -> None:
        self.scorer = DocumentScorer(models=builtin)
        self._presidio: Any = None
        self._languages: Any = None

    @property
    def builtin(self) -> BuiltinModels:
        """The built-in models the document scorer runs on."""
        return self.scorer.models

    def __getstate__(self) -> dict[str, Any]:
        return {"scorer": self.scorer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.scorer = state["scorer"]
        self._presidio = self._languages = None

    def presidio(self) -> Any:
        """presidio's AnalyzerEngine (spaCy NER), never reaching the network."""
        if self._presidio is None:
            from safestack.judge.detectors.pii import load_analyzer

            self._presidio = load_analyzer("en", "aggregator")
        return self._presidio

    def language_identifier(self) -> Any:
        """py3langid's identifier with normalised probabilities."""
        if self._languages is None:
            from py3langid.langid import (
                MODEL_FILE,
                LanguageIdentifier,
            )

            self._languages = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return self._languages


class ModelFilter(Filter):
    """A filter that uses loaded models: give the filters of one pipeline the same `models`
    (PipelinePlan.build does) and each model loads, and each document is embedded, once."""

    def __init__(
        self,
        policy: Policy,
        options: FilterOptions | None = None,
        models: FilterModels | None = None,
    ) -> None:
        super().__init__(policy, options)
        self.models = models if models is not None else FilterModels()

    @property
    def scorer(self) -> DocumentScorer:
        return self.models.scorer


def build_filter(
    cls: type[Filter], policy: Policy, options: FilterOptions | None, models: FilterModels
) -> Filter:
    """An instance of `cls`, handed `models` when it uses them."""
    if issubclass(cls, ModelFilter):
        return cls(policy, options, models=models)
    return cls(policy, options)
