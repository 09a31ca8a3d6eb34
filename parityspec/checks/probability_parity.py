"""Probability parity: the largest and the mean |p_ref - p_candidate| over all classes, and
optional gates on distances between the two distributions of each row (KL and
Jensen-Shannon divergence) and on the log-loss delta against the ground truth."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

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
from parityspec.checks.batching import aligned_batches, diff_stats_over, shape_mismatch
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.errors import InputError
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance
from parityspec.stats import QUANTILE_REL_ERROR, DiffStats, ExactSum, Worst

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
    # Off in strict and default: their abs_tol and mean_tol already bind far below these.
    # KL is off in lenient too: it is infinite wherever the candidate gives a class exactly 0
    # that the reference does not (a dynamic INT8 sigmoid saturates), whatever the gap.
    max_kl_divergence: NonNegative | None = tolerance(
        strict=None,
        default=None,
        lenient=None,
        doc="Probabilities (optional gate): the largest allowed mean KL(reference || "
        "candidate) of a row's class distribution, in nats.",
    )
    max_js_divergence: NonNegative | None = tolerance(
        strict=None,
        default=None,
        lenient=0.0025,
        doc="Probabilities (optional gate): the largest allowed mean Jensen-Shannon "
        "divergence of a row's class distributions, in nats (at most ln 2).",
    )
    max_log_loss_delta: NonNegative | None = tolerance(
        strict=None,
        default=None,
        lenient=None,
        doc="Probabilities (optional gate, needs data.target): how much the candidate's log "
        "loss against the ground truth may exceed the reference's, in nats per row.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Passes when max |diff| <= abs_tol and mean |diff| <= mean_tol, with no NaN or Inf."""

    type: Literal["probability_parity"]


@dataclass
class Summary:
    """What the rows of a shard (or all of them) say; two merge exactly (`merge`)."""

    samples: int
    stats: DiffStats
    over: int
    distances: dict[str, ExactSum]
    worst: WorstRows
    failure: str | None = None
    """Why the rows cannot be compared (shapes, classes): the check fails with it."""

    def merge(self, other: Summary) -> Summary:
        return Summary(
            self.samples + other.samples,
            self.stats.merge(other.stats),
            self.over + other.over,
            {n: s.merge(other.distances[n]) for n, s in self.distances.items()},
            self.worst.merge(other.worst),
            self.failure or other.failure,
        )


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    ref = inputs.reference.outputs["probabilities"]
    other = inputs.candidate.outputs["probabilities"]
    k = inputs.spec.report.worst_samples
    distances = {n: ExactSum() for n in _gated(tolerances)}
    empty = Summary(len(ref), DiffStats(k=k), 0, distances, WorstRows(Worst(k)))
    if mismatch := shape_mismatch("probabilities", ref, other):
        return replace(empty, failure=mismatch)
    try:
        # Column j of each side must be the same class: a candidate may order them otherwise.
        other = model_classes(inputs, ref.shape[1]).candidate(other)
    except ClassMismatch as error:
        return replace(empty, failure=str(error))
    batch_size, first = inputs.spec.data.batch_size, inputs.first_row
    stats, over = diff_stats_over(ref, other, batch_size, k, tolerances.abs_tol, first)
    _add_distances(distances, inputs, ref, other)
    worst = WorstRows.of(stats.worst, inputs.data, ref, other, first)
    return Summary(len(ref), stats, over, distances, worst)


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    if summary.failure:
        return CheckResult("failed", summary.failure)
    stats = summary.stats
    abs_tol, mean_tol = tolerances.abs_tol, tolerances.mean_tol
    gates = [
        Gate("max_abs_diff", stats.max_abs, "<=", "abs_tol", abs_tol),
        Gate("mean_abs_diff", stats.mean_abs, "<=", "mean_tol", mean_tol),
    ]
    samples = max(summary.samples, 1)
    distances = {n: total.divided(samples) for n, total in summary.distances.items()}
    distance_gates = [
        Gate(figure, distances[figure], "<=", limit, value)
        for limit, figure in DISTANCE_GATES.items()
        if (value := getattr(tolerances, limit)) is not None
    ]
    gates += distance_gates
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    return CheckResult(
        status,
        reason,
        figures={
            "samples": summary.samples,
            "max_abs_diff": stats.max_abs,
            "mean_abs_diff": stats.mean_abs,
            "p99_abs_diff": stats.quantile(0.99),
            "max_rel_diff": stats.max_rel,
            "nonfinite": stats.nonfinite,
            "samples_over_abs_tol": summary.over,
            **distances,
        },
        tolerances={
            "abs_tol": abs_tol,
            "mean_tol": mean_tol,
            **{g.limit: g.limit_value for g in distance_gates},
        },
        details={
            "would_pass_with": {"abs_tol": stats.max_abs, "mean_tol": stats.mean_abs},
            "p99_note": P99_NOTE,
            "histogram": stats.histogram(),
            "worst_samples": summary.worst.listed(),
        },
        gates=gates,
    )


