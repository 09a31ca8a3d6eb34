"""Decision flips: samples on the other side of the binary decision threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
from parityspec.checks.classes import (
    ClassMismatch,
    concluded_classes,
    data_classes,
    merged_classes,
    model_classes,
)
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


@dataclass
class Summary:
    """What the rows of a shard (or all of them) say; two merge exactly (`merge`)."""

    columns: int
    """Probability columns: the positive class is the last."""
    k: int
    samples: int = 0
    flips: int = 0
    near: int = 0
    flips_near: int = 0
    nonfinite: tuple[int, int] = (0, 0)
    flipped: list[dict[str, Any]] = field(default_factory=list)
    """The first `k` flipped rows by id, as the report shows them."""
    seen: np.ndarray | None = None
    """The classes of these rows' ground truth: merged, the classes of all of them."""
    failure: str | None = None
    """Why the rows cannot be compared, the same for every shard (classes)."""

    def merge(self, other: Summary) -> Summary:
        return Summary(
            self.columns,
            self.k,
            self.samples + other.samples,
            self.flips + other.flips,
            self.near + other.near,
            self.flips_near + other.flips_near,
            (self.nonfinite[0] + other.nonfinite[0], self.nonfinite[1] + other.nonfinite[1]),
            sorted(self.flipped + other.flipped, key=lambda f: f["row"])[: self.k],
            merged_classes(self.seen, other.seen),
            self.failure or other.failure,
        )


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    threshold = inputs.spec.model.threshold
    ref_all = inputs.reference.outputs["probabilities"]
    other_all = inputs.candidate.outputs["probabilities"]
    k = inputs.spec.report.worst_samples
    summary = Summary(ref_all.shape[1], k, len(ref_all), seen=data_classes(inputs))
    try:
        # The positive class is the model's last; the candidate's columns follow the reference's.
        classes = model_classes(inputs, ref_all.shape[1])
    except ClassMismatch as error:
        summary.failure = str(error)
        return summary
    other_all = classes.candidate(other_all)
    flips, near, flips_near = 0, 0, 0
    flip_rows: list[tuple[int, float, float]] = []
    nonfinite_ref = nonfinite_other = 0
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
    summary.flips, summary.near, summary.flips_near = flips, near, flips_near
    summary.nonfinite = (nonfinite_ref, nonfinite_other)
    # What the report shows of each, taken while this shard's rows are at hand.
    features = inputs.data.describe_rows([row for row, _, _ in flip_rows])
    summary.flipped = [
        {
            "row": inputs.first_row + row,
            "reference": float(reference),
            "candidate": float(candidate),
            "features": features[row],
        }
        for row, reference, candidate in flip_rows
    ]
    return summary


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    if summary.failure:
        return CheckResult("failed", summary.failure)
    threshold = inputs.spec.model.threshold
    samples, flips = summary.samples, summary.flips
    rate = flips / samples if samples else 0.0
    gates = [Gate("flip_rate", rate, "<=", "max_flip_rate", tolerances.max_flip_rate)]
    nonfinite = nonfinite_failure(inputs, *summary.nonfinite)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({flips} of {samples} decisions flip at threshold {threshold:g})"
    # The data's classes, where they name the columns, are those of every shard's rows.
    classes = concluded_classes(inputs, summary.seen, summary.columns)
    return CheckResult(
        status,
        reason,
        figures={
            "samples": samples,
            "threshold": threshold,
            "flips": flips,
            "flip_rate": rate,
            "near_threshold": summary.near,
            "flips_near_threshold": summary.flips_near,
        },
        tolerances={
            "max_flip_rate": tolerances.max_flip_rate,
            "flip_margin": tolerances.flip_margin,
        },
        details={
            "positive_class": classes.names(summary.columns)[-1],
            "classes_from": classes.source,
            "flipped_rows": summary.flipped,
        },
        gates=gates,
    )
