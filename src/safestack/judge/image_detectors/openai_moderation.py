"""The `openai-moderation` image detector: an OpenAI-compatible moderation endpoint that takes
images (OpenAI's omni-moderation models), asked about one image at a time.

The image goes as a data URL in a content part (`{"type": "image_url", "image_url": {"url":
"data:image/png;base64,..."}}`), the bytes the gateway hashed, never a URL the service would fetch
again. Scores for categories the policy does not know are dropped; the API's own `flagged`
booleans are ignored in favour of the policy's thresholds.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from pydantic import Field

from safestack.judge.detectors.http import RemoteCalls, RemoteOptions, is_probability
from safestack.judge.image_detector import ImageDetector, ImageSample, image_detector
from safestack.policy import Policy
from safestack.records import Finding
from safestack.registry import PluginOptions


class ImageModerationOptions(RemoteOptions):
    base_url: str = Field(default="https://api.openai.com/v1", description="API root.")
    model: str = Field(default="omni-moderation-latest", min_length=1)


@image_detector("openai-moderation")
class OpenAIImageModeration(RemoteCalls, ImageDetector):
    """OpenAI's moderation endpoint (or a compatible one) with image input: a score per category."""

    version = "1"
    Options = ImageModerationOptions
    options: ImageModerationOptions
    path: ClassVar[str] = "/moderations"
    unusable_hint: ClassVar[str] = (
        "check that base_url points at an OpenAI-compatible moderation API that takes images"
    )

    def __init__(self, policy: Policy, options: PluginOptions | None = None):
        ImageDetector.__init__(self, policy, options)
        self.connect()

    def detect(self, image: ImageSample) -> list[Finding]:
        return self._findings(self.post(self._payload(image)))

    async def adetect(self, image: ImageSample) -> list[Finding]:
        return self._findings(await self.apost(self._payload(image)))

    async def aclose(self) -> None:
        await self.endpoint.aclose()

    def _payload(self, image: ImageSample) -> dict[str, Any]:
        url = f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"
        return {
            "model": self.options.model,
            "input": [{"type": "image_url", "image_url": {"url": url}}],
        }

    def _findings(self, body: Any) -> list[Finding]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != 1:
            raise self.unusable("expected a 'results' list with one result for the image")
        result = results[0]
        raw = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(raw, dict):
            raise self.unusable("results[0] has no 'category_scores' object")
        findings = []
        for name, score in raw.items():
            if not is_probability(score):
                raise self.unusable(
                    f"results[0].category_scores.{name} is {score!r}, not a number in [0, 1]"
                )
            # A category new to the API is not in the policy, so not ours to act on.
            if name in self.policy.categories:
                findings.append(
                    self.finding(str(name), float(score), label=str(name), source="image")
                )
        return findings
