"""Decision-score parity for classifiers without probabilities (LinearSVC, RidgeClassifier,
Perceptron, SGD with hinge loss, one-vs-one wrappers): their `decision_function`, one
value per row (binary) or one per class, against the converted model's score output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    WorstRows,
    judge,
    nonfinite_failure,
)
from parityspec.checks.batching import aligned_batches, shape_mismatch
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.spec.profiles import CheckTolerances, Fraction, NonNegative, tolerance
from parityspec.stats import DiffStats, Worst

TYPE = "score_parity"
TASKS = ("binary", "multiclass")
NEEDS_MODELS = False
READS = ("scores",)
"""Read by `checks.capabilities`: refused unless `model.probabilities` is false."""


class Tolerances(CheckTolerances):
    score_atol: NonNegative = tolerance(
        strict=1e-5,
        default=1e-4,
        lenient=1e-3,
        doc="Decision scores: an element passes when |a - b| <= score_atol + score_rtol * |a|.",
    )
    score_rtol: NonNegative = tolerance(
        strict=1e-5,
        default=1e-4,
        lenient=1e-3,
        doc="Decision scores: the relative part of the element rule, scaled by |a| (scores "
        "grow with the features' scale).",
    )
    max_score_violation_fraction: Fraction = tolerance(
        strict=0.0,
        default=0.0,
        lenient=1e-4,
        doc="Decision scores: the fraction of elements allowed to break the element rule.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Element-wise allclose of the two backends' decision scores, with no NaN or Inf."""

    type: Literal["score_parity"]


@dataclass
class Summary:
    """What the rows of a shard (or all of them) say; two merge exactly (`merge`)."""

    stats: DiffStats
    worst: WorstRows
    shapes: tuple[tuple[int, ...], ...] = ()
    """Both score shapes, rows summed over shards; none when a side has no scores."""
    violations: int = 0
    failure: str | None = None
    """Why the rows cannot be compared, the same for every shard (outputs, classes)."""

    def merge(self, other: Summary) -> Summary:
        return Summary(
            self.stats.merge(other.stats),
            self.worst.merge(other.worst),
            tuple(_add_rows(a, b) for a, b in zip(self.shapes, other.shapes, strict=True)),
            self.violations + other.violations,
            self.failure or other.failure,
        )


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    k = inputs.spec.report.worst_samples
    summary = Summary(DiffStats(k=k), WorstRows(Worst(k)))
    ref = inputs.reference.outputs.get("scores")
    other = inputs.candidate.outputs.get("scores")
    sides = ((inputs.reference, ref), (inputs.candidate, other))
    missing = [p.backend for p, s in sides if s is None]
    if missing:
        summary.failure = f"no decision scores from {', '.join(missing)}"
        return summary
    assert ref is not None and other is not None
    summary.shapes = tuple(tuple(int(d) for d in s.shape) for s in (ref, other))
    if _shape_failure(summary):
        return summary
    if ref.ndim == 2:  # one column per class: the candidate's in the reference's order
        try:
            other = model_classes(inputs, ref.shape[1]).candidate(other)
        except ClassMismatch as error:
            summary.failure = str(error)
            return summary
    atol, rtol = tolerances.score_atol, tolerances.score_rtol
    stats, first = summary.stats, inputs.first_row
    for start, a, b in aligned_batches(ref, other, inputs.spec.data.batch_size):
        diff = stats.update(a, b, first_index=first + start)
        bad = ~(diff <= atol + rtol * np.abs(a, dtype=np.float64))  # NaN is bad
        summary.violations += int(bad.sum())
    summary.worst = WorstRows.of(stats.worst, inputs.data, ref, other, first)
    return summary


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    failure = _shape_failure(summary) or summary.failure
    if failure:
        return CheckResult("failed", failure)
    stats, violations = summary.stats, summary.violations
    shape = summary.shapes[0]
    elements = int(np.prod(shape, dtype=np.int64))
    atol, rtol = tolerances.score_atol, tolerances.score_rtol
    fraction = violations / elements if elements else 0.0
    limit = tolerances.max_score_violation_fraction
    gates = [Gate("violation_fraction", fraction, "<=", "max_score_violation_fraction", limit)]
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({violations} of {elements} scores break |diff| <= {atol:g} + {rtol:g}*|ref|)"
    return CheckResult(
        status,
        reason,
        figures={
            "samples": shape[0],
            "elements": elements,
            "max_abs_diff": stats.max_abs,
            "mean_abs_diff": stats.mean_abs,
            "max_rel_diff": stats.max_rel,
            "violations": violations,
            "violation_fraction": fraction,
        },
        tolerances={
            "score_atol": atol,
            "score_rtol": rtol,
            "max_score_violation_fraction": limit,
        },
        details={"worst_samples": summary.worst.listed()},
        gates=gates,
    )


def _shape_failure(summary: Summary) -> str | None:
    """`shape_mismatch` of the whole rows' shapes (it reads nothing but their shapes)."""
    ref, other = (np.broadcast_to(np.float64(0), s) for s in summary.shapes or ((), ()))
    return shape_mismatch("scores", ref, other)


def _add_rows(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of two shards' outputs together: their rows added."""
    return (a[0] + b[0], *a[1:])
