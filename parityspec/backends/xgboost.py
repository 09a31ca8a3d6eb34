"""XGBoost: a model file in XGBoost's own formats (`.json`, `.ubj`), as `Booster.save_model`
writes it. It is read into XGBoost's scikit-learn estimator, which predicts as the booster
does, so prediction and the ONNX export (onnxmltools' converter) are the sklearn backend's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from parityspec.backends import sklearn
from parityspec.backends.base import LoadedModel, Offer
from parityspec.backends.converters import FAMILIES, ONNXMLTOOLS, native_columns, require

# The protocol functions of a kind made from its file alone (re-exported: read by name).
from parityspec.backends.model_file import ModelFileSpec, model_path
from parityspec.backends.model_file import needs_data as needs_data
from parityspec.backends.model_file import referenced_files as referenced_files
from parityspec.backends.model_file import source as source
from parityspec.backends.model_file import verb as verb
from parityspec.errors import InputError, first_line
from parityspec.loading import file_sha256
from parityspec.spec.base import FilePath

if TYPE_CHECKING:
    from parityspec.backends.context import RunContext
    from parityspec.data import Features, Rows

KIND = "xgboost"
OFFERS = frozenset({Offer.TABULAR})
LIBRARIES = (*FAMILIES["xgboost"].distributions, *ONNXMLTOOLS)
SUFFIXES = (".json", ".ubj")
# The objectives whose outputs each task reads; others (binary:logitraw's margins,
# binary:hinge's 0/1, rankings) are not probabilities or predictions of the target.
CLASSIFIER_OBJECTIVES = {
    "binary": ("binary:logistic",),
    "multiclass": ("multi:softprob", "multi:softmax"),
}
NOT_REGRESSION = ("binary:", "multi:", "rank:")


class Spec(ModelFileSpec):
    """An XGBoost model file; needs `pip install 'parityspec[xgboost]'`."""

    FORMAT = "an XGBoost model file"
    SUFFIXES = SUFFIXES
    SAVED_WITH = "Booster.save_model('model.json')"

    kind: Literal["xgboost"]
    path: FilePath
    """`.json` or `.ubj` (`Booster.save_model`, `XGBModel.save_model`), relative to the spec."""


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    xgboost = require("xgboost", f"kind: {KIND}")
    path = model_path(ctx, spec)
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as error:
        raise InputError(
            f"not an XGBoost model file: {_xgboost_message(error)}",
            file=spec.path,
            hint="XGBoost reads the .json or .ubj files Booster.save_model writes",
        ) from error
    task = ctx.spec.model.task
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    _require_task(objective, task, spec.path)
    wrong = sklearn.probability_problem(task, ctx.spec.model.probabilities, True, "the booster")
    if wrong:
        raise InputError(wrong[0], file=spec.path, hint=wrong[1])
    estimator = xgboost.XGBRegressor() if task == "regression" else xgboost.XGBClassifier()
    estimator.load_model(str(path))
    facts: dict[str, Any] = {
        "estimator": type(estimator).__name__,
        "objective": objective,
        "model_sha256": file_sha256(path),
    }
    if task != "regression":
        facts["classes"] = np.asarray(estimator.classes_).tolist()
    return LoadedModel(name, KIND, estimator, {"model": path}, facts)


def _xgboost_message(error: Exception) -> str:
    # "[15:28:07] /workspace/src/.../json.h:88: Invalid cast, from Null to Object"
    return first_line(error).rpartition(": ")[2] or first_line(error)


def _require_task(objective: str, task: str, shown: str) -> None:
    if task == "regression":
        fits = not objective.startswith(NOT_REGRESSION)
        wanted = "a reg:, count:, survival: or similar objective"
    else:
        fits = objective in CLASSIFIER_OBJECTIVES.get(task, ())
        wanted = " or ".join(CLASSIFIER_OBJECTIVES.get(task, ("a tabular task",)))
    if not fits:
        raise InputError(
            f"the model's objective is {objective}, which a {task} model cannot be compared by",
            file=shown,
            hint=f"model.task {task} takes {wanted}",
        )


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    return sklearn.predict(model, native_columns(model.predictor, batch, "the XGBoost model"))


def export_onnx(
    ctx: RunContext, model: LoadedModel, onnx_spec: Any, out_dir: Path, data: Rows
) -> Path:
    """skl2onnx with onnxmltools' XGBoost converter, as for an XGBClassifier in a pipeline."""
    native_columns(model.predictor, data.sample(), "the XGBoost model")
    return sklearn.export_onnx(ctx, model, onnx_spec, out_dir, data)
