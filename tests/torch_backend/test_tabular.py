"""The torch backend on table rows: binary, multiclass and regression nets, trained here in
about a second each, against their ONNX export and its INT8 form."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from parityspec.backends.torch_export import TabularHead
from parityspec.errors import InputError
from tests.conftest import REPO

CHURN = REPO / "examples" / "churn"

# Factories of real nets on scikit-learn's bundled data, built on the churn example's trainer.
NETS = f'''
import importlib.util

import numpy as np
from sklearn.datasets import load_diabetes, load_iris
import torch
from torch import nn

_spec = importlib.util.spec_from_file_location("torch_mlp", "{CHURN / "torch_mlp.py"}")
torch_mlp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(torch_mlp)


def iris_logits():
    x, y = load_iris(return_X_y=True)
    return torch_mlp.fit_tabular_net(x, y, outputs=3, loss=nn.CrossEntropyLoss(), epochs=150)


def iris_probabilities():
    return nn.Sequential(iris_logits(), nn.Softmax(dim=1))


class PerColumn(nn.Module):
    """Takes one (rows, 1) tensor per column, as `feed: columns` calls it."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *columns):
        return self.net(torch.cat(columns, dim=1))


def iris_per_column():
    return PerColumn(iris_logits())


def diabetes_regressor():
    x, y = load_diabetes(return_X_y=True)
    target = y.astype(np.float32).reshape(-1, 1)
    return torch_mlp.fit_tabular_net(x, target, outputs=1, loss=nn.MSELoss(), epochs=300)
