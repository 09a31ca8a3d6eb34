"""CatBoost: native model files (kind: catboost) and scikit-learn-API estimators (kind:
sklearn, alone or last in a pipeline), each against its ONNX export by CatBoost's own
exporter, and the bundled churn spec."""

from __future__ import annotations

import sys

import pytest

catboost = pytest.importorskip("catboost")

from tests.conftest import REPO  # noqa: E402
from tests.families.conftest import checks, run_spec  # noqa: E402

PARITY = [
    {"id": "parity", "type": "probability_parity", "between": ["cb", "onnx"], "abs_tol": 1e-6},
    {"id": "labels", "type": "label_agreement", "between": ["cb", "onnx"], "profile": "strict"},
]
SMALL = {"iterations": 30, "depth": 3, "random_seed": 0, "thread_count": 1, "verbose": 0}


def classifier():
    return catboost.CatBoostClassifier(**SMALL, allow_writing_files=False)


@pytest.fixture(scope="module")
def native(cancer):
    folder, features, target = cancer
    model = classifier().fit(features, target)  # with the NaNs of the first column
    model.save_model(str(folder / "cb.cbm"))
    return model


def test_a_native_file_and_its_onnx_export_agree(invoke, cancer, native):
    folder, features, _ = cancer
    exit_code, report, output = run_spec(
        invoke,
        folder,
        {
            "name": "cb-native",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "cb": {"kind": "catboost", "path": "cb.cbm"},
                "onnx": {"kind": "onnx", "from": "cb"},
            },
            "checks": PARITY,
        },
    )
    assert exit_code == 0, output
    found = checks(report)
    assert 0 < found["parity"]["figures"]["max_abs_diff"] < 1e-6
    assert found["labels"]["details"]["labels_from"]["onnx"] == "its own labels"
    # CatBoost's own predictions, not a re-implementation of them.
    expected = native.predict_proba(features)
    worst = found["parity"]["details"]["worst_samples"][0]
    assert worst["reference"][1] == pytest.approx(expected[worst["row"], 1], abs=1e-12)


def test_a_pickled_estimator_alone_and_multiclass(invoke, tmp_path):
    import joblib
    from sklearn.datasets import load_iris

    iris, species = load_iris(return_X_y=True, as_frame=True)
    model = classifier().fit(iris, species)
    joblib.dump(model, tmp_path / "cb.joblib")
    iris.assign(y=species).to_csv(tmp_path / "iris.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "cb-iris",
            "data": {"path": "iris.csv", "target": "y"},
            "model": {"task": "multiclass"},
            "backends": {
                "cb": {"kind": "sklearn", "path": "cb.joblib", "trusted": True},
                "onnx": {"kind": "onnx", "from": "cb"},
            },
            "checks": PARITY,
        },
    )
    assert exit_code == 0, output
    assert checks(report)["labels"]["figures"]["samples"] == 150


def test_a_regression_file(invoke, tmp_path):
    from sklearn.datasets import load_diabetes

    diabetes, progression = load_diabetes(return_X_y=True, as_frame=True)
    model = catboost.CatBoostRegressor(**SMALL, allow_writing_files=False)
    model.fit(diabetes.to_numpy(), progression)  # unnamed columns: read in the data's order
    model.save_model(str(tmp_path / "diabetes.cbm"))
    diabetes.assign(y=progression).to_csv(tmp_path / "diabetes.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "cb-diabetes",
            "data": {"path": "diabetes.csv", "target": "y"},
            "model": {"task": "regression"},
            "backends": {
                "cb": {"kind": "catboost", "path": "diabetes.cbm"},
                "onnx": {"kind": "onnx", "from": "cb"},
            },
            "checks": [
                {"id": "out", "type": "output_parity", "between": ["cb", "onnx"], "atol": 1e-4}
            ],
        },
    )
    assert exit_code == 0, output
    assert 0 < checks(report)["out"]["figures"]["max_abs_diff"] < 1e-4


def test_the_bundled_churn_spec_passes(invoke, tmp_path):
    result = invoke("run", REPO / "specs" / "churn_catboost.yaml", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert not (REPO / "specs" / "catboost_info").exists()  # CatBoost writes none


@pytest.mark.parametrize(
    ("file", "task", "message"),
    [
        ("cb.cbm", "regression", "loss function is Logloss"),
        ("garbage.cbm", "binary", "not a CatBoost model file"),
        ("other.cbm", "binary", "trained on columns the data lacks: other_0"),
        ("model.json", "binary", "a CatBoost model file is .cbm"),
    ],
)
def test_bad_model_files_are_one_line_and_exit_2(invoke, cancer, native, file, task, message):
    folder, features, target = cancer
    (folder / "garbage.cbm").write_bytes(b"CBM1 not a model")
    (folder / "model.json").write_text("{}")
    other = features.iloc[:, :3].set_axis(["other_0", "other_1", "other_2"], axis=1)
    classifier().fit(other, target).save_model(str(folder / "other.cbm"))
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "cb-bad",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": task},
            "backends": {
                "a": {"kind": "catboost", "path": file},
                "b": {"kind": "onnx", "from": "a"},
            },
            "checks": [
                {
                    "id": "c",
                    "type": "label_agreement" if task != "regression" else "output_parity",
                    "between": ["a", "b"],
                }
            ],
        },
    )
    assert exit_code == 2, output
    assert message in output
    assert not any(len(line) > 400 for line in output.splitlines())


def test_a_missing_library_exits_2_naming_the_extra(invoke, cancer, native, monkeypatch):
    folder, _, _ = cancer
    monkeypatch.setitem(sys.modules, "catboost", None)  # `import catboost` raises ImportError
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "no-catboost",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "a": {"kind": "catboost", "path": "cb.cbm"},
                "b": {"kind": "onnx", "from": "a"},
            },
            "checks": [{"id": "c", "type": "label_agreement", "between": ["a", "b"]}],
        },
    )
    assert exit_code == 2, output
    assert "pip install 'parityspec[catboost]'" in output


def test_categorical_features_are_refused_by_the_export_naming_them(invoke, tmp_path):
    import joblib
    import pandas as pd

    frame = pd.read_csv(REPO / "examples" / "churn" / "churn.csv").head(400)
    features, target = frame.drop(columns="churned"), frame["churned"]
    text = [c for c in features.columns if features[c].dtype.kind not in "biuf"]
    features[text] = features[text].fillna("none").astype(object)
    model = catboost.CatBoostClassifier(**SMALL, allow_writing_files=False, cat_features=text)
    joblib.dump(model.fit(features, target), tmp_path / "cat.joblib")
    features.assign(churned=target).to_csv(tmp_path / "rows.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "cb-categorical",
            "data": {"path": "rows.csv", "target": "churned"},
            "model": {"task": "binary"},
            "backends": {
                "cb": {"kind": "sklearn", "path": "cat.joblib", "trusted": True},
                "onnx": {"kind": "onnx", "from": "cb"},
            },
            "checks": PARITY,
        },
    )
    assert exit_code == 3, output
    reason = next(s for s in report["steps"] if s["id"] == "export:onnx")["reason"]
    assert reason.startswith("CatBoost's ONNX exporter does not take categorical features")
    assert "contract" in reason and "one-hot encode them" in reason
