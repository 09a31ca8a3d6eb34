"""An ONNX backend's graph converted to float16 by onnxruntime.transformers.float16, by
default with float32 inputs and outputs, so it is fed and compared as the source is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.backends.base import LoadedModel, Needs, Offer, Verb
from parityspec.backends.onnx import (
    FEATURES_FILE,
    OnnxRunner,
    SessionSpec,
    open_session,
    require_session_providers,
    runtime_facts,
)
from parityspec.errors import StepError, first_line
from parityspec.loading import file_sha256
from parityspec.spec.base import Name

if TYPE_CHECKING:
    from onnx import ModelProto

    from parityspec.backends.context import RunContext
    from parityspec.backends.onnx import InputBinding
    from parityspec.data import Features, Rows

KIND = "float16"
# Its tensors keep the source's names and match them one for one: not a quantized graph.
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS, Offer.ONNX_GRAPH, Offer.FLOAT16_GRAPH})
DERIVED_FROM = Needs(
    all_of=frozenset({Offer.ONNX_GRAPH}),
    none_of=frozenset({Offer.QUANTIZED_GRAPH, Offer.FLOAT16_GRAPH}),
)
LIBRARIES = ("onnx", "onnxruntime")
MODEL_FILE = "model.fp16.onnx"


class Spec(SessionSpec):
    kind: Literal["float16"]
    from_: Name = Field(alias="from")
    """The ONNX backend to convert: an export or a file."""
    keep_io_types: bool = True
    """Keep float32 inputs and outputs (Cast nodes at the graph's edges), so the model is fed
    and compared as its source is. `false`: float16 inputs and outputs, as a float16
    deployment is fed; the outputs are widened to float32 for the checks."""
    op_block_list: list[Annotated[str, Field(min_length=1)]] = ["Concat"]
    """Op types kept in float32, beside the converter's own list (the ai.onnx.ml ops, TopK,
    Range, ...). `Concat` by default: without it the churn MLP's converted graph joins
    float32 and float16 inputs at a Concat, which ONNX Runtime refuses to load."""


def verb(spec: Spec) -> Verb:
    return "convert"


def source(spec: Spec) -> str | None:
    return spec.from_


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return []


def needs_data(spec: Spec) -> bool:
    return False


def block_list(spec: Spec) -> list[str]:
    """The op types the converter keeps in float32: its own and the spec's."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return sorted(set(DEFAULT_OP_BLOCK_LIST) | set(spec.op_block_list))


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    import onnx

    from parityspec.artifacts import write_bytes, write_json

    assert source_model is not None  # source(): a conversion is given the `from:` model
    require_session_providers(spec.session_settings())  # before converting, not after
    runner: OnnxRunner = source_model.predictor  # DERIVED_FROM: an ONNX graph
    fp32 = onnx.load(str(runner.path))
    blocked = block_list(spec)
    fp16 = _convert(fp32, spec, blocked)
    out_dir = ctx.artifact_dir(name)
    path = out_dir / MODEL_FILE
    write_bytes(path, fp16.SerializeToString())
    files = {"model": path}
    inputs = _bindings(runner.inputs, fp16)
    if inputs:
        features = out_dir / FEATURES_FILE
        write_json(features, {"inputs": [asdict(b) for b in inputs]})
        files[FEATURES_FILE[:-5]] = features
    facts: dict[str, Any] = {
        "keep_io_types": spec.keep_io_types,
        "op_block_list": spec.op_block_list,
        "float32_ops": _op_counts(fp16, blocked, kept=True),
        "converted_ops": _op_counts(fp16, blocked, kept=False),
        "casts_added": _casts(fp16) - _casts(fp32),
        "size_bytes": path.stat().st_size,
        "source_size_bytes": runner.path.stat().st_size,
        "model_sha256": file_sha256(path),
    }
    facts["size_ratio"] = round(facts["size_bytes"] / facts["source_size_bytes"], 4)
    if runner.classes:
        facts["classes"] = runner.classes
    model = reopen(ctx, LoadedModel(name, KIND, None, files, facts), spec, made_here=True)
    used = model.predictor.session.get_providers()
    model.facts["session"] = spec.session_settings().facts(used)
    model.facts["runtime"] = runtime_facts(model.predictor.session)
    return model


def reopen(ctx: RunContext, model: LoadedModel, spec: Spec, made_here: bool = False) -> LoadedModel:
    """Opens the session on the model's files: after `make`, and on a model restored from
    the step cache (whose files are its own copies)."""
    features_file = model.files.get(FEATURES_FILE[:-5])
    features = json.loads(Path(features_file).read_text()) if features_file else None
    path = Path(model.files["model"])
    try:
        settings = spec.session_settings()
        session = open_session(path, settings, made_here, ctx=ctx, backend=model.backend)
    except StepError as error:
        # ONNX Runtime names the op whose inputs mix float32 and float16 (`Optype (Concat)`).
        found = re.search(r"Optype \((\w+)\)", str(error))
        op = found[1] if found else "the op named below"
        raise StepError(
            f"the float16 graph does not load: add {op} to "
            f"backends.{model.backend}.op_block_list to keep it in float32; {error}"
        ) from error
    model.predictor = OnnxRunner.on(session, path, ctx, features)
    return model


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    from parityspec.backends.onnx import runtime_call as onnx_call

    return onnx_call(model, batch)


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    runner: OnnxRunner = model.predictor
    outputs = runner.run(batch)
    # float16 outputs (keep_io_types: false) widened exactly, so checks sum in float32.
    return {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in outputs.items()}


def _convert(fp32: ModelProto, spec: Spec, blocked: list[str]) -> ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        fp16 = convert_float_to_float16(
            fp32, keep_io_types=spec.keep_io_types, op_block_list=blocked
        )
        # The converter appends its input Casts after their readers; ONNX Runtime sorts the
        # nodes itself, the ONNX checker and reference evaluator require them sorted.
        OnnxModel(fp16).topological_sort()
        return fp16
    except Exception as error:
        raise StepError(f"onnxruntime.transformers.float16 failed: {first_line(error)}") from error


def _bindings(inputs: list[InputBinding] | None, fp16: ModelProto) -> list[InputBinding]:
    """The source's input bindings, float32 ones fed as float16 where the graph's input
    became float16 (keep_io_types: false)."""
    from onnx import TensorProto

    halves = {
        i.name for i in fp16.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT16
    }
    return [
        replace(b, dtype="float16") if b.name in halves and b.dtype == "float32" else b
        for b in inputs or []
    ]


def _op_counts(model: ModelProto, blocked: list[str], kept: bool) -> dict[str, int]:
    """Op types by count: those kept in float32 (`kept`), or those converted; the converter
    keeps exactly the nodes of a blocked op type. Its Casts are counted apart."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "Cast" and (node.op_type in blocked) == kept:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def _casts(model: ModelProto) -> int:
    return sum(node.op_type == "Cast" for node in model.graph.node)
