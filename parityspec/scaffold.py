"""`parityspec init`: a first spec for a model, valid as written (`parityspec validate`).

Three kinds of model: a fitted scikit-learn model file (`.skops`, `.joblib`, `.pkl`), an
`.onnx` file, or a torch factory `file.py:function`. Paths in the spec are written relative
to the folder the spec will live in. Nothing is left as a placeholder to fill in: what
cannot be guessed (the data of a tabular model, a torch model's inputs) must be given.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from parityspec.errors import InputError
from parityspec.loading import PICKLE_SUFFIXES, file_problem
from parityspec.spec.base import CALLABLE_PATTERN, is_name

if TYPE_CHECKING:
    import onnx
    import pandas as pd

    from parityspec.spec.models import Task

log = logging.getLogger(__name__)

Estimator = Any
"""A fitted scikit-learn model: scikit-learn ships no type information."""
Entries = dict[str, Any]
"""A mapping of the spec being written, as YAML will show it."""

SKLEARN_SUFFIXES = PICKLE_SUFFIXES | {".skops"}
DATA_SUFFIXES = {".csv", ".parquet", ".npz"}
TABLE_SUFFIXES = {".csv", ".parquet"}
# Native booster files, by the kind that reads them.
NATIVE_SUFFIXES = {
    ".json": "xgboost",
    ".ubj": "xgboost",
    ".txt": "lightgbm",
    ".cbm": "catboost",
}
QUANTIZED_OPS = {"MatMul", "Gemm", "Conv"}
"""What dynamic INT8 quantizes; a graph without them (trees, ai.onnx.ml ops) is unchanged."""
REFERENCE_ROWS = 20_000
"""`onnx_reference`'s default `max_rows`: a table with more is cut to them (`data.rows`)."""
TENSOR_DTYPES = ("float32", "float16", "int64", "int32", "bool")
# INT8 moves outputs by hundredths: a starting point, as in the bundled tensor specs.
INT8_PROFILE = {"extends": "lenient", "atol": 0.1, "rtol": 0.1, "layer_tol": 1.0}


@dataclass(frozen=True)
class InitOptions:
    model: str
    spec_dir: Path
    """The folder the spec will be written to: every path in it is relative to this folder."""
    data: Path | None = None
    target: str | None = None
    inputs: tuple[str, ...] = ()
    """`NAME:SHAPE[:DTYPE]`, e.g. `image:3,32,32`."""
    trust_models: bool = False
    state_dict: Path | None = None
    """A torch factory's saved weights (`--state-dict`)."""


@dataclass
class Scaffold:
    spec: Entries
    notes: list[str] = field(default_factory=list)
    """What the user should know about the choices made, one line each."""

    def yaml(self, schema: str | None = None) -> str:
        """`schema`: the JSON Schema's path relative to the spec, for editors' completion."""
        header = f"# yaml-language-server: $schema={schema}\n" if schema else ""
        header += "# Written by `parityspec init`. Review the tolerances before relying on it.\n"
        return header + yaml.dump(self.spec, Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    """Flat lists and mappings on one line, as in the bundled specs: `- {id: a, type: b}`."""

    def represent_flat_list(self, data: list[Any]) -> yaml.SequenceNode:
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flat(data))

    def represent_flat_dict(self, data: dict[Any, Any]) -> yaml.MappingNode:
        flat = _flat(data.values())
        return self.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flat)


def _flat(values: Iterable[Any]) -> bool:
    return all(not isinstance(v, dict | list) or (isinstance(v, list) and _flat(v)) for v in values)


# The same object twice (a `between` shared by checks) is written twice, never as an anchor.
_Dumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]
_Dumper.add_representer(list, _Dumper.represent_flat_list)
_Dumper.add_representer(dict, _Dumper.represent_flat_dict)


