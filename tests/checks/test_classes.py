"""The model's classes, not the data's: checks map labels and probability columns through the
classes the models say they have, whatever classes the evaluation rows happen to hold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from parityspec.backends.base import Predictions
from parityspec.checks import (
    label_agreement,
    metric_delta,
    probability_parity,
    threshold_flips,
)
from parityspec.checks.base import CheckInputs
from parityspec.checks.classes import class_key
from parityspec.data import Dataset
from parityspec.errors import InputError
from tests.checks.conftest import CANDIDATE, REFERENCE, build_spec, check_spec, resolve_tolerances


def run_with_classes(
    module,
    reference: np.ndarray,
    candidate: np.ndarray,
    truth,
    *,
    classes=None,
    candidate_classes=None,
    task: str = "multiclass",
    **check_fields,
):
    """Run a check whose backends say `classes` (the candidate `candidate_classes`, default
    the same); the data's own classes are what its rows hold, as loading them gives."""
    truth = np.asarray(truth)
    data = Dataset(pd.DataFrame({"f0": np.arange(len(truth), dtype=float)}), truth)
    data.classes = np.unique(truth)
    inputs = CheckInputs(
        build_spec(task),
        data,
        Predictions(REFERENCE, {"probabilities": reference}, classes=classes),
        Predictions(
            CANDIDATE,
            {"probabilities": candidate},
            classes=classes if candidate_classes is None else candidate_classes,
        ),
    )
    spec = check_spec(module, **check_fields)
    return module.run(spec, resolve_tolerances(spec), inputs)


def confident(labels, n_classes: int, sure: float = 0.8) -> np.ndarray:
    """Probabilities putting `sure` on each row's class and the rest evenly elsewhere."""
    probabilities = np.full((len(labels), n_classes), (1 - sure) / (n_classes - 1))
    probabilities[np.arange(len(labels)), labels] = sure
    return probabilities


# --- metric_delta: a class the rows lack ---------------------------------------------------

# A 3-class model on rows without its first class, scored right on every row but the last.
CODES = np.array([1, 2, 1, 2, 2, 1, 1, 2])
PREDICTED = np.array([1, 2, 1, 2, 2, 1, 1, 1])


@pytest.mark.parametrize(
    "classes",
    [[0, 1, 2], ["cat", "dog", "eel"], [1, 3, 7]],
    ids=["integers", "strings", "integers-not-from-zero"],
)
def test_metric_delta_scores_over_the_models_classes(classes):
    truth = np.array(classes, dtype=object)[CODES]
    probabilities = confident(PREDICTED, 3)
    result = run_with_classes(
        metric_delta, probabilities, probabilities.copy(), truth, classes=classes
    )
    scores = result.details["scores"][REFERENCE]
    assert scores["accuracy"] == 7 / 8  # the data's classes would shift every label: 0 or so
    assert scores["log_loss"] == pytest.approx(
        skm.log_loss(CODES, probabilities, labels=[0, 1, 2]), rel=1e-12
    )
    # One-vs-rest over the two classes present; the absent one has no positive row to rank.
    expected_auc = np.mean([skm.roc_auc_score(c == CODES, probabilities[:, c]) for c in (1, 2)])
    assert scores["roc_auc"] == pytest.approx(expected_auc, rel=1e-12)
    assert scores["f1"] == pytest.approx(
        skm.f1_score(CODES, PREDICTED, labels=[1, 2], average="macro"), rel=1e-12
    )
    assert result.details["classes"] == [str(c) for c in classes]
    assert result.details["classes_from"] == REFERENCE
    assert result.details["classes_absent_from_truth"] == [str(classes[0])]
    assert result.details["undefined"] == []
    assert result.figures["drops"] == {"accuracy": 0.0, "roc_auc": 0.0, "f1": 0.0, "log_loss": 0.0}
    assert result.status == "passed", result.reason


def test_metric_delta_ground_truth_in_any_order_maps_by_value():
    # Ground truth met as 3, 1, 7, ...; the model's columns are for 1, 3, 7.
    truth = np.array([3, 1, 7, 3, 7, 1])
    codes = np.array([1, 0, 2, 1, 2, 0])
    probabilities = confident(codes, 3)
    result = run_with_classes(
        metric_delta, probabilities, probabilities.copy(), truth, classes=[1, 3, 7]
    )
    assert result.details["scores"][REFERENCE]["accuracy"] == 1.0
    assert result.details["scores"][REFERENCE]["roc_auc"] == 1.0


