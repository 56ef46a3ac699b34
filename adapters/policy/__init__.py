"""Policy runtimes behind the engine's decision-model port: the ONNX model (FP32/INT8) and a rule baseline.

Submodules import their heavy dependencies themselves; importing this package loads nothing.
"""
