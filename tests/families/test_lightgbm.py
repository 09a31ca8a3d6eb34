"""LightGBM: native model files (kind: lightgbm) and scikit-learn-API estimators (kind:
sklearn), each against its ONNX export through onnxmltools' converter."""

from __future__ import annotations

import lightgbm
import pytest

from tests.families.conftest import checks, run_spec


@pytest.fixture(scope="module")
def booster(cancer):
    folder, features, target = cancer
    params = {"objective": "binary", "num_leaves": 7, "seed": 0, "verbose": -1}
    model = lightgbm.train(params, lightgbm.Dataset(features, target), num_boost_round=20)
    model.save_model(folder / "lgb.txt")
    return model


def test_native_file_and_estimator_agree_with_their_onnx_exports(invoke, cancer, booster):
    import joblib

    folder, features, target = cancer
    estimator = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, random_state=0, verbose=-1)
    joblib.dump(estimator.fit(features, target), folder / "lgb.joblib")
    exit_code, report, output = run_spec(
        invoke,
        folder,
        {
            "name": "lgb",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "native": {"kind": "lightgbm", "path": "lgb.txt"},
                "native_onnx": {"kind": "onnx", "from": "native"},
                "sk": {"kind": "sklearn", "path": "lgb.joblib", "trusted": True},
                "sk_onnx": {"kind": "onnx", "from": "sk"},
            },
            "checks": [
                {
                    "id": "native",
                    "type": "probability_parity",
                    "between": ["native", "native_onnx"],
                    "abs_tol": 1e-6,
                },
                {
                    "id": "sk",
                    "type": "probability_parity",
                    "between": ["sk", "sk_onnx"],
                    "abs_tol": 1e-6,
                },
                {
                    "id": "labels",
                    "type": "label_agreement",
                    "between": ["native", "native_onnx"],
                    "profile": "strict",
                },
            ],
        },
    )
    assert exit_code == 0, output
    worst = checks(report)["native"]["details"]["worst_samples"][0]
    assert worst["reference"][1] == pytest.approx(booster.predict(features)[worst["row"]])
    # A bare booster returns no labels of its own; its ONNX graph does.
    assert checks(report)["labels"]["details"]["labels_from"] == {
        "native": "arg-max of its probabilities",
        "native_onnx": "its own labels",
    }


def test_a_regression_file(invoke, tmp_path):
    from sklearn.datasets import load_diabetes

    diabetes, progression = load_diabetes(return_X_y=True, as_frame=True)
    params = {"objective": "regression", "num_leaves": 7, "verbose": -1}
    lightgbm.train(params, lightgbm.Dataset(diabetes, progression), 20).save_model(
        tmp_path / "diabetes.txt"
    )
    diabetes.assign(y=progression).to_csv(tmp_path / "diabetes.csv", index=False)
    exit_code, report, output = run_spec(
        invoke,
        tmp_path,
        {
            "name": "lgb-diabetes",
            "data": {"path": "diabetes.csv", "target": "y"},
            "model": {"task": "regression"},
            "backends": {
                "lgb": {"kind": "lightgbm", "path": "diabetes.txt"},
                "onnx": {"kind": "onnx", "from": "lgb"},
            },
            "checks": [
                {"id": "out", "type": "output_parity", "between": ["lgb", "onnx"], "atol": 1e-4}
            ],
        },
    )
    assert exit_code == 0, output
    assert 0 < checks(report)["out"]["figures"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize(
    ("file", "task", "message"),
    [
        ("lgb.txt", "multiclass", "objective is binary"),
        ("xgb_like.txt", "binary", "not a LightGBM model file"),
        ("model.json", "binary", "a LightGBM model file is .txt or .model"),
    ],
)
def test_bad_model_files_are_one_line_and_exit_2(invoke, cancer, booster, file, task, message):
    folder, _, _ = cancer
    (folder / "xgb_like.txt").write_text('{"learner": {}}')
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "lgb-bad",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": task},
            "backends": {
                "a": {"kind": "lightgbm", "path": file},
                "b": {"kind": "onnx", "from": "a"},
            },
            "checks": [{"id": "c", "type": "label_agreement", "between": ["a", "b"]}],
        },
    )
    assert exit_code == 2, output
    assert message in output
    assert not any(len(line) > 400 for line in output.splitlines())
