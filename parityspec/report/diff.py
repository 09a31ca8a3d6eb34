"""Compare two report.json files check by check: verdicts, figures, and what got worse.

A figure is compared when it is a top-level number of a check's `figures` or the figure of
one of its gates. A gated figure *worsened* when it moved toward or past its limit (up for a
`<=` gate, down for a `>=` gate) by more than the threshold. The threshold is absolute, in
the figure's own units (a probability, a fraction of samples, a metric): relative change is
meaningless for figures that sit near zero, where 1e-7 becoming 2e-7 would count as doubling.
A figure that becomes NaN always worsened.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parityspec.errors import InputError
from parityspec.report.fit import MARKDOWN_LIMIT
from parityspec.report.render import format_number

NOT_PASSED = ("failed", "error", "skipped")


@dataclass(frozen=True)
class FigureChange:
    name: str
    old: float | None
    new: float | None
    op: str | None
    """The gate's operator when the figure is gated, else None (no direction is worse)."""
    worsened: bool

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


@dataclass(frozen=True)
class CheckDiff:
    id: str
    old_status: str | None
    """None: the check is new."""
    new_status: str | None
    """None: the check vanished."""
    figures: tuple[FigureChange, ...]

    @property
    def regressed(self) -> bool:
        return self.old_status == "passed" and self.new_status in NOT_PASSED

    @property
    def worsened(self) -> bool:
        return any(f.worsened for f in self.figures)

    @property
    def changed(self) -> bool:
        return self.old_status != self.new_status or bool(self.figures)


@dataclass(frozen=True)
class ReportDiff:
    old: dict[str, Any]
    new: dict[str, Any]
    checks: tuple[CheckDiff, ...]
    threshold: float

    @property
    def failing(self) -> bool:
        """Exit 1: a check stopped passing or a gated figure worsened beyond the threshold."""
        return any(c.regressed or c.worsened for c in self.checks)


def load_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read report: {error}", file=str(path)) from None
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        raise InputError("not a parityspec report.json (no `checks` list)", file=str(path))
    return report


BASELINE_HINT = "give --baseline the report.json that `parityspec run` wrote for this spec"


def load_baseline(path: Path) -> dict[str, Any]:
    """`run --baseline`: a report.json that parityspec wrote, checked enough that comparing
    with it cannot fail halfway."""
    if not Path(path).is_file():  # a folder or a FIFO: refused without opening it
        what = "not a regular file" if Path(path).exists() else "no such file"
        raise InputError(f"--baseline: {what}", file=str(path), hint=BASELINE_HINT)
    try:
        report = load_report(path)
    except InputError as error:
        raise InputError(
            f"--baseline: {error.message}", file=str(path), hint=BASELINE_HINT
        ) from None
    if not _is_report(report):
        raise InputError(
            "--baseline: not a parityspec report.json (no `parityspec.report_format`, or a "
            "check without its id, status, figures and gates)",
            file=str(path),
            hint=BASELINE_HINT,
        )
    return report


def _is_report(report: dict[str, Any]) -> bool:
    head = report.get("parityspec")
    if not isinstance(head, dict) or "report_format" not in head:
        return False
    for check in report["checks"]:
        if not (
            isinstance(check, dict)
            and isinstance(check.get("id"), str)
            and isinstance(check.get("status"), str)
            and isinstance(check.get("figures"), dict)
            and isinstance(check.get("gates"), list)
            and all(
                isinstance(g, dict) and {"figure", "value", "op"} <= g.keys()
                for g in check["gates"]
            )
        ):
            return False
    return True


def diff_reports(old: dict[str, Any], new: dict[str, Any], threshold: float = 0.0) -> ReportDiff:
    """Checks in the new report's order, then the ones that vanished from the old."""
    old_checks = {c["id"]: c for c in old["checks"]}
    new_checks = {c["id"]: c for c in new["checks"]}
    ids = list(new_checks) + [i for i in old_checks if i not in new_checks]
    checks = tuple(_check_diff(i, old_checks.get(i), new_checks.get(i), threshold) for i in ids)
    return ReportDiff(old, new, checks, threshold)


def _check_diff(
    check_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None, threshold: float
) -> CheckDiff:
    """Figures are compared only for checks in both reports: a new check has no 'before'."""
    old_figures, new_figures = (_figures(old), _figures(new)) if old and new else ({}, {})
    changes: list[FigureChange] = []
    for name in list(new_figures) + [n for n in old_figures if n not in new_figures]:
        (a, op_a), (b, op_b) = (
            old_figures.get(name, (None, None)),
            new_figures.get(name, (None, None)),
        )
        if not _same(a, b):
            op = op_b or op_a
            changes.append(FigureChange(name, a, b, op, _worse_by(op, a, b) > threshold))
    old_status = None if old is None else old["status"]
    new_status = None if new is None else new["status"]
    return CheckDiff(check_id, old_status, new_status, tuple(changes))


