"""What `parityspec run` prints on the terminal while and after it runs.

On a terminal: a live status line names the running step, counted as `plan` lists the steps,
and each finished step prints its line (with rows/s for a step that predicted rows).
Elsewhere (CI logs, pipes): one plain line per step. `--quiet`: only the verdict line. With
several specs: a line naming each spec before its steps, its verdict line, and a total line.
`--format json`: every line goes to stderr and stdout holds one JSON document (the shapes are
in the `*_json` functions here and the README).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from parityspec.artifacts import dump_json
from parityspec.errors import ExitCode
from parityspec.report.messages import TERMINAL_CHARS, clip

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from parityspec.api import RunOutcome
    from parityspec.plan.graph import Plan
    from parityspec.report.diff import ReportDiff
    from parityspec.results import StepOutcome
    from parityspec.run.cache import Verified

OnStep = Callable[["StepOutcome"], None]

log = logging.getLogger("parityspec.run")

MARKS = {"ok": "ok", "cached": "cached", "error": "ERROR", "skipped": "skipped"}
CHECK_MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}
STYLES = {
    "ok": "green",
    "cached": "cyan",
    "PASS": "bold green",
    "FAIL": "bold red",
    "ERROR": "bold red",
    "skipped": "dim",
    "SKIP": "dim",
}


@contextlib.contextmanager
def step_reporter(
    step_ids: list[str], quiet: bool, console: Console | None = None, err: bool = False
) -> Iterator[OnStep]:
    """The `on_step` callback for `api.run`, live while the run lasts; to stderr with `err`."""
    if quiet:
        yield _log_only
        return
    from rich.console import Console

    console = console or Console(highlight=False, stderr=err)
    if not console.is_terminal:
        yield step_printer(err)
        return
    with live_steps(step_ids, console) as show:
        yield show


def step_printer(err: bool = False) -> OnStep:
    def show(outcome: StepOutcome) -> None:
        mark, detail = _mark(outcome)
        _log(outcome, mark)
        line = f"  {mark:<7} {outcome.step.id:<28} {outcome.seconds:6.2f}s  {detail}"
        click.echo(line.rstrip(), err=err)

    return show


@contextlib.contextmanager
def live_steps(step_ids: list[str], console: Console) -> Iterator[OnStep]:
    from rich.text import Text

    done = 0
    with console.status(Text(progress(step_ids, done))) as status:

        def show(outcome: StepOutcome) -> None:
            nonlocal done
            done += 1
            mark, detail = _mark(outcome)
            _log(outcome, mark)
            console.print(_step_row(mark, outcome, f"{_rate(outcome)}{detail}"))
            status.update(Text(progress(step_ids, done)))

        yield show


def _step_row(mark: str, outcome: StepOutcome, detail: str) -> Table:
    """One step as a grid row: a long detail wraps within its own column."""
    from rich.table import Table
    from rich.text import Text

    row = Table.grid(padding=(0, 1))
    row.add_column(width=1)
    row.add_column(width=7, style=STYLES[mark])
    row.add_column(width=28, overflow="fold")
    row.add_column(width=7, justify="right")
    row.add_column(ratio=1)
    row.add_row("", mark, outcome.step.id, f"{outcome.seconds:.2f}s", Text(detail))
    return row


def print_outcome(outcome: RunOutcome, quiet: bool, err: bool = False) -> None:
    """The verdict line holds the run's own exit code; with a baseline, a line holds the
    comparison's, and the command exits with the worse."""
    report = outcome.report
    summary = report["summary"]
    if not quiet:
        for note in report["run"]["notes"]:  # what the run recovered from, once each
            click.echo(f"note: {clip(note, TERMINAL_CHARS)}", err=True)
    click.echo(
        f"{report['spec']['name']}: {report['verdict']} ({summary['passed']} of "
        f"{summary['total']} checks passed) -> exit {report['exit_code']}",
        err=err,
    )
    if outcome.baseline is not None:
        from parityspec.report.diff import as_text

        *changes, summary = as_text(outcome.baseline).splitlines()[1:]  # after its title
        for line in changes if not quiet else []:
            click.echo(line, err=err)
        click.echo(f"against the baseline {report['baseline']['file']}: {summary}", err=err)
    if not quiet:
        for path in outcome.written:
            click.echo(f"  wrote {path}", err=err)


