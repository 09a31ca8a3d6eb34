"""`run --fail-fast` within a spec: after the first check that fails, the spec's remaining
steps are skipped with the reason "--fail-fast" and its reports are still written."""

from __future__ import annotations

import json

from tests.cli.test_baseline import write_spec


def test_the_steps_after_the_first_failing_check_are_skipped(invoke, tmp_path):
    spec = write_spec(tmp_path, abs_tol=1e-300)  # `parity` fails; `labels` comes after it
    result = invoke("run", spec, "--fail-fast")
    assert result.exit_code == 1, result.output
    assert "demo: failed (0 of 2 checks passed) -> exit 1" in result.stdout.splitlines()
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    checks = {c["id"]: (c["status"], c["reason"]) for c in report["checks"]}
    assert checks["parity"][0] == "failed"
    assert checks["labels"] == ("skipped", "--fail-fast")
    (step,) = [s for s in report["steps"] if s["id"] == "check:labels"]
    assert (step["status"], step["reason"]) == ("skipped", "--fail-fast")
    markdown = (tmp_path / "reports" / "report.md").read_text()
    assert "| `check:labels` | skipped | --fail-fast |" in markdown


def test_without_fail_fast_every_check_runs(invoke, tmp_path):
    spec = write_spec(tmp_path, abs_tol=1e-300)
    result = invoke("run", spec, "--quiet")
    assert result.exit_code == 1
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert [c["status"] for c in report["checks"]] == ["failed", "passed"]


def test_a_passing_spec_runs_every_check_with_fail_fast(invoke, tmp_path):
    spec = write_spec(tmp_path)
    result = invoke("run", spec, "--fail-fast", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert [c["status"] for c in report["checks"]] == ["passed", "passed"]
