"""Probability parity: the largest and the mean |p_ref - p_candidate| over all classes."""

from __future__ import annotations

from typing import Any, Literal

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    judge,
    nonfinite_failure,
    worst_samples,
)
from parityspec.checks.batching import diff_stats_over, shape_mismatch
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance
from parityspec.stats import QUANTILE_REL_ERROR

TYPE = "probability_parity"
TASKS = ("binary", "multiclass")
NEEDS_MODELS = False
P99_NOTE = f"p99 is an upper bound, at most {QUANTILE_REL_ERROR:.2%} above the true p99"


class Tolerances(CheckTolerances):
    abs_tol: NonNegative = tolerance(
        strict=0.01,
        default=0.04,
        lenient=0.08,
        doc="Probabilities: the largest allowed |a - b| of any element.",
    )
    mean_tol: NonNegative = tolerance(
        strict=0.005,
        default=0.01,
        lenient=0.02,
        doc="Probabilities: the largest allowed mean |a - b| over all elements.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Passes when max |diff| <= abs_tol and mean |diff| <= mean_tol, with no NaN or Inf."""

    type: Literal["probability_parity"]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref = inputs.reference.outputs["probabilities"]
    other = inputs.candidate.outputs["probabilities"]
    if mismatch := shape_mismatch("probabilities", ref, other):
        return CheckResult("failed", mismatch)
    try:
        # Column j of each side must be the same class: a candidate may order them otherwise.
        other = model_classes(inputs, ref.shape[1]).candidate(other)
    except ClassMismatch as error:
        return CheckResult("failed", str(error))
    report = inputs.spec.report
    abs_tol, mean_tol = tolerances.abs_tol, tolerances.mean_tol
    stats, over = diff_stats_over(
        ref, other, inputs.spec.data.batch_size, report.worst_samples, abs_tol
    )
    gates = [
        Gate("max_abs_diff", stats.max_abs, "<=", "abs_tol", abs_tol),
        Gate("mean_abs_diff", stats.mean_abs, "<=", "mean_tol", mean_tol),
    ]
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
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
            "samples_over_abs_tol": over,
        },
        tolerances={"abs_tol": abs_tol, "mean_tol": mean_tol},
        details={
            "would_pass_with": {"abs_tol": stats.max_abs, "mean_tol": stats.mean_abs},
            "p99_note": P99_NOTE,
            "histogram": stats.histogram(),
            "worst_samples": worst_samples(stats, inputs.data, ref, other),
        },
        gates=gates,
    )


def artifacts(entry: dict[str, Any]) -> dict[str, Any]:
    """The seed pipeline's `parity_report.json`, made from this check's report entry; none
    when the check has no figures (it errored, was skipped or could not compare)."""
    if not entry["figures"]:
        return {}
    seed = {k: entry["figures"][k] for k in ("samples", "max_abs_diff", "mean_abs_diff")}
    seed.update(
        abs_tol=entry["tolerances"]["abs_tol"],
        mean_tol=entry["tolerances"]["mean_tol"],
        passed=entry["passed"],
    )
    return {"parity_report.json": seed}
