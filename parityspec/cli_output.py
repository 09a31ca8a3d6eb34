"""What `parityspec run` prints on the terminal while and after it runs.

On a terminal: a live status line names the running step, and each finished step prints its
line (with rows/s for steps that process rows). Elsewhere (CI logs, pipes): one plain line
per step. `--quiet`: only the verdict line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from parityspec.report.messages import TERMINAL_CHARS, clip

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from parityspec.api import RunOutcome
    from parityspec.results import StepOutcome

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
    step_ids: list[str], quiet: bool, console: Console | None = None
) -> Iterator[OnStep]:
    """The `on_step` callback for `api.run`, live while the run lasts."""
    if quiet:
        yield _log_only
        return
    from rich.console import Console

    console = console or Console(highlight=False)
    if not console.is_terminal:
        yield step_printer()
        return
    with live_steps(step_ids, console) as show:
        yield show


def step_printer() -> OnStep:
    def show(outcome: StepOutcome) -> None:
        mark, detail = _mark(outcome)
        _log(outcome, mark)
        click.echo(f"  {mark:<7} {outcome.step.id:<28} {outcome.seconds:6.2f}s  {detail}".rstrip())

    return show


@contextlib.contextmanager
def live_steps(step_ids: list[str], console: Console) -> Iterator[OnStep]:
    from rich.text import Text

    done = 0
    with console.status(Text(_running(step_ids, done))) as status:

        def show(outcome: StepOutcome) -> None:
            nonlocal done
            done += 1
            mark, detail = _mark(outcome)
            _log(outcome, mark)
            console.print(_step_row(mark, outcome, f"{_rate(outcome)}{detail}"))
            status.update(Text(_running(step_ids, done)))

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


def print_outcome(outcome: RunOutcome, quiet: bool) -> None:
    report = outcome.report
    summary = report["summary"]
    if not quiet:
        for note in report["run"]["notes"]:  # what the run recovered from, once each
            click.echo(f"note: {clip(note, TERMINAL_CHARS)}", err=True)
    click.echo(
        f"{report['spec']['name']}: {report['verdict']} ({summary['passed']} of "
        f"{summary['total']} checks passed) -> exit {int(outcome.exit_code)}"
    )
    if not quiet:
        for path in outcome.written:
            click.echo(f"  wrote {path}")


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
    """`1200 rows, 85,000 rows/s  ` for predictions and checks over rows, else ''."""
    rows = _rows(outcome)
    if not rows or outcome.status != "ok" or outcome.seconds <= 0:  # cached: no work done
        return ""
    return f"{rows} rows, {rows / outcome.seconds:,.0f} rows/s  "


def _rows(outcome: StepOutcome) -> int | None:
    from parityspec.backends.base import Predictions
    from parityspec.checks.base import CheckResult

    value = outcome.value
    if isinstance(value, Predictions) and value.outputs:
        return len(next(iter(value.outputs.values())))
    if isinstance(value, CheckResult):
        return value.figures.get("samples")
    return None


def _running(step_ids: list[str], done: int) -> str:
    if done >= len(step_ids):
        return "writing reports"
    return f"[{done + 1}/{len(step_ids)}] {step_ids[done]}"


def _log_only(outcome: StepOutcome) -> None:
    _log(outcome, _mark(outcome)[0])


def _log(outcome: StepOutcome, mark: str) -> None:
    reason = clip(outcome.reason or "", TERMINAL_CHARS)
    log.info("%s %s in %.3fs %s", outcome.step.id, mark, outcome.seconds, reason)
