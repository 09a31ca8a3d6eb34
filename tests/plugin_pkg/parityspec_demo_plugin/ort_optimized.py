"""Backend kind `ort_optimized`: an ONNX graph rewritten by ONNX Runtime's graph optimizer
(constant folding, redundant nodes removed, nodes fused) and saved as its own file.

It is made from another backend (`from: onnx`) through its own `make`; what it accepts and
what it offers are declared below, so `validate`, the checks and the cache need no edit."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.artifacts import write_bytes, write_json
from parityspec.backends.base import LoadedModel, Needs, Offer, Verb
from parityspec.backends.onnx import OnnxRunner
from parityspec.loading import file_sha256
from parityspec.spec.base import Name
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    from parityspec.backends.context import RunContext
    from parityspec.data import Dataset

KIND = "ort_optimized"
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS, Offer.ONNX_GRAPH})
# Any ONNX graph but a quantized one: what comes out would be quantized too.
DERIVED_FROM = Needs(frozenset({Offer.ONNX_GRAPH}), none_of=frozenset({Offer.QUANTIZED_GRAPH}))
LIBRARIES = ("onnxruntime",)
BINDINGS_FILE = "bindings.json"


class Spec(BackendSpecBase):
    kind: Literal["ort_optimized"]
    from_: Name = Field(alias="from")
    """The ONNX backend to optimize."""
    level: Literal["basic", "extended"] = "basic"
    """ONNX Runtime's optimization level. (`all` adds layouts for this machine's CPU: a file
    written with it is not portable, so it is not offered.)"""


def verb(spec: Spec) -> Verb:
    return "convert"


def source(spec: Spec) -> str | None:
    return spec.from_


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return []


def needs_data(spec: Spec) -> bool:
    return False


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: Any, data: Dataset | None
) -> LoadedModel:
    import onnx
    import onnxruntime as ort

    runner: OnnxRunner = source_model.predictor  # the source offers ONNX_GRAPH
    out_dir = ctx.artifact_dir(name)
    partial = out_dir / "model.partial.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[spec.level]
    options.optimized_model_filepath = str(partial)
    ort.InferenceSession(str(runner.path), options, providers=["CPUExecutionProvider"])
    path = out_dir / "model.onnx"
    write_bytes(path, partial.read_bytes())  # atomically, as parityspec writes artifacts
    partial.unlink()
    # The optimizer keeps the inputs' names; the columns feeding them are the source's.
    bindings = out_dir / BINDINGS_FILE
    write_json(bindings, [asdict(b) for b in runner.inputs])
    facts = {
        "level": spec.level,
        "nodes": len(onnx.load(str(path)).graph.node),
        "source_nodes": len(onnx.load(str(runner.path)).graph.node),
        "model_sha256": file_sha256(path),
    }
    model = LoadedModel(name, KIND, None, {"model": path, "bindings": bindings}, facts)
    return reopen(ctx, model, spec)


def reopen(ctx: RunContext, model: LoadedModel, spec: Spec) -> LoadedModel:
    """A session on the (possibly cached) files: the step cache then restores it whole."""
    bindings = json.loads(Path(model.files["bindings"]).read_text())
    model.predictor = OnnxRunner.open(
        model.files["model"], ctx, {"inputs": bindings}, threads=0, made_here=True
    )
    return model


def predict(model: LoadedModel, batch: Any) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = model.predictor.run(batch)
    return result
