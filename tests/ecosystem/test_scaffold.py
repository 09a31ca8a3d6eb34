"""`parityspec init`: every scaffolded spec validates as written; tabular ones also run."""

from __future__ import annotations

import json

import joblib
import numpy as np
import onnx
import pytest
import skops.io as sio
import yaml
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.conftest import REPO


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """A fitted MLP pipeline saved as .skops and .joblib, and its data as CSV."""
    folder = tmp_path_factory.mktemp("models")
    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns="target")
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0))
    with pytest.warns(Warning):  # the MLP does not fully converge in 300 iterations
        model.fit(features, frame["target"])
    sio.dump(model, folder / "mlp.skops")
    joblib.dump(model, folder / "mlp.joblib")
    frame.assign(row_id=np.arange(len(frame))).to_csv(folder / "cancer.csv", index=False)
    return folder


def test_sklearn_scaffold_validates_and_runs(invoke, breast_cancer, tmp_path):
    spec = tmp_path / "specs" / "cancer.yaml"
    model, data = breast_cancer / "mlp.skops", breast_cancer / "cancer.csv"
    args = ("init", model, "--data", data, "--target", "target", "-o", spec)
    refused = invoke(*args)
    assert refused.exit_code == 2 and "AdamOptimizer" in refused.output  # not known to be safe
    result = invoke(*args, "--trust-models")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(spec.read_text())
    assert written["backends"]["sklearn"]["trusted"] is True  # vouched for: AdamOptimizer
    assert written["model"] == {"task": "binary", "threshold": 0.5}
    assert written["data"]["features"][0] == "mean radius"  # row_id is not a model feature
    assert set(written["backends"]) == {"sklearn", "onnx", "int8"}
    types = {c["id"]: c["type"] for c in written["checks"]}
    assert types["onnx-flips"] == "threshold_flips" and types["int8-metrics"] == "metric_delta"
    assert invoke("validate", spec).exit_code == 0
    run = invoke("run", spec, "--out", tmp_path / "out")
    assert run.exit_code == 0, run.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"]["passed"] == len(written["checks"]) == 8


def test_joblib_needs_trust_and_then_says_so(invoke, breast_cancer):
    model, data = breast_cancer / "mlp.joblib", breast_cancer / "cancer.csv"
    refused = invoke("init", model, "--data", data)
    assert refused.exit_code == 2 and "--trust-models" in refused.output
    trusted = invoke("init", model, "--data", data, "--trust-models")
    assert trusted.exit_code == 0
    spec = yaml.safe_load(trusted.stdout)
    assert spec["backends"]["sklearn"]["trusted"] is True
    assert "onnx-metrics" not in {c["id"] for c in spec["checks"]}  # no --target, no metrics


@pytest.mark.parametrize("trust", [False, True], ids=["plain", "trust-models"])
def test_imputing_pipeline_is_never_marked_trusted(invoke, breast_cancer, tmp_path, trust):
    """skops lists the imputer's `numpy.dtype` as untrusted; the loader knows it is safe, and
    init judges by the same list: `trusted: true` would let a model file swapped later load
    without the trust check."""
    frame = load_breast_cancer(as_frame=True).frame
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame.drop(columns="target"), frame["target"])
    assert "numpy.dtype" in sio.get_untrusted_types(data=sio.dumps(model))
    sio.dump(model, tmp_path / "imputing.skops")
    spec = tmp_path / "imputing.yaml"
    args = ("--data", breast_cancer / "cancer.csv", "--target", "target", "-o", spec)
    result = invoke("init", tmp_path / "imputing.skops", *args, *(["--trust-models"] * trust))
    assert result.exit_code == 0, result.output
    assert "trusted" not in spec.read_text()
    run = invoke("run", spec, "--out", tmp_path / "out")
    assert run.exit_code == 0, run.output


def test_tabular_model_without_data_exits_2_with_a_hint(invoke, breast_cancer):
    result = invoke("init", breast_cancer / "mlp.joblib", "--trust-models")
    assert result.exit_code == 2 and "--data" in result.output


def test_regressor_gets_output_parity_and_no_inert_int8(invoke, tmp_path):
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    model = Ridge().fit(frame.drop(columns="target"), frame["target"])
    sio.dump(model, tmp_path / "ridge.skops")
    spec = tmp_path / "ridge.yaml"
    args = ("--data", tmp_path / "diabetes.csv", "--target", "target", "-o", spec)
    result = invoke("init", tmp_path / "ridge.skops", *args)
    assert result.exit_code == 0, result.output
    assert "no int8 backend: Ridge" in result.output
    written = yaml.safe_load(spec.read_text())
    assert [c["type"] for c in written["checks"]] == ["output_parity", "metric_delta"]
    assert invoke("run", spec, "--out", tmp_path / "out").exit_code == 0


def test_onnx_scaffold_reads_the_graph_and_runs(invoke, tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(_tiny_onnx(), path)
    spec = tmp_path / "tiny.yaml"
    assert invoke("init", path, "-o", spec).exit_code == 0
    written = yaml.safe_load(spec.read_text())
    assert written["model"]["inputs"] == [{"name": "x", "shape": [4], "dtype": "float32"}]
    assert written["model"]["outputs"] == ["logits"] and "synthetic" in written["data"]
    assert invoke("run", spec, "--out", tmp_path / "out").exit_code == 0


def test_torch_factory_needs_inputs_and_validates(invoke, tmp_path):
    factory = f"{REPO}/examples/torch/nets.py:small_cnn"
    missing = invoke("init", factory)
    assert missing.exit_code == 2 and "--input" in missing.output
    assert invoke("init", factory, "--input", "image:3,x").exit_code == 2
    assert invoke("init", f"{REPO}/examples/torch/nets.py:nope", "--input", "a:1").exit_code == 2
    spec = tmp_path / "cnn.yaml"
    assert invoke("init", factory, "--input", "image:3,16,16", "-o", spec).exit_code == 0
    written = yaml.safe_load(spec.read_text())
    assert [c["type"] for c in written["checks"]] == ["output_parity", "layer_drift"]
    assert written["backends"]["onnx"] == {"kind": "onnx", "from": "torch"}
    assert invoke("validate", spec).exit_code == 0
    again = invoke("init", factory, "--input", "image:3,16,16", "-o", spec)
    assert again.exit_code == 2 and "overwrite" in again.output


def _tiny_onnx() -> onnx.ModelProto:
    """x[batch, 4] -> MatMul -> Relu -> MatMul -> logits[batch, 3]: weights INT8 can quantize."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((4, 16)).astype("float32"), "w1"),
        numpy_helper.from_array(0.3 * rng.standard_normal((16, 3)).astype("float32"), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_spec_written_in_a_project_points_editors_at_its_schema(invoke, tmp_path, monkeypatch):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "parityspec.schema.json").write_text("{}")
    (tmp_path / "specs").mkdir()
    onnx.save(_tiny_onnx(), tmp_path / "tiny.onnx")
    monkeypatch.chdir(tmp_path)
    assert invoke("init", "tiny.onnx", "-o", "specs/tiny.yaml").exit_code == 0
    first = (tmp_path / "specs" / "tiny.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/parityspec.schema.json"
