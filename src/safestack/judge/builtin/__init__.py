"""The built-in judgement models: static and ONNX embedders, calibrated heads, cascade detectors."""