# Several specs: the total exit code is the worst, in the order a single run ranks its own
# steps' outcomes (`results.exit_code`): invalid input, then a step error, then a failed check.
SEVERITY = (ExitCode.INVALID_INPUT, ExitCode.STEP_ERROR, ExitCode.CHECK_FAILED, ExitCode.PASSED)
SPEC_VERDICTS = ("passed", "failed", "invalid input", "error", "skipped")
"""A spec's verdict in the total: a report's verdict, or `skipped` (not run: --fail-fast)."""


@dataclass(frozen=True)
class SpecResult:
    """One spec of `run`: its outcome, or the error that stopped it before a step ran, or
    neither when --fail-fast skipped it."""

    file: Path
    outcome: RunOutcome | None = None
    error: list[str] | None = None
    error_code: ExitCode = ExitCode.INVALID_INPUT

    @property
    def exit_code(self) -> ExitCode | None:
        if self.outcome is not None:
            return self.outcome.exit_code
        return self.error_code if self.error is not None else None

    @property
    def verdict(self) -> str:
        if self.outcome is not None:
            return str(self.outcome.report["verdict"])
        if self.error is None:
            return "skipped"
        return "error" if self.error_code == ExitCode.STEP_ERROR else "invalid input"


def worst(codes: list[ExitCode]) -> ExitCode:
    return next((c for c in SEVERITY if c in codes), ExitCode.PASSED)


def print_spec_line(result: SpecResult, err: bool) -> None:
    """The verdict line of a spec that did not run (a ran one prints `print_outcome`'s)."""
    if result.error is not None:
        click.echo(f"{result.file}: {result.verdict} -> exit {int(result.error_code)}", err=err)
    else:
        click.echo(f"{result.file}: skipped (--fail-fast)", err=err)


def total_line(results: list[SpecResult]) -> str:
    counts = Counter(r.verdict for r in results)
    parts = [f"{counts[v]} {v}" for v in SPEC_VERDICTS if counts[v]]
    code = worst([c for c in (r.exit_code for r in results) if c is not None])
    return f"total: {len(results)} specs, {', '.join(parts)} -> exit {int(code)}"


def run_json(results: list[SpecResult]) -> dict[str, Any]:
    """`run --format json`: `exit_code`, `counts` (every verdict of SPEC_VERDICTS, zeros
    included) and `specs`, one entry per spec in the order run, each with the same keys."""
    counts = Counter(r.verdict for r in results)
    code = worst([c for c in (r.exit_code for r in results) if c is not None])
    return {
        "exit_code": int(code),
        "counts": {v: counts[v] for v in SPEC_VERDICTS},
        "specs": [_spec_json(r) for r in results],
    }


def _spec_json(result: SpecResult) -> dict[str, Any]:
    outcome = result.outcome
    report = outcome.report if outcome else None
    return {
        "file": str(result.file),
        "name": report["spec"]["name"] if report else None,
        "verdict": result.verdict,
        "exit_code": None if result.exit_code is None else int(result.exit_code),
        "errors": result.error or [],
        "checks": [
            {"id": c["id"], "status": c["status"], "reason": c["reason"]}
            for c in (report["checks"] if report else [])
        ],
        "notes": list(report["run"]["notes"]) if report else [],
        "report_dir": str(outcome.out_dir) if outcome else None,
        "reports": [str(p) for p in outcome.written] if outcome else [],
    }


def plan_json(plan: Plan, name: str, file: Path) -> dict[str, Any]:
    """`plan --format json`: the spec and its steps in execution order."""
    return {
        "spec": name,
        "file": str(file),
        "steps": [
            {
                "id": s.id,
                "action": s.action,
                "subject": s.subject,
                "deps": list(s.deps),
                "key": s.key,
            }
            for s in plan.steps
        ],
    }


