"""Converters skl2onnx lacks or gets wrong: gradient-boosting families registered from
onnxmltools, HistGradientBoosting's bool attributes, and converter errors as one line.

Every library here is optional or heavy: each is imported inside the function that needs it.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parityspec.errors import InputError, StepError, first_line
from parityspec.loading import missing_module

MESSAGE_CHARS = 300
"""How much of a converter's message a step error carries; the whole text goes to a file."""


@dataclass(frozen=True)
class Family:
    """A model family installed by an extra: `pip install 'parityspec[<extra>]'`."""

    module: str
    extra: str
    distributions: tuple[str, ...]
    """Where its version is read: xgboost ships as `xgboost` or `xgboost-cpu`."""

    @property
    def install(self) -> str:
        return f"pip install 'parityspec[{self.extra}]'"


FAMILIES = {
    "xgboost": Family("xgboost", "xgboost", ("xgboost", "xgboost-cpu")),
    "lightgbm": Family("lightgbm", "lightgbm", ("lightgbm",)),
    "catboost": Family("catboost", "catboost", ("catboost",)),
}
ONNXMLTOOLS = ("onnxmltools",)


def require(family: str, what: str = "") -> Any:
    """The family's library, imported; a missing one is bad input (exit 2) naming the extra."""
    return _import(FAMILIES[family].module, FAMILIES[family], what)


