"""Check type `always_close`: every element of every shared output within `tolerance`."""

from __future__ import annotations

from typing import Literal

import numpy as np

from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.spec.profiles import NonNegative, Tolerances

TYPE = "always_close"
TASKS = ("binary", "multiclass", "regression", "tensor")
NEEDS_MODELS = False


class Spec(CheckSpecBase):
    """Passes when max |a - b| over every output both backends return is <= tolerance."""

    type: Literal["always_close"]
    tolerance: NonNegative = 0.1


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref, other = inputs.reference.outputs, inputs.candidate.outputs
    diffs = [np.abs(ref[n] - other[n]).max(initial=0.0) for n in ref if n in other]
    worst = float(max(diffs, default=0.0))
    gates = [Gate("max_abs_diff", worst, "<=", "tolerance", spec.tolerance)]
    status, reason = judge(gates)
    return CheckResult(
        status,
        reason,
        figures={"max_abs_diff": worst},
        tolerances={"tolerance": spec.tolerance},
        gates=gates,
    )