def diff_json(diff: ReportDiff) -> dict[str, Any]:
    """`diff --format json`: both reports' spec and verdict, and every check, changed or not.
    Non-finite figures are strings ("nan", "inf"), as in report.json."""
    from parityspec.report.diff import checks_json

    return {
        "old": _report_title(diff.old),
        "new": _report_title(diff.new),
        "threshold": diff.threshold,
        "failing": diff.failing,
        "exit_code": int(ExitCode.CHECK_FAILED if diff.failing else ExitCode.PASSED),
        "checks": checks_json(diff),
    }


def _report_title(report: dict[str, Any]) -> dict[str, Any]:
    return {"spec": report.get("spec", {}).get("name"), "verdict": report.get("verdict")}


def verify_json(root: Path, result: Verified, repair: bool, exit_code: int) -> dict[str, Any]:
    """`cache verify --format json`: counts, and each damaged entry (relative to the cache)."""
    return {
        "cache_dir": str(root),
        "checked": result.checked,
        "repair": repair,
        "damaged": [
            {"entry": str(entry.relative_to(root)), "reason": reason, "removed": removed}
            for entry, reason, removed in result.damaged
        ],
        "older": result.older,
        "exit_code": exit_code,
    }


def echo_json(document: dict[str, Any]) -> None:
    """One JSON document on stdout: sorted keys, no NaN or Inf literals."""
    click.echo(dump_json(document), nl=False)


def append_step_summary(outcome: RunOutcome) -> Path | None:
    """GitHub Actions shows what a step appends to $GITHUB_STEP_SUMMARY on the run's page."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    written = outcome.out_dir / "report.md"
    if written in outcome.written:
        markdown = written.read_text(encoding="utf-8")  # the user's templates, if any
    else:
        from parityspec.report.render import render

        markdown = render(outcome.report, "markdown")
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")
    return Path(target)


def _mark(outcome: StepOutcome) -> tuple[str, str]:
    if outcome.step.action == "check" and outcome.status in ("ok", "cached"):
        reason = outcome.value.reason
        if outcome.status == "cached":  # the same inputs gave this result before
            reason += " (from the cache; --rebench runs it again)"
        return CHECK_MARKS[outcome.value.status], clip(reason, TERMINAL_CHARS)
    return MARKS[outcome.status], clip(outcome.reason or "", TERMINAL_CHARS)


def _rate(outcome: StepOutcome) -> str:
    """`1200 rows, 85,000 rows/s  ` for a prediction step that ran, else ''."""
    rows = _rows(outcome)
    if not rows or outcome.status != "ok" or outcome.seconds <= 0:  # cached: no work done
        return ""
    return f"{rows} rows, {rows / outcome.seconds:,.0f} rows/s  "


def _rows(outcome: StepOutcome) -> int | None:
    """Rows a model predicted. A check compares predictions already made: its time is not
    spent on rows, so a rate there would read as throughput it is not."""
    from parityspec.backends.base import Predictions

    value = outcome.value
    if isinstance(value, Predictions) and value.outputs:
        return len(next(iter(value.outputs.values())))
    return None


def progress(step_ids: list[str], done: int) -> str:
    """The live line once `done` steps finished. `step_ids` are the plan's, as `plan` lists
    them: the last, `report`, is not run as a step but is what follows the others."""
    from parityspec.plan.compile import REPORT  # loaded already: the run planned with it

    if done >= len(step_ids):
        return "writing reports"
    line = f"[{done + 1}/{len(step_ids)}] {step_ids[done]}"
    return line + ": writing reports" if step_ids[done] == REPORT else line


def _log_only(outcome: StepOutcome) -> None:
    _log(outcome, _mark(outcome)[0])


def _log(outcome: StepOutcome, mark: str) -> None:
    reason = clip(outcome.reason or "", TERMINAL_CHARS)
    log.info("%s %s in %.3fs %s", outcome.step.id, mark, outcome.seconds, reason)