def scaffold(options: InitOptions) -> Scaffold:
    model = options.model
    if re.match(CALLABLE_PATTERN, model):
        return _torch(options)
    suffix = Path(model).suffix.lower()
    if suffix == ".onnx":
        return _onnx_tabular(options) if _table_data(options) else _onnx(options)
    if suffix in SKLEARN_SUFFIXES:
        return _sklearn(options)
    if suffix in NATIVE_SUFFIXES:
        return _native(options, NATIVE_SUFFIXES[suffix])
    raise InputError(
        f"cannot tell what kind of model {model!r} is",
        hint="give a .skops/.joblib/.pkl scikit-learn model, an XGBoost .json/.ubj, a "
        "LightGBM .txt, a CatBoost .cbm, an .onnx file, or a torch factory file.py:function",
    )


def _table_data(options: InitOptions) -> bool:
    return options.data is not None and options.data.suffix.lower() in TABLE_SUFFIXES


def _sklearn(options: InitOptions) -> Scaffold:
    from parityspec.loading import load_sklearn_model, needs_trust

    path = _existing(options.model, "model file")
    estimator = load_sklearn_model(path, trusted=options.trust_models)
    task = _sklearn_task(estimator)
    log.info("%s: a %s model", type(estimator).__name__, task)
    data, frame = _tabular_data(options, task)
    data.update(_features(estimator, frame))
    _try_predict(estimator, frame, data.get("features"))
    backends: dict[str, Entries] = {
        "sklearn": {"kind": "sklearn", "path": _relative(path, options.spec_dir)}
    }
    if options.trust_models and needs_trust(path):
        # Only what the loader would refuse, and only when the user vouched for it: a
        # `trusted: true` in the spec would let a model file swapped later load unchecked.
        backends["sklearn"]["trusted"] = True
    backends["onnx"] = {"kind": "onnx", "from": "sklearn"}
    notes: list[str] = []
    if _quantizable(estimator):
        backends["int8"] = {"kind": "quantized", "from": "onnx"}
    else:
        notes.append(
            f"no int8 backend: {type(_final(estimator)).__name__} converts to ai.onnx.ml ops, "
            "which dynamic quantization leaves unchanged"
        )
    probabilities = task == "regression" or hasattr(estimator, "predict_proba")
    checks: list[Entries] = []
    for candidate, profile in (("onnx", "default"), ("int8", "lenient")):
        if candidate in backends:
            checks += _tabular_checks(
                task, candidate, profile, options.target is not None, probabilities
            )
    model: Entries = {"task": task}
    if not probabilities:
        model["probabilities"] = False
        notes.append(
            f"{type(_final(estimator)).__name__} has no predict_proba: its labels and "
            "decision scores are compared"
        )
    elif task == "binary":
        from parityspec.backends.sklearn import own_threshold

        threshold = own_threshold(estimator)
        model["threshold"] = 0.5 if threshold is None else threshold
        if threshold is not None:
            notes.append(f"model.threshold {threshold!r}: the model's own decision threshold")
    return Scaffold(_spec(path.stem, path.name, data, model, backends, checks), notes)


def _onnx(options: InitOptions) -> Scaffold:
    import onnx

    path = _existing(options.model, "ONNX file")
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:
        raise InputError(f"not a readable ONNX model: {error}", file=str(path)) from None
    given = {t["name"]: t for t in map(parse_input, options.inputs)}
    initializers = {i.name for i in graph.initializer}
    inputs = [
        given.get(i.name) or _graph_input(i, path)
        for i in graph.input
        if i.name not in initializers
    ]
    model: Entries = {"task": "tensor", "inputs": inputs}
    outputs = [o.name for o in graph.output]
    if all(is_name(n) for n in outputs):
        model["outputs"] = outputs
    backends: dict[str, Entries] = {
        "onnx": {"kind": "onnx", "path": _relative(path, options.spec_dir)}
    }
    data = _tensor_data(options)
    if not _graph_quantizable(graph):
        # Nothing INT8 would change: the graph against the ONNX specification's own semantics.
        backends["reference"] = {"kind": "onnx_reference", "from": "onnx"}
        checks = [{"id": "reference-outputs", "type": "output_parity", "between": _pair("onnx")}]
        note = f"no int8 backend: the graph has no {', '.join(sorted(QUANTIZED_OPS))} node"
        return Scaffold(_spec(path.stem, path.name, data, model, backends, checks), [note])
    backends["int8"] = {"kind": "quantized", "from": "onnx"}
    checks = [
        {"id": "int8-outputs", "type": "output_parity", "between": ["onnx", "int8"]},
        {"id": "int8-tensors", "type": "tensor_drift", "between": ["onnx", "int8"]},
    ]
    for check in checks:
        check["profile"] = "int8"
    spec = _spec(path.stem, path.name, data, model, backends, checks, {"int8": INT8_PROFILE})
    return Scaffold(spec, ["the int8 checks use the profile `int8`: a starting point, review it"])


