"""Per-tensor drift between two ONNX models, typically fp32 and its INT8 form: every
intermediate tensor the two share, with SQNR in dB; the drift origin is the first tensor over
`layer_tol + layer_rtol * max |ref|` (its own scale)."""

from __future__ import annotations

from typing import Literal

from parityspec.backends.base import Needs, Offer
from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    nonfinite_failure,
)
from parityspec.checks.drift_table import LayerDriftTolerances as Tolerances
from parityspec.checks.drift_table import drift_result

TYPE = "tensor_drift"
TASKS = ("binary", "multiclass", "regression", "tensor")
NEEDS_MODELS = True
# It runs both models itself, final outputs included: no full predict step is planned.
NEEDS_PREDICTIONS = False
MODEL_NEEDS = (Needs(frozenset({Offer.ONNX_GRAPH})), Needs(frozenset({Offer.ONNX_GRAPH})))


class Spec(CheckSpecBase, tolerances=Tolerances):
    type: Literal["tensor_drift"]
    min_sqnr_db: float | None = None
    """Also require every matched tensor's SQNR to be at least this many dB."""


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    from parityspec.drift.torch_layers import compare_onnx_tensors

    ref, other = (inputs.models[b] for b in spec.between)
    runner = ref.predictor
    batches = (runner.feeds(b) for _, b in inputs.data.batches(inputs.spec.data.batch_size))
    table = compare_onnx_tensors(
        runner.path,
        other.predictor.path,
        batches,
        tolerance=tolerances.layer_tol,
        rtol=tolerances.layer_rtol,
    )
    gates = []
    if spec.min_sqnr_db is not None:
        sqnrs = [r.sqnr_db for r in table.rows if r.sqnr_db is not None]
        gates.append(
            Gate(
                "min_tensor_sqnr_db",
                min(sqnrs, default=float("inf")),
                ">=",
                "min_sqnr_db",
                spec.min_sqnr_db,
            )
        )
    return drift_result(
        table,
        "tensor",
        tolerances.layer_tol,
        gates,
        outputs_failure=nonfinite_failure(inputs, *table.final_nonfinite),
        rtol=tolerances.layer_rtol,
    )
