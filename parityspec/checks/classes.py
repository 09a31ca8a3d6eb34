"""Which class each probability column stands for: the model's own classes, not the data's.

A model knows its classes (scikit-learn's `classes_`, an ONNX classifier's `classlabels_*`)
whatever rows it is evaluated on; the distinct target values of those rows are only a guess
at them, wrong as soon as the rows lack a class. The reference model's classes are used,
else the candidate's, else the spec's `model.classes`; the data's only when none of them
says and their count matches the columns. When the candidate orders the same classes
differently, its columns are reordered to the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from parityspec.backends.base import class_key
from parityspec.data import Dataset
from parityspec.errors import InputError

if TYPE_CHECKING:
    from parityspec.checks.base import CheckInputs


class ClassMismatch(Exception):
    """The two backends' classes cannot be lined up: the check fails, saying why."""


@dataclass(frozen=True)
class ModelClasses:
    labels: list | None
    """The class of each probability column, in the reference's order; None when unknown."""
    source: str
    """Where `labels` come from: a backend's name, "data", or "unknown"."""
    candidate_order: np.ndarray | None = None
    """The candidate's column for each reference column; None when they line up already."""

    def names(self, n_columns: int) -> list[str]:
        if self.labels is None:
            return [str(i) for i in range(n_columns)]
        return [str(c) for c in self.labels]

    def candidate(self, values: Any) -> Any:
        """The candidate's output with its columns in the reference's class order."""
        return values if self.candidate_order is None else Reordered(values, self.candidate_order)

    def codes(self, truth: np.ndarray) -> np.ndarray:
        """Each ground-truth value as the index of its class among `labels` (known ones)."""
        labels = self.labels
        assert labels is not None, "codes of unknown classes"
        values, inverse = np.unique(np.asarray(truth), return_inverse=True)
        index = {class_key(c): i for i, c in enumerate(labels)}
        codes = np.array([index.get(class_key(v), -1) for v in values], dtype=np.int64)
        unknown = [str(v) for v in values[codes < 0]]
        if unknown:
            raise InputError(
                f"the ground truth holds {_listed(unknown)}, not among the model's classes "
                f"({_listed(labels)}, from {self.source})",
                hint="is data.target the column this model was trained to predict?",
            )
        return codes[inverse.reshape(-1)]


class Reordered:
    """An output read with its columns permuted, batch by batch like the output itself."""

    def __init__(self, values: Any, order: np.ndarray):
        self.values, self.order = values, order
        self.shape, self.dtype = values.shape, values.dtype

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.values[key])[..., self.order]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        whole = np.asarray(self.values)[..., self.order]
        return whole if dtype is None else whole.astype(dtype)


def model_classes(inputs: CheckInputs, n_columns: int) -> ModelClasses:
    """The classes of `n_columns` probability columns; ClassMismatch when the backends
    disagree on them or a backend's classes do not match its columns."""
    reference, candidate = inputs.reference, inputs.candidate
    declared = inputs.spec.model.classes
    if declared is not None and len(declared) != n_columns:
        raise ClassMismatch(
            f"model.classes lists {len(declared)} classes for {n_columns} probability columns"
        )
    for side in (reference, candidate):
        known = side.classes
        if declared is not None and known is not None and _order(declared, known) is None:
            raise ClassMismatch(
                f"model.classes ({_listed(declared)}) are not {side.backend}'s own "
                f"({_listed(known)})"
            )
        if side.classes is not None and len(side.classes) != n_columns:
            raise ClassMismatch(
                f"{side.backend} returns {n_columns} probability columns for its "
                f"{len(side.classes)} classes ({_listed(side.classes)})"
            )
    if reference.classes is not None and candidate.classes is not None:
        order = _order(reference.classes, candidate.classes)
        if order is None:
            raise ClassMismatch(
                f"the backends know different classes: {reference.backend} "
                f"{_listed(reference.classes)}, {candidate.backend} {_listed(candidate.classes)}"
            )
        identity = bool((order == np.arange(n_columns)).all())
        return ModelClasses(list(reference.classes), reference.backend, None if identity else order)
    for side in (reference, candidate):
        if side.classes is not None:
            return ModelClasses(list(side.classes), side.backend)
    if declared is not None:
        return ModelClasses(list(declared), "model.classes")
    data = inputs.data.classes
    if data is not None and len(data) == n_columns:
        return ModelClasses(np.asarray(data).tolist(), "data")
    return ModelClasses(None, "unknown")


def _order(reference: list, candidate: list) -> np.ndarray | None:
    """The candidate's column of each reference class; None when the sets differ."""
    position = {class_key(c): i for i, c in enumerate(candidate)}
    keys = [class_key(c) for c in reference]
    if sorted(keys) != sorted(position) or len(position) != len(candidate):
        return None
    return np.array([position[k] for k in keys], dtype=np.int64)


def _listed(values: list, limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def data_classes(inputs: CheckInputs) -> np.ndarray | None:
    """The classes of these rows' ground truth where `model_classes` falls back to them (no
    backend nor the spec names the model's), else None: a chunked data set reads its whole
    file to say them."""
    said = (inputs.reference.classes, inputs.candidate.classes, inputs.spec.model.classes)
    return inputs.data.classes if all(c is None for c in said) else None


def merged_classes(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Two shards' `data_classes` together, sorted as a chunked data set sorts its parts'."""
    if a is None or b is None:
        return a if b is None else b
    return np.array(sorted(set(a.tolist()) | set(b.tolist())))


def concluded_classes(inputs: CheckInputs, seen: np.ndarray | None, n_columns: int) -> ModelClasses:
    """`model_classes` with the data's classes those of every shard's rows (`seen`): the
    rows at hand when concluding may be none of them."""
    return model_classes(replace(inputs, data=Dataset({}, None, seen)), n_columns)
