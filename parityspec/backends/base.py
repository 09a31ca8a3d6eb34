"""What every backend module provides, and what its loaded models look like."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from parityspec.spec.base import StrictModel

if TYPE_CHECKING:
    from parityspec.data import Dataset
    from parityspec.run.context import RunContext

# The verb names the model step in the plan: `build:sklearn`, `export:onnx`, `quantize:int8`.
Verb = Literal["build", "load", "export", "quantize"]


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
    """A module under `parityspec/backends/` registered in `BACKENDS`."""

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
        data: Dataset | None,
    ) -> LoadedModel: ...

    def predict(self, model: LoadedModel, batch: Any) -> dict[str, np.ndarray]: ...


def tensor_output_names(declared: list[str] | None, count: int) -> list[str]:
    """Declared names, else positional ones: the same on every backend, so outputs pair up."""
    if declared and len(declared) == count:
        return list(declared)
    return [f"output_{i}" for i in range(count)]
