"""Decision-score parity for classifiers without probabilities (LinearSVC, RidgeClassifier,
Perceptron, SGD with hinge loss, one-vs-one wrappers): their `decision_function`, one
value per row (binary) or one per class, against the converted model's score output."""

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
    worst_samples,
)
from parityspec.checks.batching import aligned_batches, shape_mismatch
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.spec.profiles import CheckTolerances, Fraction, NonNegative, tolerance
from parityspec.stats import DiffStats

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


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref = inputs.reference.outputs.get("scores")
    other = inputs.candidate.outputs.get("scores")
    sides = ((inputs.reference, ref), (inputs.candidate, other))
    missing = [p.backend for p, s in sides if s is None]
    if missing:
        return CheckResult("failed", f"no decision scores from {', '.join(missing)}")
    assert ref is not None and other is not None
    if mismatch := shape_mismatch("scores", ref, other):
        return CheckResult("failed", mismatch)
    if ref.ndim == 2:  # one column per class: the candidate's in the reference's order
        try:
            other = model_classes(inputs, ref.shape[1]).candidate(other)
        except ClassMismatch as error:
            return CheckResult("failed", str(error))
    atol, rtol = tolerances.score_atol, tolerances.score_rtol
    stats, violations = DiffStats(k=inputs.spec.report.worst_samples), 0
    for start, a, b in aligned_batches(ref, other, inputs.spec.data.batch_size):
        diff = stats.update(a, b, first_index=start)
        violations += int((~(diff <= atol + rtol * np.abs(a, dtype=np.float64))).sum())  # NaN
    fraction = violations / ref.size if ref.size else 0.0
    limit = tolerances.max_score_violation_fraction
    gates = [Gate("violation_fraction", fraction, "<=", "max_score_violation_fraction", limit)]
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({violations} of {ref.size} scores break |diff| <= {atol:g} + {rtol:g}*|ref|)"
    return CheckResult(
        status,
        reason,
        figures={
            "samples": len(ref),
            "elements": ref.size,
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
        details={"worst_samples": worst_samples(stats, inputs.data, ref, other)},
        gates=gates,
    )
