"""Label agreement: the confusion matrix between two backends' labels should be the identity."""

from __future__ import annotations

from dataclasses import dataclass, field
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
from parityspec.checks.classes import (
    ClassMismatch,
    concluded_classes,
    data_classes,
    merged_classes,
    model_classes,
)
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


NO_LABEL = "(no label)"
"""The confusion matrix's last row and column, where a row has no label (NaN or Inf)."""

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


@dataclass
class Summary:
    """What the rows of a shard (or all of them) say; two merge exactly (`merge`)."""

    failure: str | None
    """Why the rows cannot be compared, the same for every shard (outputs, classes)."""
    shapes: tuple[tuple[int, ...], ...] = ()
    """Both probability shapes where both sides return them, rows summed over shards."""
    n_classes: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    """The confusion matrix with its extra "no label" row and column, flat."""
    disagreeing: list[int] = field(default_factory=list)
    """The first `k` disagreeing rows by id."""
    k: int = 0
    nonfinite: tuple[int, int] = (0, 0)
    labels_from: dict[str, str] = field(default_factory=dict)
    not_argmax: dict[str, int] = field(default_factory=dict)
    """Rows whose own label is not the arg-max, for each backend that returns both."""
    seen: np.ndarray | None = None
    """The classes of these rows' ground truth: merged, the classes of all of them."""

    def merge(self, other: Summary) -> Summary:
        return Summary(
            self.failure or other.failure,
            tuple(_add_rows(a, b) for a, b in zip(self.shapes, other.shapes, strict=True)),
            self.n_classes,
            self.counts + other.counts,
            sorted(self.disagreeing + other.disagreeing)[: self.k],
            self.k,
            (self.nonfinite[0] + other.nonfinite[0], self.nonfinite[1] + other.nonfinite[1]),
            self.labels_from,
            {b: n + other.not_argmax[b] for b, n in self.not_argmax.items()},
            merged_classes(self.seen, other.seen),
        )


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    ref, other = _Side(inputs.reference), _Side(inputs.candidate)
    for side in (ref, other):
        if side.own is None and side.probabilities is None:
            return Summary(f"{side.predictions.backend} returns neither labels nor probabilities")
    shapes = [s.probabilities.shape for s in (ref, other) if s.probabilities is not None]
    # Everything but the counts depends on the outputs' kinds and the classes, not on the
    # rows: every shard's summary has the same, and any two merge.
    n_classes = _class_count(inputs, ref, other)
    n = n_classes or 0
    summary = Summary(
        None,
        tuple(tuple(int(d) for d in s) for s in shapes) if len(shapes) == 2 else (),
        n,
        np.zeros((n + 1) ** 2, dtype=np.int64),
        k=inputs.spec.report.worst_samples,
        labels_from={s.predictions.backend: s.source() for s in (ref, other)},
        not_argmax={s.predictions.backend: 0 for s in (ref, other) if _both(s)},
        seen=data_classes(inputs),
    )
    if _shape_failure(summary):
        return summary
    if n_classes is None:
        summary.failure = "the classes are unknown: set model.classes"
        return summary
    try:
        classes = model_classes(inputs, n)
    except ClassMismatch as error:
        summary.failure = str(error)
        return summary
    if classes.candidate_order is not None:  # candidate position -> reference position
        other.remap = np.argsort(classes.candidate_order)
    other_probabilities = (
        None if other.probabilities is None else classes.candidate(other.probabilities)
    )
    k, counts, disagreeing = summary.k, summary.counts, summary.disagreeing
    total_rows = len(ref.own if ref.own is not None else ref.probabilities)
    for start in range(0, total_rows, inputs.spec.data.batch_size):
        stop = min(start + inputs.spec.data.batch_size, total_rows)
        a = ref.labels(start, stop, ref.probabilities)
        b = other.labels(start, stop, other_probabilities)
        cells = np.where(a < 0, n, a) * (n + 1) + np.where(b < 0, n, b)
        counts += np.bincount(cells, minlength=len(counts))
        if len(disagreeing) < k:
            found = np.flatnonzero((a != b) | (a < 0))[: k - len(disagreeing)]
            disagreeing += [inputs.first_row + start + int(i) for i in found]
    summary.nonfinite = (ref.nonfinite, other.nonfinite)
    for side in (ref, other):
        if _both(side):
            summary.not_argmax[side.predictions.backend] = side.differs_from_argmax
    return summary


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    failure = _shape_failure(summary) or summary.failure
    if failure:
        return CheckResult("failed", failure)
    n_classes = summary.n_classes
    # The data's classes, where they name the columns, are those of every shard's rows.
    classes = concluded_classes(inputs, summary.seen, n_classes)
    confusion = summary.counts.reshape(n_classes + 1, n_classes + 1)
    names = classes.names(n_classes)
    if confusion[n_classes].any() or confusion[:, n_classes].any():
        names = [*names, NO_LABEL]
    else:
        confusion = confusion[:n_classes, :n_classes]
    total = int(confusion.sum())
    # The extra "no label" cell is not an agreement: NaN on both sides is no prediction.
    agree = int(np.trace(confusion[:n_classes, :n_classes]))
    agreement = agree / total if total else 1.0
    minimum = tolerances.min_label_agreement
    gates = [Gate("agreement", agreement, ">=", "min_label_agreement", minimum)]
    nonfinite = nonfinite_failure(inputs, *summary.nonfinite)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({agree} of {total} labels agree)"
    ruled = summary.not_argmax
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
            "confusion_labels": names,
            "labels_from": summary.labels_from,
            "labels_not_argmax": ruled,
            "confusion_matrix": confusion.tolist(),
            "confusion_rows": f"{inputs.reference.backend} (rows) vs "
            f"{inputs.candidate.backend} (columns)",
            "disagreeing_rows": summary.disagreeing,
        },
        gates=gates,
    )


def _shape_failure(summary: Summary) -> str | None:
    if summary.shapes and summary.shapes[0] != summary.shapes[1]:
        return f"probability shapes differ: {summary.shapes[0]} vs {summary.shapes[1]}"
    return None


def _add_rows(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of two shards' outputs together: their rows added."""
    return (a[0] + b[0], *a[1:])


def _both(side: _Side) -> bool:
    return side.own is not None and side.probabilities is not None


def _class_count(inputs: CheckInputs, *sides: _Side) -> int | None:
    for side in sides:
        if side.probabilities is not None:
            return int(side.probabilities.shape[1])
    known = [s.predictions.classes for s in sides] + [inputs.spec.model.classes]
    return next((len(c) for c in known if c), None)
