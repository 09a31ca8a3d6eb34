"""CatBoost: a model file in CatBoost's own format (`.cbm`, `save_model`). It is read into
CatBoost's scikit-learn-API estimator, which predicts as the model does; the ONNX export is
CatBoost's own exporter's tree ensemble, registered with skl2onnx (as an estimator in a
pipeline is), so prediction and export are the sklearn backend's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from parityspec.backends import sklearn
from parityspec.backends.base import LoadedModel, Offer
from parityspec.backends.converters import FAMILIES, native_columns, require

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
    import pandas as pd

    from parityspec.backends.context import RunContext
    from parityspec.data import Features, Rows

KIND = "catboost"
OFFERS = frozenset({Offer.TABULAR})
LIBRARIES = FAMILIES["catboost"].distributions
SUFFIXES = (".cbm",)
# The loss functions whose outputs each task reads; rankers (YetiRank, PairLogit, ...) and
# multi-label or multi-target models predict no single target.
CLASSIFIER_LOSSES = {
    "binary": ("Logloss", "CrossEntropy"),
    "multiclass": ("MultiClass", "MultiClassOneVsAll"),
}
NOT_REGRESSION = (
    *CLASSIFIER_LOSSES["binary"],
    *CLASSIFIER_LOSSES["multiclass"],
    "YetiRank",
    "YetiRankPairwise",
    "PairLogit",
    "PairLogitPairwise",
    "QueryRMSE",
    "QuerySoftMax",
    "QueryCrossEntropy",
    "MultiLogloss",
    "MultiCrossEntropy",
    "MultiRMSE",
)


class Spec(ModelFileSpec):
    """A CatBoost model file; needs `pip install 'parityspec[catboost]'`."""

    FORMAT = "a CatBoost model file"
    SUFFIXES = SUFFIXES
    SAVED_WITH = "model.save_model('model.cbm')"

    kind: Literal["catboost"]
    path: FilePath
    """CatBoost's binary format (`model.save_model('model.cbm')`), relative to the spec."""


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    catboost = require("catboost", f"kind: {KIND}")
    path = model_path(ctx, spec)
    task = ctx.spec.model.task
    family = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    estimator = family()
    try:
        estimator.load_model(str(path))
    except catboost.CatBoostError as error:
        raise InputError(
            f"not a CatBoost model file: {first_line(error).rpartition(': ')[2]}",
            file=spec.path,
            hint="CatBoost reads the .cbm files save_model writes",
        ) from error
    loss = str(estimator.get_all_params().get("loss_function", "unknown"))
    _require_task(loss, task, spec.path)
    wrong = sklearn.probability_problem(task, ctx.spec.model.probabilities, True, "the model")
    if wrong:
        raise InputError(wrong[0], file=spec.path, hint=wrong[1])
    facts: dict[str, Any] = {
        "estimator": type(estimator).__name__,
        "objective": loss,
        "model_sha256": file_sha256(path),
    }
    if task != "regression":
        facts["classes"] = np.asarray(estimator.classes_).tolist()
    return LoadedModel(name, KIND, estimator, {"model": path}, facts)


def _require_task(loss: str, task: str, shown: str) -> None:
    loss = loss.partition(":")[0]  # "Logloss:border=0.5"
    if task == "regression":
        fits = loss not in NOT_REGRESSION
        wanted = "a regression loss (RMSE, MAE, Quantile, Poisson, ...)"
    else:
        fits = loss in CLASSIFIER_LOSSES.get(task, ())
        wanted = " or ".join(CLASSIFIER_LOSSES.get(task, ("a tabular task",)))
    if not fits:
        raise InputError(
            f"the model's loss function is {loss}, which a {task} model cannot be compared by",
            file=shown,
            hint=f"model.task {task} takes {wanted}",
        )


def _columns(model: LoadedModel, batch: Features) -> Features:
    names = [str(n) for n in model.predictor.feature_names_]
    return native_columns(model.predictor, batch, "the CatBoost model", names)


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    return sklearn.predict(model, _columns(model, batch))


def export_onnx(
    ctx: RunContext, model: LoadedModel, onnx_spec: Any, out_dir: Path, data: Rows
) -> Path:
    """CatBoost's own exporter's tree ensemble, as for a CatBoost estimator in a pipeline."""
    sample = cast("pd.DataFrame", _columns(model, data.sample()))
    return sklearn.export_onnx(ctx, model, onnx_spec, out_dir, data, sample=sample)
