"""ONNX files made elsewhere, run on table rows (issue 13.4): one input per column with
integer and string categoricals, one float tensor of all features in the declared order,
separate label and probability outputs."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.families.conftest import checks, run_spec


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A pipeline over a float, an integer code and a text column, its ONNX export with one
    typed input per column (int64 and string among them), and the rows as CSV."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    rows = 400
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, rows).round(2),
            "region_code": rng.integers(1, 5, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
        }
    )
    signal = frame["amount"] / 10 + frame["region_code"] - (frame["plan"] == "pro") * 2
    frame["y"] = (signal + rng.normal(0, 1, rows) > signal.median()).astype(int)
    model = make_pipeline(
        ColumnTransformer(
            [
                ("codes", OneHotEncoder(handle_unknown="ignore"), ["region_code", "plan"]),
                ("amount", "passthrough", ["amount"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    features = frame.drop(columns="y")
    model.fit(features, frame["y"])
    types = [
        ("amount", FloatTensorType([None, 1])),
        ("region_code", Int64TensorType([None, 1])),
        ("plan", StringTensorType([None, 1])),
    ]
    graph = to_onnx(model, initial_types=types, options={id(model.steps[-1][1]): {"zipmap": False}})
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "mixed.onnx").write_bytes(graph.SerializeToString())
    joblib.dump(model, folder / "mixed.joblib")
    frame.to_csv(folder / "rows.csv", index=False)
    return folder


def test_integer_and_string_inputs_by_column_agree_with_the_model(invoke, mixed):
    exit_code, report, output = run_spec(
        invoke,
        mixed,
        {
            "name": "mixed",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "sk": {"kind": "sklearn", "path": "mixed.joblib", "trusted": True},
                "file": {"kind": "onnx", "path": "mixed.onnx"},
            },
            "checks": [
                {"id": "parity", "type": "probability_parity", "between": ["sk", "file"]},
                {"id": "labels", "type": "label_agreement", "between": ["sk", "file"]},
            ],
        },
    )
    assert exit_code == 0, output
    found = checks(report)
    assert found["parity"]["figures"]["max_abs_diff"] < 1e-5
    # The file's own label output (int64), beside its probability output.
    assert found["labels"]["details"]["labels_from"]["file"] == "its own labels"


@pytest.fixture(scope="module")
def one_tensor(tmp_path_factory):
    """A classifier taking one float tensor of four features, in an order the CSV does not
    follow: the spec declares it in data.features."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sl", "sw", "pl", "pw", "y"]
    model = LogisticRegression(max_iter=1000).fit(frame[["sl", "sw", "pl", "pw"]], frame["y"])
    folder = tmp_path_factory.mktemp("tensor")
    sample = frame[["sl", "sw", "pl", "pw"]].to_numpy(np.float32)[:1]
    graph = to_onnx(model, sample, options={"zipmap": False})
    (folder / "iris.onnx").write_bytes(graph.SerializeToString())
    joblib.dump(model, folder / "iris.joblib")
    frame[["pw", "pl", "sw", "sl", "y"]].to_csv(folder / "rows.csv", index=False)
    return folder


@pytest.mark.parametrize(("features", "expected"), [(["sl", "sw", "pl", "pw"], 0), (None, 1)])
def test_one_float_tensor_is_fed_in_the_declared_order(invoke, one_tensor, features, expected):
    data = {"path": "rows.csv", "target": "y"} | ({"features": features} if features else {})
    exit_code, report, output = run_spec(
        invoke,
        one_tensor,
        {
            "name": "order",
            "data": data,
            "model": {"task": "multiclass"},
            "backends": {
                "sk": {"kind": "sklearn", "path": "iris.joblib", "trusted": True},
                "file": {"kind": "onnx", "path": "iris.onnx"},
            },
            "checks": [{"id": "parity", "type": "probability_parity", "between": ["sk", "file"]}],
        },
    )
    # Undeclared, the file's columns go in the CSV's order (pw, pl, sw, sl): the graph reads
    # other features than the model does, and the parity check says so.
    assert exit_code == expected, output
    if expected:
        assert checks(report)["parity"]["figures"]["max_abs_diff"] > 0.1
