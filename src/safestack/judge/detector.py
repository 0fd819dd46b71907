"""The detector extension point: a small class with `detect()`, registered by name.

A detector receives one `Sample` (the normalised text, any decoded payloads, and whether it is a
prompt or a model response) and returns `Finding`s. Detectors that do I/O also implement `adetect()`;
the default runs `detect()` in a worker thread. Third-party packages register detectors under the
`safestack.detectors` entry-point group; safestack's own register with `@detector("name")`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import yaml

from safestack.errors import PolicyError, RegistryError
from safestack.judge.normalise import Normalised
from safestack.policy import DetectorSpec, Policy
from safestack.records import Finding, Kind
from safestack.registry import Plugin, PluginOptions, Registry, validate_options
from safestack.yamlfile import line_of

if TYPE_CHECKING:
    from safestack.judge.builtin.models import BuiltinModels


@dataclass(frozen=True, slots=True)
class Sample:
    """What a detector judges: one normalised text and the context it appeared in."""

    normalised: Normalised
    kind: Kind = "prompt"
    # For a response: the request it answers (refusal and response-harm judge the pair).
    request: str | None = None

    @property
    def text(self) -> str:
        return self.normalised.text


class DetectorOptions(PluginOptions):
    """Base for a detector's options block in the policy (`judge.detectors[].options`)."""


class Detector(Plugin, ABC):
    """One source of findings. Subclasses set `name`, `version`, and an `Options` model."""

    Options: ClassVar[type[DetectorOptions]] = DetectorOptions
    # True when the findings are a function of the sample (text, kind, request) and the detector's
    # own configuration only: no clock, network, randomness or state. A judge may then give the
    # findings it got for a text again instead of asking anew (`Judge(recent=...)`).
    deterministic: ClassVar[bool] = False

    def __init__(self, policy: Policy, options: DetectorOptions | None = None):
        super().__init__(options)
        self.policy = policy

    @abstractmethod
    def detect(self, sample: Sample) -> list[Finding]:
        """Findings for one sample; raise `DetectorError` when no opinion can be given."""

    def detect_batch(self, samples: Sequence[Sample]) -> list[list[Finding]]:
        """Findings per sample; override when the backend batches (models, HTTP)."""
        return [self.detect(sample) for sample in samples]

    async def adetect(self, sample: Sample) -> list[Finding]:
        return await asyncio.to_thread(self.detect, sample)

    def finding(self, category: str, score: float, **fields: Any) -> Finding:
        """A Finding stamped with this detector's identity; severity from the policy if not given."""
        return stamped_finding(self, self.policy, category, score, **fields)


def stamped_finding(
    plugin: Plugin, policy: Policy, category: str, score: float, **fields: Any
) -> Finding:
    """A Finding stamped with `plugin`'s name and version; severity from the policy if not given."""
    score = min(1.0, max(0.0, float(score)))
    severity = fields.pop("severity", None)
    if severity is None:
        severity = policy.severity_from_score(score)
    return Finding(
        category=category,
        score=score,
        severity=severity,
        detector=plugin.name,
        detector_version=plugin.version,
        **fields,
    )


_detectors: Registry[type[Detector]] = Registry(
    "detector",
    (
        "safestack.judge.detectors.rules",
        "safestack.judge.builtin.cascade",
        "safestack.judge.detectors.pii",
        "safestack.judge.detectors.elections",
        "safestack.judge.detectors.injection",
        "safestack.judge.detectors.hf_classifier",
        "safestack.judge.detectors.llama_guard",
        "safestack.judge.detectors.openai_moderation",
        "safestack.judge.detectors.llm_judge",
    ),
    "safestack.detectors",
)
detector = _detectors.register
"""Class decorator: register a Detector subclass under `name`."""


def available_detectors() -> dict[str, type[Detector]]:
    return dict(_detectors.items())


def validate_policy_detectors(
    policy: Policy, source: str | None = None, root: yaml.Node | None = None
) -> list[tuple[type[Detector], DetectorOptions]]:
    """Each detector the policy lists (`judge.detectors`) with its options validated against its
    `Options`, in order, none built yet. Raises PolicyError at the first unknown name or bad option.

    From a file give `source` and `root` (`policy.read_policy` keeps both): the error reads
    `file:line: judge.detectors.N.options.field: problem (allowed options: ...)`; without them it
    names the policy instead of the file.
    """
    checked = validate_specs(_detectors, policy.judge.detectors, "detectors", policy, source, root)
    return [(cls, cast(DetectorOptions, options)) for cls, options in checked]


P = TypeVar("P", bound=Plugin)


def validate_specs(
    registry: Registry[type[P]],
    specs: Sequence[DetectorSpec],
    field: str,
    policy: Policy,
    source: str | None,
    root: yaml.Node | None,
) -> list[tuple[type[P], PluginOptions]]:
    """The plugins `judge.<field>` names, from `registry`, with their options validated: the one
    path for the text detectors and the image detectors (`image_detector.py`)."""
    source = source or f"policy {policy.ref}"
    checked = []
    for index, spec in enumerate(specs):
        loc = ["judge", field, str(index)]
        try:
            cls = registry.get(spec.name)
        except RegistryError as exc:
            line = line_of(root, [*loc, "name"])
            at = f"{source}:{line}" if line else source
            raise PolicyError(f"{at}: {'.'.join(loc)}.name: {exc}") from None
        options = validate_options(
            cls.Options,
            spec.options,
            source=source,
            root=root,
            loc=[*loc, "options"],
            error=PolicyError,
        )
        checked.append((cls, options))
    return checked


def create_detector(
    name: str,
    policy: Policy,
    options: dict[str, Any] | None = None,
    *,
    models: BuiltinModels | None = None,
) -> Detector:
    """Build a registered detector with its options validated against its `Options` model.
    `models` (the caller's loaded built-in models) goes to the detectors that use them."""
    cls = _detectors.get(name)
    return cls.from_options(
        options, policy, where=f"judge.detectors[{name}].options", error=PolicyError, models=models
    )
