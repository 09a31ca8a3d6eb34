"""Label agreement: the confusion matrix between two backends' labels should be the identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    judge,
    nonfinite_failure,
)
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.spec.profiles import CheckTolerances, Fraction, tolerance
from parityspec.stats import reduce_rows

if TYPE_CHECKING:
    from parityspec.backends.base import Predictions

TYPE = "label_agreement"
TASKS = ("binary", "multiclass")
NEEDS_MODELS = False


class Tolerances(CheckTolerances):
    min_label_agreement: Fraction = tolerance(
        strict=1.0,
        default=0.999,
        lenient=0.99,
        doc="Labels: the smallest allowed fraction of samples with the same predicted label.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Each backend's labels as it returns them itself: its own label output (what
    production code reads: scikit-learn's `predict()`, an ONNX graph's label tensor) where
    it has one, else the arg-max of its probabilities."""

    type: Literal["label_agreement"]


# What it reads of a classifier: labels, or probabilities where a backend has no labels.
READS = ("labels",)


@dataclass
class _Side:
    """One backend's labels, batch by batch, as positions among the reference's classes."""

    predictions: Predictions
    remap: np.ndarray | None = None
    """The reference's position of each of this backend's own label positions."""
    differs_from_argmax: int = 0
    nonfinite: int = 0

    @property
    def probabilities(self) -> Any:
        return self.predictions.outputs.get("probabilities")

    @property
    def own(self) -> Any:
        return self.predictions.outputs.get("labels")

    def source(self) -> str:
        return "its own labels" if self.own is not None else "arg-max of its probabilities"

    def labels(self, start: int, stop: int, probabilities: Any) -> np.ndarray:
        """`probabilities`: this side's, in the reference's class order (or None)."""
        argmax = None
        if probabilities is not None:
            batch = np.asarray(probabilities[start:stop])
            finite = reduce_rows(np.logical_and, np.isfinite(batch))
            self.nonfinite += int((~finite).sum())
            # A row with NaN or Inf has no label: -1 counts as a disagreement with any label.
            argmax = np.where(finite, np.argmax(batch, axis=1), -1)
        elif (scores := self.predictions.outputs.get("scores")) is not None:
            batch = np.asarray(scores[start:stop])
            finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
            self.nonfinite += int((~finite).sum())
        else:
            finite = None
        if self.own is None:
            assert argmax is not None  # run(): a side has labels or probabilities
            return argmax
        own = np.asarray(self.own[start:stop], dtype=np.int64)
        if self.remap is not None:
            own = np.where(own < 0, -1, self.remap[np.clip(own, 0, None)])
        if finite is not None:
            own = np.where(finite, own, -1)  # a label beside NaN scores is no decision
        if argmax is not None:
            self.differs_from_argmax += int(((own != argmax) & (argmax >= 0)).sum())
        return own


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref, other = _Side(inputs.reference), _Side(inputs.candidate)
    for side in (ref, other):
        if side.own is None and side.probabilities is None:
            return CheckResult(
                "failed", f"{side.predictions.backend} returns neither labels nor probabilities"
            )
    shapes = [s.probabilities.shape for s in (ref, other) if s.probabilities is not None]
    if len(shapes) == 2 and shapes[0] != shapes[1]:
        return CheckResult("failed", f"probability shapes differ: {shapes[0]} vs {shapes[1]}")
    n_classes = _class_count(inputs, ref, other)
    if n_classes is None:
        return CheckResult("failed", "the classes are unknown: set model.classes")
    try:
        classes = model_classes(inputs, n_classes)
    except ClassMismatch as error:
        return CheckResult("failed", str(error))
    if classes.candidate_order is not None:  # candidate position -> reference position
        other.remap = np.argsort(classes.candidate_order)
    other_probabilities = (
        None if other.probabilities is None else classes.candidate(other.probabilities)
    )
    k = inputs.spec.report.worst_samples
    counts = np.zeros((n_classes + 1) ** 2, dtype=np.int64)
    disagreeing: list[int] = []
    total_rows = len(ref.own if ref.own is not None else ref.probabilities)
    for start in range(0, total_rows, inputs.spec.data.batch_size):
        stop = min(start + inputs.spec.data.batch_size, total_rows)
        a = ref.labels(start, stop, ref.probabilities)
        b = other.labels(start, stop, other_probabilities)
        n = n_classes
        cells = np.where(a < 0, n, a) * (n + 1) + np.where(b < 0, n, b)
        counts += np.bincount(cells, minlength=len(counts))
        if len(disagreeing) < k:
            found = np.flatnonzero((a != b) | (a < 0))[: k - len(disagreeing)]
            disagreeing += [start + int(i) for i in found]
    confusion = counts.reshape(n_classes + 1, n_classes + 1)
    if not (confusion[n_classes].any() or confusion[:, n_classes].any()):
        confusion = confusion[:n_classes, :n_classes]
    total = int(confusion.sum())
    # The extra "no label" cell is not an agreement: NaN on both sides is no prediction.
    agree = int(np.trace(confusion[:n_classes, :n_classes]))
    agreement = agree / total if total else 1.0
    minimum = tolerances.min_label_agreement
    gates = [Gate("agreement", agreement, ">=", "min_label_agreement", minimum)]
    nonfinite = nonfinite_failure(inputs, ref.nonfinite, other.nonfinite)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({agree} of {total} labels agree)"
    ruled = {s.predictions.backend: s.differs_from_argmax for s in (ref, other) if _both(s)}
    for backend, rows in ruled.items():
        if rows:
            reason += (
                f"; {backend}'s own labels differ from the arg-max of its probabilities on "
                f"{rows} of {total} rows (its decision rule is not the arg-max)"
            )
    return CheckResult(
        status,
        reason,
        figures={"samples": total, "agreement": agreement, "disagreements": total - agree},
        tolerances={"min_label_agreement": minimum},
        details={
            "classes": classes.names(n_classes),
            "classes_from": classes.source,
            "labels_from": {s.predictions.backend: s.source() for s in (ref, other)},
            "labels_not_argmax": ruled,
            "confusion_matrix": confusion.tolist(),
            "confusion_rows": f"{inputs.reference.backend} (rows) vs "
            f"{inputs.candidate.backend} (columns)",
            "disagreeing_rows": disagreeing,
        },
        gates=gates,
    )


def _both(side: _Side) -> bool:
    return side.own is not None and side.probabilities is not None


def _class_count(inputs: CheckInputs, *sides: _Side) -> int | None:
    for side in sides:
        if side.probabilities is not None:
            return int(side.probabilities.shape[1])
    known = [s.predictions.classes for s in sides] + [inputs.spec.model.classes]
    return next((len(c) for c in known if c), None)