def test_metric_delta_matches_sklearn_when_every_class_is_present():
    rng = np.random.default_rng(0)
    codes = np.tile([0, 1, 2], 10)
    probabilities = rng.dirichlet([1, 1, 1], size=len(codes))
    result = run_with_classes(
        metric_delta, probabilities, probabilities.copy(), codes, classes=[0, 1, 2]
    )
    scores = result.details["scores"][REFERENCE]
    assert scores["roc_auc"] == pytest.approx(
        skm.roc_auc_score(codes, probabilities, multi_class="ovr"), rel=1e-12
    )
    assert scores["f1"] == pytest.approx(
        skm.f1_score(codes, probabilities.argmax(axis=1), average="macro"), rel=1e-12
    )


def test_metric_delta_binary_without_positive_rows_says_roc_auc_and_f1_are_undefined():
    truth = np.array(["no"] * 6)
    probabilities = confident(np.array([0, 0, 0, 1, 0, 0]), 2, sure=0.7)
    result = run_with_classes(
        metric_delta,
        probabilities,
        probabilities.copy(),
        truth,
        classes=["no", "yes"],
        task="binary",
    )
    assert result.details["undefined"] == ["roc_auc", "f1"]
    assert result.details["scores"][REFERENCE]["accuracy"] == 5 / 6
    assert set(result.figures["drops"]) == {"accuracy", "log_loss"}
    assert result.status == "passed", result.reason


def test_metric_delta_refuses_a_truth_class_the_model_does_not_know():
    probabilities = confident(np.array([0, 1, 0]), 2)
    with pytest.raises(InputError, match="holds maybe, not among the model's classes"):
        run_with_classes(
            metric_delta,
            probabilities,
            probabilities,
            ["no", "yes", "maybe"],
            classes=["no", "yes"],
        )


def test_metric_delta_without_model_classes_refuses_to_guess_from_too_few_data_classes():
    probabilities = confident(CODES, 3)
    with pytest.raises(InputError, match="which class each of the 3 probability columns"):
        run_with_classes(metric_delta, probabilities, probabilities, CODES)


def test_without_model_classes_the_data_classes_stand_in_when_as_many():
    probabilities = confident(np.array([0, 1, 2, 1]), 3)
    result = run_with_classes(metric_delta, probabilities, probabilities, ["a", "b", "c", "b"])
    assert result.details["classes"] == ["a", "b", "c"]
    assert result.details["classes_from"] == "data"
    assert result.details["scores"][REFERENCE]["accuracy"] == 1.0


# --- the candidate's own classes -----------------------------------------------------------


def test_backends_with_different_classes_fail_saying_which():
    probabilities = confident(np.array([0, 1, 2]), 3)
    for module in (metric_delta, label_agreement, probability_parity):
        result = run_with_classes(
            module,
            probabilities,
            probabilities,
            ["a", "b", "c"],
            classes=["a", "b", "c"],
            candidate_classes=["a", "b", "z"],
        )
        assert result.status == "failed"
        assert (
            result.reason
            == f"the backends know different classes: {REFERENCE} a, b, c, {CANDIDATE} a, b, z"
        )


def test_classes_that_do_not_match_the_columns_fail():
    probabilities = confident(np.array([0, 1]), 2)
    result = run_with_classes(
        label_agreement, probabilities, probabilities, [0, 1], classes=[0, 1, 2]
    )
    assert result.status == "failed"
    assert f"{REFERENCE} returns 2 probability columns for its 3 classes" in result.reason


def test_label_agreement_names_the_model_classes_and_columns_when_unknown():
    probabilities = confident(np.array([0, 1, 2]), 3)
    named = run_with_classes(
        label_agreement, probabilities, probabilities, [5, 5, 5], classes=[9, 5, 2]
    )
    assert named.details["classes"] == ["9", "5", "2"]
    unknown = run_with_classes(label_agreement, probabilities, probabilities, [5, 5, 5])
    assert unknown.details["classes"] == ["0", "1", "2"]
    assert unknown.details["classes_from"] == "unknown"


def test_threshold_flips_name_the_models_positive_class():
    probabilities = confident(np.array([0, 1, 1]), 2, sure=0.9)
    result = run_with_classes(
        threshold_flips,
        probabilities,
        probabilities,
        ["no", "no", "no"],
        classes=["no", "yes"],
        task="binary",
    )
    assert result.details["positive_class"] == "yes"
    assert result.figures["flips"] == 0


