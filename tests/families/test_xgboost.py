"""XGBoost: native model files (kind: xgboost) and scikit-learn-API estimators (kind:
sklearn), each against its ONNX export through onnxmltools' converter."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost

from tests.families.conftest import checks, run_spec

PARITY = [
    {"id": "parity", "type": "probability_parity", "between": ["xgb", "onnx"], "abs_tol": 1e-6},
    {"id": "labels", "type": "label_agreement", "between": ["xgb", "onnx"], "profile": "strict"},
]


@pytest.fixture(scope="module")
def booster(cancer):
    folder, features, target = cancer
    model = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0},
        xgboost.DMatrix(features, target),
        num_boost_round=20,
    )
    model.save_model(folder / "xgb.json")
    model.save_model(folder / "xgb.ubj")
    return model


def test_native_files_and_their_onnx_export_agree(invoke, cancer, booster):
    folder, features, _ = cancer
    exit_code, report, output = run_spec(
        invoke,
        folder,
        {
            "name": "xgb-native",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "xgb": {"kind": "xgboost", "path": "xgb.json"},
                "ubj": {"kind": "xgboost", "path": "xgb.ubj"},
                "onnx": {"kind": "onnx", "from": "xgb"},
            },
            "checks": [
                *PARITY,
                {"id": "formats", "type": "probability_parity", "between": ["xgb", "ubj"]},
            ],
        },
    )
    assert exit_code == 0, output
    found = checks(report)
    assert found["formats"]["figures"]["max_abs_diff"] == 0
    # The booster's own predictions, not a re-implementation of them.
    expected = booster.predict(xgboost.DMatrix(features))
    worst = found["parity"]["details"]["worst_samples"][0]
    assert worst["reference"][1] == pytest.approx(expected[worst["row"]], abs=1e-7)


def test_an_estimator_fitted_on_a_frame_exports_despite_its_feature_names(invoke, cancer):
    """onnxmltools reads features only as `f<index>`; an estimator fitted on a DataFrame
    names them, and its export failed before parityspec cleared the names while converting."""
    import joblib

    folder, features, target = cancer
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0)
    model.fit(features, target)
    assert model.get_booster().feature_names[0] == "mean_radius"
    joblib.dump(model, folder / "xgb.joblib")
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "xgb-sklearn",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "xgb": {"kind": "sklearn", "path": "xgb.joblib", "trusted": True},
                "onnx": {"kind": "onnx", "from": "xgb"},
            },
            "checks": PARITY,
        },
    )
    assert exit_code == 0, output
    assert model.get_booster().feature_names[0] == "mean_radius"  # restored after converting


def test_multiclass_and_regression_files(invoke, tmp_path):
    from sklearn.datasets import load_diabetes, load_iris

    iris, species = load_iris(return_X_y=True, as_frame=True)
    iris.columns = ["f0", "f1", "f2", "f3"]
    model = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
        xgboost.DMatrix(iris.to_numpy(), species),  # unnamed: read in the data's order
        num_boost_round=10,
    )
    model.save_model(tmp_path / "iris.json")
    iris.assign(y=species).to_csv(tmp_path / "iris.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "xgb-iris",
            "data": {"path": "iris.csv", "target": "y"},
            "model": {"task": "multiclass"},
            "backends": {
                "xgb": {"kind": "xgboost", "path": "iris.json"},
                "onnx": {"kind": "onnx", "from": "xgb"},
            },
            "checks": PARITY,
        },
    )
    assert exit_code == 0, output
    assert checks(report)["parity"]["figures"]["samples"] == 150

    diabetes, progression = load_diabetes(return_X_y=True, as_frame=True)
    model = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 3},
        xgboost.DMatrix(diabetes, progression),
        num_boost_round=20,
    )
    model.save_model(tmp_path / "diabetes.ubj")
    diabetes.assign(y=progression).to_csv(tmp_path / "diabetes.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "xgb-diabetes",
            "data": {"path": "diabetes.csv", "target": "y"},
            "model": {"task": "regression"},
            "backends": {
                "xgb": {"kind": "xgboost", "path": "diabetes.ubj"},
                "onnx": {"kind": "onnx", "from": "xgb"},
            },
            "checks": [
                {"id": "out", "type": "output_parity", "between": ["xgb", "onnx"], "atol": 1e-4}
            ],
        },
    )
    assert exit_code == 0, output
    assert 0 < checks(report)["out"]["figures"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize(
    ("file", "task", "message"),
    [
        ("xgb.json", "regression", "objective is binary:logistic"),
        ("garbage.json", "binary", "not an XGBoost model file"),
        ("other.json", "binary", "trained on columns the data lacks: other_0"),
        ("model.txt", "binary", "an XGBoost model file is .json or .ubj"),
    ],
)
def test_bad_model_files_are_one_line_and_exit_2(invoke, cancer, booster, file, task, message):
    folder, features, target = cancer
    (folder / "garbage.json").write_text('{"learner": 1}')
    (folder / "model.txt").write_text("tree\n")
    other = features.iloc[:, :3].set_axis(["other_0", "other_1", "other_2"], axis=1)
    trained = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(other, target), 2)
    trained.save_model(folder / "other.json")
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "xgb-bad",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": task},
            "backends": {
                "a": {"kind": "xgboost", "path": file},
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


def test_probabilities_are_those_of_the_trees_in_float32(cancer, booster):
    """Why XGBoost agrees with its export to ~1e-7: XGBoost itself rounds every input to
    float32 (its DMatrix stores float32) and its thresholds are float32, as ONNX's are."""
    _, features, _ = cancer
    as64 = booster.predict(xgboost.DMatrix(features))
    as32 = booster.predict(xgboost.DMatrix(features.astype(np.float32)))
    assert np.array_equal(as64, as32)