def _pair(source: str) -> list[str]:
    """The reference evaluator first: it is the ONNX specification's answer."""
    return ["reference", source]


def _graph_quantizable(graph: onnx.GraphProto) -> bool:
    return any(node.op_type in QUANTIZED_OPS for node in graph.node)


def _onnx_tabular(options: InitOptions) -> Scaffold:
    """An ONNX file from elsewhere given table rows: a classifier when the graph names its
    classes or returns labels, else a regressor; fed as the onnx backend feeds it."""
    import onnx

    from parityspec.backends.onnx import class_labels

    path = _existing(options.model, "ONNX file")
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:
        raise InputError(f"not a readable ONNX model: {error}", file=str(path)) from None
    task = _onnx_task(path, graph, options)
    data, frame = _tabular_data(options, task)
    outputs = _onnx_try_predict(path, frame, data["path"])
    probabilities = task == "regression" or _probability_like(outputs)
    backends: dict[str, Entries] = {
        "onnx": {"kind": "onnx", "path": _relative(path, options.spec_dir)},
        "reference": {"kind": "onnx_reference", "from": "onnx"},
    }
    notes = ["`reference` is the ONNX reference evaluator: the graph as the ONNX spec defines it"]
    if len(frame) > REFERENCE_ROWS:
        data["rows"] = REFERENCE_ROWS
        notes.append(f"data.rows {REFERENCE_ROWS}: the reference evaluator runs op by op")
    has_target = options.target is not None
    checks = _tabular_checks(task, "onnx", "default", has_target, probabilities, "reference")
    if _graph_quantizable(graph):
        backends["int8"] = {"kind": "quantized", "from": "onnx"}
        checks += _tabular_checks(task, "int8", "lenient", has_target, probabilities, "onnx")
    else:
        notes.append(f"no int8 backend: the graph has no {', '.join(sorted(QUANTIZED_OPS))} node")
    model = _model_entries(task, probabilities, None)
    if task != "regression" and class_labels(path) is None and options.target is not None:
        # The graph keeps its classes in a constant: without them its label output cannot
        # be read. A converter's classes are the sorted target values, as scikit-learn's.
        model["classes"] = _target_values(options)
        notes.append("model.classes: the target's sorted values (the graph does not name them)")
    return Scaffold(_spec(path.stem, path.name, data, model, backends, checks), notes)


def _onnx_task(path: Path, graph: onnx.GraphProto, options: InitOptions) -> Task:
    from parityspec.backends.onnx import class_labels

    classes = class_labels(path)
    labels = [
        o.name
        for o in graph.output
        if o.type.HasField("sequence_type")
        or o.type.tensor_type.elem_type in (onnx_int64(), onnx_string())
    ]
    if classes is None and not labels:
        return "regression"
    if classes is not None:
        return "binary" if len(classes) == 2 else "multiclass"
    if options.target is None:
        raise InputError(
            f"the ONNX model returns labels ({', '.join(labels)}) but names no classes",
            file=str(path),
            hint="pass --target COLUMN: its values are the classes",
        )
    return "binary" if len(_target_values(options)) == 2 else "multiclass"


