"""ONNX through ONNX Runtime: a file, or exported from another backend; the session's
settings (optimization level, execution providers, threads) are fields of the backend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from parityspec.backends.base import (
    LoadedModel,
    Needs,
    Offer,
    Verb,
    capabilities,
    label_codes,
    tensor_output_names,
)
from parityspec.backends.runtime_env import RuntimeField, requirements
from parityspec.errors import InputError, StepError, first_line
from parityspec.loading import file_sha256
from parityspec.spec.base import FilePath, Name
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    import pandas as pd

    from parityspec.backends.context import RunContext
    from parityspec.data import Features, Rows

KIND = "onnx"
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS, Offer.ONNX_GRAPH})
DERIVED_FROM = Needs(all_of=frozenset({Offer.ONNX_EXPORT}))  # the source's `export_onnx`
LIBRARIES = ("onnx", "onnxruntime")
FEATURES_FILE = "onnx_features.json"
METADATA_FILE = "onnx_metadata.json"
ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}


OptimizationLevel = Literal["disabled", "basic", "extended", "all"]
# Each execution provider by the distribution that brings it: a spec naming one the
# installed onnxruntime lacks is told what to install.
PROVIDERS = {
    "CPUExecutionProvider": "onnxruntime",
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu, with TensorRT's libraries",
    "ROCMExecutionProvider": "onnxruntime-rocm",
    "MIGraphXExecutionProvider": "onnxruntime-migraphx",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
    "DmlExecutionProvider": "onnxruntime-directml",
    "CoreMLExecutionProvider": "onnxruntime (its macOS wheel)",
    "QNNExecutionProvider": "onnxruntime-qnn",
}
Provider = Literal[
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "OpenVINOExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "QNNExecutionProvider",
]


@dataclass(frozen=True)
class SessionSettings:
    """How an ONNX Runtime session is opened; the report states them (`facts.session`)."""

    intra_op_threads: int = 0
    graph_optimization_level: str = "all"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    runtime: tuple[str, ...] = ()
    """pip requirements of another onnxruntime, run in its own environment; () the
    installed one."""

    def facts(self, used: list[str]) -> dict[str, Any]:
        """`used`: the providers the session runs on, in ONNX Runtime's order of preference."""
        return {
            "graph_optimization_level": self.graph_optimization_level,
            "intra_op_threads": self.intra_op_threads,
            "providers": list(self.providers),
            "providers_used": used,
        }


class SessionSpec(BackendSpecBase):
    """The ONNX Runtime session fields of every kind that runs a graph in it."""

    graph_optimization_level: OptimizationLevel = "all"
    """ONNX Runtime's graph optimizations: `disabled`, `basic` (constant folding, redundant
    nodes), `extended` (fusions), `all` (also layout changes for this machine; ONNX
    Runtime's default)."""
    providers: Annotated[list[Provider], Field(min_length=1)] = ["CPUExecutionProvider"]
    """Execution providers in order of preference; ONNX Runtime runs on the CPU what the
    others do not take. One the installed onnxruntime lacks is refused, naming what to
    install (`CUDAExecutionProvider`: onnxruntime-gpu)."""
    intra_op_threads: Annotated[int, Field(ge=0, le=256)] = 0
    """ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose. `threads`, its former
    name, is still read."""
    runtime: RuntimeField | None = None
    """Another ONNX Runtime release for this backend, e.g. `{onnxruntime: "1.20.1"}` (a
    distribution, `onnxruntime-openvino` or another of its family, with a version or a
    specifier such as `">=1.20,<1.21"`; `numpy` may be pinned beside it). parityspec
    installs it with pip into an environment of its own, once, under the cache folder
    (`runtimes/`), and runs this backend's predictions there in a subprocess; the report
    states the version (`facts.runtime`). Unset: the installed onnxruntime."""

    @model_validator(mode="before")
    @classmethod
    def _former_threads(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "threads" not in raw:
            return raw
        if "intra_op_threads" in raw:
            raise ValueError("give intra_op_threads only (threads is its former name)")
        rest = {k: v for k, v in raw.items() if k != "threads"}
        return {**rest, "intra_op_threads": raw["threads"]}

    @model_validator(mode="after")
    def _providers_once(self) -> SessionSpec:
        if len(set(self.providers)) != len(self.providers):
            raise ValueError("providers: each provider at most once")
        return self

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            self.intra_op_threads,
            self.graph_optimization_level,
            tuple(self.providers),
            requirements(self.runtime) if self.runtime else (),
        )


