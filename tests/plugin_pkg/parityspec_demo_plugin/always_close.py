"""Check type `always_close`: every element of every shared output within `tolerance`, a
tolerance field this plugin declares, with its own value in each built-in profile."""

from __future__ import annotations

from typing import Literal

import numpy as np

from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.spec import profiles
from parityspec.spec.profiles import CheckTolerances, NonNegative

TYPE = "always_close"
TASKS = ("binary", "multiclass", "regression", "tensor")
NEEDS_MODELS = False


class Tolerances(CheckTolerances):
    tolerance: NonNegative = profiles.tolerance(
        strict=0.01,
        default=0.1,
        lenient=0.2,
        doc="always_close: the largest allowed |a - b| of any element of any output.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Passes when max |a - b| over every output both backends return is <= tolerance."""

    type: Literal["always_close"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref, other = inputs.reference.outputs, inputs.candidate.outputs
    diffs = [np.abs(ref[n] - other[n]).max(initial=0.0) for n in ref if n in other]
    worst = float(max(diffs, default=0.0))
    gates = [Gate("max_abs_diff", worst, "<=", "tolerance", tolerances.tolerance)]
    status, reason = judge(gates)
    return CheckResult(
        status,
        reason,
        figures={"max_abs_diff": worst},
        tolerances=tolerances.model_dump(),
        gates=gates,
    )
