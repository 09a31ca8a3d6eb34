"""LightGBM: a model file in LightGBM's text format (`Booster.save_model`), predicted by the
booster itself and exported to ONNX by onnxmltools' LightGBM converter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from parityspec.backends import sklearn
from parityspec.backends.base import LoadedModel, Offer
from parityspec.backends.converters import (
    FAMILIES,
    ONNXMLTOOLS,
    converter_failure,
    native_columns,
    require,
)

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
    from parityspec.backends.onnx import Spec as OnnxSpec
    from parityspec.data import Features, Rows

KIND = "lightgbm"
OFFERS = frozenset({Offer.TABULAR})
LIBRARIES = (*FAMILIES["lightgbm"].distributions, *ONNXMLTOOLS)
SUFFIXES = (".txt", ".model")
DEFAULT_OPSET = 15  # the highest onnxmltools (1.16) converts a bare booster to
# The objectives whose outputs each task reads (LightGBM's names and aliases); `lambdarank`,
# `rank_xendcg` and the like rank rows, they predict no target.
CLASSIFIER_OBJECTIVES = {
    "binary": ("binary",),
    "multiclass": ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"),
}
NOT_REGRESSION = (*CLASSIFIER_OBJECTIVES["binary"], *CLASSIFIER_OBJECTIVES["multiclass"])
RANKING = ("lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart")


class Spec(ModelFileSpec):
    """A LightGBM model file; needs `pip install 'parityspec[lightgbm]'`."""

    FORMAT = "a LightGBM model file"
    SUFFIXES = SUFFIXES
    SAVED_WITH = "Booster.save_model('model.txt')"

    kind: Literal["lightgbm"]
    path: FilePath
    """LightGBM's text format (`Booster.save_model('model.txt')`), relative to the spec."""


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    lightgbm = require("lightgbm", f"kind: {KIND}")
    path = model_path(ctx, spec)
    try:
        booster = lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as error:
        raise InputError(
            f"not a LightGBM model file: {first_line(error)}",
            file=spec.path,
            hint="LightGBM reads the text files Booster.save_model writes",
        ) from error
    task = ctx.spec.model.task
    objective = str(booster.params.get("objective", "unknown"))
    _require_task(objective, task, spec.path)
    wrong = sklearn.probability_problem(task, ctx.spec.model.probabilities, True, "the booster")
    if wrong:
        raise InputError(wrong[0], file=spec.path, hint=wrong[1])
    facts: dict[str, Any] = {
        "estimator": "Booster",
        "objective": objective,
        "model_sha256": file_sha256(path),
    }
    if task != "regression":  # probabilities of classes 0..n-1, as LightGBM trains them
        facts["classes"] = list(range(max(2, booster.num_model_per_iteration())))
    return LoadedModel(name, KIND, booster, {"model": path}, facts)


def _require_task(objective: str, task: str, shown: str) -> None:
    if task == "regression":
        fits = objective not in NOT_REGRESSION + RANKING
        wanted = "a regression objective (regression, huber, poisson, ...)"
    else:
        fits = objective in CLASSIFIER_OBJECTIVES.get(task, ())
        wanted = " or ".join(CLASSIFIER_OBJECTIVES.get(task, ("a tabular task",)))
    if not fits:
        raise InputError(
            f"the model's objective is {objective}, which a {task} model cannot be compared by",
            file=shown,
            hint=f"model.task {task} takes {wanted}",
        )


def _columns(booster: Any, batch: Features) -> Features:
    return native_columns(booster, batch, "the LightGBM model", booster.feature_name())


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    booster = model.predictor
    values = np.asarray(booster.predict(_columns(booster, batch)), dtype=np.float64)
    if "classes" not in model.facts:
        return {"prediction": values.reshape(-1)}
    if values.ndim == 1:  # binary: the positive class's probability
        values = np.column_stack([1.0 - values, values])
    return {"probabilities": values}


def export_onnx(
    ctx: RunContext, model: LoadedModel, onnx_spec: OnnxSpec, out_dir: Path, data: Rows
) -> Path:
    """onnxmltools' converter without ZipMap; writes model.onnx, onnx_features.json and
    onnx_metadata.json as a scikit-learn export does."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import DoubleTensorType, FloatTensorType

    from parityspec.artifacts import write_bytes, write_json
    from parityspec.backends.onnx_graph import deduplicate_opsets
    from parityspec.lineage import library_versions

    booster = model.predictor
    # A native booster serves tabular tasks (OFFERS): its rows are a frame.
    sample = cast("pd.DataFrame", _columns(booster, data.sample()))
    columns = [str(c) for c in sample.columns]
    tensor = FloatTensorType if onnx_spec.dtype == "float32" else DoubleTensorType
    opset = onnx_spec.opset or DEFAULT_OPSET
    try:
        onnx_model = convert_lightgbm(
            booster,
            name=model.backend,
            initial_types=[("X", tensor([None, len(columns)]))],
            target_opset=opset,
            zipmap=False,
        )
    except Exception as error:
        raise converter_failure("onnxmltools", "the LightGBM booster", error, out_dir) from error
    deduplicate_opsets(onnx_model)
    path = out_dir / "model.onnx"
    write_bytes(path, onnx_model.SerializeToString())
    inputs = [{"name": "X", "dtype": onnx_spec.dtype, "columns": columns}]
    write_json(
        out_dir / "onnx_features.json", {"inputs": inputs, "order": columns, "categories": {}}
    )
    classes = model.facts.get("classes")
    metadata = {
        "task": ctx.spec.model.task,
        "decision_threshold": ctx.spec.model.threshold,
        "classes": None if classes is None else [str(c) for c in classes],
        "provenance": {
            "source_backend": model.backend,
            "source_estimator": f"lightgbm.Booster ({model.facts['objective']})",
            "source_model_sha256": model.facts["model_sha256"],
            "opset": opset,
            "input_dtype": onnx_spec.dtype,
            "libraries": library_versions(["lightgbm", "onnxmltools", "onnx", "onnxruntime"]),
        },
    }
    write_json(out_dir / "onnx_metadata.json", metadata)
    return path
