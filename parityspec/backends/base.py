"""What every backend module provides, and what its loaded models look like."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from parityspec.spec.base import StrictModel

if TYPE_CHECKING:
    from parityspec.backends.context import RunContext
    from parityspec.data import Rows

# The verb names the model step in the plan: `build:sklearn`, `export:onnx`, `quantize:int8`.
Verb = Literal["build", "load", "export", "quantize", "convert"]


@dataclass
class LoadedModel:
    """A model ready to predict, plus the facts the report needs about it."""

    backend: str
    kind: str
    predictor: Any
    files: dict[str, Path] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    inert: str | None = None
    """Why this model cannot count as validated whatever its figures (a no-op quantization)."""


@dataclass
class Predictions:
    """Outputs of one backend on the evaluation rows, in row order."""

    backend: str
    outputs: dict[str, Any]
    """Array-likes by output name: numpy arrays, or `StoredArray`s read from disk in slices."""
    inert: str | None = None
    classes: list | None = None
    """A classifier's class labels in the order of its probability columns, when the model
    says them (its `classes` fact); the data's classes cannot stand in: rows may lack one."""


class BackendModule(Protocol):
    """A module under `parityspec/backends/` registered in `BACKENDS`.

    These are required. The optional hooks (`OFFERS`, `DERIVED_FROM`, `LIBRARIES`,
    `export_onnx`, `reopen`, `model_size`, `batch_dependent`, `runtime_call`), with their
    defaults, are the fields of `BackendCapabilities`: a module declares one by defining an
    attribute of the same name, and everything else reads them through
    `capabilities(module)`.
    """

    KIND: str
    Spec: type[StrictModel]

    def verb(self, spec: Any) -> Verb: ...

    def source(self, spec: Any) -> str | None:
        """The backend this one is derived from (`from:`), if any."""

    def referenced_files(self, spec: Any) -> list[tuple[str, str]]:
        """(spec key, path as written) of every file the spec says must exist."""

    def needs_data(self, spec: Any) -> bool:
        """Whether making the model reads the data (training, export schema, calibration)."""

    def make(
        self,
        ctx: RunContext,
        name: str,
        spec: Any,
        source: LoadedModel | None,
        data: Rows | None,
    ) -> LoadedModel:
        """`data`: the train rows, given when `needs_data(spec)`."""

    def predict(self, model: LoadedModel, batch: Any) -> dict[str, np.ndarray]: ...


class Offer(StrEnum):
    """What a backend's models offer to the backends derived from them and to the checks
    that look inside them. Derivations and checks ask for offers, never for kind names."""

    TABULAR = "tabular"
    """Predicts from table rows: class probabilities, or a regression prediction."""
    TENSORS = "tensors"
    """Predicts named tensors from named input tensors (task `tensor`)."""
    LAYERS = "layers"
    """The predictor is a `torch.nn.Module` whose leaf-module calls can be captured."""
    PIPELINE_STEPS = "pipeline_steps"
    """The predictor is a fitted scikit-learn estimator: a Pipeline's steps can be run alone."""
    ONNX_GRAPH = "onnx_graph"
    """An ONNX file, `files["model"]`, run by an `OnnxRunner` (`path`, `inputs`, `feeds`)."""
    QUANTIZED_GRAPH = "quantized_graph"
    """An ONNX graph whose operators were quantized: its tensors no longer match a float
    conversion's one for one."""
    FLOAT16_GRAPH = "float16_graph"
    """An ONNX graph converted to float16: ONNX Runtime's quantizer, and the float16
    converter itself, cannot take it again."""
    ONNX_EXPORT = "onnx_export"
    """Can be exported to ONNX: offered by every module that defines `export_onnx`."""


@dataclass(frozen=True)
class Needs:
    """What a backend must offer (`all_of`) and must not offer (`none_of`)."""

    all_of: frozenset[Offer] = frozenset()
    none_of: frozenset[Offer] = frozenset()

    def met_by(self, offers: frozenset[Offer]) -> bool:
        return self.all_of <= offers and not self.none_of & offers

    def kinds(self, backends: Mapping[str, BackendModule]) -> list[str]:
        """The registered kinds that meet it, for hints."""
        return sorted(k for k, m in backends.items() if self.met_by(capabilities(m).offers))

    def __str__(self) -> str:
        wanted = [str(o) for o in sorted(self.all_of)]
        return ", ".join(wanted + [f"not {o}" for o in sorted(self.none_of)]) or "anything"


