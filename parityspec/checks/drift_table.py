"""Shared by the per-layer, per-tensor and per-step checks: rows to report entries, verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from parityspec.checks.base import CheckResult, Gate, judge
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance

if TYPE_CHECKING:
    from parityspec.drift.sklearn_steps import StepRow, StepTable
    from parityspec.drift.torch_layers import LayerRow, LayerTable

MATCHED = ("ok", "over", "nonfinite")


class DriftTolerances(CheckTolerances):
    """One declaration for the three drift checks: they read `layer_tol` alike."""

    layer_tol: NonNegative = tolerance(
        strict=1e-5,
        default=1e-4,
        lenient=1e-2,
        doc="Per-layer / per-step checks: the largest allowed max |a - b| of one layer's output.",
    )


class LayerDriftTolerances(DriftTolerances):
    """The per-layer and per-tensor checks also scale each row's allowance with its layer."""

    # fp32 rounding grows with the values: resnet50's clean export is 1.1e-6 relative in
    # every layer while its values reach ~85, over an absolute 1e-4 from layer3 on.
    layer_rtol: NonNegative = tolerance(
        strict=1e-6,
        default=1e-5,
        lenient=1e-3,
        doc=(
            "Per-layer / per-tensor checks: a layer is over when max |a - b| exceeds"
            " layer_tol + layer_rtol * max |a| of that layer's output (its scale)."
        ),
    )


def drift_result(
    table: LayerTable | StepTable,
    kind: str,
    tolerance: float,
    extra_gates: Sequence[Gate] = (),
    outputs_failure: str | None = None,
    rtol: float | None = None,
) -> CheckResult:
    """`table`: rows with name/status/stats/reason, and `origin`;
    `outputs_failure`: what is wrong with the backends' final outputs (NaN or Inf);
    `rtol`: `layer_rtol`, for tables whose rows carry their allowance (`allowed`): the gate is
    then each row's max |diff| against its own allowance, not one absolute figure."""
    rows = [_row_entry(r) for r in table.rows]
    matched = [r.stats for r in table.rows if r.status in MATCHED and r.stats is not None]
    worst = max((stats.max_abs for stats in matched), default=0.0)
    if rtol is None:
        gate = Gate(f"max_{kind}_abs_diff", worst, "<=", "layer_tol", tolerance)
    else:
        ratios = [r["max_abs_diff"] / r["allowed"] for r in rows if r["allowed"]]
        ratios += [float("inf") for r in rows if r["allowed"] == 0 and r["max_abs_diff"]]
        gate = Gate(
            f"max_{kind}_diff_to_allowed",
            max(ratios, default=0.0),
            "<=",
            "1 (allowed: layer_tol + layer_rtol * max |ref|)",
            1.0,
        )
    gates = [gate, *extra_gates]
    nonfinite = [r.name for r in table.rows if r.status == "nonfinite"]
    status, reason = judge(
        gates,
        extra_failures=[
            None if matched else f"no {kind} could be matched between the two backends",
            outputs_failure,
            f"non-finite values in {', '.join(nonfinite)}" if nonfinite else None,
        ],
    )
    rule = getattr(table, "origin_rule", None)  # per-layer tables: how the origin was chosen
    rules = {
        "own error": " (its own error)",
        "not isolated": " (its error: its own could not be isolated)",
        "first over": " (first over: no own error is)",
    }
    if table.origin:
        how = rules.get(rule or "", "")
        reason = f"drift origin: {kind} {table.origin!r}{how}; {reason}"
    unmatched = [r for r in rows if r["status"] == "unmatched"]
    return CheckResult(
        status,
        reason,
        figures={
            f"{kind}s": len(rows),
            f"{kind}s_matched": len(matched),
            f"{kind}s_over": sum(r["status"] in ("over", "nonfinite") for r in rows),
            f"{kind}s_unmatched": len(unmatched),
        },
        tolerances={"layer_tol": tolerance}
        if rtol is None
        else {"layer_tol": tolerance, "layer_rtol": rtol},
        details={
            "origin": table.origin,
            **({"origin_rule": rule} if rule else {}),
            **(
                {"own_reason": own_reason}
                if (own_reason := getattr(table, "own_reason", None))
                else {}
            ),
            **_exposure(getattr(table, "exposure_effect", None)),
            "rows": rows,
            "worst": sorted(
                (r for r in rows if r["max_abs_diff"] is not None), key=lambda r: -r["max_abs_diff"]
            )[:5],
            "unmatched": [{"name": r["name"], "reason": r["reason"]} for r in unmatched],
        },
        gates=gates,
    )


def _row_entry(row: LayerRow | StepRow) -> dict[str, Any]:
    stats = row.stats if row.status in MATCHED else None
    # Per-layer and per-tensor rows only: per-step ones keep their entries.
    scaled = _scaled_entry(cast("LayerRow", row)) if hasattr(row, "allowed") else {}
    return {
        "name": row.name,
        "type": getattr(row, "module_type", None) or getattr(row, "estimator", None),
        "onnx_value": row.onnx_value,
        "status": row.status,
        "max_abs_diff": stats.max_abs if stats else None,
        "mean_abs_diff": stats.mean_abs if stats else None,
        "sqnr_db": getattr(row, "sqnr_db", None) if stats else None,
        "layout": getattr(row, "layout", None),
        "reason": row.reason,
        **scaled,
    }


def _scaled_entry(row: LayerRow) -> dict[str, Any]:
    stats = row.stats if row.status in MATCHED else None
    own = row.own if stats else None
    return {
        "ref_max_abs": stats.ref_max if stats else None,
        "rel_diff": stats.rel_max if stats else None,
        "allowed": row.allowed if stats else None,
        "own_status": row.own_status if own else None,
        "own_max_abs_diff": own.max_abs if own else None,
        "own_rel_diff": own.rel_max if own else None,
        "carries": row.carries,
    }


def _exposure(max_abs: float | None) -> dict[str, Any]:
    if max_abs is None:
        return {}
    return {
        "exposure_effect": {
            "max_abs_diff": max_abs,
            "note": (
                "final outputs of the session exposing every compared value vs the plain"
                " session: exposing values stops some fusions, so the rows are measured on"
                " another graph than the one deployed, about this far from it"
            ),
        }
    }
