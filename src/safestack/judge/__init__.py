"""Judgement core: normalisation, detectors and their registry, and the Judge that combines them."""

from safestack.judge.detector import (
    Detector,
    DetectorOptions,
    Sample,
    available_detectors,
    create_detector,
    detector,
    validate_policy_detectors,
)
from safestack.judge.judge import Judge
from safestack.judge.normalise import Normalised, normalise

__all__ = [
    "Detector",
    "DetectorOptions",
    "Judge",
    "Normalised",
    "Sample",
    "available_detectors",
    "create_detector",
    "detector",
    "normalise",
    "validate_policy_detectors",
]