class Spec(SessionSpec):
    """Exactly one of `path` (an ONNX file) or `from` (the backend to export)."""

    kind: Literal["onnx"]
    path: FilePath | None = None
    """An ONNX file, relative to the spec file."""
    from_: Name | None = Field(None, alias="from")
    """The backend to export: a sklearn (skl2onnx) or torch (torch.onnx) backend."""
    opset: Annotated[int, Field(ge=9, le=23)] | None = None
    """Default: 17 for scikit-learn exports, 15 for a LightGBM booster (the highest its
    converter writes), 18 (the dynamo exporter's own) for torch."""
    dtype: Literal["float32", "float64"] = "float32"
    """Numeric input type of a scikit-learn export (FINDINGS: float64 worsens trees)."""
    exporter: Literal["dynamo", "legacy"] = "dynamo"
    """The torch exporter; ignored for scikit-learn."""

    @model_validator(mode="after")
    def _one_source(self) -> Spec:
        if (self.path is None) == (self.from_ is None):
            raise ValueError("give exactly one of path or from")
        return self


def verb(spec: Spec) -> Verb:
    return "export" if spec.from_ else "load"


def source(spec: Spec) -> str | None:
    return spec.from_


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return [("path", spec.path)] if spec.path else []


def needs_data(spec: Spec) -> bool:
    return spec.from_ is not None


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    from parityspec.backends import BACKENDS

    require_session_providers(spec.session_settings())  # before an export, not after
    if spec.path:
        path = ctx.resolve(spec.path)
        if not path.is_file():
            raise InputError("ONNX file does not exist", file=spec.path)
        files = {"model": path}
    else:
        assert source_model is not None  # source(): an export is given the `from:` model
        out_dir = ctx.artifact_dir(name)
        exporter = capabilities(BACKENDS[source_model.kind]).export_onnx
        if exporter is None:
            raise InputError(f"backend kind {source_model.kind!r} cannot be exported to ONNX")
        assert data is not None  # needs_data(): an export is given the train rows
        path = exporter(ctx, source_model, spec, out_dir, data)
        files = {"model": path}
        files |= {
            f[:-5]: out_dir / f for f in (FEATURES_FILE, METADATA_FILE) if (out_dir / f).exists()
        }
    features_file = files.get(FEATURES_FILE[:-5])
    features = json.loads(features_file.read_text()) if features_file else None
    settings = spec.session_settings()
    runner = OnnxRunner.open(
        path, ctx, features, made_here=spec.from_ is not None, settings=settings, backend=name
    )
    facts: dict[str, Any] = {
        "model_sha256": file_sha256(path),
        "session": settings.facts(runner.session.get_providers()),
        "runtime": runtime_facts(runner.session),
    }
    if runner.classes:
        facts["classes"] = runner.classes
    return LoadedModel(name, KIND, runner, files, facts)


def class_labels(path: Path) -> list | None:
    """The classes the graph's ai.onnx.ml classifier names (`classlabels_*`), in the order of
    its probability columns; None when no node names them, or nodes name different ones."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    found: list[list] = []
    for node in graph.node:
        for attribute in node.attribute if node.domain == "ai.onnx.ml" else ():
            if attribute.name.startswith("classlabels_"):
                values = onnx.helper.get_attribute_value(attribute)
                labels = [v.decode() if isinstance(v, bytes) else v for v in values]
                if labels and labels not in found:
                    found.append(labels)
    return found[0] if len(found) == 1 else None


def _exported_classes(path: Path) -> list | None:
    metadata = path.parent / METADATA_FILE
    if not metadata.is_file():
        return None
    classes = json.loads(metadata.read_text()).get("classes")
    return list(classes) if classes else None


def reopen(ctx: RunContext, model: LoadedModel, spec: Spec) -> LoadedModel:
    """A model restored from the step cache: its session opened on the cached files."""
    features_file = model.files.get(FEATURES_FILE[:-5])
    features = json.loads(features_file.read_text()) if features_file else None
    settings = spec.session_settings()
    model.predictor = OnnxRunner.open(
        model.files["model"], ctx, features, settings=settings, backend=model.backend
    )
    return model


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    """ONNX Runtime's own `run`, the feeds built beforehand."""
    runner: OnnxRunner = model.predictor
    feeds = runner.feeds(batch)
    return lambda: runner.session.run(None, feeds)


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    runner: OnnxRunner = model.predictor
    return runner.run(batch)


