"""The built-in judgement models: static and ONNX embedders, calibrated heads, cascade detectors,
and `BuiltinModels`, which loads and keeps them for its owner."""

from safestack.judge.builtin.models import BuiltinModels, default_models

__all__ = ["BuiltinModels", "default_models"]
