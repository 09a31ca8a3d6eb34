"""What `parityspec run` prints on the terminal while and after it runs."""

from __future__ import annotations

import click

MARKS = {"ok": "ok", "error": "ERROR", "skipped": "skipped"}
CHECK_MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def step_printer():
    def show(outcome) -> None:
        step = outcome.step
        if step.action == "check" and outcome.status == "ok":
            mark = CHECK_MARKS[outcome.value.status]
            detail = outcome.value.reason
        else:
            mark = MARKS[outcome.status]
            detail = outcome.reason or ""
        click.echo(f"  {mark:<7} {step.id:<28} {outcome.seconds:6.2f}s  {detail}".rstrip())

    return show


def print_outcome(outcome, quiet: bool) -> None:
    report = outcome.report
    summary = report["summary"]
    click.echo(
        f"{report['spec']['name']}: {report['verdict']} ({summary['passed']} of "
        f"{summary['total']} checks passed) -> exit {int(outcome.exit_code)}"
    )
    if not quiet:
        for path in outcome.written:
            click.echo(f"  wrote {path}")
