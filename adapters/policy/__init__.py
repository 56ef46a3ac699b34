"""Policy runtimes behind core.ports.PolicyModel: the ONNX model (FP32/INT8), a rule baseline, batching.

Submodules import their heavy dependencies themselves; importing this package loads nothing.
"""
