"""Decision flips: samples on the other side of the binary decision threshold."""

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
from parityspec.spec.profiles import CheckTolerances, Fraction, NonNegative, tolerance
from parityspec.stats import reduce_rows

TYPE = "threshold_flips"
TASKS = ("binary",)
NEEDS_MODELS = False


class Tolerances(CheckTolerances):
    max_flip_rate: Fraction = tolerance(
        strict=0.0,
        default=0.001,
        lenient=0.01,
        doc="Decision threshold: the largest allowed fraction of samples whose decision flips.",
    )
    flip_margin: NonNegative = tolerance(
        strict=0.01,
        default=0.01,
        lenient=0.02,
        doc="Decision threshold: samples within this distance of the threshold are counted apart.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """A sample flips when p >= threshold on one backend and not on the other."""

    type: Literal["threshold_flips"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    threshold = inputs.spec.model.threshold
    ref_all = inputs.reference.outputs["probabilities"]
    other_all = inputs.candidate.outputs["probabilities"]
    try:
        # The positive class is the model's last; the candidate's columns follow the reference's.
        classes = model_classes(inputs, ref_all.shape[1])
    except ClassMismatch as error:
        return CheckResult("failed", str(error))
    other_all = classes.candidate(other_all)
    samples, flips, near, flips_near = len(ref_all), 0, 0, 0
    flip_rows: list[tuple[int, float, float]] = []
    nonfinite_ref = nonfinite_other = 0
    k = inputs.spec.report.worst_samples
    for start, a, b in aligned_batches(ref_all, other_all, inputs.spec.data.batch_size):
        ref, other = a[:, -1], b[:, -1]
        # A row with NaN or Inf in any column has no decision: it always flips.
        finite_ref = reduce_rows(np.logical_and, np.isfinite(a))
        finite_other = reduce_rows(np.logical_and, np.isfinite(b))
        nonfinite_ref += int((~finite_ref).sum())
        nonfinite_other += int((~finite_other).sum())
        flipped = ((ref >= threshold) != (other >= threshold)) | ~(finite_ref & finite_other)
        close = np.abs(ref - threshold) <= tolerances.flip_margin
        flips += int(flipped.sum())
        near += int(close.sum())
        flips_near += int((flipped & close).sum())
        shown = np.flatnonzero(flipped)[: k - len(flip_rows)]
        flip_rows += [(start + int(i), ref[i], other[i]) for i in shown]
    rate = flips / samples if samples else 0.0
    gates = [Gate("flip_rate", rate, "<=", "max_flip_rate", tolerances.max_flip_rate)]
    nonfinite = nonfinite_failure(inputs, nonfinite_ref, nonfinite_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({flips} of {samples} decisions flip at threshold {threshold:g})"
    features = inputs.data.describe_rows([row for row, _, _ in flip_rows])
    return CheckResult(
        status,
        reason,
        figures={
            "samples": samples,
            "threshold": threshold,
            "flips": flips,
            "flip_rate": rate,
            "near_threshold": near,
            "flips_near_threshold": flips_near,
        },
        tolerances={
            "max_flip_rate": tolerances.max_flip_rate,
            "flip_margin": tolerances.flip_margin,
        },
        details={
            "positive_class": classes.names(ref_all.shape[1])[-1],
            "classes_from": classes.source,
            "flipped_rows": [
                {
                    "row": row,
                    "reference": float(reference),
                    "candidate": float(candidate),
                    "features": features[row],
                }
                for row, reference, candidate in flip_rows
            ],
        },
        gates=gates,
    )
