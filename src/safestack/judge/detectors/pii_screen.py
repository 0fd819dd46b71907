"""The pattern screen in front of presidio's named-entity pass (`pii` with `names_alone: skip`).

Names and places (`context_entities`) count only next to an identifier or contact detail; alone
they score at most `standalone_score`, under the policy's threshold, and are never acted on. So
spaCy's entity model, most of presidio's cost, is needed only for inputs that hold an identifier
scoring `min_score`. Presidio's pattern recognizers do not read spaCy's output, and context words
raise a raw score to at most max(score + factor, min_with_context). Hence, per input:
1. the pattern recognizers alone: if no result could reach `min_score` even with context, there
   is no identifier (no spaCy at all);
2. where one could, spaCy without its entity model gives the lemmas the context check reads, and
   the identifiers' final scores exactly;
3. where an identifier reaches `min_score`, the full analysis runs, exactly as without the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer

Stage = Literal["none", "context", "full"]
"""What an input needs: nothing more, spaCy without its entity model, or the full analysis."""

_ORDER: dict[Stage, int] = {"none": 0, "context": 1, "full": 2}


@dataclass(frozen=True, slots=True)
class Screen:
    engine: AnalyzerEngine
    language: str
    identifiers: list[str]  # the entity types that are not context entities
    recognizers: tuple[EntityRecognizer, ...]  # every recognizer of those types: patterns only
    factor: float  # the context enhancer's boost...
    floor: float  # ...and the score a boosted result gets at least
    entity_pipes: tuple[str, ...]  # spaCy components that set doc.ents (skipped in stage 2)

    @classmethod
    def build(
        cls,
        engine: AnalyzerEngine,
        language: str,
        entities: Sequence[str],
        context_entities: Sequence[str],
    ) -> Screen | None:
        """The screen for these options, or None when the engine has a part it cannot reason
        about (a recognizer of an identifier that reads spaCy's output, a recognizer with its own
        context logic, another context enhancer): every input then gets the full analysis."""
        from presidio_analyzer import EntityRecognizer, LemmaContextAwareEnhancer, PatternRecognizer
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        identifiers = [e for e in entities if e not in set(context_entities)]
        recognizers = tuple(engine.registry.get_recognizers(language, entities=identifiers))
        for recognizer in recognizers:
            if not isinstance(recognizer, PatternRecognizer | PhoneRecognizer):
                return None
            if type(recognizer).enhance_using_context is not EntityRecognizer.enhance_using_context:
                return None
        enhancer = engine.context_aware_enhancer
        if type(enhancer) is not LemmaContextAwareEnhancer:
            return None
        if not isinstance(engine.nlp_engine, SpacyNlpEngine):
            return None
        nlp = engine.nlp_engine.get_nlp(language)
        entity_pipes = tuple(
            name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns
        )
        if any("token.lemma" in nlp.get_pipe_meta(name).assigns for name in entity_pipes):
            return None
        return cls(
            engine,
            language,
            identifiers,
            recognizers,
            enhancer.context_similarity_factor,
            enhancer.min_score_with_context_similarity,
            entity_pipes,
        )

    def stage(self, text: str, min_score: float) -> Stage:
        """Stage 1: the pattern recognizers' raw results, and the best each could become."""
        stage: Stage = "none"
        for recognizer in self.recognizers:
            # Pattern and phone recognizers do not read the NLP artifacts (hence the screen).
            found = recognizer.analyze(text, self.identifiers, None)  # type: ignore[arg-type]
            for result in found or ():
                if result.score >= min_score:
                    return "full"
                if recognizer.context and self._boosted(result.score) >= min_score:
                    stage = "context"
        return stage

    def _boosted(self, score: float) -> float:
        # presidio's LemmaContextAwareEnhancer.enhance_using_context, for a supportive context word
        return min(1.0, max(score + self.factor, self.floor))

    def confirm(self, texts: Sequence[str], min_score: float, batch_size: int) -> list[bool]:
        """Stage 2: whether an identifier reaches `min_score` once the context words are read
        (spaCy without its entity model, which no pattern recognizer or lemma depends on)."""
        nlp = self.engine.nlp_engine.get_nlp(self.language)  # type: ignore[attr-defined]
        confirmed = []
        with nlp.select_pipes(disable=list(self.entity_pipes)):
            artifacts = list(
                self.engine.nlp_engine.process_batch(
                    list(texts), language=self.language, batch_size=batch_size
                )
            )
        for text, nlp_artifacts in artifacts:
            results = self.engine.analyze(
                text=text,
                language=self.language,
                entities=self.identifiers,
                nlp_artifacts=nlp_artifacts,
            )
            confirmed.append(any(r.score >= min_score for r in results))
        return confirmed


def stages(
    screen: Screen, texts: Sequence[str], owners: Sequence[int], min_score: float, batch_size: int
) -> list[bool]:
    """Per text, whether it needs the full analysis. Decided per owner (a sample's views are read
    together: an identifier in a decoded payload makes the names in the text count)."""
    need: dict[int, Stage] = {}
    for text, owner in zip(texts, owners, strict=True):
        if need.get(owner) == "full":
            continue
        stage = screen.stage(text, min_score)
        if _ORDER[stage] > _ORDER[need.get(owner, "none")]:
            need[owner] = stage
    pending = [i for i, owner in enumerate(owners) if need.get(owner) == "context"]
    if pending:
        confirmed = screen.confirm([texts[i] for i in pending], min_score, batch_size)
        for i, found in zip(pending, confirmed, strict=True):
            if found:
                need[owners[i]] = "full"
    return [need.get(owner) == "full" for owner in owners]
