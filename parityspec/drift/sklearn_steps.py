"""Per-step drift between a fitted scikit-learn pipeline and its skl2onnx conversion.

Mapping steps to ONNX tensors. skl2onnx names intermediates generically ("variable1",
"transformed_column"), so the names alone say nothing. The pipeline is parsed and converted
again with the tool's conventions (the model's own inputs as initial types, zipmap off,
opset 17), with a recording parser per estimator type that keeps the variables each
estimator's parser returns: those are the tensors that carry that step's output, for leaf
steps and for containers (a branch Pipeline, a ColumnTransformer's concatenation) alike.
A name is used only if everything upstream of that tensor in the given model (nodes,
attributes, initializers, inputs) is identical to the fresh conversion, so the value read
is the given model's own computation; it is read by exposing the tensor as an extra output
of the given model, not of a copy. Otherwise the step is "unmatched" with the reason.

Rejected: `skl2onnx.helpers.investigate.collect_intermediate_steps` converts with
`intermediate=True` (Identity nodes kept: not the deployed graph), monkey-patches the
pipeline's estimators (a second call raises), maps leaf operators only, and its
`enumerate_pipeline_models` walks a ColumnTransformer's unfitted `transformers`. Converting
prefixes or branches alone gives separate graphs, the same computation only by assumption.

Comparison. Each row compares the sklearn reference (float64, run end to end in sklearn)
with the ONNX tensor. The reference is first rounded to the tensor's dtype: a float32 graph
cannot hold a value more precisely than its correctly rounded float32, so representing the
data in float32 (raw charges in the thousands move by ~1e-4) is not counted as drift, while
a step whose float32 arithmetic departs from that rounding is. `tolerance` is the absolute
tolerance on that difference, per step. Sparse outputs are densified, classifiers compare
predict_proba columns, string outputs count 1 per differing element. The origin is the
first row, in execution order, over tolerance or non-finite on one side only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from scipy import sparse
from skl2onnx import _parse, convert_sklearn
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing

from parityspec.backends import converters
from parityspec.stats import DiffStats, shown

TARGET_OPSET = 17
PASSTHROUGH = "passthrough"
# ONNX input element type -> (numpy dtype of the feed, skl2onnx initial type).
INPUT_TYPES: dict[int, tuple[type, Any]] = {
    onnx.TensorProto.FLOAT: (np.float32, FloatTensorType),
    onnx.TensorProto.DOUBLE: (np.float64, DoubleTensorType),
    onnx.TensorProto.INT64: (np.int64, Int64TensorType),
    onnx.TensorProto.STRING: (object, StringTensorType),
}


@dataclass
class StepRow:
    name: str
    estimator: str
    onnx_value: str | None
    stats: DiffStats | None
    status: str
    reason: str | None


@dataclass
class StepTable:
    rows: list[StepRow]
    origin: str | None
    tolerance: float
    float32_probe: dict


@dataclass
class _Step:
    name: str
    estimator: Any
    tensor: str | None = None
    reason: str | None = None
    stats: DiffStats = field(default_factory=DiffStats)
    nonfinite_mismatch: int = 0

    @property
    def compared(self) -> str | None:
        """The tensor compared with this step: `_locate` sets one of `tensor` and `reason`,
        and a step given a reason (unmatched) is compared no more."""
        return self.tensor if self.reason is None else None


def compare_pipeline_steps(
    pipeline: Any,
    onnx_model_or_path: onnx.ModelProto | str | Path,
    frame: pd.DataFrame,
    *,
    tolerance: float,
    batch_size: int = 4096,
) -> StepTable:
    """Compare every step of `pipeline` with the ONNX tensor that carries its output."""
    if len(frame) == 0:
        raise ValueError("frame is empty: nothing to compare")
    model = _load(onnx_model_or_path)
    inputs = _graph_inputs(model)
    float_columns = [
        i.name for i in inputs if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    ]
    steps: list[_Step] | None = None
    session, probe = None, _Probe()
    for start in range(0, len(frame), batch_size):
        batch = frame.iloc[start : start + batch_size]
        reference = _sklearn_outputs(pipeline, batch)
        if steps is None:
            steps = _plan(pipeline, model, inputs, reference)
            session = _session(model, [s.tensor for s in steps if s.tensor])
        got = _run(session, inputs, batch)
        for step in steps:
            if (tensor := step.compared) is not None:
                _update(step, reference[step.name][1], got[tensor], start)
        final = steps[-1]
        if (tensor := final.compared) is not None:
            rounded = _predict(pipeline, _round_to_float32(batch, float_columns))
            probe.update(reference[final.name][1], rounded, got[tensor], start)
    assert steps is not None  # the frame has rows: the loop ran
    rows = [_row(step, tolerance) for step in steps]
    origin = next((r.name for r in rows if r.status in ("over", "nonfinite")), None)
    probe_result = probe.result() if steps[-1].reason is None else _Probe.unavailable()
    return StepTable(rows, origin, tolerance, probe_result)


def _load(onnx_model_or_path: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(onnx_model_or_path, onnx.ModelProto):
        return onnx_model_or_path
    return onnx.load(str(Path(onnx_model_or_path)))


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    # Old IR versions list initializers among the inputs; only real feeds count.
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


# --- sklearn side ------------------------------------------------------------------------


def _sklearn_outputs(pipeline: Any, X: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    """Step name -> (estimator, output), in execution order."""
    out: dict[str, tuple[Any, Any]] = {}
    _forward(pipeline, X, "", out)
    return out


def _forward(est: Any, X: Any, path: str, out: dict[str, tuple[Any, Any]]) -> Any:
    if isinstance(est, Pipeline):
        for name, step in est.steps:
            X = _forward(step, X, _join(path, name), out)
        if path:  # a root Pipeline's output is already its last step's row
            out[path] = (est, X)
        return X
    if isinstance(est, ColumnTransformer):
        for name, transformer, columns in est.transformers_:
            if not (isinstance(transformer, str) and transformer == "drop"):
                _forward(transformer, _safe_indexing(X, columns, axis=1), _join(path, name), out)
        y = est.transform(X)
    elif est is None or isinstance(est, str):
        est, y = PASSTHROUGH, X
    else:
        y = _predict(est, X)
    out[path or type(est).__name__] = (est, y)
    return y


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _predict(est: Any, X: Any) -> Any:
    if is_classifier(est):
        # skl2onnx's second classifier output holds probabilities, or scores without them.
        return est.predict_proba(X) if hasattr(est, "predict_proba") else est.decision_function(X)
    return est.transform(X) if hasattr(est, "transform") else est.predict(X)


def _round_to_float32(batch: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return batch.astype({c: np.float32 for c in columns}).astype({c: np.float64 for c in columns})


# --- mapping steps to tensors ------------------------------------------------------------


def _plan(
    pipeline: Any,
    model: onnx.ModelProto,
    inputs: list[onnx.ValueInfoProto],
    reference: dict[str, tuple[Any, Any]],
) -> list[_Step]:
    steps = [_Step(name, est) for name, (est, _) in reference.items()]
    types = {type(s.estimator) for s in steps if s.estimator != PASSTHROUGH}
    try:
        fresh, produced = _reconvert(pipeline, inputs, types)
    except Exception as exc:  # skl2onnx raises many types; each makes every step unmatched
        for step in steps:
            step.reason = f"skl2onnx could not re-convert the pipeline: {exc!r}"
        return steps
    given, fresh_graph = _Graph(model), _Graph(fresh)
    for step in steps:
        step.tensor, step.reason = _locate(step.estimator, produced, given, fresh_graph)
    return steps


def _reconvert(
    pipeline: Any, inputs: list[onnx.ValueInfoProto], types: set[type]
) -> tuple[onnx.ModelProto, dict[int, list[str]]]:
    """Convert again as the tool does; record the output tensors of every estimator."""
    produced: dict[int, list[str]] = {}

    def record(scope: Any, model: Any, parser_inputs: Any, custom_parsers: Any = None) -> Any:
        outputs = _default_parser(model)(scope, model, parser_inputs, custom_parsers=custom_parsers)
        produced[id(model)] = [v.onnx_name for v in outputs]
        return outputs

    # As the export does: boosting families through onnxmltools, HistGB's bools cast.
    converters.register_converters(pipeline)
    final = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    with converters.hist_gradient_boosting_fix():
        fresh = convert_sklearn(
            pipeline,
            initial_types=[(i.name, _initial_type(i)) for i in inputs],
            options={id(final): {"zipmap": False}} if is_classifier(final) else None,
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": 3},
            custom_parsers={t: record for t in types},
        )
    return fresh, produced


def _default_parser(model: Any) -> Callable[..., Any]:
    # Same dispatch as skl2onnx._parse._parse_sklearn when no custom parser is given.
    parser = _parse.sklearn_parsers_map.get(type(model))
    if parser is None and isinstance(model, Pipeline):
        parser = _parse.sklearn_parsers_map[Pipeline]
    return parser or _parse._parse_sklearn_simple_model


def _initial_type(value: onnx.ValueInfoProto) -> Any:
    tensor = value.type.tensor_type
    if tensor.elem_type not in INPUT_TYPES:
        raise ValueError(f"input {value.name!r}: unsupported ONNX element type {tensor.elem_type}")
    shape = [d.dim_value or None for d in tensor.shape.dim]
    return INPUT_TYPES[tensor.elem_type][1]([None, *shape[1:]])


def _locate(
    est: Any, produced: dict[int, list[str]], given: _Graph, fresh: _Graph
) -> tuple[str | None, str | None]:
    if est == PASSTHROUGH:
        return None, "passthrough: skl2onnx emits no node of its own for it"
    names = produced.get(id(est))
    if not names:
        return None, "skl2onnx did not parse this estimator as a step of its own"
    tensor = names[1] if is_classifier(est) and len(names) > 1 else names[0]
    if not given.has(tensor):
        return None, (
            f"tensor {tensor!r} of a fresh conversion is not in the model"
            " (optimised away by skl2onnx, e.g. an Identity)"
        )
    if given.upstream(tensor) != fresh.upstream(tensor):
        return None, f"the model computes {tensor!r} differently from a fresh skl2onnx conversion"
    return tensor, None


class _Graph:
    """Looks up what a tensor depends on, to check two graphs compute it identically."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.producers = {out: node for node in graph.node for out in node.output}
        self.initializers = {i.name: i for i in graph.initializer}
        self.inputs = {i.name: i for i in graph.input}

    def has(self, tensor: str) -> bool:
        return tensor in self.producers or tensor in self.inputs or tensor in self.initializers

    def upstream(self, tensor: str) -> frozenset:
        """Signature of every node, initializer and input `tensor` depends on."""
        signature, seen, stack = set(), set(), [tensor]
        while stack:
            name = stack.pop()
            if not name or name in seen:  # "" marks an omitted optional input
                continue
            seen.add(name)
            if name in self.producers:
                node = self.producers[name]
                signature.add(_node_signature(node))
                stack.extend(node.input)
            elif name in self.initializers:
                signature.add(self.initializers[name].SerializeToString(deterministic=True))
            else:
                signature.add(("input", name, str(self.inputs.get(name))))
        return frozenset(signature)


