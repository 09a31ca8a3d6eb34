"""`parityspec init` -> `run` for every family (issue 13.8): scikit-learn-API and native
boosters, ONNX files given table rows, a torch factory with its saved weights. Each written
spec has no YAML anchor, only checks that make sense, and runs as written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest
import yaml

from tests.conftest import REPO

lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")
catboost = pytest.importorskip("catboost")


def init_and_run(invoke, model: Path, data: Path, folder: Path, *extra: str) -> tuple[dict, dict]:
    """init -> validate -> run; the written spec and its report."""
    spec = folder / f"{model.stem}.yaml"
    result = invoke("init", model, "--data", data, "-o", spec, *extra)
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert "&id" not in text and "*id" not in text  # no YAML anchors
    written = yaml.safe_load(text)
    assert written["report"]["dir"] == f"reports/{written['name']}"  # beside the spec
    assert invoke("validate", spec).exit_code == 0
    run = invoke("run", spec)
    report_file = folder / written["report"]["dir"] / "report.json"
    assert run.exit_code == 0, run.output
    return written, json.loads(report_file.read_text())


@pytest.fixture(scope="module")
def table(cancer) -> tuple[Path, Path]:
    """rows.csv (breast_cancer, a gap in every 7th row of the first column) with `y`."""
    folder, _, _ = cancer
    return folder, folder / "rows.csv"


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_native_booster_files(invoke, cancer, tmp_path, family):
    _, features, target = cancer
    data = tmp_path / "rows.csv"
    features.assign(y=target).to_csv(data, index=False)
    if family == "xgboost":
        booster = xgboost.train(
            {"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(features, target), 10
        )
        model = tmp_path / "model.json"
        booster.save_model(model)
    elif family == "lightgbm":
        booster = lightgbm.train(
            {"objective": "binary", "num_leaves": 7, "verbose": -1},
            lightgbm.Dataset(features, target),
            10,
        )
        model = tmp_path / "model.txt"
        booster.save_model(model)
    else:
        estimator = catboost.CatBoostClassifier(
            iterations=10, depth=3, verbose=0, thread_count=1, allow_writing_files=False
        )
        model = tmp_path / "model.cbm"
        estimator.fit(features, target).save_model(str(model))
    written, report = init_and_run(invoke, model, data, tmp_path, "--target", "y")
    assert written["backends"][family] == {"kind": family, "path": model.name}
    assert set(written["backends"]) == {family, "onnx"}  # trees: no INT8
    assert written["model"] == {"task": "binary", "threshold": 0.5}
    types = [c["type"] for c in written["checks"]]
    assert types == ["probability_parity", "label_agreement", "threshold_flips", "metric_delta"]
    assert report["summary"]["passed"] == 4


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_scikit_learn_api_boosters(invoke, table, tmp_path, family):
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    data = tmp_path / "iris.csv"
    frame.to_csv(data, index=False)
    features, target = frame.drop(columns="target"), frame["target"]
    estimator = {
        "xgboost": lambda: xgboost.XGBClassifier(n_estimators=10, max_depth=2),
        "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=10, verbose=-1),
        "catboost": lambda: catboost.CatBoostClassifier(
            iterations=10, verbose=0, thread_count=1, allow_writing_files=False
        ),
    }[family]()
    joblib.dump(estimator.fit(features, target), tmp_path / f"{family}.joblib")
    written, report = init_and_run(
        invoke, tmp_path / f"{family}.joblib", data, tmp_path, "--trust-models"
    )
    assert written["model"] == {"task": "multiclass"}
    assert set(written["backends"]) == {"sklearn", "onnx"}
    assert report["summary"]["passed"] == 2


def test_an_onnx_tree_file_with_a_csv_is_checked_against_the_reference_evaluator(invoke, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns="target")
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    forest.fit(features.to_numpy(np.float32), frame["target"])
    graph = to_onnx(forest, features.to_numpy(np.float32)[:1])  # ZipMap probabilities
    onnx.save(graph, tmp_path / "forest.onnx")
    data = tmp_path / "cancer.csv"
    frame.to_csv(data, index=False)
    written, report = init_and_run(
        invoke, tmp_path / "forest.onnx", data, tmp_path, "--target", "target"
    )
    assert written["backends"] == {
        "onnx": {"kind": "onnx", "path": "forest.onnx"},
        "reference": {"kind": "onnx_reference", "from": "onnx"},
    }  # no INT8: a tree ensemble has no MatMul, Gemm or Conv
    assert written["model"] == {"task": "binary", "threshold": 0.5}
    assert written["checks"][0]["between"] == ["reference", "onnx"]
    assert report["summary"]["passed"] == len(written["checks"]) == 4


def test_an_onnx_pipeline_with_one_input_per_column_and_a_text_column(invoke, tmp_path):
    """The churn pipeline's export: a string input and float inputs, named after columns."""
    import pandas as pd

    churn = pd.read_csv(REPO / "examples" / "churn" / "churn.csv").head(800)
    onnx_dir = tmp_path / "export"
    spec = {
        "parityspec": 1,
        "name": "export",
        "data": {"path": str(tmp_path / "churn.csv"), "target": "churned"},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {
                "kind": "sklearn",
                "train": str(REPO / "examples/churn/train.py:build_pipeline"),
            },
            "onnx": {"kind": "onnx", "from": "sklearn"},
        },
        "checks": [{"id": "l", "type": "label_agreement", "between": ["sklearn", "onnx"]}],
    }
    churn.to_csv(tmp_path / "churn.csv", index=False)
    (tmp_path / "export.yaml").write_text(yaml.safe_dump(spec))
    assert invoke("run", tmp_path / "export.yaml", "--out", onnx_dir).exit_code == 0
    model = tmp_path / "churn_mlp.onnx"
    model.write_bytes((onnx_dir / "artifacts" / "onnx" / "model.onnx").read_bytes())
    written, report = init_and_run(
        invoke, model, tmp_path / "churn.csv", tmp_path, "--target", "churned"
    )
    assert "int8" in written["backends"]  # an MLP: MatMul/Gemm nodes INT8 quantizes
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["onnx-labels"]["details"]["labels_from"]["onnx"] == "its own labels"

    # The same graph on rows whose columns are named otherwise: one line naming both sides.
    churn.rename(columns={"contract": "plan"}).to_csv(tmp_path / "renamed.csv", index=False)
    refused = invoke(
        "init", model, "--data", tmp_path / "renamed.csv", "--target", "churned",
        "-o", tmp_path / "r.yaml",
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "ONNX inputs not found among the data columns: contract" in refused.output
    assert "plan" in refused.output and "rename the data's columns" in refused.output
    assert not (tmp_path / "r.yaml").exists()


def test_a_tree_onnx_without_data_gets_no_int8(invoke, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeRegressor

    features, target = load_iris(return_X_y=True)
    tree = DecisionTreeRegressor(max_depth=3).fit(features.astype(np.float32), target)
    onnx.save(to_onnx(tree, features.astype(np.float32)[:1]), tmp_path / "tree.onnx")
    # The graph's input has no fixed width: give it.
    spec = tmp_path / "tree.yaml"
    result = invoke("init", tmp_path / "tree.onnx", "--input", "X:4", "-o", spec)
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert "&id" not in text
    written = yaml.safe_load(text)
    assert set(written["backends"]) == {"onnx", "reference"}
    assert [c["type"] for c in written["checks"]] == ["output_parity"]
    assert invoke("run", spec, "--out", tmp_path / "out").exit_code == 0


def test_a_torch_factory_with_its_state_dict_on_table_rows(invoke, tmp_path):
    import pandas as pd
    import torch

    from parityspec.scaffold import InitOptions, scaffold

    found = importlib.util.spec_from_file_location(
        "torch_mlp", REPO / "examples/churn/torch_mlp.py"
    )
    assert found is not None and found.loader is not None
    torch_mlp = importlib.util.module_from_spec(found)
    found.loader.exec_module(torch_mlp)
    torch.save(torch_mlp.churn_mlp().state_dict(), tmp_path / "churn.pt")
    frame = pd.read_csv(REPO / "examples" / "churn" / "churn.csv")
    frame[[*torch_mlp.NUMERIC, "churned"]].to_csv(tmp_path / "numeric.csv", index=False)
    factory = f"{REPO}/examples/churn/torch_mlp.py:churn_mlp_architecture"
    options = InitOptions(
        factory,
        tmp_path,
        data=tmp_path / "numeric.csv",
        target="churned",
        state_dict=tmp_path / "churn.pt",
    )
    spec = tmp_path / "torch.yaml"
    spec.write_text(scaffold(options).yaml())
    written = yaml.safe_load(spec.read_text())
    assert written["backends"]["torch"]["state_dict"] == "churn.pt"
    assert written["model"] == {"task": "binary", "threshold": 0.5}
    assert set(written["backends"]) == {"torch", "onnx", "int8"}
    run = invoke("run", spec, "--out", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    found = {c["id"]: c for c in report["checks"]}
    assert found["onnx-parity"]["status"] == "passed", run.output
    assert found["onnx-labels"]["figures"]["agreement"] == 1.0
    # Every row of the file (6,000): INT8 flips 18 decisions, within the lenient profile.
    assert found["int8-flips"]["figures"]["flips"] > 0
    assert run.exit_code == 0, run.output