def onnx_int64() -> int:
    import onnx

    return int(onnx.TensorProto.INT64)


def onnx_string() -> int:
    import onnx

    return int(onnx.TensorProto.STRING)


def _target_values(options: InitOptions) -> list:
    import pandas as pd

    assert options.data is not None and options.target is not None
    path = _existing(str(options.data), "data file")
    reader = pd.read_parquet if path.suffix.lower() == ".parquet" else pd.read_csv
    frame = reader(path)
    if options.target not in frame.columns:
        raise InputError(f"no column {options.target!r}", file=str(path), hint="check --target")
    return sorted(frame[options.target].dropna().unique().tolist())


def _onnx_try_predict(path: Path, frame: pd.DataFrame, shown: str) -> list[Any]:
    """The graph's outputs on the first rows, fed as a run feeds it: a mismatch between its
    inputs and the data's columns fails now, naming both sides."""
    from parityspec.backends.onnx import open_session, table_feeds

    session = open_session(path)
    feeds = table_feeds(session, frame.head(5), shown)
    try:
        outputs: list[Any] = session.run(None, feeds)
    except Exception as error:
        raise InputError(
            f"the ONNX model cannot predict on the data: {type(error).__name__}: {error}",
            file=str(path),
            hint="is --data the kind of table the model was made for?",
        ) from None
    return outputs


def _probability_like(outputs: list[Any]) -> bool:
    """A classifier's float output holds probabilities when its rows lie in [0, 1] and sum
    to 1; else they are decision scores. A ZipMap output is probabilities."""
    import numpy as np

    for output in outputs:
        if isinstance(output, list):
            return True
        values = np.asarray(output)
        if values.dtype.kind == "f" and values.ndim == 2:
            inside = bool(((values >= 0) & (values <= 1)).all())
            return inside and bool(np.allclose(values.sum(axis=1), 1.0, atol=1e-3))
    return True


def _model_entries(task: Task, probabilities: bool, threshold: float | None) -> Entries:
    model: Entries = {"task": task}
    if task in ("binary", "multiclass") and not probabilities:
        model["probabilities"] = False
    elif task == "binary":
        model["threshold"] = 0.5 if threshold is None else threshold
    return model


def _native(options: InitOptions, kind: str) -> Scaffold:
    """A native booster file: its library reads it, its objective says the task."""
    from parityspec.backends import BACKENDS, catboost, lightgbm, xgboost
    from parityspec.backends.converters import native_columns, require

    path = _existing(options.model, f"{kind} model file")
    library = require(kind, f"a {kind} model file")
    try:
        if kind == "xgboost":
            import json

            booster = library.Booster()
            booster.load_model(str(path))
            objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
            names = booster.feature_names
            tasks: Mapping[str, tuple[str, ...]] = xgboost.CLASSIFIER_OBJECTIVES
            regression = not objective.startswith(xgboost.NOT_REGRESSION)
        elif kind == "lightgbm":
            booster = library.Booster(model_file=str(path))
            objective = str(booster.params.get("objective", "unknown"))
            names = booster.feature_name()
            tasks = lightgbm.CLASSIFIER_OBJECTIVES
            regression = objective not in lightgbm.NOT_REGRESSION + lightgbm.RANKING
        else:
            booster = library.CatBoost()
            booster.load_model(str(path))
            objective = str(booster.get_all_params().get("loss_function", "unknown"))
            objective = objective.partition(":")[0]
            names = [str(n) for n in booster.feature_names_]
            tasks = catboost.CLASSIFIER_LOSSES
            regression = objective not in catboost.NOT_REGRESSION
    except InputError:
        raise
    except Exception as error:
        raise InputError(
            f"not a {kind} model file: {type(error).__name__}: {str(error).splitlines()[0]}",
            file=str(path),
            hint=f"give the file {kind}'s save_model wrote",
        ) from None
    task: Task
    if objective in tasks["binary"]:
        task = "binary"
    elif objective in tasks["multiclass"]:
        task = "multiclass"
    elif regression:
        task = "regression"
    else:
        raise InputError(
            f"the model's objective is {objective}: it predicts no class nor value to compare",
            file=str(path),
        )
    assert kind in BACKENDS  # the kind that reads it
    log.info("%s: a %s model (%s)", path.name, task, objective)
    data, frame = _tabular_data(options, task)
    real = [str(n) for n in names or []]
    generated = not real or all(n in (f"f{i}", f"Column_{i}", str(i)) for i, n in enumerate(real))
    native_columns(booster, frame.head(5), f"the {kind} model", None if generated else real)
    if not generated and real != [str(c) for c in frame.columns]:
        data["features"] = real
    backends: dict[str, Entries] = {
        kind: {"kind": kind, "path": _relative(path, options.spec_dir)},
        "onnx": {"kind": "onnx", "from": kind},
    }
    checks = _tabular_checks(task, "onnx", "default", options.target is not None, True, kind)
    notes = ["no int8 backend: trees convert to ai.onnx.ml ops, which INT8 leaves unchanged"]
    model = _model_entries(task, True, None)
    return Scaffold(_spec(path.stem, path.name, data, model, backends, checks), notes)


