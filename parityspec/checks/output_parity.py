"""Output parity for regression and tensor outputs: an allclose with an allowed fraction.

An element passes when |ref - candidate| <= atol + rtol * |ref| and both are finite. The
check passes when, for every output, the fraction of failing elements is at most
`max_violation_fraction` and no element is NaN or Inf. Optional gates bound distances over
each output's elements (cosine similarity, relative L2, PSNR, SNR), as Polygraphy does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    WorstRows,
    finite_or_text,
    judge,
    nonfinite_failure,
    verdict,
)
from parityspec.checks.batching import aligned_batches, shape_mismatch
from parityspec.spec.profiles import (
    CheckTolerances,
    Fraction,
    NonNegative,
    ToleranceOverrides,
    tolerance,
)
from parityspec.stats import DiffStats, ExactSum, Worst

Decibels = Annotated[float, Field(allow_inf_nan=False)]
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
    # Polygraphy's defaults, in lenient only: strict and default bound every element far
    # tighter. Relative L2 is off everywhere: SNR >= 20 dB is relative L2 <= 0.1.
    min_cosine_similarity: Annotated[float, Field(ge=-1.0, le=1.0)] | None = tolerance(
        strict=None,
        default=None,
        lenient=0.997,
        doc="Outputs (optional gate): the smallest allowed cosine similarity of reference "
        "and candidate, each output taken as one vector.",
    )
    max_relative_l2: NonNegative | None = tolerance(
        strict=None,
        default=None,
        lenient=None,
        doc="Outputs (optional gate): the largest allowed ||a - b|| / ||a|| over an output's "
        "elements.",
    )
    min_psnr_db: Decibels | None = tolerance(
        strict=None,
        default=None,
        lenient=30.0,
        doc="Outputs (optional gate): the smallest allowed peak signal-to-noise ratio, "
        "10 log10(max a^2 / mean (a - b)^2), in dB.",
    )
    min_snr_db: Decibels | None = tolerance(
        strict=None,
        default=None,
        lenient=20.0,
        doc="Outputs (optional gate): the smallest allowed signal-to-noise ratio, "
        "10 log10(sum a^2 / sum (a - b)^2), in dB.",
    )


class OutputTolerance(ToleranceOverrides, tolerances=Tolerances):
    """One output's tolerances, over the check's own."""


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Element-wise allclose of every output both backends return."""

    type: Literal["output_parity"]
    per_output: dict[str, OutputTolerance] = {}
    """Tolerances for one output by name, over the check's own."""


@dataclass
class OutputSummary:
    """What some rows say of one output; two merge exactly."""

    samples: int
    shape: tuple[int, ...]
    """One sample's shape."""
    stats: DiffStats
    violations: int
    worst_elements: Worst
    """Elements by their flat index over the whole output (row id x elements per row)."""
    positions: dict[int, dict[str, float]]
    """What the report shows of each of the worst elements: reference and candidate."""
    energy: _Energy | None
    worst: WorstRows
    failure: str | None = None

    def merge(self, other: OutputSummary) -> OutputSummary:
        worst_elements = self.worst_elements.merge(other.worst_elements)
        kept = {int(i) for i in worst_elements.indices}
        positions = {i: p for i, p in (self.positions | other.positions).items() if i in kept}
        energy = self.energy.merge(other.energy) if self.energy and other.energy else None
        return OutputSummary(
            self.samples + other.samples,
            self.shape,
            self.stats.merge(other.stats),
            self.violations + other.violations,
            worst_elements,
            positions,
            energy,
            self.worst.merge(other.worst),
            self.failure or other.failure,
        )


@dataclass
class Summary:
    """Per output both backends return; empty when they share none."""

    outputs: dict[str, OutputSummary]

    def merge(self, other: Summary) -> Summary:
        return Summary({n: o.merge(other.outputs[n]) for n, o in self.outputs.items()})


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    ref_outputs, other_outputs = inputs.reference.outputs, inputs.candidate.outputs
    names = [n for n in ref_outputs if n in other_outputs]
    return Summary({name: _summarize(spec, tolerances, inputs, name) for name in names})


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    names = list(summary.outputs)
    if not names:
        return CheckResult("failed", "the two backends return no output with the same name")
    # With several outputs, each gate names its output so reports can say which one broke.
    prefixed = len(names) > 1
    results = {
        name: _conclude(spec, tolerances, inputs, name, summary.outputs[name], prefixed)
        for name in names
    }
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


