"""Keep report.md under GitHub's limit on a comment, whatever the run produced.

When the whole report is too long, what goes first is what a reviewer needs least: the details
of passing checks, the skipped steps, passing checks, then the details of the other checks and
those checks themselves; as a last resort the text is cut at a line. The report then says
plainly what it left out and where the whole report is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# GitHub's limit counts characters; UTF-8 bytes are never fewer, so counting them is safe.
MARKDOWN_LIMIT = 65_536
DETAILS = "worst samples, confusion matrices, drift tables"

Render = Callable[[dict[str, Any], str | None], str]
"""Renders a report with a note on what was left out (None: nothing was)."""


def fit_markdown(render: Render, report: dict[str, Any], whole: str) -> str:
    """`whole` names where the full report is, e.g. "report.json and report.html"."""
    text = render(report, None)
    if _fits(text):
        return text
    # Each reduction shrinks the text: search for the fewest that fit.
    levels = 3 + len(report["checks"])
    low, high, best = 1, levels, None
    while low <= high:
        middle = (low + high) // 2
        text = render(*_reduced(report, middle, whole))
        if _fits(text):
            best, high = text, middle - 1
        else:
            low = middle + 1
    return best if best is not None else _cut(render(*_reduced(report, levels, whole)), whole)


def _fits(text: str) -> bool:
    return len(text.encode("utf-8")) <= MARKDOWN_LIMIT


def _reduced(report: dict[str, Any], level: int, whole: str) -> tuple[dict[str, Any], str]:
    """The report after its first `level` reductions, and the note saying what they left out.
    The reductions: 1 the details of passing checks, 2 the skipped steps, then the passing
    checks one by one from the last, the details of the other checks, and those one by one."""
    passing = [c for c in report["checks"] if c["passed"]]
    others = [c for c in report["checks"] if not c["passed"]]
    left_out = []
    if level >= 1 and any(c["details"] for c in passing):
        left_out.append(f"the details ({DETAILS}) of passing checks")
    passing = _without_details(passing) if level >= 1 else passing
    steps = [s for s in report["steps"] if level < 2 or s["status"] != "skipped"]
    if len(steps) < len(report["steps"]):
        left_out.append(f"the list of {len(report['steps']) - len(steps)} skipped steps")
    drop = min(max(level - 2, 0), len(passing))
    if drop:
        left_out.append(f"{drop} of the {len(passing)} passing checks")
        passing = passing[: len(passing) - drop]
    if level >= 3 + len(report["checks"]) - len(others):
        if any(c["details"] for c in others):
            left_out.append(f"the details ({DETAILS}) of the checks that did not pass")
        others = _without_details(others)
    drop = min(max(level - 3 - len(report["checks"]) + len(others), 0), len(others))
    if drop:
        left_out.append(f"{drop} of the {len(others)} checks that did not pass")
        others = others[: len(others) - drop]
    kept = {c["id"]: c for c in passing + others}
    checks = [kept[c["id"]] for c in report["checks"] if c["id"] in kept]  # in report order
    note = (
        f"**This report was shortened to fit GitHub's limit of {MARKDOWN_LIMIT:,} characters.** "
        f"Left out: {'; '.join(left_out)}. The whole report: {whole}."
    )
    return {**report, "checks": checks, "steps": steps}, note


def _without_details(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "details": {}} for c in checks]


def _cut(text: str, whole: str) -> str:
    """The text up to a line, with any open `<details>` or code fence closed, and a note."""
    note = (
        f"**This report was cut here, at GitHub's limit of {MARKDOWN_LIMIT:,} characters.** "
        f"The whole report: {whole}.\n"
    )
    budget = MARKDOWN_LIMIT - len(note.encode("utf-8"))
    while True:
        head = text.encode("utf-8")[:budget].decode("utf-8", "ignore")
        head = head[: head.rfind("\n") + 1] or head
        closing = "```\n" if head.count("```") % 2 else ""
        closing += "</details>\n" * max(head.count("<details") - head.count("</details>"), 0)
        result = f"{head}{closing}\n{note}"
        if _fits(result):
            return result
        budget -= len(result.encode("utf-8")) - MARKDOWN_LIMIT
