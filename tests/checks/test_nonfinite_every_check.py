"""NaN or Inf in either backend's outputs fails every check type in the registry that reads
them, whatever the tolerances, naming how many rows and which backend.

Each check type that reads predictions has a builder here: inputs on which it passes under
the loosest tolerances. A type added to the registry without one fails
`test_every_check_type_that_reads_predictions_has_a_builder`. The only exemption is a check
that declares it reads no predictions (`NEEDS_PREDICTIONS = False`, as `benchmark` does):
the planner gives it none, so there are none to poison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parityspec.backends.base import LoadedModel, Predictions
from parityspec.backends.onnx import InputBinding, OnnxRunner, open_session
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckInputs
from parityspec.data import Dataset
from parityspec.plan.compile import needs_predictions
from tests.checks.conftest import CANDIDATE, REFERENCE, build_spec, check_spec, resolve_tolerances

# NaN and Inf inputs make numpy warn inside the checks; the verdicts are what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ROWS = 8
POISONED_ROWS = [1, 4, 6]
# The loosest value of every tolerance: only NaN or Inf can fail a check.
LOOSEST = {
    "abs_tol": 1e300,
    "mean_tol": 1e300,
    "atol": 1e300,
    "rtol": 1e300,
    "max_violation_fraction": 1.0,
    "layer_tol": 1e300,
    "min_label_agreement": 0.0,
    "max_flip_rate": 1.0,
    "flip_margin": 1.0,
    "max_metric_drop": 1e300,
    "min_top_k_agreement": 0.0,
    "score_atol": 1e300,
    "score_rtol": 1e300,
    "max_score_violation_fraction": 1.0,
}
READS_PREDICTIONS = sorted(t for t, module in CHECKS.items() if needs_predictions(module))


def _probabilities(classes: int, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).random((ROWS, classes)) + 0.1
    return raw / raw.sum(axis=1, keepdims=True)


def _tabular(task: str, outputs: dict, models=None, data=None) -> CheckInputs:
    target = np.arange(ROWS) % 2
    data = data or Dataset(
        pd.DataFrame({"f0": np.linspace(-1, 1, ROWS), "f1": np.linspace(2, 0, ROWS)}),
        target=target,
        classes=np.array([0, 1]),
    )
    return CheckInputs(
        build_spec(task),
        data,
        Predictions(REFERENCE, outputs),
        Predictions(CANDIDATE, {k: v.copy() for k, v in outputs.items()}),
        models or {},
    )


def probability_inputs(task: str, classes: int) -> Callable[[Path], CheckInputs]:
    return lambda _: _tabular(task, {"probabilities": _probabilities(classes)})


def tensor_inputs(_: Path) -> CheckInputs:
    outputs = {"output_0": np.random.default_rng(1).normal(size=(ROWS, 2, 3))}
    return _tabular("tensor", outputs)


def _x() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(ROWS, 4)).astype(np.float32)


def _onnx_model(path: Path, name: str, task: str) -> LoadedModel:
    binding = [InputBinding("x", "float32", ["x"])]
    runner = OnnxRunner(open_session(path), path, task, binding, None)
    return LoadedModel(name, "onnx", runner)


def layer_inputs(folder: Path) -> CheckInputs:
    """A torch module and its dynamo ONNX export, as `layer_drift` compares them."""
    import torch

    from parityspec.backends.torch_export import export_torch_to_onnx

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    x = _x()
    example = (torch.from_numpy(x[:2]),)
    path = export_torch_to_onnx(module, example, folder / "layers.onnx", input_names=["x"])
    models = {
        REFERENCE: LoadedModel(REFERENCE, "torch", module),
        CANDIDATE: _onnx_model(path, CANDIDATE, "tensor"),
    }
    with torch.no_grad():
        outputs = {"output_0": module(torch.from_numpy(x)).numpy().astype(np.float64)}
    return _tabular("tensor", outputs, models, Dataset({"x": x}))


def tensor_drift_inputs(folder: Path) -> CheckInputs:
    """One small ONNX graph, x -> MatMul -> Relu, against itself."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.5, -1.0, 0.25] * 4)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [weights],
    )
    path = folder / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    models = {name: _onnx_model(path, name, "tensor") for name in (REFERENCE, CANDIDATE)}
    x = _x()
    outputs = models[REFERENCE].predictor.run({"x": x})
    return _tabular("tensor", outputs, models, Dataset({"x": x}))


