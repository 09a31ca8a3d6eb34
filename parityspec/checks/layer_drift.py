"""Per-layer drift, PyTorch vs its ONNX export: every call of a compared module (leaves, and
modules with computation of their own, or those `depth` / `modules` choose) against the ONNX
value the exporter's metadata names for it; the drift origin is the first row whose own error
is over `layer_tol + layer_rtol * max |ref|` (its own scale)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

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
    depth: Annotated[int, Field(ge=1)] | None = None
    """Compare modules at most this deep in the module tree (`encoder.layers.0` is 3 deep):
    a module at this depth is compared whole, its children not. Default: every leaf and
    every module with computation of its own (an attention, a block's residual Add)."""
    modules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None
    """Compare only the modules whose dotted path matches one of these fnmatch patterns
    (e.g. `encoder.layers.*.self_attn`), leaves or not; instead of `depth`."""

    @model_validator(mode="after")
    def _one_selection(self) -> Spec:
        if self.depth is not None and self.modules is not None:
            raise ValueError("give either depth or modules, not both: they choose rows alike")
        return self


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    import torch

    from parityspec.drift.torch_layers import compare_torch_onnx_layers

    torch_model, onnx_model = (inputs.models[b] for b in spec.between)
    paths = [path for path, _ in torch_model.predictor.named_modules() if path]
    unknown = [p for p in spec.modules or () if not fnmatch.filter(paths, p)]
    if unknown:
        return CheckResult(
            "failed",
            f"modules: {', '.join(map(repr, unknown))} match no module of {spec.between[0]}"
            f" (its modules: {', '.join(paths[:8])}{', ...' if len(paths) > 8 else ''})",
        )
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
        depth=spec.depth,
        modules=spec.modules,
    )
    return drift_result(
        table,
        "layer",
        tolerances.layer_tol,
        outputs_failure=nonfinite_failure(inputs, *table.final_nonfinite),
        rtol=tolerances.layer_rtol,
    )
