"""Backend kinds. A new kind: one module here satisfying `BackendModule`, one line below."""

from parityspec.backends import (
    catboost,
    float16,
    lightgbm,
    onnx,
    onnx_reference,
    quantized,
    sklearn,
    torch,
    xgboost,
)
from parityspec.backends.base import BackendModule, capabilities
from parityspec.lineage import CORE_LIBRARIES
from parityspec.plugins import DISTRIBUTIONS, load_plugins

BACKENDS: dict[str, BackendModule] = {
    m.KIND: m
    for m in (
        sklearn,
        onnx,
        quantized,
        torch,
        xgboost,
        lightgbm,
        catboost,
        onnx_reference,
        float16,
    )
}
BACKENDS.update(load_plugins("parityspec.backends", BACKENDS))


def key_libraries() -> tuple[str, ...]:
    """The core libraries, every registered kind's and the distributions of the backend and
    check plugins, each once: their versions enter every cache key, so upgrading any of them
    recomputes what is cached."""
    declared = (n for m in BACKENDS.values() for n in capabilities(m).LIBRARIES)
    groups = ("parityspec.backends", "parityspec.checks")  # a format makes nothing cached
    plugins = sorted(set().union(*(DISTRIBUTIONS.get(g, set()) for g in groups)))
    return tuple(dict.fromkeys((*CORE_LIBRARIES, *declared, *plugins)))