@dataclass
class InputBinding:
    """How one ONNX input is fed: one column, several columns, or a named tensor."""

    name: str
    dtype: str
    columns: list[str]


@dataclass
class OnnxRunner:
    session: Any
    path: Path
    task: str
    inputs: list[InputBinding] | None
    """How each input is fed; None until the first batch names the data's columns (a
    tabular model given as a file, without parityspec's feature schema beside it)."""
    output_names: list[str] | None
    data_file: str | None = None
    """Named in the error when the data's columns do not fit the model's inputs."""
    classes: list | None = None
    """A classifier's labels in the order of its probability columns (`class_labels`)."""
    probabilities: bool = True
    """`model.probabilities`: false reads a classifier's float output as decision scores."""

    @classmethod
    def open(
        cls,
        path: Path,
        ctx: RunContext,
        features: dict | None,
        threads: int = 0,
        made_here: bool = False,
        settings: SessionSettings | None = None,
        backend: str = "",
    ) -> OnnxRunner:
        """`settings`, when given, stand for `threads` (which callers that set nothing
        else, such as plugins, pass alone)."""
        settings = settings or SessionSettings(intra_op_threads=threads)
        session = open_session(path, settings, made_here, ctx=ctx, backend=backend)
        return cls.on(session, path, ctx, features)

    @classmethod
    def on(cls, session: Any, path: Path, ctx: RunContext, features: dict | None) -> OnnxRunner:
        """A runner on `session`: ONNX Runtime's, or anything with its `get_inputs`,
        `get_outputs` and `run` (the reference evaluator's)."""
        task = ctx.spec.model.task
        bindings = (
            _bindings_from_features(features)
            if features
            else _tensor_bindings(session)
            if task == "tensor"
            else None
        )
        classes = None
        if task in ("binary", "multiclass"):
            # The exported model's own classes first: a graph may keep them in a constant
            # (skl2onnx's linear models) or name only its parts' (a one-vs-one's 0 and 1).
            classes = _exported_classes(path) or class_labels(path) or ctx.spec.model.classes
        model = ctx.spec.model
        return cls(
            session,
            path,
            task,
            bindings,
            model.outputs,
            ctx.spec.data.path,
            classes,
            model.probabilities,
        )

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def feeds(self, batch: Features) -> dict[str, np.ndarray]:
        import pandas as pd  # imported when rows flow: `validate` never loads pandas

        if isinstance(batch, pd.DataFrame):
            if self.inputs is None:  # bound to the columns the rows bring, as data flows in
                self.inputs = _bindings_from_columns(
                    self.session, [str(c) for c in batch.columns], self.data_file
                )
            return _LAST_FEEDS.get(batch, self)
        bindings = self.inputs or _tensor_bindings(self.session)
        return {b.name: np.ascontiguousarray(batch[b.name], dtype=b.dtype) for b in bindings}

    def run(self, batch: Features) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, self.feeds(batch))
        names = [o.name for o in self.session.get_outputs()]
        return interpret_outputs(
            self.task, names, outputs, self.output_names, self.classes, self.probabilities
        )


class _FeedsOfLastBatch:
    """The feeds built from the last batch, by the bindings they follow: an ONNX model and
    its INT8 form read the same inputs from each batch of a pass, so they are built once.
    Each runner takes them at most once: one that asks again for the same batch (a timed
    end-to-end call) builds them again. The batch is held, so its `id` cannot be reused."""

    def __init__(self) -> None:
        self._batch: pd.DataFrame | None = None
        self._feeds: dict[tuple, tuple[dict[str, np.ndarray], set[int]]] = {}

    def get(self, batch: pd.DataFrame, runner: OnnxRunner) -> dict[str, np.ndarray]:
        bindings = runner.inputs or []
        if batch is not self._batch:
            self._batch, self._feeds = batch, {}
        key = tuple((b.name, b.dtype, tuple(b.columns)) for b in bindings)
        feeds, takers = self._feeds.get(key, (None, set()))
        if feeds is None or id(runner) in takers:
            feeds, takers = {b.name: _column_feed(batch, b) for b in bindings}, set()
            self._feeds[key] = feeds, takers
        takers.add(id(runner))
        return feeds


_LAST_FEEDS = _FeedsOfLastBatch()


