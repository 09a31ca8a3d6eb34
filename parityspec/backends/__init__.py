"""Backend kinds. A new kind: one module here satisfying `BackendModule`, one line below."""

from parityspec.backends import onnx, quantized, sklearn, torch
from parityspec.backends.base import BackendModule, capabilities
from parityspec.lineage import CORE_LIBRARIES
from parityspec.plugins import load_plugins

BACKENDS: dict[str, BackendModule] = {m.KIND: m for m in (sklearn, onnx, quantized, torch)}
BACKENDS.update(load_plugins("parityspec.backends", BACKENDS))


def key_libraries() -> tuple[str, ...]:
    """The core libraries and every registered kind's, each once: their versions enter every
    cache key, so upgrading any of them recomputes what is cached."""
    declared = (n for m in BACKENDS.values() for n in capabilities(m).LIBRARIES)
    return tuple(dict.fromkeys((*CORE_LIBRARIES, *declared)))