def _node_signature(node: onnx.NodeProto) -> tuple:
    attributes = sorted(node.attribute, key=lambda a: a.name)
    return (
        node.domain,
        node.op_type,
        tuple(node.input),
        tuple(node.output),
        tuple(a.SerializeToString(deterministic=True) for a in attributes),
    )


# --- ONNX side ---------------------------------------------------------------------------


def _session(model: onnx.ModelProto, tensors: list[str]) -> ort.InferenceSession:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    outputs = {o.name for o in exposed.graph.output}
    inputs = {i.name for i in exposed.graph.input}
    # ORT accepts untyped extra outputs; graph inputs are read from the feeds instead.
    for tensor in dict.fromkeys(tensors):
        if tensor not in outputs and tensor not in inputs:
            exposed.graph.output.append(onnx.ValueInfoProto(name=tensor))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        exposed.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _run(
    session: ort.InferenceSession, inputs: list[onnx.ValueInfoProto], batch: pd.DataFrame
) -> dict[str, np.ndarray]:
    feeds = {i.name: _feed(batch[i.name], i.type.tensor_type.elem_type) for i in inputs}
    names = [o.name for o in session.get_outputs()]
    return {**dict(zip(names, session.run(names, feeds), strict=True)), **feeds}


def _feed(column: pd.Series, elem_type: int) -> np.ndarray:
    dtype = INPUT_TYPES[elem_type][0]
    if dtype is object:  # the tool feeds strings as an object array of str
        column = column.astype(str)
    return column.to_numpy(dtype).reshape(-1, 1)


