"""scikit-learn: a model trained by a builder function, or loaded from a file."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

import numpy as np
import numpy.typing as npt
from pydantic import model_validator

from parityspec.backends.base import LoadedModel, Offer, Verb, label_codes
from parityspec.errors import InputError
from parityspec.loading import (
    file_sha256,
    import_folders,
    importable,
    load_callable,
    load_sklearn_model,
)
from parityspec.spec.base import CallableRef, FilePath
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    import pandas as pd

    from parityspec.backends.context import RunContext
    from parityspec.backends.onnx import Spec as OnnxSpec
    from parityspec.data import Features, Rows

KIND = "sklearn"
OFFERS = frozenset({Offer.TABULAR, Offer.PIPELINE_STEPS})
LIBRARIES = ("scikit-learn", "skl2onnx")
DEFAULT_OPSET = 17
MIN_TRAIN_ROWS = 2


class Spec(BackendSpecBase):
    """Exactly one of `train` (a builder returning an unfitted estimator) or `path`."""

    kind: Literal["sklearn"]
    train: CallableRef | None = None
    """`file.py:function`, called with no arguments; the estimator is fitted on the train rows."""
    path: FilePath | None = None
    """A fitted model: `.skops` (safe), or `.joblib`/`.pkl` (runs code: needs `trusted`)."""
    trusted: bool = False
    """Allow loading formats that can run code (pickle, joblib, skops with unknown types)."""
    python_path: list[str] = []
    """Folders, relative to the spec, importable while the model loads and runs (a team's
    module its builder or pickled pipeline imports); the spec's own folder always is."""
    converters: list[CallableRef] = []
    """`file.py:function`s called before the ONNX export, each registering skl2onnx
    converters (`update_registered_converter`) for the team's own transformers."""

    @model_validator(mode="after")
    def _one_source(self) -> Spec:
        if (self.train is None) == (self.path is None):
            raise ValueError("give exactly one of train or path")
        return self


def verb(spec: Spec) -> Verb:
    return "build" if spec.train else "load"


def source(spec: Spec) -> str | None:
    return None


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    converters = [(f"converters.{i}", c.rpartition(":")[0]) for i, c in enumerate(spec.converters)]
    if spec.train:
        return [("train", spec.train.rpartition(":")[0]), *converters]
    return ([("path", spec.path)] if spec.path is not None else []) + converters


def needs_data(spec: Spec) -> bool:
    return spec.train is not None


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    from parityspec.backends.converters import families_installed

    importable(ctx.spec_dir, *import_folders(ctx.spec_dir, spec.python_path))
    with families_installed(spec.path or spec.train):  # an XGBoost model without xgboost
        if spec.path:
            path = ctx.resolve(spec.path)
            estimator = load_sklearn_model(path, trusted=spec.trusted or ctx.trust_models)
        else:
            assert spec.train is not None  # Spec._one_source: no path, so a builder
            assert data is not None  # needs_data(): training is given the train rows
            estimator = _train(ctx, spec.train, data)
    facts: dict[str, Any] = {
        "estimator": type(estimator).__name__,
        # A loaded model is its file's bytes: a pickle of the object it loads into is not
        # the same from one load to the next (its memo follows object identities).
        "model_sha256": file_sha256(ctx.resolve(spec.path))
        if spec.path
        else model_digest(estimator),
    }
    classes = getattr(estimator, "classes_", None)
    if classes is not None:  # predict_proba's columns, in this order
        facts["classes"] = np.asarray(classes).tolist()
    _require_decision_rule(ctx, estimator, spec.path or spec.train)
    return LoadedModel(backend=name, kind=KIND, predictor=estimator, facts=facts)


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    estimator = model.predictor
    batch = _in_fitted_order(estimator, batch)
    classes = model.facts.get("classes")
    if classes is None:
        return {
            "prediction": np.asarray(estimator.predict(batch), dtype=np.float64).reshape(len(batch))
        }
    # predict() is the model's own decision rule (a tuned threshold is not the arg-max).
    labels = label_codes(estimator.predict(batch), classes)
    if hasattr(estimator, "predict_proba"):
        probabilities = np.asarray(estimator.predict_proba(batch), dtype=np.float64)
        return {"probabilities": probabilities, "labels": labels}
    return {"scores": decision_scores(estimator.decision_function(batch)), "labels": labels}


def decision_scores(scores: Any) -> np.ndarray:
    """Decision scores as scikit-learn's `decision_function` shapes them: one column per
    class, or one value per row (the positive class's) for a binary classifier."""
    values = np.asarray(scores, dtype=np.float64)
    return values.reshape(len(values)) if values.ndim == 2 and values.shape[1] == 1 else values


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    """What a served model is asked: probabilities, else labels (the benchmark times this,
    not the labels predict() adds for the checks)."""
    estimator = model.predictor
    batch = _in_fitted_order(estimator, batch)
    if hasattr(estimator, "predict_proba"):
        return lambda: estimator.predict_proba(batch)
    return lambda: estimator.predict(batch)