def open_session(
    path: Path,
    settings: SessionSettings = SessionSettings(),
    made_here: bool = False,
    *,
    ctx: RunContext | None = None,
    backend: str = "",
) -> Any:
    """`made_here`: parityspec wrote the model (an export, a quantization), so a model ONNX
    Runtime cannot load is a fault of that conversion (exit 3), not of the user's input.
    With `settings.runtime`, a `RemoteSession` in that runtime's environment (built under
    the run's cache folder) for `backend`."""
    if settings.runtime:
        return _remote_session(path, settings, made_here, _cache_dir(ctx), backend)
    import onnxruntime as ort

    require_providers(settings.providers)
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    level = _ORT_LEVELS[settings.graph_optimization_level]
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.log_severity_level = 3  # ORT warnings go to stderr and drown the summary
    try:
        session = ort.InferenceSession(str(path), options, providers=list(settings.providers))
    except Exception as error:
        raise _not_loaded(first_line(error), ort.__version__, made_here, path) from error
    _require_started(settings, session.get_providers(), ort.__version__)
    return session


def _not_loaded(text: str, version: str, made_here: bool, path: Path) -> InputError | StepError:
    if made_here:
        return StepError(
            f"onnxruntime {version} cannot load the model parityspec made: {_unloadable(text)}"
        )
    return InputError(f"not a loadable ONNX model: {_unloadable(text)}", file=str(path))


def _require_started(settings: SessionSettings, used: list[str], version: str) -> None:
    # ONNX Runtime falls back to the CPU, with a warning, when a provider it has cannot
    # start (no GPU, no CUDA libraries): figures would then be the CPU's, under its name.
    idle = [p for p in settings.providers if p not in used]
    if idle:
        raise InputError(
            f"providers: {', '.join(idle)} did not start in onnxruntime {version} "
            f"(the session runs on {', '.join(used)})",
            hint="check that the device and its libraries (CUDA, cuDNN, TensorRT) are "
            "present, or remove the provider from the backend's providers",
        )


def _cache_dir(ctx: RunContext | None) -> Path:
    from parityspec.backends.runtime_env import default_cache_dir

    # The run's --cache-dir (or its default), so `--cache-dir` keeps environments apart too.
    given = ctx.cache_dir if ctx is not None else None
    return Path(given) if given else default_cache_dir()


def _remote_session(
    path: Path, settings: SessionSettings, made_here: bool, cache_dir: Path, backend: str
) -> Any:
    """`made_here`: the file is named in the error only when the user gave it."""
    from parityspec.backends.ort_remote import RemoteSession
    from parityspec.backends.runtime_env import environment, runtimes_root

    env = environment(settings.runtime, runtimes_root(cache_dir))
    session = RemoteSession(env, backend)
    try:
        missing = [p for p in settings.providers if p not in session.available]
        if missing:
            raise InputError(
                f"providers: {', '.join(missing)} is not in {', '.join(settings.runtime)} "
                f"(onnxruntime {session.version} has {', '.join(session.available)})",
                hint=f"{missing[0]} comes with "
                f"{PROVIDERS.get(missing[0], 'another onnxruntime build')}: name that "
                "distribution in runtime, or remove the provider",
            )
        opened = session.open(
            path,
            {
                "graph_optimization_level": settings.graph_optimization_level,
                "intra_op_threads": settings.intra_op_threads,
                "providers": list(settings.providers),
            },
        )
        if not opened.get("ok"):
            # The installed onnxruntime has loaded this graph or will: what this release
            # lacks (a newer opset, IR version or op) is the choice of release, not a fault.
            raise InputError(
                f"onnxruntime {session.version} ({', '.join(settings.runtime)}) cannot load "
                f"the model: {_unloadable(str(opened.get('error')))}",
                file=None if made_here else str(path),
                hint="an older release reads only the opsets and IR versions it knows: "
                "export with a lower opset, or name a newer release in runtime",
            )
        _require_started(settings, session.get_providers(), session.version)
    except BaseException:
        session.close()
        raise
    return session


def runtime_facts(session: Any) -> dict[str, Any]:
    """The onnxruntime a session runs in: its version and, for another release in its own
    environment, the requirements it was installed from."""
    from parityspec.backends.ort_remote import RemoteSession

    if isinstance(session, RemoteSession):
        requirement = ", ".join(session.env.requirements)
        return {"onnxruntime": session.version, "requirement": requirement}
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__}


def require_session_providers(settings: SessionSettings) -> None:
    """`require_providers` for the installed onnxruntime; another runtime's providers are
    checked when its session opens."""
    if not settings.runtime:
        require_providers(settings.providers)


