"""`model.classes` in the spec: the classes of a model that does not say them (a torch
classifier), used before the data's guess and held to agree with a model that does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from parityspec.backends.base import Predictions
from parityspec.checks import label_agreement, metric_delta
from parityspec.checks.base import CheckInputs
from parityspec.data import Dataset
from tests.checks.conftest import CANDIDATE, REFERENCE, build_spec, check_spec, resolve_tolerances


def _run(module, probabilities, truth, *, declared, model_classes=None):
    spec = build_spec("multiclass")
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"classes": declared})})
    truth = np.asarray(truth, dtype=object)
    data = Dataset(pd.DataFrame({"f0": np.arange(len(truth), dtype=float)}), truth)
    data.classes = np.unique(truth)
    inputs = CheckInputs(
        spec,
        data,
        Predictions(REFERENCE, {"probabilities": probabilities}, classes=model_classes),
        Predictions(CANDIDATE, {"probabilities": probabilities}, classes=model_classes),
    )
    check = check_spec(module)
    return module.run(check, resolve_tolerances(check), inputs)


def test_declared_classes_score_rows_that_lack_one_of_them():
    """Rows of two classes only: the data's guess could not name three columns."""
    codes = np.array([1, 2, 2, 1])
    probabilities = np.full((4, 3), 0.1)
    probabilities[np.arange(4), codes] = 0.8
    truth = np.array(["dog", "eel", "eel", "dog"])
    result = _run(metric_delta, probabilities, truth, declared=["cat", "dog", "eel"])
    assert result.details["classes_from"] == "model.classes"
    assert result.details["scores"][REFERENCE]["accuracy"] == 1.0


def test_declared_classes_that_contradict_the_model_fail():
    probabilities = np.full((2, 2), 0.5)
    result = _run(
        label_agreement, probabilities, ["a", "b"], declared=["a", "z"], model_classes=["a", "b"]
    )
    assert result.status == "failed"
    assert f"model.classes (a, z) are not {REFERENCE}'s own (a, b)" in result.reason


def test_declared_classes_must_match_the_columns():
    probabilities = np.full((2, 3), 1 / 3)
    result = _run(label_agreement, probabilities, ["a", "b"], declared=["a", "b"])
    assert result.status == "failed"
    assert "model.classes lists 2 classes for 3 probability columns" in result.reason
