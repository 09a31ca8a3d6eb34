"""Decision flips: samples on the other side of the binary decision threshold."""

from __future__ import annotations

from typing import Literal

import numpy as np

from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.spec.profiles import Fraction, NonNegative, Tolerances

TYPE = "threshold_flips"
TASKS = ("binary",)
NEEDS_MODELS = False


class Spec(CheckSpecBase):
    """A sample flips when p >= threshold on one backend and not on the other."""

    type: Literal["threshold_flips"]
    max_flip_rate: Fraction | None = None
    flip_margin: NonNegative | None = None


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    threshold = inputs.spec.model.threshold
    ref = inputs.reference.outputs["probabilities"][:, -1]
    other = inputs.candidate.outputs["probabilities"][:, -1]
    # NaN compares False on both sides of the threshold: a non-finite sample always flips.
    finite = np.isfinite(ref) & np.isfinite(other)
    flipped = ((ref >= threshold) != (other >= threshold)) | ~finite
    near = np.abs(ref - threshold) <= tolerances.flip_margin
    samples = len(ref)
    flips = int(flipped.sum())
    rate = flips / samples if samples else 0.0
    gates = [Gate("flip_rate", rate, "<=", "max_flip_rate", tolerances.max_flip_rate)]
    status, reason = judge(gates)
    reason += f" ({flips} of {samples} decisions flip at threshold {threshold:g})"
    flip_rows = np.flatnonzero(flipped)[: inputs.spec.report.worst_samples]
    return CheckResult(
        status,
        reason,
        figures={
            "samples": samples,
            "threshold": threshold,
            "flips": flips,
            "flip_rate": rate,
            "near_threshold": int(near.sum()),
            "flips_near_threshold": int((flipped & near).sum()),
        },
        tolerances={
            "max_flip_rate": tolerances.max_flip_rate,
            "flip_margin": tolerances.flip_margin,
        },
        details={
            "flipped_rows": [
                {
                    "row": int(i),
                    "reference": float(ref[i]),
                    "candidate": float(other[i]),
                    "features": inputs.data.describe_row(int(i)),
                }
                for i in flip_rows
            ]
        },
        gates=gates,
    )