_ORT_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def require_providers(providers: tuple[str, ...]) -> None:
    """Every provider asked for is in the installed onnxruntime, or exit 2 naming what to
    install."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        first = missing[0]
        raise InputError(
            f"providers: {', '.join(missing)} is not in the installed onnxruntime "
            f"{ort.__version__} (it has {', '.join(available)})",
            hint=f"{first} comes with {PROVIDERS.get(first, 'another onnxruntime build')}: "
            "install it in place of onnxruntime (they share the module), or remove the "
            "provider",
        )


# How onnxruntime names an operator it does not have.
_UNKNOWN_OP = (
    re.compile(r"(?P<domain>[\w.]+):(?P<op>\w+)\(-?\d+\) is not a registered function/op"),
    re.compile(
        r'In Node, \("[^"]*", (?P<op>\w+), "(?P<domain>[^"]*)".*(No Op registered|No opset import)'
    ),
)


def _unloadable(text: str) -> str:
    for pattern in _UNKNOWN_OP:
        found = pattern.search(text)
        if found:
            domain = found["domain"] or "ai.onnx"
            return f"it has no operator {found['op']} of domain {domain} ({text})"
    return text


def interpret_outputs(
    task: str,
    names: list[str],
    outputs: list[Any],
    declared: list[str] | None,
    classes: list | None = None,
    probabilities: bool = True,
) -> dict[str, np.ndarray]:
    """`classes`: the column order of a classifier's probabilities, for a ZipMap output, and
    what its label output's values are. `probabilities` false: the float output of a
    classifier is its decision scores."""
    if task == "tensor":
        keys = tensor_output_names(declared, len(outputs))
        return {key: np.asarray(out) for key, out in zip(keys, outputs, strict=True)}
    own = _own_labels(outputs, classes) if task != "regression" else {}
    if task != "regression" and (maps := _zipmap(outputs)) is not None:
        columns = _zipmap_columns(maps, classes)
        if not probabilities:  # a ZipMap of decision scores (skl2onnx's default for an SVC)
            return {"scores": _scores(task, columns, own.get("labels")), **own}
        return {"probabilities": columns, **own}
    floats = [a for a in (_array(o) for o in outputs) if a is not None and a.dtype.kind == "f"]
    if task != "regression" and not probabilities:
        scores = next((f for f in floats if f.ndim == 2), None)
        if scores is None:
            raise InputError(
                f"the ONNX classifier has no 2-D decision-score output (outputs: "
                f"{', '.join(names)})",
                hint="model.probabilities is false: its float output is read as scores",
            )
        labels = own.get("labels")
        return {"scores": _scores(task, scores.astype(np.float64), labels), **own}
    if not floats:
        raise InputError(
            f"the ONNX model has no float output (outputs: {', '.join(names)})",
            hint="a classifier needs a probability output: a 2-D float tensor, or a ZipMap "
            "(sequence of maps)",
        )
    if task == "regression":
        return {"prediction": floats[0].astype(np.float64).reshape(-1)}
    found = next((f for f in floats if f.ndim == 2), None)
    if found is None:
        raise InputError("the ONNX classifier has no 2-D probability output")
    return {"probabilities": found.astype(np.float64), **own}


def _own_labels(outputs: list[Any], classes: list | None) -> dict[str, np.ndarray]:
    """The classifier's own label output (an integer or string tensor, one per row), as
    positions among `classes`; nothing when the graph names no classes."""
    if not classes:
        return {}
    for output in outputs:
        values = _array(output)
        if values is None or values.dtype.kind not in "iuUSO" or values.ndim > 2:
            continue
        if values.ndim == 2 and values.shape[1] != 1:
            continue
        return {"labels": label_codes(values, classes)}
    return {}


def _scores(task: str, values: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Binary scores as scikit-learn's decision_function gives them, the positive class's
    one per row: skl2onnx writes (n, 1) for some models and (n, 2) for others, (-s, s) for
    a linear model but (s, -s) for an SVC. Of two columns, the one whose sign says the
    graph's own labels (positive: the second class) is the positive class's."""
    if task != "binary" or values.shape[1] not in (1, 2):
        return values
    if values.shape[1] == 2 and labels is not None:
        positive = labels == 1
        first, last = ((values[:, i] > 0) == positive for i in (0, 1))
        if int(first.sum()) > int(last.sum()):
            return np.ascontiguousarray(values[:, 0])
    return np.ascontiguousarray(values[:, -1])