def probability_problem(
    task: str, wanted: bool, has: bool, what: str
) -> tuple[str, str | None] | None:
    """A classifier whose probabilities the spec says (`model.probabilities`) wrongly:
    (message, hint)."""
    if task not in ("binary", "multiclass") or wanted == has:
        return None
    if has:
        return (
            f"{what} predicts probabilities, but model.probabilities is false",
            "remove `probabilities: false` from model: its probabilities are compared",
        )
    return (
        f"{what} has no predict_proba: its probabilities cannot be compared",
        "set `probabilities: false` under model, and compare its labels "
        "(label_agreement) and decision scores (score_parity)",
    )


def own_threshold(estimator: Any) -> float | None:
    """The decision threshold on the positive class's probability a binary classifier
    applies itself (FixedThresholdClassifier, TunedThresholdClassifierCV), or None."""
    final = _final_step(estimator)
    threshold = getattr(final, "best_threshold_", None)
    if threshold is None and type(final).__name__ == "FixedThresholdClassifier":
        threshold = final.threshold
    if not isinstance(threshold, int | float) or isinstance(threshold, bool):
        return None  # "auto", or none of its own
    method = getattr(final, "response_method", "auto")
    methods = [method] if isinstance(method, str) else list(method or ["auto"])
    base = getattr(final, "estimator_", None) or getattr(final, "estimator", None)
    on_probabilities = methods[0] == "predict_proba" or (
        methods[0] == "auto" and hasattr(base, "predict_proba")
    )
    return float(threshold) if on_probabilities else None


def _require_decision_rule(ctx: RunContext, estimator: Any, shown: str | None) -> None:
    """The spec's `model.probabilities` and `model.threshold` are the model's own."""
    task, what = ctx.spec.model.task, type(_final_step(estimator)).__name__
    has = hasattr(estimator, "predict_proba")
    problem = probability_problem(task, ctx.spec.model.probabilities, has, what)
    classifier = task in ("binary", "multiclass")
    if problem is None and classifier and not has and not hasattr(estimator, "decision_function"):
        problem = (f"{what} has neither predict_proba nor decision_function", None)
    if problem is not None:
        raise InputError(problem[0], file=shown, hint=problem[1])
    threshold = own_threshold(estimator) if task == "binary" else None
    if threshold is not None and abs(threshold - ctx.spec.model.threshold) > 1e-9:
        raise InputError(
            f"{what} decides at threshold {threshold!r}, model.threshold is "
            f"{ctx.spec.model.threshold:g}: threshold_flips would count flips at another "
            "threshold than the model's",
            file=shown,
            hint=f"set `threshold: {threshold!r}` under model",
        )


def _in_fitted_order(estimator: Any, batch: Features) -> Features:
    """Columns as the model was fitted: a file may list them in another order."""
    import pandas as pd  # imported when rows flow: `validate` never loads pandas

    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None or not isinstance(batch, pd.DataFrame):
        return batch
    missing = [str(c) for c in fitted if c not in batch.columns]
    if missing:
        raise InputError(
            f"the data lacks columns the model was fitted on: {', '.join(missing)}",
            hint="check data.features and the data file's header",
        )
    return batch[list(fitted)]


def model_digest(estimator: Any) -> str:
    return hashlib.sha256(pickle.dumps(estimator, protocol=5)).hexdigest()


def _train(ctx: RunContext, train: str, data: Rows) -> Any:
    builder = load_callable(train, ctx.spec_dir)
    estimator = builder()
    if not hasattr(estimator, "fit"):
        raise InputError(
            f"{train} returned {type(estimator).__name__}, not a scikit-learn estimator",
            file=str(Path(train)),
        )
    target = data.target
    if target is None:
        raise InputError("training needs a target column", hint="set data.target")
    shown = ctx.spec.data.path or ctx.spec.data.sklearn
    _require_trainable(len(data), target, ctx.spec.model.task, shown)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter belongs to the builder's author
        estimator.fit(data.features, target)
    return estimator


def _require_trainable(rows: int, target: npt.ArrayLike, task: str, shown: str | None) -> None:
    """scikit-learn refuses these from deep inside `fit`, in terms of its arrays."""
    if rows < MIN_TRAIN_ROWS:
        raise InputError(
            f"{rows} training row(s): too few to train a model",
            file=shown,
            hint="use more rows; with a split, a smaller data.split.test_size trains on more",
        )
    classes = np.unique(target) if task in ("binary", "multiclass") else None
    if classes is not None and len(classes) < 2:
        raise InputError(
            f"every training row is of class {classes[0]}: a classifier needs two classes",
            file=shown,
            hint="use rows of every class; is data.target the right column?",
        )