# --- comparison --------------------------------------------------------------------------


def _update(step: _Step, ref: Any, got: np.ndarray, first_index: int) -> None:
    ref, got = _dense_2d(ref, len(got)), _dense_2d(got, len(got))
    if ref.shape != got.shape:
        step.reason = f"shapes differ: sklearn {ref.shape} vs ONNX {got.shape}"
        return
    a, b = _as_float64(ref), _as_float64(got)
    if a is None or b is None:  # strings: a difference of 1 per differing element
        a, b = np.zeros(ref.shape), (ref.astype(str) != got.astype(str)).astype(np.float64)
    elif np.issubdtype(got.dtype, np.floating):
        a = a.astype(got.dtype).astype(np.float64)  # the best the ONNX dtype can hold
    step.nonfinite_mismatch += _nonfinite_mismatch(a, b)
    step.stats.update(a, b, first_index)


def _dense_2d(values: Any, n: int) -> np.ndarray:
    values = values.toarray() if sparse.issparse(values) else np.asarray(values)
    return values.reshape(n, -1)


def _as_float64(values: np.ndarray) -> np.ndarray | None:
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _nonfinite_mismatch(a: np.ndarray, b: np.ndarray) -> int:
    # NaN or inf at the same place on both sides is agreement, not drift.
    agree = (a == b) | (np.isnan(a) & np.isnan(b))
    return int((~(np.isfinite(a) & np.isfinite(b)) & ~agree).sum())