def _torch(options: InitOptions) -> Scaffold:
    file_part, _, function = options.model.rpartition(":")
    path = _existing(file_part, "torch factory file")
    if function not in _top_level_functions(path):
        raise InputError(
            f"{file_part} defines no top-level function {function!r}",
            file=str(path),
            hint=f"define `def {function}(): ...` returning a torch.nn.Module",
        )
    module = f"{_relative(path, options.spec_dir)}:{function}"
    torch_backend: Entries = {"kind": "torch", "module": module}
    if options.state_dict is not None:
        weights = _existing(str(options.state_dict), "state dict file")
        torch_backend["state_dict"] = _relative(weights, options.spec_dir)
    if _table_data(options):
        return _torch_tabular(options, path, function, torch_backend)
    if not options.inputs:
        raise InputError(
            "a torch model needs its inputs",
            hint="pass --input NAME:SHAPE for each, without the batch axis: --input image:3,32,32",
        )
    model = {"task": "tensor", "inputs": [parse_input(text) for text in options.inputs]}
    backends = {"torch": torch_backend, "onnx": {"kind": "onnx", "from": "torch"}}
    checks = [
        {"id": "onnx-outputs", "type": "output_parity", "between": ["torch", "onnx"]},
        {"id": "onnx-layers", "type": "layer_drift", "between": ["torch", "onnx"]},
    ]
    name = f"{path.stem}-{function}"
    data = _tensor_data(options)
    return Scaffold(_spec(name, f"{path.name}:{function}", data, model, backends, checks))


MAX_CLASSES = 20
"""A target with at most this many distinct whole values is taken for classes."""


def _torch_tabular(
    options: InitOptions, path: Path, function: str, torch_backend: Entries
) -> Scaffold:
    """A torch net on table rows: the target's values say the task (whole values, at most
    MAX_CLASSES of them: classes); the net is taken to return logits, as the losses that
    train classifiers expect (the backend refuses a net ending with Softmax or Sigmoid)."""
    if options.target is None:
        raise InputError(
            "a torch model on table rows needs --target: its values say the task",
            hint="pass --target COLUMN (classes, or the regression's values)",
        )
    values = _target_values(options)
    whole = all(float(v).is_integer() for v in values if isinstance(v, int | float))
    numeric = all(isinstance(v, int | float) for v in values)
    task: Task = "regression"
    if not numeric or (whole and len(values) <= MAX_CLASSES):
        task = "binary" if len(values) == 2 else "multiclass"
    data, _ = _tabular_data(options, task)
    backends: dict[str, Entries] = {
        "torch": torch_backend,
        "onnx": {"kind": "onnx", "from": "torch"},
        "int8": {"kind": "quantized", "from": "onnx"},
    }
    checks = _tabular_checks(task, "onnx", "default", True, True, "torch")
    checks += _tabular_checks(task, "int8", "lenient", True, True, "onnx")
    notes = [f"task {task}, from the {len(values)} distinct values of {options.target}"]
    if task != "regression":
        notes.append(
            "the net is taken to return logits (returns: logits); set returns: "
            "probabilities on the torch backend if it ends with its own softmax"
        )
    name = f"{path.stem}-{function}"
    model = _model_entries(task, True, None)
    return Scaffold(_spec(name, f"{path.name}:{function}", data, model, backends, checks), notes)


