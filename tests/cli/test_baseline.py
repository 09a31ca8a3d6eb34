"""`run --baseline`: one command that runs and gates on the diff with an earlier report.json;
the comparison in report.json, report.md and report.html; bad baselines refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

MODELS = REPO / "tests" / "data" / "valid" / "models.py"


def write_spec(
    folder: Path,
    name: str = "demo",
    abs_tol: float | None = None,
    formats: str = "json, markdown, html",
) -> Path:
    """sklearn against its ONNX export on breast_cancer, with every report format; `abs_tol`
    below the conversion's error makes the check fail."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MODELS, folder / "models.py")
    override = f", abs_tol: {abs_tol}" if abs_tol is not None else ""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"parityspec: 1\nname: {name}\n"
        "data: {sklearn: breast_cancer}\nmodel: {task: binary}\n"
        "backends:\n  sklearn: {kind: sklearn, train: models.py:logistic}\n"
        "  onnx: {kind: onnx, from: sklearn}\n"
        "checks:\n"
        f"  - {{id: parity, type: probability_parity, between: [sklearn, onnx]{override}}}\n"
        "  - {id: labels, type: label_agreement, between: [sklearn, onnx]}\n"
        f"report: {{dir: reports, formats: [{formats}]}}\n",
        encoding="utf-8",
    )
    return path


def improved(report: Path, target: Path) -> Path:
    """The report with `parity`'s max_abs_diff set to 0: the new run's is worse than that."""
    document = json.loads(report.read_text())
    (parity,) = [c for c in document["checks"] if c["id"] == "parity"]
    for gate in parity["gates"]:
        if gate["figure"] == "max_abs_diff":
            gate["value"] = 0.0
    target.write_text(json.dumps(document))
    return target


@pytest.fixture
def baseline(invoke, tmp_path) -> Path:
    spec = write_spec(tmp_path / "old")
    assert invoke("run", spec, "--quiet").exit_code == 0
    return tmp_path / "old" / "reports" / "report.json"


def test_an_unchanged_run_passes_and_report_json_holds_the_comparison(invoke, tmp_path, baseline):
    spec = write_spec(tmp_path / "new")
    result = invoke("run", spec, "--baseline", baseline, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "demo: passed (2 of 2 checks passed) -> exit 0",
        f"against the baseline {baseline}: 2 checks, 0 changed, 0 stopped passing, "
        "0 figure(s) worse by more than 0 -> exit 0",
    ]
    section = json.loads((tmp_path / "new/reports/report.json").read_text())["baseline"]
    assert section["file"] == str(baseline)
    assert section["sha256"] == hashlib.sha256(baseline.read_bytes()).hexdigest()
    assert (section["failing"], section["exit_code"], section["threshold"]) == (False, 0, 0.0)
    assert [(c["id"], c["changed"]) for c in section["checks"]] == [
        ("parity", False),
        ("labels", False),
    ]


def test_report_json_is_the_same_bytes_outside_run_for_the_same_inputs(invoke, tmp_path, baseline):
    better = improved(baseline, tmp_path / "better.json")
    spec = write_spec(tmp_path / "new")
    bodies = []
    for out in ("r1", "r2"):
        assert invoke("run", spec, "--baseline", better, "--out", tmp_path / out).exit_code == 1
        document = json.loads((tmp_path / out / "report.json").read_text())
        del document["run"]  # timestamps and timings
        bodies.append(json.dumps(document, sort_keys=True))
    assert bodies[0] == bodies[1]
    assert '"baseline"' in bodies[0]


def test_a_worse_figure_fails_the_command_and_shows_in_every_report(invoke, tmp_path, baseline):
    better = improved(baseline, tmp_path / "better.json")
    spec = write_spec(tmp_path / "new")
    result = invoke("run", spec, "--baseline", better)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    # the run's own verdict line keeps the run's code; the comparison's line gives its own
    assert "demo: passed (2 of 2 checks passed) -> exit 0" in lines
    assert any(line.strip().startswith("max_abs_diff") and "WORSE" in line for line in lines)
    assert lines[lines.index("demo: passed (2 of 2 checks passed) -> exit 0") + 3].endswith(
        "1 figure(s) worse by more than 0 -> exit 1"
    )
    reports = tmp_path / "new" / "reports"
    report = json.loads((reports / "report.json").read_text())
    assert (report["verdict"], report["exit_code"]) == ("passed", 0)
    assert (report["baseline"]["failing"], report["baseline"]["exit_code"]) == (True, 1)
    (parity,) = [c for c in report["baseline"]["checks"] if c["id"] == "parity"]
    (figure,) = [f for f in parity["figures"] if f["name"] == "max_abs_diff"]
    assert (figure["old"], figure["worsened"], figure["op"]) == (0.0, True, "<=")
    markdown = (reports / "report.md").read_text()
    assert "### ❌ Against the baseline" in markdown
    assert "| `parity` | passed | max_abs_diff | 0 |" in markdown and "❌ worse" in markdown
    html = (reports / "report.html").read_text()
    assert 'id="baseline"' in html and "Against the baseline" in html and ">worse<" in html