CHECKS_OF = {
    "multiclass": (probability_parity, label_agreement, metric_delta),
    "binary": (probability_parity, label_agreement, metric_delta, threshold_flips),
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["binary", "multiclass"]), st.data())
def test_a_candidate_ordering_its_classes_otherwise_changes_nothing(task, data):
    """The same model with its classes (and columns) in another order is the same model."""
    n_classes = 2 if task == "binary" else data.draw(st.integers(3, 5))
    classes = data.draw(st.permutations([f"c{i}" for i in range(n_classes)]))
    rows = data.draw(st.integers(2, 12))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    reference = rng.dirichlet(np.ones(n_classes), size=rows)
    truth = np.array(classes)[rng.integers(0, n_classes, rows)]
    order = np.array(data.draw(st.permutations(range(n_classes))))
    for module in CHECKS_OF[task]:
        same = run_with_classes(
            module, reference, reference.copy(), truth, classes=classes, task=task
        )
        shuffled = run_with_classes(
            module,
            reference,
            reference[:, order],
            truth,
            classes=classes,
            candidate_classes=[classes[i] for i in order],
            task=task,
        )
        assert shuffled.status == same.status == "passed", shuffled.reason
        assert shuffled.figures == same.figures


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1, "1", True),
        (1.0, 1, True),
        (np.int64(7), "7", True),
        (True, 1, True),
        (b"cat", "cat", True),
        (1.5, "1.5", True),
        (1, 2, False),
        ("1", "01", False),
    ],
)
def test_class_key_spells_one_class_one_way(a, b, same):
    assert (class_key(a) == class_key(b)) is same


# --- end to end: a real model and its ONNX export on rows lacking one of its classes --------


@pytest.fixture(scope="module", params=["integers-unordered", "strings"])
def iris_model(request, tmp_path_factory):
    """A logistic regression fitted on all of iris with classes [3, 1, 7] (met in that order)
    or names, saved as skops and ONNX; `rows.csv` holds only the rows of two classes."""
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp(request.param)
    features, codes = load_iris(return_X_y=True, as_frame=True)
    features.columns = ["f0", "f1", "f2", "f3"]
    names = (
        [3, 1, 7]
        if request.param == "integers-unordered"
        else ["setosa", "versicolor", "virginica"]
    )
    target = np.array(names)[codes.to_numpy()]
    model = LogisticRegression(max_iter=1000).fit(features, target)
    sio.dump(model, folder / "model.skops")
    onnx_model = to_onnx(
        model,
        features[:1].to_numpy(np.float32),
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (folder / "model.onnx").write_bytes(onnx_model.SerializeToString())
    absent = names[0]
    rows = features.assign(y=target)[target != absent]
    rows.to_csv(folder / "rows.csv", index=False)
    expected = model.score(rows[features.columns], rows["y"].to_numpy())
    return folder, model.classes_.tolist(), absent, expected


def test_run_scores_a_model_on_rows_lacking_one_of_its_classes(invoke, iris_model):
    folder, classes, absent, expected_accuracy = iris_model
    spec = {
        "parityspec": 1,
        "name": "absent-class",
        "data": {"path": str(folder / "rows.csv"), "target": "y"},
        "model": {"task": "multiclass"},
        "backends": {
            "sk": {"kind": "sklearn", "path": str(folder / "model.skops")},
            "onnx": {"kind": "onnx", "path": str(folder / "model.onnx")},
        },
        "checks": [
            {"id": "metrics", "type": "metric_delta", "between": ["sk", "onnx"]},
            {"id": "labels", "type": "label_agreement", "between": ["sk", "onnx"]},
        ],
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = folder / "out"
    result = invoke("run", folder / "spec.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    checks = {c["id"]: c for c in json.loads((out / "report.json").read_text())["checks"]}
    metrics = checks["metrics"]["details"]
    assert metrics["classes"] == [str(c) for c in classes]
    assert metrics["classes_from"] == "sk"
    assert metrics["classes_absent_from_truth"] == [str(absent)]
    for backend in ("sk", "onnx"):
        assert metrics["scores"][backend]["accuracy"] == pytest.approx(expected_accuracy)
        assert metrics["scores"][backend]["roc_auc"] > 0.9
    assert expected_accuracy > 0.9
    assert checks["labels"]["details"]["classes"] == [str(c) for c in classes]
    # A warm run restores the predictions from the step cache, their classes with them.
    assert invoke("run", folder / "spec.yaml", "--out", folder / "warm").exit_code == 0
    warm = json.loads((folder / "warm" / "report.json").read_text())
    assert warm["run"]["from_cache"] and warm["checks"] == list(checks.values())
