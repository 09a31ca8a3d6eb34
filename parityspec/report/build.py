"""Build the report dict from a finished run. Deterministic outside its `run` section."""

from __future__ import annotations

import math
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parityspec import __version__
from parityspec.backends import BACKENDS, key_libraries
from parityspec.backends.base import LoadedModel, capabilities
from parityspec.backends.context import RunContext
from parityspec.checks.base import CheckResult, CheckSpecBase
from parityspec.errors import ExitCode
from parityspec.lineage import git_state, library_versions
from parityspec.loading import file_sha256
from parityspec.results import DONE, RunState, StepOutcome, exit_code
from parityspec.spec.load import LoadedSpec
from parityspec.spec.matrix import Sweep, sweep_of

VERDICTS = {
    ExitCode.PASSED: "passed",
    ExitCode.CHECK_FAILED: "failed",
    ExitCode.INVALID_INPUT: "invalid input",
    ExitCode.STEP_ERROR: "error",
}
REPORT_FORMAT = 1


def build_report(
    loaded: LoadedSpec, state: RunState, ctx: RunContext, started: datetime, finished: datetime
) -> dict[str, Any]:
    code = exit_code(state)
    checks = [
        _check_entry(check, state)
        for check in ctx.spec.checks
        if f"check:{check.id}" in state.outcomes
    ]
    report = {
        "parityspec": {"report_format": REPORT_FORMAT, "version": __version__},
        "spec": {
            "name": ctx.spec.name,
            "description": ctx.spec.description,
            "file": loaded.path.name,
        },
        "verdict": VERDICTS[code],
        "exit_code": int(code),
        "summary": _summary(checks),
        "checks": checks,
    }
    if (sweep := sweep_of(ctx.spec)) is not None:  # only a swept spec's report has one
        report["sweep"] = _sweep(sweep, checks)
    return {
        **report,
        "backends": _backends(ctx, state),
        "steps": [_step_entry(o) for o in state.outcomes.values()],
        "lineage": _lineage(loaded, state),
        "run": {**_run_facts(state, started, finished), "git": _git(loaded, state)},
    }


def _sweep(sweep: Sweep, checks: list[dict]) -> list[dict[str, Any]]:
    """One table per check of the spec: a row per combination with its values, its gates'
    figures and its verdict. The headline is the check's first gate; its shade, how much
    of its limit it uses (green: little, yellow: all of it, red: over or not a number)."""
    by_id = {c["id"]: c for c in checks}
    tables = []
    for swept in sweep.checks:
        ran = [(by_id[i], values) for i, values in swept.rows if i in by_id]  # --check
        if not ran or not swept.axes:  # a check of no swept backend is no sweep
            continue
        headline = next((c["gates"][0]["figure"] for c, _ in ran if c["gates"]), None)
        rows = [_sweep_row(check, values, headline) for check, values in ran]
        table = {
            "check": swept.origin,
            "type": ran[0][0]["type"],
            "axes": list(swept.axes),
            "headline": headline,
            "total": len(rows),
            "passed": sum(r["status"] == "passed" for r in rows),
            "rows": rows,
        }
        kind = next((k for c, _ in ran if (k := _drift_kind(c))), None)
        if kind:  # a drift check's rows also say what its table found (`_drift_figures`)
            table["drift"] = kind
            for row, (check, _) in zip(rows, ran, strict=True):
                row["drift"] = _drift_figures(check)
        tables.append(table)
    return tables


def _drift_kind(check: dict) -> str | None:
    """`layer`, `tensor` or `step` for a drift check's entry (rows and an origin); else None."""
    details = check.get("details") or {}
    if "origin" not in details or not isinstance(details.get("rows"), list):
        return None
    return next(
        (k.removesuffix("s_matched") for k in check["figures"] if k.endswith("s_matched")), None
    )


def _drift_figures(check: dict) -> dict[str, Any] | None:
    """A drift check's table in a few figures: its rows (`compared`), how many were matched,
    unmatched and over, the worst relative error and its row, and the drift origin (null:
    none) with the rule that chose it. None for a check that ran no table (an error)."""
    kind = _drift_kind(check)
    if kind is None:
        return None
    figures, details = check["figures"], check["details"]
    relative = [
        (r["rel_diff"], r["name"]) for r in details["rows"] if r.get("rel_diff") is not None
    ]
    # NaN is the worst of all: it never passes, so it must not hide behind a finite figure.
    worst = max(relative, key=lambda p: math.inf if math.isnan(p[0]) else p[0], default=None)
    return {
        "compared": figures.get(f"{kind}s"),
        "matched": figures.get(f"{kind}s_matched"),
        "unmatched": figures.get(f"{kind}s_unmatched"),
        "over": figures.get(f"{kind}s_over"),
        "worst_rel_diff": worst[0] if worst else None,
        "worst_at": worst[1] if worst else None,
        "origin": details["origin"],
        "origin_rule": details.get("origin_rule"),
    }


def _sweep_row(check: dict, values: dict[str, Any], headline: str | None) -> dict[str, Any]:
    gate = next((g for g in check["gates"] if g["figure"] == headline), None)
    used = _used(gate) if gate else None
    return {
        "id": check["id"],
        "values": values,
        "status": check["status"],
        "figures": {g["figure"]: g["value"] for g in check["gates"]},
        "headline": gate["value"] if gate else None,
        "used": used,
        "shade": _shade(used, gate is not None and gate["ok"]),
    }


