"""Per-step drift, a scikit-learn pipeline vs its ONNX export: the output of every pipeline
step (and ColumnTransformer branch) against the ONNX tensor carrying it, plus a float32
sensitivity probe; the drift origin is the first step over `layer_tol`.

Each step's scikit-learn output is rounded to float32 before comparing, since a float32 graph
cannot hold it more exactly: what remains is drift the step's own arithmetic adds."""

from __future__ import annotations

from typing import Literal

from parityspec.backends.base import Needs, Offer
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, outputs_nonfinite
from parityspec.checks.drift_table import DriftTolerances as Tolerances
from parityspec.checks.drift_table import drift_result
from parityspec.errors import InputError

TYPE = "step_drift"
TASKS = ("binary", "multiclass", "regression")
NEEDS_MODELS = True
# The candidate's nodes must match a fresh conversion of the pipeline: not a quantized graph.
MODEL_NEEDS = (
    Needs(frozenset({Offer.PIPELINE_STEPS})),
    Needs(frozenset({Offer.ONNX_GRAPH}), none_of=frozenset({Offer.QUANTIZED_GRAPH})),
)


class Spec(CheckSpecBase, tolerances=Tolerances):
    """`between`: a sklearn backend (a Pipeline), then the ONNX backend exported from it."""

    type: Literal["step_drift"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    from parityspec.drift.sklearn_steps import compare_pipeline_steps

    sk_model, onnx_model = (inputs.models[b] for b in spec.between)
    # A data set too large to hold is compared on its first rows (`sample_rows` says so).
    frame = inputs.data.sample()
    import pandas as pd  # imported when the check runs: `validate` never loads pandas

    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{spec.id}: step_drift needs tabular data")
    table = compare_pipeline_steps(
        sk_model.predictor,
        onnx_model.predictor.path,
        frame,
        tolerance=tolerances.layer_tol,
        batch_size=inputs.spec.data.batch_size,
    )
    result = drift_result(
        table, "step", tolerances.layer_tol, outputs_failure=outputs_nonfinite(inputs)
    )
    result.details["float32_probe"] = table.float32_probe
    result.details["sample_rows"] = len(frame)
    return result
