"""The `openai-moderation` detector: OpenAI's moderation endpoint, or a compatible one.

One request scores a batch of texts, one score per category; the HTTP plumbing it shares with the
other remote detectors (retries, errors) is in `http.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from safestack.judge.detector import Sample, detector
from safestack.judge.detectors.http import RemoteDetector, RemoteOptions, is_probability
from safestack.records import Finding, Span


class ModerationOptions(RemoteOptions):
    base_url: str = Field(default="https://api.openai.com/v1", description="API root.")
    model: str = Field(default="omni-moderation-latest", min_length=1)
    batch_size: int = Field(default=32, ge=1, le=1000, description="Texts per request.")


@dataclass(frozen=True, slots=True)
class _Input:
    """One text sent to the moderation endpoint: the original input or a decoded payload."""

    sample: int
    text: str
    source: str
    span: Span | None


@detector("openai-moderation")
class OpenAIModeration(RemoteDetector):
    """OpenAI's moderation endpoint (or a compatible one): one score per category.

    The original input is sent together with every payload the normaliser decoded from it, so a
    base64-wrapped request is scored as what it says. Scores for categories the policy does not
    know are dropped; the API's own `flagged` booleans are ignored in favour of the policy's
    thresholds.
    """

    version = "1"
    Options = ModerationOptions
    options: ModerationOptions
    path: ClassVar[str] = "/moderations"
    unusable_hint: ClassVar[str] = (
        "check that base_url points at an OpenAI-compatible moderation API"
    )

    def detect(self, sample: Sample) -> list[Finding]:
        return self.detect_batch([sample])[0]

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        inputs = _moderation_inputs(samples)
        scores: list[dict[str, float]] = []
        for chunk in _chunks(inputs, self.options.batch_size):
            scores.extend(self._scores(self.post(self._payload(chunk)), len(chunk)))
        return self._findings(len(samples), inputs, scores)

    async def adetect(self, sample: Sample) -> list[Finding]:
        inputs = _moderation_inputs([sample])
        scores: list[dict[str, float]] = []
        for chunk in _chunks(inputs, self.options.batch_size):
            scores.extend(self._scores(await self.apost(self._payload(chunk)), len(chunk)))
        return self._findings(1, inputs, scores)[0]

    def _payload(self, chunk: Sequence[_Input]) -> dict[str, Any]:
        return {"model": self.options.model, "input": [item.text for item in chunk]}

    def _scores(self, body: Any, expected: int) -> list[dict[str, float]]:
        """The `category_scores` of each result, validated; raises on anything off-shape."""
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise self.unusable("no 'results' list")
        if len(results) != expected:
            raise self.unusable(f"{len(results)} results for {expected} inputs")
        parsed: list[dict[str, float]] = []
        for i, result in enumerate(results):
            raw = result.get("category_scores") if isinstance(result, dict) else None
            if not isinstance(raw, dict):
                raise self.unusable(f"results[{i}] has no 'category_scores' object")
            for name, score in raw.items():
                if not is_probability(score):
                    raise self.unusable(
                        f"results[{i}].category_scores.{name} is {score!r}, not a number in [0, 1]"
                    )
            parsed.append({str(name): float(score) for name, score in raw.items()})
        return parsed

    def _findings(
        self, n_samples: int, inputs: Sequence[_Input], scores: Sequence[dict[str, float]]
    ) -> list[list[Finding]]:
        findings: list[list[Finding]] = [[] for _ in range(n_samples)]
        for item, category_scores in zip(inputs, scores, strict=True):
            for name, score in category_scores.items():
                # A category new to the API is not in the policy, so not ours to act on.
                if name in self.policy.categories:
                    findings[item.sample].append(
                        self.finding(name, score, label=name, source=item.source, span=item.span)
                    )
        return findings


def _moderation_inputs(samples: Sequence[Sample]) -> list[_Input]:
    inputs: list[_Input] = []
    for index, sample in enumerate(samples):
        original = sample.normalised.original
        inputs.append(_Input(index, original, "text", None))
        seen = {original}
        for view in list(sample.normalised.views())[1:]:
            if view.text.strip() and view.text not in seen:
                seen.add(view.text)
                inputs.append(_Input(index, view.text, view.source, view.span(0, len(view.text))))
    return inputs


def _chunks(items: Sequence[_Input], size: int) -> list[Sequence[_Input]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
