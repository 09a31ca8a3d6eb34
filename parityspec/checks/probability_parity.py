"""Probability parity: the largest and the mean |p_ref - p_candidate| over all classes."""

from __future__ import annotations

from typing import Literal

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    judge,
    nonfinite_failure,
    worst_samples,
)
from parityspec.checks.batching import count_samples_over, diff_stats, shape_mismatch
from parityspec.checks.stats import QUANTILE_REL_ERROR
from parityspec.spec.profiles import NonNegative, Tolerances

TYPE = "probability_parity"
TASKS = ("binary", "multiclass")
NEEDS_MODELS = False


class Spec(CheckSpecBase):
    """Passes when max |diff| <= abs_tol and mean |diff| <= mean_tol, with no NaN or Inf."""

    type: Literal["probability_parity"]
    abs_tol: NonNegative | None = None
    mean_tol: NonNegative | None = None


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref = inputs.reference.outputs["probabilities"]
    other = inputs.candidate.outputs["probabilities"]
    if mismatch := shape_mismatch("probabilities", ref, other):
        return CheckResult("failed", mismatch)
    report = inputs.spec.report
    stats = diff_stats(ref, other, inputs.spec.data.batch_size, report.worst_samples)
    abs_tol, mean_tol = tolerances.abs_tol, tolerances.mean_tol
    gates = [
        Gate("max_abs_diff", stats.max_abs, "<=", "abs_tol", abs_tol),
        Gate("mean_abs_diff", stats.mean_abs, "<=", "mean_tol", mean_tol),
    ]
    nonfinite = nonfinite_failure(stats, inputs.reference.backend, inputs.candidate.backend)
    status, reason = judge(gates, extra_failures=[nonfinite])
    return CheckResult(
        status,
        reason,
        figures={
            "samples": len(ref),
            "max_abs_diff": stats.max_abs,
            "mean_abs_diff": stats.mean_abs,
            "p99_abs_diff": stats.quantile(0.99),
            "max_rel_diff": stats.max_rel,
            "nonfinite": stats.nonfinite,
            "samples_over_abs_tol": count_samples_over(ref, other, abs_tol),
        },
        tolerances={"abs_tol": abs_tol, "mean_tol": mean_tol},
        details={
            "would_pass_with": {"abs_tol": stats.max_abs, "mean_tol": stats.mean_abs},
            "p99_note": f"p99 is an upper bound within {QUANTILE_REL_ERROR:.1%}",
            "histogram": stats.histogram(),
            "worst_samples": worst_samples(stats, inputs.data, ref, other),
        },
        gates=gates,
    )
