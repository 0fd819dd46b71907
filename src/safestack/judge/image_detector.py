"""The image-detector extension point: judges an image that matched no hash bank.

Hash matching (`safestack.media`) finds copies of known material; an image detector gives an
opinion on an image nobody has seen before (a local classifier, or an external moderation endpoint
that takes images). The policy names them under `judge.image_detectors` (none by default); the
gateway runs them on each image after matching and folds their findings into a Verdict the same
way as the text detectors' (`combine_findings`). Register one with `@image_detector("name")`;
third-party packages under the `safestack.image_detectors` entry-point group.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from safestack.judge.detector import stamped_finding, validate_specs
from safestack.judge.judge import combine_findings, sort_results
from safestack.policy import Policy
from safestack.records import Finding, Verdict
from safestack.registry import Plugin, PluginOptions, Registry


@dataclass(frozen=True, slots=True)
class ImageSample:
    """One image to judge: its file's bytes (already decoded once, safely, and hashed), its media
    type, and where it was in the request (`messages[0].content[1]`)."""

    data: bytes
    media_type: str
    where: str


class ImageDetector(Plugin, ABC):
    """One source of findings about images. Subclasses set `name`, `version` and `Options`."""

    Options: ClassVar[type[PluginOptions]] = PluginOptions

    def __init__(self, policy: Policy, options: PluginOptions | None = None):
        super().__init__(options)
        self.policy = policy

    @abstractmethod
    def detect(self, image: ImageSample) -> list[Finding]:
        """Findings for one image; raise `DetectorError` when no opinion can be given."""

    async def adetect(self, image: ImageSample) -> list[Finding]:
        return await asyncio.to_thread(self.detect, image)

    def finding(self, category: str, score: float, **fields: Any) -> Finding:
        return stamped_finding(self, self.policy, category, score, **fields)

    async def aclose(self) -> None:
        """Release connections (the gateway calls this when it stops)."""


_image_detectors: Registry[type[ImageDetector]] = Registry(
    "image detector",
    ("safestack.judge.image_detectors.openai_moderation",),
    "safestack.image_detectors",
)
image_detector = _image_detectors.register
"""Class decorator: register an ImageDetector subclass under `name`."""


def available_image_detectors() -> dict[str, type[ImageDetector]]:
    return dict(_image_detectors.items())


def validate_policy_image_detectors(
    policy: Policy, source: str | None = None, root: yaml.Node | None = None
) -> list[tuple[type[ImageDetector], PluginOptions]]:
    """The image detectors `judge.image_detectors` names with their options validated, none built;
    a PolicyError naming the file, line and field at the first unknown name or bad option."""
    return validate_specs(
        _image_detectors, policy.judge.image_detectors, "image_detectors", policy, source, root
    )


def create_image_detectors(policy: Policy) -> list[ImageDetector]:
    """The image detectors `judge.image_detectors` names, built (none by default)."""
    return [cls(policy, options=opts) for cls, opts in validate_policy_image_detectors(policy)]


async def ajudge_image(
    policy: Policy, detectors: list[ImageDetector], image: ImageSample
) -> Verdict:
    """Every detector's findings on `image`, combined by the policy; a detector that fails raises
    or blocks as `judge.on_detector_error` says (never "safe")."""
    results = await asyncio.gather(*(d.adetect(image) for d in detectors), return_exceptions=True)
    findings, failures = sort_results(detectors, results)
    return combine_findings(
        policy,
        findings,
        failures,
        normalisations=[],
        detectors=[d.ref for d in detectors],
    )