def _import(module: str, family: Family, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        subject = f"{what} needs {module}" if what else f"{module} is not installed"
        raise InputError(
            f"{subject}, which is not installed ({first_line(error)})",
            file=None,
            hint=f"install it with {family.install}",
        ) from error


@contextlib.contextmanager
def families_installed(file: str | None = None) -> Iterator[None]:
    """Turns a family's missing module, met while unpickling a model or running a builder,
    into bad input (exit 2) naming the extra to install."""
    try:
        yield
    except (ImportError, InputError) as error:
        missing = error if isinstance(error, ImportError) else error.__cause__
        name = getattr(missing, "name", None) or ""
        family = FAMILIES.get(name.partition(".")[0])
        if family is None and isinstance(error, ModuleNotFoundError):
            raise missing_module(error, file or "the model") from error
        if family is None or not isinstance(missing, ImportError):
            raise
        raise InputError(
            f"the model needs {family.module}, which is not installed",
            file=file,
            hint=f"install it with {family.install}",
        ) from error


def native_columns(model: Any, batch: Any, what: str, names: list[str] | None = None) -> Any:
    """The columns a native booster reads, in its order: those it was trained on when it
    names them (XGBoost's `f0`, LightGBM's `Column_0` when trained on arrays name nothing),
    else the data's own, as many as it takes. Text columns are refused: a native booster
    takes numbers (encode categoricals in a pipeline, or as numeric codes)."""
    import pandas as pd

    if not isinstance(batch, pd.DataFrame):
        return batch
    if names is None:
        fitted = getattr(model, "feature_names_in_", None)
        names = None if fitted is None else [str(n) for n in fitted]
    if names is not None and not all(_generated_name(n, i) for i, n in enumerate(names)):
        missing = [n for n in names if n not in batch.columns]
        if missing:
            raise InputError(
                f"{what} was trained on columns the data lacks: {', '.join(missing[:10])}",
                hint=f"the data's columns are {', '.join(map(str, batch.columns[:10]))}; set "
                "data.features to the model's columns",
            )
        batch = batch[names]
    width = len(names) if names is not None else getattr(model, "n_features_in_", None)
    if width is not None and width != batch.shape[1]:
        raise InputError(
            f"{what} takes {width} features, the data has {batch.shape[1]}",
            hint="set data.features to the model's columns, in the order it was trained on",
        )
    text = [str(c) for c in batch.columns if batch[c].dtype.kind not in "biuf"]
    if text:
        raise InputError(
            f"{what} takes numbers; these columns are not: {', '.join(text[:10])}",
            hint="encode them as numbers before training, or train the booster as the last "
            "step of a scikit-learn pipeline (kind: sklearn)",
        )
    return batch


def _generated_name(name: str, index: int) -> bool:
    # XGBoost's, LightGBM's and CatBoost's names for columns of an array.
    return name in (f"f{index}", f"Column_{index}", str(index))


def family_of(estimator: Any) -> str | None:
    """The family of an estimator's class (`xgboost.sklearn.XGBClassifier` is xgboost's)."""
    root = type(estimator).__module__.partition(".")[0]
    return root if root in FAMILIES else None


def estimators_in(estimator: Any) -> Iterator[Any]:
    """The estimator and every one nested in it: Pipeline steps, ColumnTransformer branches,
    meta-estimators' `estimator`s (as scikit-learn's own `get_params` lists them)."""
    yield estimator
    get_params = getattr(estimator, "get_params", None)
    if get_params is None or isinstance(estimator, type):
        return
    for value in get_params(deep=True).values():
        if hasattr(value, "get_params") and not isinstance(value, type):
            yield value


def register_converters(estimator: Any) -> None:
    """Registers with skl2onnx onnxmltools' converter for every XGBoost and LightGBM
    estimator in the model (skl2onnx has none of its own). Idempotent."""
    for family in sorted({f for e in estimators_in(estimator) if (f := family_of(e))}):
        _REGISTER[family]()
    for model in estimators_in(estimator):
        categorical = family_of(model) == "catboost" and model.get_cat_feature_indices()
        if categorical:
            names = [str(model.feature_names_[i]) for i in categorical]
            raise StepError(
                f"CatBoost's ONNX exporter does not take categorical features "
                f"({', '.join(names[:10])}): one-hot encode them in a pipeline before the "
                "model (as specs/churn_catboost.yaml does), or leave out the ONNX backend"
            )


def _register_xgboost() -> None:
    xgboost = require("xgboost")
    converter = _onnxmltools("onnxmltools.convert.xgboost.operator_converters.XGBoost", "xgboost")
    convert = _by_feature_index(converter.convert_xgboost)
    _register(xgboost.XGBClassifier, xgboost.XGBRegressor, convert, "XGBoost")


def _by_feature_index(convert_xgboost: Any) -> Any:
    """onnxmltools reads each split's feature from the booster's dump, which names features
    by their names once the booster has them (trained on a DataFrame), and it takes only
    `f<index>`: convert with the names cleared (the graph's input is in the fitted order)."""

    def convert(scope: Any, operator: Any, container: Any) -> Any:
        booster = operator.raw_operator.get_booster()
        names, types = booster.feature_names, booster.feature_types
        booster.feature_names = None
        try:
            return convert_xgboost(scope, operator, container)
        finally:
            booster.feature_names, booster.feature_types = names, types

    return convert


def _register_lightgbm() -> None:
    lightgbm = require("lightgbm")
    module = "onnxmltools.convert.lightgbm.operator_converters.LightGbm"
    converter = _onnxmltools(module, "lightgbm")
    _register(
        lightgbm.LGBMClassifier, lightgbm.LGBMRegressor, converter.convert_lightgbm, "LightGbm"
    )


def _onnxmltools(module: str, family: str) -> Any:
    return _import(module, FAMILIES[family], f"exporting {family} to ONNX")


def _register(
    classifier: type, regressor: type, convert: Any, prefix: str, parser: Any = None
) -> None:
    """`parser`: for a classifier skl2onnx does not know as one (no ClassifierMixin), its
    classifier parser, which declares label and probability outputs."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        classifier,
        f"{prefix}{classifier.__name__}",
        calculate_linear_classifier_output_shapes,
        convert,
        parser=parser,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        regressor,
        f"{prefix}{regressor.__name__}",
        calculate_linear_regressor_output_shapes,
        convert,
    )


def _register_catboost() -> None:
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx._supported_operators import sklearn_classifier_list

    catboost = require("catboost")
    classifier, regressor = catboost.CatBoostClassifier, catboost.CatBoostRegressor
    # Not a ClassifierMixin: listed, skl2onnx's parser gives it label and probabilities.
    if classifier not in sklearn_classifier_list:
        sklearn_classifier_list.append(classifier)
    _register(classifier, regressor, _convert_catboost, "CatBoost", _parse_sklearn_classifier)


def _convert_catboost(scope: Any, operator: Any, container: Any) -> None:
    """CatBoost's own exporter (onnxmltools' `convert_catboost` calls the same one) writes
    one TreeEnsemble node, plus a ZipMap for a classifier: the node is copied into
    skl2onnx's graph, which adds its own ZipMap, or none, as asked."""
    import onnx

    utils = importlib.import_module("catboost.utils")  # untyped: no stubs to read
    exported = utils.convert_to_onnx_object(operator.raw_operator)
    node = next(n for n in exported.graph.node if n.op_type.startswith("TreeEnsemble"))
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    container.add_node(
        node.op_type,
        [operator.inputs[0].full_name],
        [o.full_name for o in operator.outputs],
        op_domain="ai.onnx.ml",
        op_version=1,
        name=scope.get_unique_operator_name(node.op_type),
        **attributes,
    )


