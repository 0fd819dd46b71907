"""The Judge: normalise the input, run the policy's detectors, combine their findings into a Verdict.

Combination rule: a category's score is the highest score any detector gave it or one of its
subcategories; it is flagged at or above the policy threshold; its severity is the highest severity
among the findings that reached the threshold; the verdict's action is the strictest action the
policy assigns to a flagged category's severity band.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from safestack.errors import DetectorError, InputError, PolicyError, RegistryError, SafestackError
from safestack.judge.detector import (
    Detector,
    Sample,
    create_detector,
    validate_policy_detectors,
)
from safestack.judge.normalise import normalise
from safestack.policy import Policy, default_policy
from safestack.records import Action, DetectorFailure, Finding, Kind, Verdict
from safestack.registry import Plugin

if TYPE_CHECKING:
    from safestack.judge.builtin.models import BuiltinModels


_Key = tuple[str, Kind, str | None]


class Judge:
    """Runs a set of detectors under one policy. `Judge.default().check("...")` -> Verdict.

    `recent`: how many verdicts of lately judged inputs `check_batch` keeps and gives again for the
    same input (text, kind and request), when every detector is `deterministic` (otherwise none are
    kept). A gateway judges a chat's earlier turns again with every request. A verdict with a
    detector failure is never kept.
    """

    def __init__(self, policy: Policy, detectors: Sequence[Detector], *, recent: int = 0):
        if not detectors:
            raise SafestackError("a Judge needs at least one detector")
        self.policy = policy
        self.detectors = list(detectors)
        self._recent_size = recent if all(d.deterministic for d in self.detectors) else 0
        self._recent: OrderedDict[_Key, Verdict] = OrderedDict()
        self._recent_lock = threading.Lock()

    @classmethod
    def default(cls, *, models: BuiltinModels | None = None) -> Judge:
        """The packaged default policy with its configured detectors (all offline)."""
        return cls.from_policy(default_policy(), models=models)

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        only: Sequence[str] | None = None,
        *,
        models: BuiltinModels | None = None,
    ) -> Judge:
        """Build the detectors the policy lists (or just those named in `only`, with the policy's
        options when it lists them). Every listed detector's options are checked either way.

        `models`: the loaded built-in models the detectors share. A server or a run passes the one
        it owns; without it they use `judge.builtin.default_models()`, shared by the process.
        """
        specs = policy.judge.detectors
        listed = {s.name: c for s, c in zip(specs, validate_policy_detectors(policy), strict=True)}
        detectors = []
        for name in listed if only is None else only:
            if name in listed:
                detector_cls, options = listed[name]
                context = {"models": models} if detector_cls.uses_builtin_models else {}
                detectors.append(detector_cls(policy, options=options, **context))
                continue
            try:
                detectors.append(create_detector(name, policy, models=models))
            except RegistryError as exc:
                raise PolicyError(f"policy {policy.ref}: --detector: {exc}") from None
        return cls(policy, detectors)

    # -- input -------------------------------------------------------------------------------
    def prepare(
        self,
        text: object,
        kind: Kind = "prompt",
        *,
        field: str = "text",
        request: str | None = None,
    ) -> Sample:
        """Validate and normalise one input; raises InputError saying what is wrong with it."""
        if not isinstance(text, str):
            raise InputError(f"expected a string, got {type(text).__name__}", field=field)
        if not text.strip():
            raise InputError("text is empty; there is nothing to judge", field=field)
        limit = self.policy.judge.max_input_chars
        if len(text) > limit:
            raise InputError(
                f"text is {len(text):,} characters, over the limit of {limit:,} "
                "(judge.max_input_chars in the policy); split it or raise the limit",
                field=field,
            )
        if not text.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise InputError(
                "text is not valid UTF-8 (it holds undecodable bytes); re-encode it as UTF-8",
                field=field,
            )
        return Sample(normalise(text), kind, request)

    # -- judging -----------------------------------------------------------------------------
    def check(self, text: str, *, kind: Kind = "prompt", request: str | None = None) -> Verdict:
        """Judge one text; for a response, `request` is what it answered (pair detectors use it)."""
        sample = self.prepare(text, kind, request=request)
        findings: list[Finding] = []
        failures: list[DetectorFailure] = []
        for det in self.detectors:
            try:
                findings.extend(det.detect(sample))
            except DetectorError as exc:
                failures.append(DetectorFailure(detector=det.ref, message=str(exc)))
        return self.combine(sample, findings, failures)

    def check_batch(self, samples: Sequence[Sample]) -> list[Verdict]:
        """Judge prepared samples together, letting batching detectors batch; inputs judged lately
        are answered from memory (see `recent`)."""
        if not self._recent_size:
            return self._check_batch(samples)
        keys = [(s.normalised.original, s.kind, s.request) for s in samples]
        out: list[Verdict | None] = []
        with self._recent_lock:
            for key in keys:
                found = self._recent.get(key)
                if found is not None:
                    self._recent.move_to_end(key)
                out.append(found)
        todo = [i for i, found in enumerate(out) if found is None]
        if todo:
            fresh = self._check_batch([samples[i] for i in todo])
            with self._recent_lock:
                for i, verdict in zip(todo, fresh, strict=True):
                    out[i] = verdict
                    if verdict.complete:
                        self._recent[keys[i]] = verdict
                while len(self._recent) > self._recent_size:
                    self._recent.popitem(last=False)
        return [v for v in out if v is not None]

    def _check_batch(self, samples: Sequence[Sample]) -> list[Verdict]:
        per_sample: list[list[Finding]] = [[] for _ in samples]
        failures: list[list[DetectorFailure]] = [[] for _ in samples]
        for det in self.detectors:
            try:
                results = det.detect_batch(samples)
            except DetectorError as exc:
                for fails in failures:
                    fails.append(DetectorFailure(detector=det.ref, message=str(exc)))
                continue
            for found, result in zip(per_sample, results, strict=True):
                found.extend(result)
        return [
            self.combine(s, f, e) for s, f, e in zip(samples, per_sample, failures, strict=True)
        ]

    async def acheck(
        self, text: str, *, kind: Kind = "prompt", request: str | None = None
    ) -> Verdict:
        sample = self.prepare(text, kind, request=request)
        results = await asyncio.gather(
            *(d.adetect(sample) for d in self.detectors), return_exceptions=True
        )
        findings, failures = sort_results(self.detectors, results)
        return self.combine(sample, findings, failures)

    def combine(
        self, sample: Sample, findings: list[Finding], failures: list[DetectorFailure]
    ) -> Verdict:
        return combine_findings(
            self.policy,
            findings,
            failures,
            normalisations=sample.normalised.all_transformations(),
            detectors=[d.ref for d in self.detectors],
        )


def sort_results(
    detectors: Sequence[Plugin], results: Sequence[list[Finding] | BaseException]
) -> tuple[list[Finding], list[DetectorFailure]]:
    """`asyncio.gather(..., return_exceptions=True)` of the detectors, as findings and failures:
    a DetectorError is a failure (never "no findings"); any other exception is raised."""
    findings: list[Finding] = []
    failures: list[DetectorFailure] = []
    for detector, result in zip(detectors, results, strict=True):
        if isinstance(result, DetectorError):
            failures.append(DetectorFailure(detector=detector.ref, message=str(result)))
        elif isinstance(result, BaseException):
            raise result
        else:
            findings.extend(result)
    return findings, failures


def combine_findings(
    policy: Policy,
    findings: list[Finding],
    failures: list[DetectorFailure],
    *,
    normalisations: list[str],
    detectors: list[str],
) -> Verdict:
    """The verdict on one input (a text, or an image for the image detectors) from its findings:
    scores per category (a sub-category's also count for its parent), flagged against the
    policy's thresholds, the strictest action; a detector failure raises or blocks
    (`judge.on_detector_error`), never reads as safe."""
    if failures and policy.judge.on_detector_error == "fail":
        raise DetectorError(failures[0].detector, failures[0].message.split(": ", 1)[-1])
    scores: dict[str, float] = {}
    severities: dict[str, int] = {}
    known = [f for f in findings if f.category in policy.categories]
    for finding in known:
        for category in _self_and_parent(policy, finding.category):
            if finding.score > scores.get(category, -1.0):
                scores[category] = finding.score
            if finding.score >= policy.threshold(category):
                severities[category] = max(severities.get(category, 0), finding.severity)
    flagged = sorted(
        c for c, s in scores.items() if s >= policy.threshold(c) and not policy.is_signal(c)
    )
    action = Action.ALLOW
    for category in flagged:
        candidate = policy.action(category, severities[category])
        if candidate.rank > action.rank:
            action = candidate
    if failures:
        action = Action.BLOCK  # on_detector_error: block -- fail closed, and say why
    return Verdict(
        flagged=bool(flagged),
        action=action,
        severity=max((severities[c] for c in flagged), default=0),
        flagged_categories=flagged,
        category_scores={c: round(s, 6) for c, s in sorted(scores.items())},
        category_severities={c: severities[c] for c in flagged},
        findings=sorted(findings, key=lambda f: (-f.score, f.category)),
        normalisations=normalisations,
        failures=failures,
        policy=policy.ref,
        detectors=detectors,
    )


def _self_and_parent(policy: Policy, category: str) -> list[str]:
    parent = policy.parent(category)
    return [category] if parent is None or parent not in policy.categories else [category, parent]
