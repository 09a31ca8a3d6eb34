"""Per-layer drift, PyTorch vs its ONNX export: every leaf module call against the ONNX value
the exporter's metadata names for it; the drift origin is the first layer over
`layer_tol + layer_rtol * max |ref|` (its own scale)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np

from parityspec.backends.base import Needs, Offer
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, nonfinite_failure
from parityspec.checks.drift_table import LayerDriftTolerances as Tolerances
from parityspec.checks.drift_table import drift_result

if TYPE_CHECKING:
    import torch

TYPE = "layer_drift"
TASKS = ("tensor",)
NEEDS_MODELS = True
# It runs both models itself, final outputs included: no full predict step is planned.
NEEDS_PREDICTIONS = False
MODEL_NEEDS = (Needs(frozenset({Offer.LAYERS})), Needs(frozenset({Offer.ONNX_GRAPH})))


class Spec(CheckSpecBase, tolerances=Tolerances):
    """`between`: a torch backend, then an ONNX backend exported with the dynamo exporter."""

    type: Literal["layer_drift"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    import torch

    from parityspec.drift.torch_layers import compare_torch_onnx_layers

    torch_model, onnx_model = (inputs.models[b] for b in spec.between)
    names = [t.name for t in inputs.spec.model.inputs or []]  # a tensor task declares them

    def batches() -> Iterator[tuple[torch.Tensor, ...]]:
        for _, batch in inputs.data.batches(inputs.spec.data.batch_size):
            yield tuple(torch.from_numpy(np.ascontiguousarray(batch[n])) for n in names)

    table = compare_torch_onnx_layers(
        torch_model.predictor,
        onnx_model.predictor.path,
        batches(),
        tolerance=tolerances.layer_tol,
        rtol=tolerances.layer_rtol,
        input_names=onnx_model.predictor.input_names(),
    )
    return drift_result(
        table,
        "layer",
        tolerances.layer_tol,
        outputs_failure=nonfinite_failure(inputs, *table.final_nonfinite),
        rtol=tolerances.layer_rtol,
    )