def _row(step: _Step, tolerance: float) -> StepRow:
    estimator = step.estimator if step.estimator == PASSTHROUGH else type(step.estimator).__name__
    if step.reason is not None:
        return StepRow(step.name, estimator, step.tensor, None, "unmatched", step.reason)
    stats = step.stats
    status, reason = "ok", None
    if step.nonfinite_mismatch:
        status = "nonfinite"
        reason = f"{step.nonfinite_mismatch} elements are finite on one side only"
    elif stats.max_abs > tolerance:
        status, reason = "over", f"max abs {shown(stats.max_abs)} > tolerance {tolerance:g}"
    return StepRow(step.name, estimator, step.tensor, stats, status, reason)


@dataclass
class _Probe:
    """Final output: sklearn on float64 inputs, sklearn on float32-rounded inputs, ONNX."""

    float64_vs_onnx: DiffStats = field(default_factory=DiffStats)
    float32_vs_onnx: DiffStats = field(default_factory=DiffStats)
    float64_vs_float32: DiffStats = field(default_factory=DiffStats)

    def update(self, ref64: Any, ref32: Any, got: Any, first_index: int) -> None:
        n = len(got)
        ref64, ref32, got = (_dense_2d(v, n).astype(np.float64) for v in (ref64, ref32, got))
        self.float64_vs_onnx.update(ref64, got, first_index)
        self.float32_vs_onnx.update(ref32, got, first_index)
        self.float64_vs_float32.update(ref64, ref32, first_index)

    def result(self) -> dict:
        base = self.float64_vs_onnx.mean_abs
        explained = 1.0 if base == 0 else 1.0 - self.float32_vs_onnx.mean_abs / base
        explained = float(np.clip(explained, 0.0, 1.0))
        return {
            "max_abs_diff_float64_vs_onnx": self.float64_vs_onnx.max_abs,
            "max_abs_diff_float32_inputs_vs_onnx": self.float32_vs_onnx.max_abs,
            "max_abs_diff_float64_vs_float32_inputs": self.float64_vs_float32.max_abs,
            "explained_fraction": explained,
            "verdict": _verdict(explained, self.float64_vs_onnx.max_abs),
        }

    @staticmethod
    def unavailable() -> dict:
        keys = (
            "max_abs_diff_float64_vs_onnx",
            "max_abs_diff_float32_inputs_vs_onnx",
            "max_abs_diff_float64_vs_float32_inputs",
            "explained_fraction",
        )
        return {**dict.fromkeys(keys), "verdict": "not run: the final output is unmatched"}


def _verdict(explained: float, max_abs: float) -> str:
    if max_abs == 0:
        return "sklearn and ONNX agree exactly on the final output"
    share = f"rounding the inputs to float32 explains {explained:.0%} of the mean final-output gap"
    if explained >= 0.9:
        return share
    return f"{share}; the rest comes from float32 arithmetic inside the ONNX graph"