def test_junit_has_the_baseline_gate_as_a_testcase(invoke, tmp_path, baseline):
    """Failing when the comparison fails, though every check passed: CI shows why it is red."""
    from junitparser import Failure, JUnitXml

    better = improved(baseline, tmp_path / "better.json")
    cases = {}
    for name, against, code in (("same", baseline, 0), ("worse", better, 1)):
        spec = write_spec(tmp_path / name, formats="json, junit")
        assert invoke("run", spec, "--baseline", against, "--quiet").exit_code == code
        (suite,) = JUnitXml.fromfile(str(tmp_path / name / "reports" / "junit.xml"))
        assert (suite.tests, suite.failures) == (3, code)
        cases[name] = {case.name: case for case in suite}
        assert set(cases[name]) == {"parity", "labels", "baseline"}
    assert cases["same"]["baseline"].is_passed
    (failure,) = cases["worse"]["baseline"].result
    assert isinstance(failure, Failure)
    assert failure.message == (
        f"against {better}: 2 checks, 1 changed, 0 stopped passing, "
        "1 figure(s) worse by more than 0 -> exit 1"
    )
    assert "max_abs_diff 0 -> " in failure.text and "WORSE" in failure.text
    assert all(cases["worse"][c].is_passed for c in ("parity", "labels"))


def test_threshold_allows_a_small_move(invoke, tmp_path, baseline):
    better = improved(baseline, tmp_path / "better.json")
    spec = write_spec(tmp_path / "new")
    result = invoke("run", spec, "--baseline", better, "--threshold", "0.01", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("worse by more than 0.01 -> exit 0")
    markdown = (tmp_path / "new/reports/report.md").read_text()
    assert "### ✅ Against the baseline" in markdown


def test_the_exit_code_is_the_worse_of_the_run_and_the_comparison(invoke, tmp_path, baseline):
    spec = write_spec(tmp_path / "new", abs_tol=1e-300)  # the parity check now fails
    result = invoke("run", spec, "--baseline", baseline, "--quiet")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "demo: failed (1 of 2 checks passed) -> exit 1"
    assert "1 stopped passing" in lines[1]
    markdown = (tmp_path / "new/reports/report.md").read_text()
    assert "passed -> failed REGRESSED" in markdown


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "--baseline: cannot read report:"),
        ('{"checks": 3}', "--baseline: not a parityspec report.json (no `checks` list)"),
        ('{"checks": []}', "--baseline: not a parityspec report.json (no `parityspec."),
        (
            '{"parityspec": {"report_format": 1}, "checks": [{"id": "x"}]}',
            "--baseline: not a parityspec report.json",
        ),
        (None, "--baseline: not a regular file"),
    ],
)
def test_a_bad_baseline_is_one_line_and_exit_2_before_any_step(invoke, tmp_path, content, message):
    spec = write_spec(tmp_path / "new")
    bad = tmp_path / "bad.json"
    if content is None:
        bad.mkdir()
    else:
        bad.write_text(content)
    result = invoke("run", spec, "--baseline", bad)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {bad}: {message}")
    assert line.endswith(
        "(hint: give --baseline the report.json that `parityspec run` wrote for this spec)"
    )
    assert not (tmp_path / "new" / "reports").exists()


def test_a_missing_baseline_says_so(invoke, tmp_path):
    spec = write_spec(tmp_path / "new")
    result = invoke("run", spec, "--baseline", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.json'}: --baseline: no such file")


def test_baseline_with_several_specs_is_refused_with_a_hint(invoke, tmp_path, baseline):
    first, second = write_spec(tmp_path / "a"), write_spec(tmp_path / "b")
    result = invoke("run", first, second, "--baseline", baseline)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --baseline names one spec's report.json, and several specs were given "
        "(hint: run each spec with its own --baseline, or `parityspec diff` the reports)\n"
    )
    assert not (tmp_path / "a" / "reports").exists()