def step_inputs(folder: Path) -> CheckInputs:
    """A scikit-learn pipeline and its skl2onnx export, as `step_drift` compares them."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame({"f0": np.linspace(-1, 1, ROWS), "f1": np.linspace(2, 0, ROWS)})
    target = np.arange(ROWS) % 2
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)
    exported = to_onnx(
        pipeline,
        initial_types=[(c, FloatTensorType([None, 1])) for c in frame.columns],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path = folder / "pipeline.onnx"
    path.write_bytes(exported.SerializeToString())
    bindings = [InputBinding(c, "float32", [c]) for c in frame.columns]
    runner = OnnxRunner(open_session(path), path, "binary", bindings, None)
    models = {
        REFERENCE: LoadedModel(REFERENCE, "sklearn", pipeline),
        CANDIDATE: LoadedModel(CANDIDATE, "onnx", runner),
    }
    outputs = {"probabilities": pipeline.predict_proba(frame)}
    return _tabular("binary", outputs, models, Dataset(frame, target, np.array([0, 1])))


BUILDERS: dict[str, Callable[[Path], CheckInputs]] = {
    "probability_parity": probability_inputs("binary", 2),
    "output_parity": tensor_inputs,
    "label_agreement": probability_inputs("multiclass", 3),
    "threshold_flips": probability_inputs("binary", 2),
    "metric_delta": probability_inputs("binary", 2),
    "step_drift": step_inputs,
    "top_k_agreement": probability_inputs("multiclass", 4),
    "score_parity": lambda _: _tabular(
        "binary", {"scores": np.random.default_rng(2).normal(size=ROWS)}
    ),
}


def test_every_check_type_that_reads_predictions_has_a_builder():
    assert sorted(BUILDERS) == READS_PREDICTIONS
    exempt = sorted(set(CHECKS) - set(READS_PREDICTIONS))
    assert all(CHECKS[t].NEEDS_PREDICTIONS is False for t in exempt)


@pytest.fixture(scope="module")
def clean_inputs(tmp_path_factory):
    """Each check type's passing inputs, built once on first use."""
    built: dict[str, CheckInputs] = {}

    def get(check_type: str) -> CheckInputs:
        if check_type not in built:
            built[check_type] = BUILDERS[check_type](tmp_path_factory.mktemp(check_type))
        return built[check_type]

    return get


def _run(check_type: str, inputs: CheckInputs):
    module = CHECKS[check_type]
    spec = check_spec(module)
    return module.run(spec, resolve_tolerances(spec, **LOOSEST), inputs)


def _poisoned(predictions: Predictions, value: float) -> Predictions:
    """One element of each poisoned row set to `value` (the first, so a check that reads
    only the last column must still look at the whole row)."""
    outputs = {}
    for name, values in predictions.outputs.items():
        values = np.array(values, dtype=np.float64)
        values.reshape(len(values), -1)[POISONED_ROWS, 0] = value
        outputs[name] = values
    return replace(predictions, outputs=outputs)


@pytest.mark.parametrize("check_type", READS_PREDICTIONS)
def test_clean_inputs_pass_under_the_loosest_tolerances(clean_inputs, check_type):
    result = _run(check_type, clean_inputs(check_type))
    assert result.status == "passed", result.reason


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("side", ["reference", "candidate"])
@pytest.mark.parametrize("check_type", READS_PREDICTIONS)
def test_nonfinite_outputs_fail_every_check(clean_inputs, check_type, side, value):
    clean = clean_inputs(check_type)
    inputs = replace(clean, **{side: _poisoned(getattr(clean, side), value)})
    result = _run(check_type, inputs)
    assert result.status == "failed"
    poisoned, spared = (REFERENCE, CANDIDATE) if side == "reference" else (CANDIDATE, REFERENCE)
    assert f"non-finite outputs (NaN/Inf) in 3 rows of {poisoned}" in result.reason
    assert f"of {spared}" not in result.reason
