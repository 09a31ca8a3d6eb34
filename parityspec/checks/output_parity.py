"""Output parity for regression and tensor outputs: an allclose with an allowed fraction.

An element passes when |ref - candidate| <= atol + rtol * |ref| and both are finite. The
check passes when, for every output, the fraction of failing elements is at most
`max_violation_fraction` and no element is NaN or Inf.
"""

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
    verdict,
    worst_samples,
)
from parityspec.checks.batching import aligned_batches, shape_mismatch
from parityspec.spec.profiles import (
    CheckTolerances,
    Fraction,
    NonNegative,
    ToleranceOverrides,
    tolerance,
)
from parityspec.stats import DiffStats, Worst

TYPE = "output_parity"
TASKS = ("regression", "tensor")
NEEDS_MODELS = False


class Tolerances(CheckTolerances):
    atol: NonNegative = tolerance(
        strict=1e-6,
        default=1e-5,
        lenient=1e-3,
        doc="Outputs (regression, tensors): an element passes when |a - b| <= atol + rtol * |a|.",
    )
    rtol: NonNegative = tolerance(
        strict=1e-5,
        default=1e-4,
        lenient=1e-2,
        doc="Outputs (regression, tensors): the relative part of the element rule, scaled by |a|.",
    )
    max_violation_fraction: Fraction = tolerance(
        strict=0.0,
        default=0.0,
        lenient=1e-4,
        doc="Outputs: the fraction of elements allowed to break the element rule.",
    )


class OutputTolerance(ToleranceOverrides, tolerances=Tolerances):
    """One output's tolerances, over the check's own."""


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Element-wise allclose of every output both backends return."""

    type: Literal["output_parity"]
    per_output: dict[str, OutputTolerance] = {}
    """Tolerances for one output by name, over the check's own."""


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    ref_outputs, other_outputs = inputs.reference.outputs, inputs.candidate.outputs
    names = [n for n in ref_outputs if n in other_outputs]
    if not names:
        return CheckResult("failed", "the two backends return no output with the same name")
    # With several outputs, each gate names its output so reports can say which one broke.
    prefixed = len(names) > 1
    results = {name: _compare(spec, tolerances, inputs, name, prefixed) for name in names}
    failures = [f"{name}: {r['reason']}" for name, r in results.items() if not r["passed"]]
    passed_reason = "; ".join(f"{name}: {r['reason']}" for name, r in results.items())
    status, reason = verdict(failures, passed_reason)
    if len(names) == 1:
        only = results[names[0]]
        return CheckResult(
            status, reason, only["figures"], only["tolerances"], only["details"], only["gates"]
        )
    gates = [g for r in results.values() for g in r["gates"]]
    per_output = {
        name: {k: r[k] for k in ("passed", "reason", "figures", "tolerances", "details")}
        for name, r in results.items()
    }
    return CheckResult(status, reason, details={"outputs": per_output}, gates=gates)


def _compare(
    spec: Spec, tolerances: Tolerances, inputs: CheckInputs, name: str, prefixed: bool
) -> dict:
    ref = inputs.reference.outputs[name]
    other = inputs.candidate.outputs[name]
    tol = _tolerances_for(spec, tolerances, name)
    if mismatch := shape_mismatch(name, ref, other):
        return {
            "passed": False,
            "reason": mismatch,
            "figures": {},
            "tolerances": tol,
            "gates": [],
            "details": {},
        }
    k = inputs.spec.report.worst_samples
    stats, worst_elements, violations = DiffStats(k=k), Worst(k), 0
    per_sample = int(np.prod(ref.shape[1:], dtype=np.int64))
    for start, a, b in aligned_batches(ref, other, inputs.spec.data.batch_size):
        diff = stats.update(a, b, first_index=start)  # float64, with NaN and Inf
        bad = ~(diff <= tol["atol"] + tol["rtol"] * np.abs(a, dtype=np.float64))  # NaN: bad
        violations += int(bad.sum())
        flat = np.where(np.isfinite(diff), diff, np.inf).ravel()
        worst_elements.update(flat, np.arange(flat.size) + start * per_sample)
    elements = ref.size
    fraction = violations / elements if elements else 0.0
    figure = f"{name}.violation_fraction" if prefixed else "violation_fraction"
    gate = Gate(figure, fraction, "<=", "max_violation_fraction", tol["max_violation_fraction"])
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
    status, reason = judge([gate], extra_failures=[nonfinite])
    if status == "failed":
        reason += (
            f" ({violations} of {elements} elements break |diff| <= "
            f"{tol['atol']:g} + {tol['rtol']:g}*|ref|)"
        )
    return {
        "passed": status == "passed",
        "reason": reason,
        "figures": {
            "samples": len(ref),
            "elements": elements,
            "max_abs_diff": stats.max_abs,
            "mean_abs_diff": stats.mean_abs,
            "median_abs_diff": stats.quantile(0.5),
            "p99_abs_diff": stats.quantile(0.99),
            "max_rel_diff": stats.max_rel,
            "median_rel_diff": stats.rel_quantile(0.5),
            "p99_rel_diff": stats.rel_quantile(0.99),
            "violations": violations,
            "violation_fraction": fraction,
            "nonfinite": stats.nonfinite,
        },
        "tolerances": tol,
        "gates": [gate],
        "details": {
            "histogram": stats.histogram(),
            "worst_positions": _positions(worst_elements, ref, other),
            "worst_samples": worst_samples(stats, inputs.data, ref, other),
        },
    }


def _tolerances_for(spec: Spec, tolerances: Tolerances, name: str) -> dict[str, float]:
    tol = tolerances.model_dump()
    if name in spec.per_output:
        tol.update(spec.per_output[name].tolerance_overrides())
    return tol


def _positions(worst: Worst, ref: np.ndarray, other: np.ndarray) -> list[dict]:
    rows = []
    for value, flat_index in zip(worst.values, worst.indices, strict=True):
        position = np.unravel_index(int(flat_index), ref.shape)
        rows.append(
            {
                "position": [int(p) for p in position],
                "abs_diff": float(value),
                "reference": float(ref[position]),
                "candidate": float(other[position]),
            }
        )
    return rows
