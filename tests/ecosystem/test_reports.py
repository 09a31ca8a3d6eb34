"""JUnit and HTML reports, and the Markdown report appended to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml
from click.testing import CliRunner

from parityspec.cli import cli
from parityspec.report.plots import build_plots
from parityspec.report.render import render
from tests.conftest import REPO, SPECS

FORMATS = ["json", "markdown", "junit", "html"]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """One real run of the iris spec with every report format, under GITHUB_STEP_SUMMARY."""
    folder = tmp_path_factory.mktemp("iris")
    spec = yaml.safe_load((SPECS / "iris.yaml").read_text())
    for backend in spec["backends"].values():
        if "train" in backend:
            backend["train"] = backend["train"].replace("../", f"{REPO}/")
    spec["report"] = {"dir": "out", "formats": FORMATS}
    path = folder / "iris.yaml"
    path.write_text(yaml.safe_dump(spec))
    summary = folder / "summary.md"
    summary.write_text("previous step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary), "PARITYSPEC_CACHE_DIR": str(folder / "cache")}
    result = CliRunner().invoke(cli, ["run", str(path)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder / "out", summary


def test_every_format_is_written(iris_run):
    out, _ = iris_run
    assert {p.name for p in out.iterdir() if p.is_file()} == {
        "report.json",
        "report.md",
        "junit.xml",
        "report.html",
    }


def test_step_summary_gets_the_markdown_report_appended(iris_run):
    out, summary = iris_run
    text = summary.read_text()
    assert text.startswith("previous step\n")
    assert (out / "report.md").read_text() in text


def test_junit_has_one_testcase_per_check(iris_run):
    out, _ = iris_run
    root = ET.parse(out / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("tests") == "4"
    report = json.loads((out / "report.json").read_text())
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [c["id"] for c in report["checks"]]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)


def test_junit_failure_error_and_skipped(iris_run):
    out, _ = iris_run
    report = json.loads((out / "report.json").read_text())
    report = _with_statuses(report, ["failed", "error", "skipped", "passed"])
    root = ET.fromstring(render(report, "junit").encode())
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    first, second, third, _ = suite.findall("testcase")
    failure = first.find("failure")
    gate = report["checks"][0]["gates"][0]
    assert failure.get("message") == f"{gate['figure']} = 0.5 < {gate['limit']} 1"
    assert second.find("error").get("message") == "boom <&> 'quoted'"
    assert third.find("skipped").get("message") == "upstream step did not finish"


def test_html_is_self_contained_and_well_formed(iris_run):
    out, _ = iris_run
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3  # a histogram and two confusion matrices
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)  # only in-page links
    root = ET.fromstring(html)  # the template writes well-formed XHTML
    assert root.find(".//style") is not None and root.find(".//script") is None


def test_plots_mark_the_drift_origin_and_tolerance():
    rows = [
        {"name": "conv1", "type": "Conv2d", "status": "ok", "max_abs_diff": 1e-7},
        {"name": "bn2", "type": "BatchNorm2d", "status": "over", "max_abs_diff": 0.3},
        {"name": "fused", "type": None, "status": "unmatched", "max_abs_diff": None},
        {"name": "fc", "type": "Linear", "status": "over", "max_abs_diff": 0.5},
    ]
    check = {
        "id": "layers",
        "between": ["torch", "onnx"],
        "tolerances": {"layer_tol": 1e-4},
        "details": {"rows": rows, "origin": "bn2"},
    }
    drift = build_plots({"checks": [check]})["layers"]["drift"]
    xs = [p["cx"] for p in drift["points"]]
    assert xs == sorted(xs) and len(xs) == 4
    assert drift["origin"]["line"]["x1"] == xs[1] and "bn2" in drift["origin"]["label"]["text"]
    heights = [p["cy"] for p in drift["points"]]
    assert heights[0] > drift["limit"]["line"]["y1"] > heights[1] > heights[3]  # y grows down
    assert drift["curve"].count(",") == 3  # the unmatched row is not on the curve


def test_histogram_keeps_zeros_apart_and_marks_the_tolerance():
    check = {
        "id": "p",
        "between": ["a", "b"],
        "tolerances": {"abs_tol": 0.04},
        "details": {"histogram": [[0.0, 10], [1e-6, 3], [0.01, 1], ["inf", 1]]},
    }
    plot = build_plots({"checks": [check]})["p"]["histogram"]
    zero = next(b for b in plot["bars"] if b["kind"] == "zero")
    logs = [b for b in plot["bars"] if not b["kind"]]
    assert len(logs) == 3 and zero["x"] < min(b["x"] for b in logs)
    assert min(b["h"] for b in logs) > 0  # a single count is still visible
    assert plot["limit"]["label"]["text"] == "abs_tol 0.04"


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium for a real rendering")
def test_html_renders_in_a_headless_browser(iris_run, tmp_path):
    out, _ = iris_run
    png = tmp_path / "report.png"
    command = [
        shutil.which("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,1600",
        (out / "report.html").resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _with_statuses(report: dict, statuses: list[str]) -> dict:
    """The same report with its checks' verdicts replaced, as a failed run would have them."""
    report = copy.deepcopy(report)
    for check, status in zip(report["checks"], statuses, strict=True):
        check["status"], check["passed"] = status, status == "passed"
    failed, errored, skipped, _ = report["checks"]
    failed["gates"][0].update(value=0.5, limit_value=1.0, ok=False, op=">=")
    errored.update(gates=[], reason="boom <&> 'quoted'")
    skipped.update(gates=[], reason="upstream step did not finish")
    report["summary"].update(passed=1, failed=1, error=1, skipped=1)
    return report
