"""Label agreement: the confusion matrix between two backends' labels should be the identity."""

from __future__ import annotations

from typing import Literal

import numpy as np

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    judge,
    nonfinite_failure,
)
from parityspec.checks.batching import aligned_batches
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.spec.profiles import CheckTolerances, Fraction, tolerance
from parityspec.stats import reduce_rows

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
    """Labels are the arg-max of each backend's probabilities, on every backend alike."""

    type: Literal["label_agreement"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref = inputs.reference.outputs["probabilities"]
    other = inputs.candidate.outputs["probabilities"]
    if ref.shape != other.shape:
        return CheckResult("failed", f"probability shapes differ: {ref.shape} vs {other.shape}")
    n_classes = ref.shape[1]
    try:
        classes = model_classes(inputs, n_classes)
    except ClassMismatch as error:
        return CheckResult("failed", str(error))
    other = classes.candidate(other)
    k = inputs.spec.report.worst_samples
    confusion, disagreeing = _confusion(ref, other, n_classes, inputs.spec.data.batch_size, k)
    total = int(confusion.sum())
    # The extra "no label" cell is not an agreement: NaN on both sides is no prediction.
    agree = int(np.trace(confusion[:n_classes, :n_classes]))
    agreement = agree / total if total else 1.0
    minimum = tolerances.min_label_agreement
    gates = [Gate("agreement", agreement, ">=", "min_label_agreement", minimum)]
    # Rows without a label are the rows with a NaN or Inf.
    nonfinite = nonfinite_failure(
        inputs, int(confusion[n_classes:].sum()), int(confusion[:, n_classes:].sum())
    )
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({agree} of {total} labels agree)"
    return CheckResult(
        status,
        reason,
        figures={"samples": total, "agreement": agreement, "disagreements": total - agree},
        tolerances={"min_label_agreement": minimum},
        details={
            "classes": classes.names(n_classes),
            "classes_from": classes.source,
            "confusion_matrix": confusion.tolist(),
            "confusion_rows": f"{inputs.reference.backend} (rows) vs "
            f"{inputs.candidate.backend} (columns)",
            "disagreeing_rows": disagreeing,
        },
        gates=gates,
    )


def _labels(probabilities: np.ndarray) -> np.ndarray:
    # A row with NaN or Inf has no label: -1 counts as a disagreement with any real label.
    labels = np.argmax(probabilities, axis=1)
    labels[~reduce_rows(np.logical_and, np.isfinite(probabilities))] = -1
    return labels


def _confusion(
    ref: np.ndarray, other: np.ndarray, n: int, batch_size: int, k: int
) -> tuple[np.ndarray, list[int]]:
    """The confusion matrix, and the first k rows whose labels disagree, in one pass."""
    # One extra row/column (index n) holds the samples without a label.
    counts = np.zeros((n + 1) * (n + 1), dtype=np.int64)
    rows: list[int] = []
    for start, batch_ref, batch_other in aligned_batches(ref, other, batch_size):
        a, b = _labels(batch_ref), _labels(batch_other)
        cells = np.where(a < 0, n, a) * (n + 1) + np.where(b < 0, n, b)
        counts += np.bincount(cells, minlength=len(counts))
        if len(rows) < k:
            rows += [start + int(i) for i in np.flatnonzero((a != b) | (a < 0))[: k - len(rows)]]
    confusion = counts.reshape(n + 1, n + 1)
    if confusion[n].any() or confusion[:, n].any():
        return confusion, rows
    return confusion[:n, :n], rows