def _array(output: Any) -> np.ndarray | None:
    """A tensor output as an array; None for a sequence or a map."""
    if isinstance(output, list | dict):
        return None
    return np.asarray(output)


def _zipmap(outputs: list[Any]) -> list[dict] | None:
    """The first output that is a sequence of maps, one {class: probability} per row: what
    skl2onnx writes by default (ZipMap), and CatBoost's and onnxmltools' exporters too."""
    return next((o for o in outputs if isinstance(o, list) and o and isinstance(o[0], dict)), None)


def _zipmap_columns(rows: list[dict], classes: list | None) -> np.ndarray:
    keys = list(rows[0])
    if classes is not None and sorted(map(str, classes)) == sorted(map(str, keys)):
        by_text = {str(k): k for k in keys}
        keys = [by_text[str(c)] for c in classes]  # the graph's order of its labels
    return np.array([[row[k] for k in keys] for row in rows], dtype=np.float64)


def table_feeds(session: Any, frame: pd.DataFrame, data_file: str | None) -> dict[str, Any]:
    """The feeds a run gives the session for these rows, bound to their columns as a file
    without parityspec's feature schema is (one input per column, or one of them all)."""
    bindings = _bindings_from_columns(session, [str(c) for c in frame.columns], data_file)
    return {b.name: _column_feed(frame, b) for b in bindings}


def _bindings_from_features(features: dict) -> list[InputBinding]:
    return [InputBinding(i["name"], i["dtype"], i["columns"]) for i in features["inputs"]]


def _tensor_bindings(session: Any) -> list[InputBinding]:
    inputs = session.get_inputs()
    return [InputBinding(i.name, ORT_DTYPES.get(i.type, "float32"), [i.name]) for i in inputs]


def _bindings_from_columns(
    session: Any, columns: list[str], data_file: str | None
) -> list[InputBinding]:
    inputs = session.get_inputs()
    if len(inputs) == 1 and inputs[0].name not in columns:
        only = inputs[0]
        width = only.shape[-1] if len(only.shape) == 2 else None
        if isinstance(width, int) and width != len(columns):
            raise InputError(
                f"ONNX input {only.name!r} takes {width} features, the data has "
                f"{len(columns)} feature columns ({_listed(columns)})",
                file=data_file,
                hint=f"set data.features to the model's {width} columns, in the order it was "
                "trained on",
            )
        return [InputBinding(only.name, ORT_DTYPES.get(only.type, "float32"), columns)]
    names = [i.name for i in inputs]
    missing = [n for n in names if n not in columns]
    if missing:
        raise InputError(
            f"ONNX inputs not found among the data columns: {_listed(missing)}; data columns "
            f"the model does not take: {_listed([c for c in columns if c not in names]) or 'none'}",
            file=data_file,
            hint="rename the data's columns to the model's inputs (one per column), or give "
            "the data the model was trained on",
        )
    return [InputBinding(i.name, ORT_DTYPES.get(i.type, "float32"), [i.name]) for i in inputs]


def _listed(names: list[str], limit: int = 12) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _column_feed(frame: pd.DataFrame, binding: InputBinding) -> np.ndarray:
    # One column (skl2onnx's usual input) through its Series: a one-column DataFrame per
    # input and batch cost a third more, for the same values.
    columns = binding.columns
    values = frame[columns[0]] if len(columns) == 1 else frame[columns]
    if binding.dtype == "str":
        return _text_feed(values).reshape(len(frame), -1)
    try:
        return np.ascontiguousarray(values.to_numpy(dtype=binding.dtype).reshape(len(frame), -1))
    except (TypeError, ValueError) as error:
        raise InputError(
            f"column(s) {', '.join(binding.columns)} cannot be read as {binding.dtype}: "
            f"{first_line(error)}"
        ) from error


def _text_feed(values: pd.Series | pd.DataFrame) -> np.ndarray:
    """The cells as an object array of str, a gap as NaN (as `astype(str)` leaves it)."""
    import pandas as pd

    if isinstance(values, pd.Series) and values.dtype == object:
        cells = values.to_numpy()
        # Text already (as the CSV reader gives it): no conversion, no new str per cell.
        if pd.api.types.infer_dtype(cells, skipna=True) in ("string", "empty"):
            return cells
    return values.astype(str).to_numpy(dtype=object)