def _summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs, name: str) -> OutputSummary:
    ref = inputs.reference.outputs[name]
    other = inputs.candidate.outputs[name]
    tol = _tolerances_for(spec, tolerances, name)
    k = inputs.spec.report.worst_samples
    stats, worst_elements, violations = DiffStats(k=k), Worst(k), 0
    energy = _Energy() if any(tol[t] is not None for t in DISTANCE_GATES) else None
    summary = OutputSummary(
        len(ref), tuple(ref.shape[1:]), stats, 0, worst_elements, {}, energy, WorstRows(Worst(k))
    )
    if mismatch := shape_mismatch(name, ref, other):
        summary.failure = mismatch
        return summary
    first = inputs.first_row
    per_sample = int(np.prod(ref.shape[1:], dtype=np.int64))
    for start, a, b in aligned_batches(ref, other, inputs.spec.data.batch_size):
        diff = stats.update(a, b, first_index=first + start)  # float64, with NaN and Inf
        bad = ~(diff <= tol["atol"] + tol["rtol"] * np.abs(a, dtype=np.float64))  # NaN: bad
        violations += int(bad.sum())
        flat = np.where(np.isfinite(diff), diff, np.inf).ravel()
        worst_elements.update(flat, np.arange(flat.size) + (first + start) * per_sample)
        if energy is not None:
            energy.update(a, b)
    summary.violations = violations
    summary.positions = {
        int(i): {
            "reference": _element(ref, int(i) - first * per_sample, per_sample),
            "candidate": _element(other, int(i) - first * per_sample, per_sample),
        }
        for i in worst_elements.indices
    }
    summary.worst = WorstRows.of(stats.worst, inputs.data, ref, other, first)
    return summary


def _conclude(
    spec: Spec,
    tolerances: Tolerances,
    inputs: CheckInputs,
    name: str,
    summary: OutputSummary,
    prefixed: bool,
) -> dict:
    tol = _tolerances_for(spec, tolerances, name)
    if summary.failure:
        return {
            "passed": False,
            "reason": summary.failure,
            "figures": {},
            "tolerances": tol,
            "gates": [],
            "details": {},
        }
    stats, violations = summary.stats, summary.violations
    elements = summary.samples * int(np.prod(summary.shape, dtype=np.int64))
    fraction = violations / elements if elements else 0.0
    figure = f"{name}.violation_fraction" if prefixed else "violation_fraction"
    gate = Gate(figure, fraction, "<=", "max_violation_fraction", tol["max_violation_fraction"])
    gated = {t: DISTANCE_GATES[t] for t in DISTANCE_GATES if tol[t] is not None}
    measured = summary.energy.figures(elements) if summary.energy is not None else {}
    distances = {f: measured[f] for f, _ in gated.values()}
    gates = [gate] + [
        Gate(f"{name}.{f}" if prefixed else f, distances[f], op, limit, tol[limit])
        for limit, (f, op) in gated.items()
    ]
    nonfinite = nonfinite_failure(inputs, stats.nonfinite_rows_ref, stats.nonfinite_rows_other)
    status, reason = judge(gates, extra_failures=[nonfinite])
    if status == "failed":
        reason += (
            f" ({violations} of {elements} elements break |diff| <= "
            f"{tol['atol']:g} + {tol['rtol']:g}*|ref|)"
        )
    return {
        "passed": status == "passed",
        "reason": reason,
        "figures": {
            "samples": summary.samples,
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
            **{f: finite_or_text(v) for f, v in distances.items()},
        },
        "tolerances": {t: v for t, v in tol.items() if v is not None},
        "gates": gates,
        "details": {
            "histogram": stats.histogram(),
            "worst_positions": _positions(summary),
            "worst_samples": summary.worst.listed(),
        },
    }


