"""Backend kinds. A new kind: one module here satisfying `BackendModule`, one line below."""

from parityspec.backends import onnx, quantized, sklearn, torch
from parityspec.backends.base import BackendModule
from parityspec.plugins import load_plugins

BACKENDS: dict[str, BackendModule] = {m.KIND: m for m in (sklearn, onnx, quantized, torch)}
BACKENDS.update(load_plugins("parityspec.backends", BACKENDS))