# The hooks' signatures: (ctx, source model, the onnx backend's spec, out dir, train rows).
ExportOnnx = Callable[["RunContext", LoadedModel, Any, Path, "Rows"], Path]
Reopen = Callable[["RunContext", LoadedModel, Any], LoadedModel]
RuntimeCall = Callable[[LoadedModel, Any], Callable[[], object]]


def stored_size(model: LoadedModel) -> int:
    """The model file's size; for an in-memory model, its pickled size."""
    if "model" in model.files:
        return model.files["model"].stat().st_size
    return len(pickle.dumps(model.predictor, protocol=5))


@dataclass(frozen=True)
class BackendCapabilities:
    """A backend module's optional hooks. Each field is read from the module attribute of the
    same name when the module defines it; the default below stands in when it does not."""

    OFFERS: frozenset[Offer] = frozenset({Offer.TABULAR, Offer.TENSORS})
    """What its models offer (`ONNX_EXPORT` is added for a module defining `export_onnx`).
    The default: it predicts for any task, and nothing may look inside its models."""
    DERIVED_FROM: Needs | None = None
    """What the backend named by its `from:` must offer; None: the kind takes no `from:`."""
    LIBRARIES: tuple[str, ...] = ()
    """Distributions whose versions enter every cache key, beside `lineage.CORE_LIBRARIES`."""
    export_onnx: ExportOnnx | None = None
    """Writes the model as ONNX into the out dir and returns the file's path."""
    reopen: Reopen | None = None
    """Makes a model restored from the step cache (files and facts, no predictor) predict
    again; without it a cached model is rebuilt whenever a step it feeds has to run."""
    model_size: Callable[[LoadedModel], int] = stored_size
    """The model's size in bytes, as the benchmark check reports it."""
    batch_dependent: Callable[[Any], bool] | None = None
    """`batch_dependent(spec)`: whether a model of this spec computes each row's outputs from
    the whole batch it is given (dynamic INT8's activation scales), so that its figures hold
    for one batch size, which the report then states. None: never."""
    runtime_call: RuntimeCall | None = None
    """The runtime's own call on a batch, its inputs prepared before: `runtime_call(model,
    batch)` converts the batch and returns a function that only runs the model, which the
    benchmark check times. None: `predict` is the runtime's call (scikit-learn's pipeline
    converts its own inputs, as it does when served)."""

    @property
    def offers(self) -> frozenset[Offer]:
        """`OFFERS`, with `ONNX_EXPORT` exactly when there is an `export_onnx` to call."""
        exports = frozenset({Offer.ONNX_EXPORT} if self.export_onnx else ())
        return (self.OFFERS - {Offer.ONNX_EXPORT}) | exports


def capabilities(module: BackendModule) -> BackendCapabilities:
    """The module's optional hooks, defaults filled in: the one place that looks them up."""
    names = (f.name for f in fields(BackendCapabilities))
    return BackendCapabilities(**{n: getattr(module, n) for n in names if hasattr(module, n)})


def class_key(value: Any) -> str:
    """One spelling per class: 1, 1.0, np.int64(1) and "1" (an ONNX string label) agree."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def label_codes(labels: Any, classes: list) -> np.ndarray:
    """A runtime's own labels as int64 positions in `classes` (its probability columns'
    order), -1 for a label outside them: stored like any output, compared across runtimes
    whose labels are spelled differently (ONNX's "1", scikit-learn's 1)."""
    values, inverse = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    index = {class_key(c): i for i, c in enumerate(classes)}
    codes = np.array([index.get(class_key(v), -1) for v in values], dtype=np.int64)
    return codes[inverse.reshape(-1)] if len(values) else np.zeros(0, dtype=np.int64)


def tensor_output_names(declared: list[str] | None, count: int) -> list[str]:
    """Declared names, else positional ones: the same on every backend, so outputs pair up."""
    if declared and len(declared) == count:
        return list(declared)
    return [f"output_{i}" for i in range(count)]
