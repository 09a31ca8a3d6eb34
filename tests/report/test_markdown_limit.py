"""report.md never exceeds GitHub's 65,536-character comment limit: many checks, huge messages
or a huge template output are cut, failing checks kept first, and the report says what it left
out and where the whole report is."""

from __future__ import annotations

import copy
import json

import pytest

from parityspec.report.fit import MARKDOWN_LIMIT
from parityspec.report.messages import REPORT_CHARS, clip, for_display, long_messages
from parityspec.report.render import render, write_reports
from tests.conftest import REPO

REPORT = json.loads((REPO / "tests" / "data" / "golden" / "churn_forest.report.json").read_text())
FAILED = REPORT["checks"][0]  # every check of the golden report failed
PASSED = {
    **FAILED,
    "status": "passed",
    "passed": True,
    "reason": "within tolerance",
    "gates": [{**g, "ok": True} for g in FAILED["gates"]],
}


def _many_checks(failing: int, passing: int, reason: str | None = None) -> dict:
    """The golden report with `failing` copies of its failing check and `passing` of a
    passing one, interleaved, each with its own id and step."""
    report = copy.deepcopy(REPORT)
    total = failing + passing
    failing_at = {i * total // failing for i in range(failing)}
    checks = []
    for i in range(total):
        check = copy.deepcopy(FAILED if i in failing_at else PASSED)
        check["id"] = f"{check['status']}-{i:03d}"
        if reason is not None:
            check["reason"] = reason
        checks.append(check)
    report["checks"] = checks
    statuses = [c["status"] for c in checks]
    report["summary"] = {
        "total": len(checks),
        **{s: statuses.count(s) for s in ("passed", "failed", "error", "skipped")},
    }
    report["steps"] = [{"id": f"check:{c['id']}", "status": "ok", "key": "0" * 64} for c in checks]
    return report


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def test_the_golden_report_is_not_shortened():
    assert "shortened" not in render(REPORT, "markdown")


def test_500_checks_keep_the_verdict_summary_and_every_failing_check_with_its_details():
    report = _many_checks(failing=20, passing=480)
    markdown = render(report, "markdown", formats=["json", "markdown", "html"])
    assert _size(markdown) <= MARKDOWN_LIMIT
    assert markdown.startswith("## ❌ parityspec `churn-forest`: failed\n\n480 of 500")
    failing = [c["id"] for c in report["checks"] if c["status"] == "failed"]
    assert len(failing) == 20 and all(f"#### ❌ `{id}`" in markdown for id in failing)
    assert markdown.count("worst samples</summary>") == 20
    kept = sum(f"`{c['id']}`" in markdown for c in report["checks"] if c["passed"])
    assert 0 < kept < 480
    assert (
        "> ⚠️ **This report was shortened to fit GitHub's limit of 65,536 characters.** Left "
        "out: the details (worst samples, confusion matrices, drift tables) of passing checks; "
        f"{480 - kept} of the 480 passing checks. The whole report: report.json and report.html."
    ) in markdown


def test_500_failing_checks_with_long_reasons_still_fit():
    report = _many_checks(failing=500, passing=0, reason="x" * 50_000)
    markdown = render(report, "markdown")
    assert _size(markdown) <= MARKDOWN_LIMIT
    kept = sum(f"`{c['id']}`" in markdown for c in report["checks"])
    assert 0 < kept < 500 and "worst samples</summary>" not in markdown
    assert (
        f"; {500 - kept} of the 500 checks that did not pass. The whole report: report.json."
        in (markdown)
    )
    assert "x" * (REPORT_CHARS + 1) not in markdown


def test_a_huge_error_that_skipped_500_checks_keeps_the_error():
    report = _many_checks(
        failing=500, passing=0, reason="upstream step build:sklearn did not finish"
    )
    for check in report["checks"]:
        check.update(status="skipped", figures={}, gates=[], details={})
    report["summary"].update(failed=0, skipped=500)
    error = {"id": "build:sklearn", "status": "error", "key": "0" * 64, "exit_code": 3}
    error["reason"] = "RuntimeError: " + "conversion of node 7 failed; " * 6_000
    skipped = {"status": "skipped", "reason": "upstream step build:sklearn did not finish"}
    report["steps"] = [error] + [{**s, **skipped} for s in report["steps"]]
    markdown = render(report, "markdown")
    assert _size(markdown) <= MARKDOWN_LIMIT
    assert "| `build:sklearn` | error | RuntimeError: conversion of node 7 failed;" in markdown
    assert "([full text](artifacts/messages/build-sklearn.txt)) |" in markdown
    assert "Left out: the list of 500 skipped steps; " in markdown


@pytest.mark.parametrize("unit", ["a", "💥"])
def test_a_huge_description_is_cut_at_a_line(unit):
    """Nothing left to drop but the text itself: it is cut at a line, under the limit in
    characters and in bytes, whatever the characters."""
    report = copy.deepcopy(REPORT)
    report["spec"]["description"] = "\n".join(unit * 70 for _ in range(20_000))
    markdown = render(report, "markdown")
    assert _size(markdown) <= MARKDOWN_LIMIT
    assert markdown.startswith("## ❌ parityspec `churn-forest`: failed\n\n")
    head, note = markdown.rsplit("\n\n", 1)
    assert head.endswith("\n" + unit * 70)  # whole lines only
    assert note.startswith("**This report was cut here, at GitHub's limit")


def test_a_cut_closes_what_it_left_open(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text(
        "<details><summary>all</summary>\n\n```\n"
        "{% for i in range(20000) %}line {{ i }}\n{% endfor %}```\n</details>\n"
    )
    markdown = render(REPORT, "markdown", templates)
    assert _size(markdown) <= MARKDOWN_LIMIT
    head, note = markdown.rsplit("\n\n", 1)
    assert head.endswith("\n```\n</details>") and "line 19999" not in head
    assert note.startswith("**This report was cut here")


def test_a_user_template_gets_the_note_even_if_it_ignores_it(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text(
        "{% for c in report.checks %}{{ c.id }}: {{ c.reason }}\n{% endfor %}"
    )
    report = _many_checks(failing=1, passing=2_000, reason="within the tolerances of its profile")
    markdown = render(report, "markdown", templates)
    assert _size(markdown) <= MARKDOWN_LIMIT
    assert markdown.startswith("failed-000: ")
    assert markdown.rstrip().endswith("The whole report: report.json.")


def test_clip_keeps_the_start_and_says_how_long_the_text_was():
    assert clip("short", 300) == "short"
    text = clip("y" * 10_000, 300)
    assert (
        len(text) == 300 and text.startswith("yyy") and text.endswith("(10,000 characters in all)")
    )


def test_long_reasons_are_written_whole_and_shown_cut(tmp_path):
    report = copy.deepcopy(REPORT)
    report["steps"][2].update(status="error", reason="z" * 5_000, exit_code=3)
    step_id = report["steps"][2]["id"]
    assert long_messages(report) == {"artifacts/messages/build-sklearn.txt": "z" * 5_000}
    shown = for_display(report)["steps"][2]
    assert (
        shown["reason_file"] == "artifacts/messages/build-sklearn.txt"
        and step_id == "build:sklearn"
    )
    assert len(shown["reason"]) == REPORT_CHARS
    assert report["steps"][2]["reason"] == "z" * 5_000  # the report itself is left whole
    written = write_reports(report, tmp_path, ["json", "markdown"])
    assert (tmp_path / "artifacts" / "messages" / "build-sklearn.txt") in written
    assert (tmp_path / "artifacts" / "messages" / "build-sklearn.txt").read_text() == "z" * 5_000
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_only_json_writes_no_message_file(tmp_path):
    report = copy.deepcopy(REPORT)
    report["steps"][2].update(status="error", reason="z" * 5_000)
    write_reports(report, tmp_path, ["json"])
    assert not (tmp_path / "artifacts" / "messages").exists()


def test_notes_of_a_recovered_run_are_shown():
    report = copy.deepcopy(REPORT)
    report["run"]["notes"] = ["cache entry of predict:onnx was damaged (size); recomputed"]
    markdown = render(report, "markdown")
    html = render(report, "html")
    assert "### What this run recovered from\n- cache entry of predict:onnx" in markdown
    assert "<li>cache entry of predict:onnx was damaged (size); recomputed</li>" in html
    report["run"]["notes"] = []
    assert "recovered" not in render(report, "markdown") + render(report, "html")


def test_a_message_an_earlier_run_wrote_is_removed(tmp_path):
    """A report folder written again keeps only this run's long messages."""
    report = copy.deepcopy(REPORT)
    report["steps"][2].update(status="error", reason="z" * 5_000, exit_code=3)
    write_reports(report, tmp_path, ["json", "markdown"])
    message = tmp_path / "artifacts" / "messages" / "build-sklearn.txt"
    assert message.is_file()
    keep = tmp_path / "artifacts" / "messages" / "notes.md"  # not a message: left alone
    keep.write_text("mine")
    write_reports(copy.deepcopy(REPORT), tmp_path, ["json", "markdown"])
    assert not message.exists() and keep.read_text() == "mine"