def _figures(check: dict[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """name -> (value, gate operator or None). A gate figure seen twice gets `#2`, `#3`; a
    gate's value is None when it is not a number."""
    found: dict[str, tuple[float | None, str | None]] = {
        k: (_number(v), None) for k, v in check["figures"].items() if _number(v) is not None
    }
    for gate in check["gates"]:
        name, n = gate["figure"], 2
        while name in found and found[name][1] is not None:
            name, n = f"{gate['figure']}#{n}", n + 1
        found[name] = (_number(gate["value"]), gate["op"])
    return found


def _number(value: Any) -> float | None:
    """JSON numbers, and the "inf"/"nan" strings reports write for non-finite floats."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.lower().lstrip("+-") in ("inf", "nan"):
        return float(value)
    return None


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _worse_by(op: str | None, old: float | None, new: float | None) -> float:
    """How far the figure moved toward its limit; negative when it moved away."""
    if op is None or old is None or new is None:
        return -math.inf
    if math.isnan(new) != math.isnan(old):
        return math.inf if math.isnan(new) else -math.inf
    moved = (new - old) if op == "<=" else (old - new)
    return -math.inf if math.isnan(moved) else moved


def checks_json(diff: ReportDiff) -> list[dict[str, Any]]:
    """Every check, changed or not, as `diff --format json` and report.json's `baseline`
    section hold them."""
    return [
        {
            "id": c.id,
            "old_status": c.old_status,
            "new_status": c.new_status,
            "changed": c.changed,
            "regressed": c.regressed,
            "worsened": c.worsened,
            "figures": [
                {
                    "name": f.name,
                    "old": f.old,
                    "new": f.new,
                    "delta": f.delta,
                    "op": f.op,
                    "worsened": f.worsened,
                }
                for f in c.figures
            ],
        }
        for c in diff.checks
    ]


def baseline_section(diff: ReportDiff, file: str, sha256: str) -> dict[str, Any]:
    """report.json's `baseline`: the old report named by path and hash, and the diff. Only
    the inputs and the results go in, so the same inputs give the same bytes."""
    return {
        "file": file,
        "sha256": sha256,
        "spec": diff.old.get("spec", {}).get("name"),
        "verdict": diff.old.get("verdict"),
        "threshold": diff.threshold,
        "failing": diff.failing,
        "exit_code": int(diff.failing),
        "summary": _summary(diff),
        "checks": [  # with the verdict line the reports show
            {**entry, "verdict": _verdict_change(check)}
            for entry, check in zip(checks_json(diff), diff.checks, strict=True)
        ],
    }


def as_text(diff: ReportDiff) -> str:
    lines = [f"parityspec diff: {_title(diff.old)} -> {_title(diff.new)}"]
    for check in diff.checks:
        if not check.changed:
            continue
        lines.append(f"  {check.id:<24} {_verdict_change(check)}")
        for f in check.figures:
            mark = "  WORSE" if f.worsened else ""
            lines.append(
                f"      {f.name:<26} {_num(f.old):>10} -> {_num(f.new):<10} "
                f"({_signed(f.delta)}){mark}"
            )
    lines.append(_summary(diff))
    return "\n".join(lines)


def as_markdown(diff: ReportDiff) -> str:
    lines = [
        f"### parityspec diff: {_title(diff.old)} → {_title(diff.new)}",
        "",
        "| check | verdict | figure | old | new | delta | |",
        "|---|---|---|---|---|---|---|",
    ]
    for check in diff.checks:
        if not check.changed:
            continue
        rows = check.figures or (None,)
        for index, f in enumerate(rows):
            head = f"`{check.id}` | {_verdict_change(check)}" if index == 0 else " | "
            cells = (
                f"{f.name} | {_num(f.old)} | {_num(f.new)} | {_signed(f.delta)} | "
                f"{'❌ worse' if f.worsened else ''}"
                if f
                else " | | | | "
            )
            lines.append(f"| {head} | {cells} |")
    return _within_limit(lines, ["", _summary(diff)])


def _within_limit(table: list[str], tail: list[str]) -> str:
    """The table's rows while the comment stays under GitHub's limit, then the summary; a
    line says how many rows were left out (the text format shows them all)."""
    text = "\n".join(table + tail)
    if len(text.encode()) <= MARKDOWN_LIMIT:
        return text
    budget = MARKDOWN_LIMIT - len("\n".join(tail).encode()) - 200  # room for the note
    kept = 4  # the title and the table's header always stay
    size = len("\n".join(table[:kept]).encode())
    while kept < len(table) and size + len(table[kept].encode()) + 1 <= budget:
        size += len(table[kept].encode()) + 1
        kept += 1
    note = (
        f"\n_{len(table) - kept} more rows left out to keep this comment under "
        f"{MARKDOWN_LIMIT:,} bytes; `parityspec diff` without --format shows them all._"
    )
    return "\n".join([*table[:kept], note, *tail])


def _title(report: dict[str, Any]) -> str:
    name = report.get("spec", {}).get("name", "?")
    return f"{name} ({report.get('verdict', '?')})"


def _verdict_change(check: CheckDiff) -> str:
    if check.old_status is None:
        return f"new ({check.new_status})"
    if check.new_status is None:
        return f"vanished (was {check.old_status})"
    if check.old_status == check.new_status:
        return check.new_status
    return f"{check.old_status} -> {check.new_status}" + (" REGRESSED" if check.regressed else "")


def _summary(diff: ReportDiff) -> str:
    changed = sum(c.changed for c in diff.checks)
    regressed = sum(c.regressed for c in diff.checks)
    worse = sum(f.worsened for c in diff.checks for f in c.figures)
    return (
        f"{len(diff.checks)} checks, {changed} changed, {regressed} stopped passing, "
        f"{worse} figure(s) worse by more than {diff.threshold:g} -> exit {int(diff.failing)}"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else format_number(value)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"