'''


def _spec(tmp_path, task: str, data: dict, torch_fields: dict, checks: list[dict]) -> str:
    (tmp_path / "nets.py").write_text(NETS)
    spec = {
        "parityspec": 1,
        "name": f"torch-{task}",
        "data": data,
        "model": {"task": task},
        "backends": {
            "torch": {"kind": "torch", **torch_fields},
            "onnx": {"kind": "onnx", "from": "torch"},
            "int8": {"kind": "quantized", "from": "onnx", "method": "dynamic"},
        },
        "checks": checks,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def _run(invoke, spec: str, out) -> tuple[object, dict]:
    result = invoke("run", spec, "--out", out)
    return result, json.loads((out / "report.json").read_text())


def _figures(report: dict) -> dict[str, dict]:
    return {c["id"]: c["figures"] for c in report["checks"]}


def test_bundled_binary_spec_compares_torch_onnx_and_int8(invoke, tmp_path):
    result, report = _run(invoke, str(REPO / "specs" / "churn_torch.yaml"), tmp_path)
    assert result.exit_code == 0, result.output
    figures = _figures(report)
    # The export carries the sigmoid: float32 torch and ONNX Runtime agree to rounding.
    assert figures["onnx-parity"]["max_abs_diff"] < 1e-5
    assert figures["onnx-labels"]["agreement"] == 1.0
    assert figures["onnx-flips"]["flip_rate"] == 0.0
    # INT8 moves the probabilities visibly (so the comparison is real), within lenient.
    assert 1e-3 < figures["int8-parity"]["max_abs_diff"] < 0.08
    features = json.loads((tmp_path / "artifacts" / "onnx" / "onnx_features.json").read_text())
    assert features["inputs"] == [
        {
            "name": "features",
            "dtype": "float32",
            "columns": [
                "tenure_months",
                "monthly_charges",
                "total_charges",
                "support_calls",
                "data_usage_gb",
                "age",
            ],
        }
    ]


def test_a_state_dict_on_parquet_rows_predicts_as_the_trained_module(invoke, tmp_path):
    """The deployment route: an architecture factory plus saved weights, rows from Parquet."""
    import importlib.util

    import pandas as pd

    spec_of = importlib.util.spec_from_file_location("torch_mlp", CHURN / "torch_mlp.py")
    torch_mlp = importlib.util.module_from_spec(spec_of)
    spec_of.loader.exec_module(torch_mlp)
    torch.save(torch_mlp.churn_mlp().state_dict(), tmp_path / "churn.pt")
    pd.read_csv(CHURN / "churn.csv").iloc[:1000].to_parquet(tmp_path / "churn.parquet")
    module = f"{CHURN}/torch_mlp.py"
    spec = {
        "parityspec": 1,
        "name": "torch-state-dict",
        "data": {
            "path": "churn.parquet",
            "target": "churned",
            "features": torch_mlp.NUMERIC,
        },
        "model": {"task": "binary"},
        "backends": {
            "trained": {"kind": "torch", "module": f"{module}:churn_mlp"},
            "loaded": {
                "kind": "torch",
                "module": f"{module}:churn_mlp_architecture",
                "state_dict": "churn.pt",
            },
            "onnx": {"kind": "onnx", "from": "loaded"},
        },
        "checks": [
            {"id": "same", "type": "probability_parity", "between": ["trained", "loaded"]},
            {"id": "onnx", "type": "threshold_flips", "between": ["loaded", "onnx"]},
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result, report = _run(invoke, str(path), tmp_path / "r")
    assert result.exit_code == 0, result.output
    figures = _figures(report)
    assert figures["same"]["max_abs_diff"] == 0.0
    assert figures["onnx"]["samples"] == 1000 and figures["onnx"]["flips"] == 0


@pytest.mark.parametrize(
    ("module", "fields"),
    [
        ("iris_logits", {}),  # three logits: softmax by default
        ("iris_probabilities", {"returns": "probabilities"}),
    ],
)
def test_multiclass_net_through_onnx_and_int8(invoke, tmp_path, module, fields):
    checks = [
        {"id": "onnx-parity", "type": "probability_parity", "between": ["torch", "onnx"]},
        {"id": "onnx-labels", "type": "label_agreement", "between": ["torch", "onnx"]},
        {"id": "onnx-metrics", "type": "metric_delta", "between": ["torch", "onnx"]},
        {
            "id": "int8-labels",
            "type": "label_agreement",
            "between": ["torch", "int8"],
            "profile": "lenient",
        },
    ]
    spec = _spec(
        tmp_path,
        "multiclass",
        {"sklearn": "iris"},
        {"module": f"nets.py:{module}", **fields},
        checks,
    )
    result, report = _run(invoke, spec, tmp_path / "r")
    assert result.exit_code == 0, result.output
    figures = _figures(report)
    assert figures["onnx-parity"]["max_abs_diff"] < 1e-5
    assert figures["onnx-labels"]["agreement"] == 1.0
    assert figures["int8-labels"]["agreement"] >= 0.99


def test_a_forward_taking_one_tensor_per_column(invoke, tmp_path):
    checks = [
        {"id": "onnx-parity", "type": "probability_parity", "between": ["torch", "onnx"]},
        {"id": "int8-labels", "type": "label_agreement", "between": ["torch", "int8"]},
    ]
    data = {
        "sklearn": "iris",
        # ONNX input names as the columns are, spaces and brackets included.
        "features": [
            "sepal length (cm)",
            "sepal width (cm)",
            "petal length (cm)",
            "petal width (cm)",
        ],
    }
    fields = {"module": "nets.py:iris_per_column", "feed": "columns"}
    spec = _spec(tmp_path, "multiclass", data, fields, checks)
    result, report = _run(invoke, spec, tmp_path / "r")
    assert result.exit_code == 0, result.output
    figures = _figures(report)
    assert figures["onnx-parity"]["max_abs_diff"] < 1e-5
    assert figures["int8-labels"]["agreement"] >= 0.99
    features = json.loads(
        (tmp_path / "r" / "artifacts" / "onnx" / "onnx_features.json").read_text()
    )
    assert [(i["name"], i["columns"]) for i in features["inputs"]] == [
        (c, [c]) for c in data["features"]
    ]


def test_regression_net_through_onnx_and_int8(invoke, tmp_path):
    checks = [
        {
            "id": "onnx-allclose",
            "type": "output_parity",
            "between": ["torch", "onnx"],
            "atol": 1e-4,
            "rtol": 1e-5,
        },
        {"id": "onnx-metrics", "type": "metric_delta", "between": ["torch", "onnx"]},
        # Times torch's own forward on ready tensors (runtime_call) against ONNX Runtime's.
        {"id": "speed", "type": "benchmark", "between": ["torch", "onnx"]},
        {
            "id": "int8-allclose",
            "type": "output_parity",
            "between": ["torch", "int8"],
            "atol": 10.0,
            "rtol": 0.1,
        },
    ]
    data = {"sklearn": "diabetes", "split": {"test_size": 0.25, "seed": 0}}
    spec = _spec(tmp_path, "regression", data, {"module": "nets.py:diabetes_regressor"}, checks)
    result, report = _run(invoke, spec, tmp_path / "r")
    assert result.exit_code == 0, result.output
    figures = _figures(report)
    assert figures["onnx-allclose"]["max_abs_diff"] < 1e-3  # targets around 150
    assert figures["int8-allclose"]["max_abs_diff"] > 1e-3  # INT8 really changed something
    latency = report["run"]["timings"]["speed"]["end_to_end_latency"]["torch"]
    assert latency["1"]["rows"] == 1 and latency["1"]["p50_ms"] > 0


def test_text_columns_are_refused_naming_them(invoke, tmp_path):
    checks = [{"id": "p", "type": "probability_parity", "between": ["torch", "onnx"]}]
    data = {"path": str(CHURN / "churn.csv"), "target": "churned", "rows": 200}
    spec = _spec(tmp_path, "binary", data, {"module": f"{CHURN}/torch_mlp.py:churn_mlp"}, checks)
    result = invoke("run", spec, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert "contract, payment_method, internet_service, region" in result.output
    assert "a torch model takes numbers" in result.output


def test_an_activation_with_probabilities_is_refused_at_validate(invoke, tmp_path):
    checks = [{"id": "p", "type": "probability_parity", "between": ["torch", "onnx"]}]
    fields = {"module": "nets.py:iris_logits", "returns": "probabilities", "activation": "softmax"}
    spec = _spec(tmp_path, "multiclass", {"sklearn": "iris"}, fields, checks)
    result = invoke("validate", spec)
    assert result.exit_code == 2, result.output
    assert "activation applies to logits only" in result.output


def test_an_activation_on_a_regression_is_refused(invoke, tmp_path):
    checks = [{"id": "m", "type": "metric_delta", "between": ["torch", "onnx"]}]
    fields = {"module": "nets.py:diabetes_regressor", "activation": "sigmoid"}
    spec = _spec(tmp_path, "regression", {"sklearn": "diabetes"}, fields, checks)
    result = invoke("run", spec, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert "activation does not apply to task 'regression'" in result.output


@pytest.mark.parametrize(
    ("module", "fields", "message"),
    [
        # A softmax applied twice would squeeze the probabilities and still pass parity.
        ("iris_probabilities", {}, "ends with Softmax: it returns probabilities"),
        ("iris_logits", {"returns": "probabilities"}, "outside [0, 1] or rows that do not sum"),
    ],
)
def test_a_wrong_returns_declaration_is_caught(invoke, tmp_path, module, fields, message):
    checks = [{"id": "p", "type": "probability_parity", "between": ["torch", "onnx"]}]
    spec = _spec(
        tmp_path,
        "multiclass",
        {"sklearn": "iris"},
        {"module": f"nets.py:{module}", **fields},
        checks,
    )
    result = invoke("run", spec, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_sigmoid_on_several_logits_is_an_input_error(invoke, tmp_path):
    checks = [{"id": "p", "type": "probability_parity", "between": ["torch", "onnx"]}]
    fields = {"module": "nets.py:iris_logits", "activation": "sigmoid"}
    spec = _spec(tmp_path, "multiclass", {"sklearn": "iris"}, fields, checks)
    result = invoke("run", spec, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert "sigmoid takes one logit column; the model returned 3" in result.output


class _Fixed(torch.nn.Module):
    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out


def test_head_turns_one_logit_into_both_class_probabilities():
    logits = torch.tensor([[-2.0], [0.0], [3.0]])
    probabilities = TabularHead(_Fixed(logits), "binary", "logits", None)(torch.zeros(3, 1))
    p1 = torch.sigmoid(logits[:, 0])
    assert torch.equal(probabilities, torch.stack([1 - p1, p1], dim=1))


def test_head_softmaxes_logits_and_keeps_probabilities():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 4.0]])
    softmax = TabularHead(_Fixed(logits), "multiclass", "logits", None)(torch.zeros(2, 1))
    assert torch.allclose(softmax, torch.softmax(logits, dim=1))
    kept = TabularHead(_Fixed(softmax), "multiclass", "probabilities", None)(torch.zeros(2, 1))
    assert torch.equal(kept, softmax)


def test_head_refuses_a_regression_net_with_several_outputs():
    head = TabularHead(_Fixed(torch.zeros(2, 3)), "regression", "logits", None)
    with pytest.raises(InputError, match="returned 3 columns, not 1"):
        head(torch.zeros(2, 1))