def parse_input(text: str) -> Entries:
    """`image:3,32,32` or `tokens:16:int64` -> a `model.inputs` entry."""
    name, _, rest = text.partition(":")
    shape_text, _, dtype = rest.partition(":")
    try:
        shape = [int(d) for d in shape_text.split(",") if d.strip()]
    except ValueError:
        shape = []
    if not is_name(name) or not shape or min(shape) < 1 or dtype not in ("", *TENSOR_DTYPES):
        raise InputError(
            f"--input {text!r}: expected NAME:SHAPE[:DTYPE]",
            hint=f"e.g. image:3,32,32 or tokens:16:int64; dtypes: {', '.join(TENSOR_DTYPES)}",
        )
    return {"name": name, "shape": shape, "dtype": dtype or "float32"}


def _spec(
    stem: str,
    source: str,
    data: Entries,
    model: Entries,
    backends: dict[str, Entries],
    checks: list[Entries],
    profiles: dict[str, Entries] | None = None,
) -> Entries:
    name = _spec_name(stem)
    return {
        "parityspec": 1,
        "name": name,
        "description": f"Scaffolded by `parityspec init` from {source}.",
        "data": data,
        "model": model,
        "backends": backends,
        **({"profiles": profiles} if profiles else {}),
        "checks": checks,
        "report": {"dir": f"reports/{name}", "formats": ["json", "markdown"]},
    }


def _tabular_checks(
    task: str,
    candidate: str,
    profile: str,
    has_target: bool,
    probabilities: bool = True,
    reference: str = "sklearn",
) -> list[Entries]:
    if not probabilities:  # a classifier without predict_proba
        pairs = [("labels", "label_agreement"), ("scores", "score_parity")]
        return [
            {"id": f"{candidate}-{suffix}", "type": kind, "between": [reference, candidate]}
            | ({"profile": profile} if profile != "default" else {})
            for suffix, kind in pairs
        ]
    types = {
        "binary": [
            ("parity", "probability_parity"),
            ("labels", "label_agreement"),
            ("flips", "threshold_flips"),
        ],
        "multiclass": [("parity", "probability_parity"), ("labels", "label_agreement")],
        "regression": [("outputs", "output_parity")],
    }[task]
    if has_target:
        types.append(("metrics", "metric_delta"))
    return [
        {"id": f"{candidate}-{suffix}", "type": kind, "between": [reference, candidate]}
        | ({"profile": profile} if profile != "default" else {})
        for suffix, kind in types
    ]


def _sklearn_task(estimator: Estimator) -> Task:
    from sklearn.base import is_regressor

    classes = getattr(estimator, "classes_", None)
    if classes is not None and not is_regressor(estimator):
        return "binary" if len(classes) == 2 else "multiclass"
    if is_regressor(estimator):
        return "regression"
    raise InputError(
        f"{type(estimator).__name__} is neither a classifier (no classes_) nor a regressor",
        hint="give a fitted scikit-learn classifier or regressor",
    )


