"""NaN or Inf in either model's final outputs fails layer_drift and tensor_drift whatever the
tolerances, naming the rows and the backend. They read no predictions (issue 18.6): the
figures come from their own runs of both models, so the predictions they are given are empty,
as the planner gives them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from parityspec.backends.base import LoadedModel, Predictions
from parityspec.checks import layer_drift, tensor_drift
from parityspec.plan.compile import needs_predictions
from tests.checks.conftest import CANDIDATE, REFERENCE, check_spec, resolve_tolerances
from tests.checks.test_nonfinite_every_check import (
    LOOSEST,
    POISONED_ROWS,
    _onnx_model,
    layer_inputs,
    tensor_drift_inputs,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _run(module, inputs):
    spec = check_spec(module)
    empty = (Predictions(REFERENCE, {}), Predictions(CANDIDATE, {}))
    inputs = replace(inputs, reference=empty[0], candidate=empty[1])
    return module.run(spec, resolve_tolerances(spec, **LOOSEST), inputs)


def test_the_drift_checks_read_no_predictions():
    assert not needs_predictions(layer_drift) and not needs_predictions(tensor_drift)


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    return layer_inputs(tmp_path_factory.mktemp("layers"))


def test_layer_drift_passes_clean_models_without_predictions(layers):
    result = _run(layer_drift, layers)
    assert result.status == "passed", result.reason


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_layer_drift_fails_on_nonfinite_torch_outputs(layers, value):
    module = layers.models[REFERENCE].predictor
    poisoned = torch.nn.Sequential(*module).eval()

    def poison(_module, _args, output):
        output = output.clone()
        output[POISONED_ROWS, 0] = value
        return output

    poisoned[-1].register_forward_hook(poison)
    models = {**layers.models, REFERENCE: LoadedModel(REFERENCE, "torch", poisoned)}
    result = _run(layer_drift, replace(layers, models=models))
    assert result.status == "failed"
    assert "non-finite outputs (NaN/Inf) in 3 rows of ref" in result.reason
    assert "of cand" not in result.reason


def test_tensor_drift_fails_on_nonfinite_candidate_outputs(tmp_path):
    """The candidate ends in Log: -inf on every row with a ReLU output at 0."""
    clean = tensor_drift_inputs(tmp_path)
    model = onnx.load(str(clean.models[CANDIDATE].predictor.path))
    model.graph.node[-1].output[0] = "relu_out"
    model.graph.node.append(helper.make_node("Log", ["relu_out"], ["y"]))
    path = tmp_path / "log.onnx"
    onnx.save(model, str(path))
    models = {**clean.models, CANDIDATE: _onnx_model(path, CANDIDATE, "tensor")}
    result = _run(tensor_drift, replace(clean, models=models))
    x = clean.data.slice(0, len(clean.data))["x"]
    relu = next(iter(clean.models[REFERENCE].predictor.run({"x": x}).values()))
    rows = int((np.asarray(relu) == 0).any(axis=1).sum())  # rows the Log makes -inf
    assert rows > 0 and result.status == "failed"
    assert f"non-finite outputs (NaN/Inf) in {rows} rows of cand" in result.reason
    assert "of ref" not in result.reason