def _used(gate: dict[str, Any]) -> float | None:
    """The headline's share of its limit: 1 is at the limit, over 1 beyond it."""
    value, limit = float(gate["value"]), float(gate["limit_value"])
    if not (math.isfinite(value) and math.isfinite(limit)):
        return None
    if gate["op"] == "<=":
        share = value / limit if limit > 0 else (0.0 if value <= 0 else math.inf)
    else:
        share = limit / value if value > 0 else (0.0 if limit <= 0 else math.inf)
    return round(share, 4) if math.isfinite(share) else None


def _shade(used: float | None, ok: bool) -> str:
    """Green (hue 120) at 0, yellow (60) at the limit, red (0) at twice it or failing."""
    if used is None:
        return "hsl(0, 0%, 82%)" if ok else "hsl(0, 75%, 78%)"
    hue = 120 - 60 * min(used, 2.0)
    if not ok:
        hue = min(hue, 30)  # a failed gate never reads as green
    return f"hsl({hue:.0f}, 75%, 78%)"


def _summary(checks: list[dict]) -> dict[str, int]:
    counts = {"total": len(checks), "passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for check in checks:
        counts[check["status"]] += 1
    return counts


def _check_entry(check: CheckSpecBase, state: RunState) -> dict[str, Any]:
    outcome = state.outcomes[f"check:{check.id}"]
    entry = {
        "id": check.id,
        "type": check.type,
        "between": list(check.between),
        "profile": check.profile,
        "description": check.description,
    }
    result: CheckResult = outcome.value
    return {
        **entry,
        "status": result.status,
        "passed": result.status == "passed",
        "reason": result.reason,
        "figures": result.figures,
        "tolerances": result.tolerances,
        "gates": [g.as_dict() for g in result.gates],
        "details": result.details,
    }


def _backends(ctx: RunContext, state: RunState) -> dict[str, Any]:
    entries = {}
    for outcome in state.outcomes.values():
        if outcome.step.action != "model":
            continue
        name = outcome.step.about
        entry: dict[str, Any] = {
            "kind": ctx.spec.backends[name].kind,
            "step": outcome.step.id,
            "status": _deterministic_status(outcome),
            "facts": {},
            "inert": None,
            "files": {},
        }
        if batch_rows := _batch_rows(ctx, name):
            entry["batch_rows"] = batch_rows
        if isinstance(outcome.value, LoadedModel):
            model = outcome.value
            entry["facts"] = model.facts
            entry["inert"] = model.inert
            entry["files"] = {k: _relative(v, ctx.out_dir) for k, v in sorted(model.files.items())}
        entries[name] = entry
    return entries


def _batch_rows(ctx: RunContext, name: str) -> int | None:
    """The rows per call that a batch-dependent model's figures hold for (dynamic INT8)."""
    spec = ctx.spec.backends[name]
    batch_dependent = capabilities(BACKENDS[spec.kind]).batch_dependent
    if batch_dependent is None or not batch_dependent(spec):
        return None
    return spec.serve_batch_size or ctx.spec.prediction_batch_size()


def _step_entry(outcome: StepOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": outcome.step.id,
        "status": _deterministic_status(outcome),
        "key": outcome.step.key,
    }
    if outcome.reason:
        entry["reason"] = outcome.reason
    if outcome.status == "error" and outcome.exit_code is not None:
        entry["exit_code"] = int(outcome.exit_code)  # whose fault: the input's (2) or not (3)
    return entry


def _deterministic_status(outcome: StepOutcome) -> str:
    """A step restored from the cache finished as surely as one that ran; which one it was
    belongs to the run facts, so the report's body is the same for both."""
    return "ok" if outcome.status in DONE else outcome.status


def _lineage(loaded: LoadedSpec, state: RunState) -> dict[str, Any]:
    data = state.outcomes.get("data:load")
    models = {
        o.step.about: o.value.facts.get("model_sha256")
        for o in state.outcomes.values()
        if o.step.action == "model" and isinstance(o.value, LoadedModel)
    }
    return {
        "spec_sha256": file_sha256(loaded.path),
        "data_sha256": data.value.fingerprint() if data and data.status in DONE else None,
        "model_sha256": models,
        "libraries": library_versions(key_libraries()),
    }


def _git(loaded: LoadedSpec, state: RunState) -> dict[str, Any]:
    """The commit and the state of the spec and of every file its planned steps read. In the
    run facts: an unrelated commit must not change the rest of the report."""
    files = {f for step in state.plan.steps for f in step.fragment.get("files", {})}
    return git_state(loaded.path, [Path(f) for f in sorted(files)])


def _run_facts(state: RunState, started: datetime, finished: datetime) -> dict[str, Any]:
    return {
        "started_at": started.astimezone(UTC).isoformat(timespec="seconds"),
        "finished_at": finished.astimezone(UTC).isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 3),
        "step_seconds": {o.step.id: round(o.seconds, 4) for o in state.outcomes.values()},
        "from_cache": [o.step.id for o in state.outcomes.values() if o.status == "cached"],
        "notes": list(state.notes),
        "timings": {
            o.step.about: o.value.timings
            for o in state.outcomes.values()
            if o.step.action == "check" and o.status in DONE and o.value.timings
        },
        "host": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "machine": platform.machine(),
        },
    }


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def now() -> datetime:
    return datetime.now(UTC)
