"""Top-k agreement: both backends rank the same k classes highest, row by row.

Label agreement asks only for the same arg-max; a converted classifier can keep every
arg-max and still reshuffle the runners-up that a search or a recommendation shows. A row
agrees when the reference's k most probable classes are the candidate's k most probable,
in any order; a row with a NaN or Inf has no ranking and never agrees.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

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

TYPE = "top_k_agreement"
TASKS = ("multiclass",)
NEEDS_MODELS = False


class Tolerances(CheckTolerances):
    min_top_k_agreement: Fraction = tolerance(
        strict=1.0,
        default=0.999,
        lenient=0.99,
        doc="Top-k: the smallest allowed fraction of samples whose k most probable classes "
        "are the same on both backends.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """The k most probable classes of each sample, compared as sets."""

    type: Literal["top_k_agreement"]
    k: Annotated[int, Field(ge=1, le=1000)] = 3
    """How many of the most probable classes must agree; fewer than the model's classes."""


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref = inputs.reference.outputs["probabilities"]
    other = inputs.candidate.outputs["probabilities"]
    if ref.shape != other.shape:
        return CheckResult("failed", f"probability shapes differ: {ref.shape} vs {other.shape}")
    n_classes = ref.shape[1]
    if spec.k >= n_classes:
        return CheckResult(
            "failed", f"k={spec.k} is not below the model's {n_classes} classes: nothing to rank"
        )
    try:
        classes = model_classes(inputs, n_classes)
    except ClassMismatch as error:
        return CheckResult("failed", str(error))
    other = classes.candidate(other)
    names = classes.names(n_classes)
    samples = agree = nonfinite_ref = nonfinite_other = 0
    disagreeing: list[dict[str, Any]] = []
    k, shown = spec.k, inputs.spec.report.worst_samples
    for start, a, b in aligned_batches(ref, other, inputs.spec.data.batch_size):
        finite_a = reduce_rows(np.logical_and, np.isfinite(a))
        finite_b = reduce_rows(np.logical_and, np.isfinite(b))
        top_a, top_b = _top_k(a, k), _top_k(b, k)
        same = (top_a == top_b).all(axis=1) & finite_a & finite_b
        samples, agree = samples + len(a), agree + int(same.sum())
        nonfinite_ref += int((~finite_a).sum())
        nonfinite_other += int((~finite_b).sum())
        for i in np.flatnonzero(~same)[: shown - len(disagreeing)]:
            disagreeing.append(
                {
                    "row": start + int(i),
                    "reference": [names[c] for c in top_a[i]],
                    "candidate": [names[c] for c in top_b[i]],
                }
            )
    agreement = agree / samples if samples else 1.0
    minimum = tolerances.min_top_k_agreement
    gates = [Gate("top_k_agreement", agreement, ">=", "min_top_k_agreement", minimum)]
    nonfinite = nonfinite_failure(inputs, nonfinite_ref, nonfinite_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    reason += f" ({agree} of {samples} samples rank the same top {k})"
    return CheckResult(
        status,
        reason,
        figures={
            "samples": samples,
            "k": k,
            "agreement": agreement,
            "disagreements": samples - agree,
        },
        tolerances=tolerances.model_dump(),
        details={
            "classes": names,
            "classes_from": classes.source,
            "disagreeing_rows": disagreeing,
        },
        gates=gates,
    )


def _top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Each row's k most probable classes as a sorted set of column indices (a stable sort:
    equal probabilities rank by column, the same on both sides)."""
    clean = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=-np.inf)
    return np.sort(np.argsort(-clean, axis=1, kind="stable")[:, :k], axis=1)