# Each optional gate: its tolerance, the figure it bounds.
DISTANCE_GATES = {
    "max_kl_divergence": "kl_divergence",
    "max_js_divergence": "js_divergence",
    "max_log_loss_delta": "log_loss_delta",
}


def _gated(tolerances: Tolerances) -> list[str]:
    """The figures of the distance gates the profile sets: only those are computed (one
    more pass over the rows), so reports without these gates keep their figures."""
    return [f for t, f in DISTANCE_GATES.items() if getattr(tolerances, t) is not None]


def _add_distances(sums: dict[str, ExactSum], inputs: CheckInputs, ref: Any, other: Any) -> None:
    """Adds each row's KL and JS divergence, and log-loss delta, to the sums of the gated
    ones."""
    if not sums:
        return
    codes = _truth_codes(inputs, ref.shape[1]) if "log_loss_delta" in sums else None
    batch_size = inputs.spec.data.batch_size
    with np.errstate(all="ignore"):  # NaN, Inf and zeros end in the sums, failing the gates
        for start, a, b in aligned_batches(ref, other, batch_size):
            p, q = _normalised(a), _normalised(b)
            middle = (p + q) / 2
            if "kl_divergence" in sums:
                sums["kl_divergence"].add(_kl(p, q))
            if "js_divergence" in sums:
                sums["js_divergence"].add((_kl(p, middle) + _kl(q, middle)) / 2)
            if codes is not None:
                rows = np.arange(len(p))
                truth = codes[start : start + len(p)]
                sums["log_loss_delta"].add(np.log(p[rows, truth]) - np.log(q[rows, truth]))


def _normalised(values: Any) -> np.ndarray:
    """Rows scaled to sum to 1: float32 runtimes leave sums 1e-7 off, which KL would read
    as divergence (negative, even)."""
    rows = np.asarray(values, dtype=np.float64)
    return rows / rows.sum(axis=1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) of each row; a class p gives no weight adds nothing, one only q omits
    makes it infinite."""
    return np.where(p > 0, p * (np.log(p) - np.log(q)), np.where(p == 0, 0.0, np.nan)).sum(axis=1)


def _truth_codes(inputs: CheckInputs, n_columns: int) -> np.ndarray:
    """The ground truth as probability columns: the log loss is read at each row's class."""
    if inputs.data.target is None:
        raise InputError(
            "max_log_loss_delta needs ground truth", hint="set data.target, or drop the gate"
        )
    classes = model_classes(inputs, n_columns)
    if classes.labels is None:
        raise InputError(
            f"max_log_loss_delta cannot tell which class each of the {n_columns} probability "
            "columns stands for: neither model says its classes",
            hint="set model.classes",
        )
    return classes.codes(np.asarray(inputs.data.target))


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