def export_onnx(
    ctx: RunContext,
    model: LoadedModel,
    onnx_spec: OnnxSpec,
    out_dir: Path,
    data: Rows,
    sample: pd.DataFrame | None = None,
) -> Path:
    """skl2onnx without ZipMap; writes model.onnx, onnx_features.json, onnx_metadata.json.
    `sample`: rows in the model's columns, for a native model that orders them itself."""
    from skl2onnx import convert_sklearn

    from parityspec.artifacts import write_bytes, write_json
    from parityspec.backends import converters
    from parityspec.backends.onnx_graph import deduplicate_opsets

    estimator = model.predictor
    # scikit-learn serves tabular tasks (OFFERS): its rows are a frame.
    if sample is None:
        sample = cast("pd.DataFrame", _in_fitted_order(estimator, data.sample()))
    bindings = _input_bindings(sample, onnx_spec.dtype)
    converters.register_converters(estimator)  # XGBoost, LightGBM: onnxmltools' converters
    backend_spec = ctx.spec.backends[model.backend]
    for ref in getattr(backend_spec, "converters", []):  # the team's own, registered last
        load_callable(ref, ctx.spec_dir)()
    options = _classifier_options(_final_step(estimator))
    try:
        with converters.hist_gradient_boosting_fix():
            onnx_model = convert_sklearn(
                estimator,
                initial_types=[_initial_type(b) for b in bindings],
                target_opset={"": onnx_spec.opset or DEFAULT_OPSET, "ai.onnx.ml": 3},
                options=options,
                name=model.backend,  # skl2onnx's default is a random uuid: artifacts would differ
            )
    except Exception as error:
        raise converters.converter_failure(
            "skl2onnx", type(estimator).__name__, error, out_dir
        ) from error
    deduplicate_opsets(onnx_model)
    path = out_dir / "model.onnx"
    write_bytes(path, onnx_model.SerializeToString())
    write_json(out_dir / "onnx_features.json", _feature_schema(bindings, sample))
    write_json(out_dir / "onnx_metadata.json", _metadata(ctx, model, onnx_spec, path))
    return path


class Binding(TypedDict):
    """One ONNX input, as `onnx_features.json` lists it (read by `onnx._bindings_from_features`)."""

    name: str
    dtype: str
    columns: list[str]


def _classifier_options(final: Any) -> dict[int, dict[str, Any]] | None:
    """Probabilities as a tensor (no ZipMap) where the converter offers the option. A
    classifier's entry is given even empty: without one, skl2onnx's pipeline parser adds
    `zipmap` itself, which LinearSVC's converter then refuses ("Option 'zipmap' not in")."""
    from skl2onnx import get_model_alias
    from skl2onnx.common._registration import get_converter
    from sklearn.base import is_classifier

    if not (is_classifier(final) or hasattr(final, "predict_proba")):
        return None
    try:
        allowed = get_converter(get_model_alias(type(final))).get_allowed_options() or {}
    except (KeyError, ValueError, RuntimeError):
        allowed = {}  # no converter: skl2onnx's own error says so, a step later
    return {id(final): {"zipmap": False} if "zipmap" in allowed else {}}


def _final_step(estimator: Any) -> Any:
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _input_bindings(frame: pd.DataFrame, dtype: str) -> list[Binding]:
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    if len(numeric) == len(frame.columns):
        return [{"name": "X", "dtype": dtype, "columns": [str(c) for c in frame.columns]}]
    # Mixed frames: one input per column, as skl2onnx maps ColumnTransformer columns by name.
    return [
        {"name": str(c), "dtype": dtype if c in numeric else "str", "columns": [str(c)]}
        for c in frame.columns
    ]


def _initial_type(binding: Binding) -> tuple[str, Any]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    types = {"float32": FloatTensorType, "float64": DoubleTensorType, "str": StringTensorType}
    return binding["name"], types[binding["dtype"]]([None, len(binding["columns"])])


def _feature_schema(bindings: list[Binding], frame: pd.DataFrame) -> dict[str, Any]:
    """Inputs in order, and the categories seen in `frame` (a data set's sample rows)."""
    categories = {
        b["columns"][0]: sorted(str(v) for v in frame[b["columns"][0]].dropna().unique())
        for b in bindings
        if b["dtype"] == "str"
    }
    order = [c for b in bindings for c in b["columns"]]
    return {"inputs": bindings, "order": order, "categories": categories}


def _metadata(
    ctx: RunContext, model: LoadedModel, onnx_spec: OnnxSpec, path: Path
) -> dict[str, Any]:
    from parityspec.lineage import library_versions

    classes = getattr(model.predictor, "classes_", None)
    return {
        "task": ctx.spec.model.task,
        "decision_threshold": ctx.spec.model.threshold,
        "classes": None if classes is None else [str(c) for c in classes],
        "provenance": {
            "source_backend": model.backend,
            "source_estimator": model.facts["estimator"],
            "source_model_sha256": model.facts["model_sha256"],
            "opset": onnx_spec.opset or DEFAULT_OPSET,
            "input_dtype": onnx_spec.dtype,
            "libraries": library_versions(["scikit-learn", "skl2onnx", "onnx", "onnxruntime"]),
        },
    }
