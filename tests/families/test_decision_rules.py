"""Classifiers without probabilities, and classifiers with a decision rule of their own
(issue 13.6): labels as each runtime returns them, decision scores, the model's threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.families.conftest import checks, run_spec

BUILDERS = """
from sklearn.linear_model import (
    LogisticRegression, PassiveAggressiveClassifier, Perceptron, RidgeClassifier,
    SGDClassifier,
)
from sklearn.model_selection import TunedThresholdClassifierCV
from sklearn.multiclass import OneVsOneClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC


def scaled(model):
    return make_pipeline(StandardScaler(), model)


def linear_svc():
    return scaled(LinearSVC(random_state=0))


def ridge():
    return scaled(RidgeClassifier())


def perceptron():
    return scaled(Perceptron(random_state=0))


def passive_aggressive():
    return scaled(PassiveAggressiveClassifier(random_state=0))


def sgd_hinge():
    return scaled(SGDClassifier(loss="hinge", random_state=0))


def one_vs_one():
    return scaled(OneVsOneClassifier(LinearSVC(random_state=0)))


def tuned():
    return TunedThresholdClassifierCV(LogisticRegression(max_iter=200), cv=3)
"""

LABEL_ONLY = ["linear_svc", "ridge", "perceptron", "passive_aggressive", "sgd_hinge", "one_vs_one"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules")
    (path / "builders.py").write_text(BUILDERS)
    return path


def label_only_spec(builder: str, dataset: str, task: str, extra_checks=()) -> dict:
    return {
        "name": f"{builder}-{dataset}",
        "data": {"sklearn": dataset, "split": {"test_size": 0.3, "seed": 0}},
        "model": {"task": task, "probabilities": False},
        "backends": {
            "sk": {"kind": "sklearn", "train": f"builders.py:{builder}"},
            "onnx": {"kind": "onnx", "from": "sk"},
        },
        "checks": [
            {"id": "labels", "type": "label_agreement", "between": ["sk", "onnx"]},
            {"id": "scores", "type": "score_parity", "between": ["sk", "onnx"]},
            *extra_checks,
        ],
    }


@pytest.mark.parametrize("builder", LABEL_ONLY)
@pytest.mark.parametrize(("dataset", "task"), [("breast_cancer", "binary"), ("iris", "multiclass")])
def test_classifiers_without_probabilities_compare_labels_and_scores(
    invoke, folder, builder, dataset, task
):
    code, report, output = run_spec(invoke, folder, label_only_spec(builder, dataset, task))
    assert code == 0, output
    found = checks(report)
    assert found["labels"]["figures"]["agreement"] == 1.0
    assert found["labels"]["details"]["labels_from"] == {
        "sk": "its own labels",
        "onnx": "its own labels",
    }
    scores = found["scores"]["figures"]
    assert scores["elements"] == scores["samples"] * (1 if task == "binary" else 3)
    assert 0 < scores["max_abs_diff"] < 1e-3  # float32 against float64: not exactly 0


def test_probability_checks_on_a_classifier_without_them_are_refused_by_validate(invoke, folder):
    spec = label_only_spec(
        "linear_svc",
        "breast_cancer",
        "binary",
        [
            {"id": "parity", "type": "probability_parity", "between": ["sk", "onnx"]},
            {"id": "flips", "type": "threshold_flips", "between": ["sk", "onnx"]},
        ],
    )
    path = folder / "refused.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"parityspec": 1, **spec}))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "probability_parity compares probabilities, and model.probabilities is false" in (
        result.output
    )
    assert "threshold_flips compares probabilities" in result.output
    assert "Traceback" not in result.output


def test_a_classifier_without_predict_proba_in_a_probability_spec_is_exit_2(invoke, folder):
    spec = label_only_spec("linear_svc", "breast_cancer", "binary")
    spec["model"] = {"task": "binary"}
    spec["checks"] = [{"id": "labels", "type": "label_agreement", "between": ["sk", "onnx"]}]
    code, _, output = run_spec(invoke, folder, spec)
    assert code == 2, output
    assert "LinearSVC has no predict_proba" in output
    assert "probabilities: false" in output


def test_score_parity_on_a_probability_classifier_is_refused(invoke, folder):
    import yaml

    spec = label_only_spec("tuned", "breast_cancer", "binary")
    spec["model"] = {"task": "binary"}
    path = folder / "scores.yaml"
    path.write_text(yaml.safe_dump({"parityspec": 1, **spec}))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "score_parity compares decision scores" in result.output


def test_a_tuned_threshold_export_that_drops_the_threshold_fails_label_agreement(invoke, folder):
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import TunedThresholdClassifierCV

    # Unscaled: the tuned threshold moves labels near it, which the export drops.
    model = TunedThresholdClassifierCV(LogisticRegression(max_iter=200), cv=3)
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model.fit(features, target)
    joblib.dump(model, folder / "tuned.joblib")
    threshold = float(model.best_threshold_)
    spec = {
        "name": "tuned",
        "data": {"sklearn": "breast_cancer"},
        "model": {"task": "binary", "threshold": threshold},
        "backends": {
            "sk": {"kind": "sklearn", "path": "tuned.joblib", "trusted": True},
            "onnx": {"kind": "onnx", "from": "sk"},
        },
        "checks": [
            {"id": "labels", "type": "label_agreement", "between": ["sk", "onnx"]},
            {"id": "flips", "type": "threshold_flips", "between": ["sk", "onnx"]},
        ],
    }
    code, report, output = run_spec(invoke, folder, spec)
    found = checks(report)
    labels = found["labels"]
    # skl2onnx exports the arg-max: rows between 0.5 and the tuned threshold disagree.
    predicted = model.predict(features)
    argmax = model.predict_proba(features).argmax(axis=1)
    differ = int((predicted != argmax).sum())
    assert differ > 0
    assert labels["figures"]["disagreements"] == differ
    assert labels["details"]["labels_not_argmax"] == {"sk": differ, "onnx": 0}
    assert "sk's own labels differ from the arg-max of its probabilities" in labels["reason"]
    assert labels["status"] == "failed"
    assert found["flips"]["figures"]["threshold"] == threshold
    assert code == 1, output


def test_a_spec_threshold_other_than_the_models_own_is_exit_2(invoke, folder):
    spec = label_only_spec("tuned", "breast_cancer", "binary")
    spec["model"] = {"task": "binary", "threshold": 0.5}
    spec["checks"] = [{"id": "flips", "type": "threshold_flips", "between": ["sk", "onnx"]}]
    code, _, output = run_spec(invoke, folder, spec)
    assert code == 2, output
    assert "TunedThresholdClassifierCV decides at threshold" in output
    assert "set `threshold: 0." in output


def test_init_proposes_labels_and_scores_for_a_classifier_without_probabilities(invoke, tmp_path):
    import joblib
    import yaml
    from sklearn.datasets import load_iris
    from sklearn.svm import LinearSVC

    frame = load_iris(as_frame=True).frame
    model = LinearSVC(random_state=0).fit(frame.drop(columns="target"), frame["target"])
    joblib.dump(model, tmp_path / "svc.joblib")
    frame.to_csv(tmp_path / "iris.csv", index=False)
    spec = tmp_path / "svc.yaml"
    result = invoke(
        "init", tmp_path / "svc.joblib", "--trust-models", "--data", tmp_path / "iris.csv",
        "--target", "target", "-o", spec,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(spec.read_text())
    assert written["model"] == {"task": "multiclass", "probabilities": False}
    assert [c["type"] for c in written["checks"]] == ["label_agreement", "score_parity"]
    run = invoke("run", spec, "--out", tmp_path / "out")
    assert run.exit_code == 0, run.output


def test_init_takes_the_threshold_of_a_tuned_classifier(invoke, tmp_path):
    import joblib
    import yaml
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier

    frame = load_breast_cancer(as_frame=True).frame
    model = FixedThresholdClassifier(LogisticRegression(max_iter=5000), threshold=0.3)
    model.fit(frame.drop(columns="target"), frame["target"])
    joblib.dump(model, tmp_path / "fixed.joblib")
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    spec = tmp_path / "fixed.yaml"
    result = invoke(
        "init", tmp_path / "fixed.joblib", "--trust-models", "--data",
        tmp_path / "cancer.csv", "-o", spec,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(spec.read_text())["model"] == {"task": "binary", "threshold": 0.3}
    # skl2onnx has no converter for FixedThresholdClassifier: exit 3 naming its error.
    run = invoke("run", spec, "--out", tmp_path / "out")
    assert run.exit_code == 3, run.output
    assert "skl2onnx cannot convert FixedThresholdClassifier" in run.output


def test_a_torch_classifier_with_probabilities_false_is_exit_2(invoke, tmp_path):
    from tests.conftest import REPO

    spec = {
        "name": "torch-labels",
        "data": {
            "path": str(REPO / "examples" / "churn" / "churn.csv"),
            "target": "churned",
            "features": ["tenure_months", "monthly_charges", "total_charges"],
            "rows": 50,
        },
        "model": {"task": "binary", "probabilities": False},
        "backends": {
            "net": {
                "kind": "torch",
                "module": f"{REPO}/examples/churn/torch_mlp.py:churn_mlp_architecture",
            },
            "onnx": {"kind": "onnx", "from": "net"},
        },
        "checks": [{"id": "labels", "type": "label_agreement", "between": ["net", "onnx"]}],
    }
    code, _, output = run_spec(invoke, tmp_path, spec)
    assert code == 2, output
    assert "a torch classifier returns probabilities" in output