_REGISTER = {
    "xgboost": _register_xgboost,
    "lightgbm": _register_lightgbm,
    "catboost": _register_catboost,
}


@contextlib.contextmanager
def hist_gradient_boosting_fix() -> Iterator[None]:
    """skl2onnx (1.20) passes HistGradientBoosting's `missing_go_to_left` to
    `nodes_missing_value_tracks_true` as a bool (False at leaves), which protobuf 7 rejects
    ("Expected an int, got a boolean"): cast it to int while converting. The direction a
    missing value takes is kept, so NaN rows still agree (tests/families/test_histgb.py)."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        tracks = int(nodes_missing_value_tracks_true)
        return original(*args, nodes_missing_value_tracks_true=tracks, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def converter_failure(
    converter: str, subject: str, error: BaseException, out_dir: Path
) -> StepError:
    """A converter's exception as one clipped line (skl2onnx puts every attribute of a
    failing node in its message: 1 MB on one line for a HistGradientBoosting model). The
    innermost cause says why; the whole text of every cause goes to `converter_error.txt`."""
    from parityspec.artifacts import write_bytes

    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 8:
        chain.append(cause)
    whole = "\n\n".join(f"{type(e).__name__}: {e}" for e in chain)
    path = out_dir / "converter_error.txt"
    write_bytes(path, whole.encode())
    root = _clip(f"{type(chain[-1]).__name__}: {first_line(chain[-1])}")
    outer = "" if len(chain) == 1 else f"; raised as {_clip(first_line(chain[0]), 120)}"
    hint = _registration_hint(chain)
    if hint:  # the fix first: a terminal clips long lines
        return StepError(
            f"{converter} cannot convert {subject}: {hint} ({root}; whole message: {path})"
        )
    return StepError(f"{converter} cannot convert {subject}: {root}{outer} (whole message: {path})")


# How skl2onnx says it has no converter for a type, and for a FunctionTransformer.
_NO_CONVERTER = re.compile(r"(?:shape calculator|converter) for type '<class '([\w.]+)'>'")
_FUNCTION_TRANSFORMER = "FunctionTransformer is not supported"
REGISTER_HINT = (
    "write a function that registers its converter (skl2onnx.update_registered_converter) "
    "and name it under the backend's converters: [file.py:function]"
)


def _class_name(dotted: str) -> str:
    """`feats.Ratio`; a class of a builder file as `Ratio (builders.py)`: parityspec imports
    those files under a module name of its own."""
    module, _, name = dotted.rpartition(".")
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if module.startswith("parityspec_user_") and file:
        return f"{name} ({Path(file).name})"
    return dotted


def _registration_hint(chain: list[BaseException]) -> str:
    """What to do when the model holds a team's own transformer skl2onnx knows nothing of."""
    for error in chain:
        text = str(error)
        if found := _NO_CONVERTER.search(text):
            return f"{_class_name(found[1])} has no skl2onnx converter: {REGISTER_HINT}"
        if _FUNCTION_TRANSFORMER in text:
            return (
                "a FunctionTransformer of your own function has no skl2onnx converter: "
                f"make it a transformer class, then {REGISTER_HINT}"
            )
    return ""


def _clip(text: str, chars: int = MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1] + "…"