def _tabular_data(options: InitOptions, task: Task) -> tuple[Entries, pd.DataFrame]:
    """The spec's `data` and the rows, a table: a tabular task reads one, even from NPZ."""
    import pandas as pd

    from parityspec.data.sources import load_dataset
    from parityspec.spec.models import DataSpec, ModelSpec

    if options.data is None:
        raise InputError(
            "a tabular model needs the rows to compare on",
            hint="pass --data PATH (CSV, Parquet or NPZ) and --target COLUMN for metrics",
        )
    path = _existing(str(options.data), "data file")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise InputError("unknown data format", file=str(path), hint="use .csv, .parquet or .npz")
    data: Entries = {"path": _relative(path, options.spec_dir)}
    if options.target:
        data["target"] = options.target
    dataset = load_dataset(
        DataSpec(path=str(path), target=options.target), ModelSpec(task=task), Path("/")
    )
    if not isinstance(dataset.features, pd.DataFrame):
        raise TypeError(f"a {task} task read named tensors")
    return data, dataset.features


def _features(estimator: Estimator, frame: pd.DataFrame) -> Entries:
    """List the features when the data's columns differ from the fitted ones, in the fitted
    order: the backends feed the data's columns in `features` order."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or list(names) == list(map(str, frame.columns)):
        return {}
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InputError(
            f"the data lacks columns the model was fitted on: {', '.join(missing)}",
            hint="pass the data the model was trained on (or the same columns)",
        )
    return {"features": [str(n) for n in names]}


def _try_predict(estimator: Estimator, frame: pd.DataFrame, features: list[str] | None) -> None:
    """Fail now, not in CI, when the model cannot read the data."""
    rows = frame.head(5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. feature names: the run decides, not init
            estimator.predict(rows[features] if features else rows)
    except Exception as error:
        raise InputError(
            f"the model cannot predict on the data: {type(error).__name__}: {error}",
            hint="is --data the kind of table the model was fitted on?",
        ) from None


def _final(estimator: Estimator) -> Estimator:
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _quantizable(estimator: Estimator) -> bool:
    """Only neural networks export to MatMul/Gemm ops that dynamic INT8 quantizes."""
    return hasattr(_final(estimator), "coefs_")


def _graph_input(value: onnx.ValueInfoProto, path: Path) -> Entries:
    import onnx

    tensor = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else ""
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim][1:]
    hint = f"pass --input {value.name}:SHAPE (without the batch axis)"
    if dtype not in TENSOR_DTYPES:
        raise InputError(
            f"input {value.name!r} is {dtype or 'not a tensor'}",
            file=str(path),
            hint="parityspec feeds numeric tensors; tabular ONNX models: init the "
            "scikit-learn model instead",
        )
    if not is_name(value.name) or not dims or any(not d for d in dims):
        raise InputError(
            f"input {value.name!r} has no fixed per-sample shape", file=str(path), hint=hint
        )
    return {"name": value.name, "shape": dims, "dtype": dtype}


def _tensor_data(options: InitOptions) -> Entries:
    """Seeded random tensors, unless --data names an NPZ file with one array per input."""
    if options.data is None:
        return {"synthetic": {"rows": 256, "seed": 0}}
    path = _existing(str(options.data), "data file")
    if path.suffix.lower() != ".npz":
        raise InputError("tensor models read NPZ data", file=str(path), hint="one array per input")
    return {"path": _relative(path, options.spec_dir)}


def _top_level_functions(path: Path) -> set[str]:
    """Read without running the file: importing it would run the user's code."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as error:
        raise InputError(f"cannot parse: {error}", file=str(path)) from None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def _existing(text: str, what: str) -> Path:
    problem = file_problem(text)
    if problem == "no such file":
        raise InputError(f"{what} does not exist", file=text)
    if problem:
        raise InputError(problem, file=text, hint=f"give the path of a {what}")
    return Path(text).resolve()


def _relative(path: Path, spec_dir: Path) -> str:
    """Relative to the spec's folder when they share more than the root, else absolute."""
    spec_dir = spec_dir.resolve()
    if os.path.commonpath([path, spec_dir]) == path.anchor:
        return path.as_posix()
    return Path(os.path.relpath(path, spec_dir)).as_posix()


def _spec_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"
    return (name if name[0].isalpha() else f"model-{name}")[:64]