# Each optional gate: its tolerance, the figure it bounds and how.
DISTANCE_GATES: dict[str, tuple[str, Literal["<=", ">="]]] = {
    "min_cosine_similarity": ("cosine_similarity", ">="),
    "max_relative_l2": ("relative_l2", "<="),
    "min_psnr_db": ("psnr_db", ">="),
    "min_snr_db": ("snr_db", ">="),
}


class _Energy:
    """Sums over an output's elements, exact (so the same bits for any split of the rows),
    from which the distances follow."""

    def __init__(self) -> None:
        self.ref_sq, self.cand_sq = ExactSum(), ExactSum()
        self.dot, self.diff_sq = ExactSum(), ExactSum()
        self.peak = 0.0

    def update(self, ref: np.ndarray, cand: np.ndarray) -> None:
        a = np.asarray(ref, dtype=np.float64).ravel()
        b = np.asarray(cand, dtype=np.float64).ravel()
        with np.errstate(over="ignore", invalid="ignore"):  # Inf and NaN end in the sums
            d = a - b
            self.ref_sq.add(a * a)
            self.cand_sq.add(b * b)
            self.dot.add(a * b)
            self.diff_sq.add(d * d)
        self.peak = float(np.max(np.abs(a), initial=self.peak))  # NaN propagates

    def merge(self, other: _Energy) -> _Energy:
        merged = _Energy()
        merged.ref_sq, merged.cand_sq = (
            self.ref_sq.merge(other.ref_sq),
            self.cand_sq.merge(other.cand_sq),
        )
        merged.dot, merged.diff_sq = self.dot.merge(other.dot), self.diff_sq.merge(other.diff_sq)
        merged.peak = float(np.max([self.peak, other.peak]))  # NaN propagates
        return merged

    def figures(self, elements: int) -> dict[str, float]:
        """Identical outputs: cosine 1, relative L2 0, PSNR and SNR infinite. NaN or Inf in
        either output makes every figure NaN, which no gate passes."""
        ref_sq, cand_sq = self.ref_sq.value, self.cand_sq.value
        dot, diff_sq = self.dot.value, self.diff_sq.value
        if not all(math.isfinite(v) for v in (ref_sq, cand_sq, dot, diff_sq, self.peak)):
            return dict.fromkeys(
                ("cosine_similarity", "relative_l2", "psnr_db", "snr_db"), math.nan
            )
        norms = math.sqrt(ref_sq) * math.sqrt(cand_sq)
        # A zero output is parallel only to another zero output.
        zero_cosine = 1.0 if ref_sq == cand_sq == 0 else 0.0
        noise, signal = math.sqrt(diff_sq), math.sqrt(ref_sq)
        return {
            "cosine_similarity": min(dot / norms, 1.0) if norms > 0 else zero_cosine,
            "relative_l2": 0.0 if noise == 0 else noise / signal if signal > 0 else math.inf,
            "psnr_db": _decibels(self.peak**2, self.diff_sq.divided(elements) if elements else 0.0),
            "snr_db": _decibels(ref_sq, diff_sq),
        }


def _decibels(signal: float, noise: float) -> float:
    """10 log10(signal / noise): infinite without noise, minus infinity without signal."""
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def _tolerances_for(spec: Spec, tolerances: Tolerances, name: str) -> dict[str, float]:
    tol = tolerances.model_dump()
    if name in spec.per_output:
        tol.update(spec.per_output[name].tolerance_overrides())
    return tol


def _element(values: np.ndarray, flat_index: int, per_sample: int) -> float:
    """One element by its flat index, reading only its row (outputs may be on disk)."""
    row, offset = divmod(flat_index, per_sample)
    return float(np.asarray(values[row]).reshape(-1)[offset])


def _positions(summary: OutputSummary) -> list[dict]:
    worst = summary.worst_elements
    rows = []
    for value, flat_index in zip(worst.values, worst.indices, strict=True):
        position = np.unravel_index(int(flat_index), (summary.samples, *summary.shape))
        rows.append(
            {
                "position": [int(p) for p in position],
                "abs_diff": float(value),
                **summary.positions[int(flat_index)],
            }
        )
    return rows
