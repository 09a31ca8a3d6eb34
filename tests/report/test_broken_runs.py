"""Runs that break while running (exit 2 or 3): JUnit shows the failing step as an error, and
a 170 KB error message stays readable on the terminal and in every report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from junitparser import Error, JUnitXml, Skipped

from parityspec.cli import cli
from parityspec.report.fit import MARKDOWN_LIMIT
from parityspec.report.messages import REPORT_CHARS
from tests.report.helpers import model_file_spec, write_spec

# A converter's error as it can come: one line of 170 KB or more.
HUGE = "converter failed: " + "; ".join(f"node {i}: op Foo<{i}> unsupported" for i in range(5000))
BUILDER = f"def build():\n    raise RuntimeError({HUGE!r})\n"


def _run(folder: Path, spec: dict):
    path = write_spec(folder, spec)
    result = CliRunner().invoke(cli, ["run", str(path)], catch_exceptions=False)
    return result, folder / "out"


@pytest.fixture(scope="module")
def step_fault(tmp_path_factory, model_files):
    """Exit 3: backend b's builder raises the huge error."""
    folder = tmp_path_factory.mktemp("fault")
    (folder / "builder.py").write_text(BUILDER)
    b = {"kind": "sklearn", "train": f"{folder / 'builder.py'}:build"}
    return _run(folder, model_file_spec(model_files, b=b))


@pytest.fixture(scope="module")
def invalid_model(tmp_path_factory, model_files):
    """Exit 2 while running: backend b's ONNX file is not a model."""
    folder = tmp_path_factory.mktemp("invalid")
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    b = {"kind": "onnx", "path": str(folder / "model.onnx")}
    return _run(folder, model_file_spec(model_files, b=b))


@pytest.mark.parametrize(
    ("run", "code", "step", "kind", "message"),
    [
        ("step_fault", 3, "build:b", "step error", "RuntimeError: converter failed: node 0"),
        ("invalid_model", 2, "load:b", "invalid input", "not a loadable ONNX model"),
    ],
)
def test_junit_reports_the_failing_step_as_an_error(request, run, code, step, kind, message):
    result, out = request.getfixturevalue(run)
    assert result.exit_code == code, result.output
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    suites = list(xml)
    assert len(suites) == 1
    cases = {case.name: case for case in suites[0]}
    assert list(cases) == [step, "labels"]  # the cause first, then the checks
    (error,) = cases[step].result
    assert isinstance(error, Error)
    assert error.type == kind and message in error.message and message in error.text
    assert [type(r) for r in cases["labels"].result] == [Skipped]
    assert (suites[0].tests, suites[0].errors, suites[0].skipped) == (2, 1, 1)
    report = json.loads((out / "report.json").read_text())
    assert [s["id"] for s in report["steps"] if s["status"] == "error"] == [step]


def test_the_terminal_line_is_cut(step_fault):
    result, _ = step_fault
    (line,) = [line for line in result.output.splitlines() if "build:b" in line and "ERROR" in line]
    assert "RuntimeError: converter failed: node 0" in line
    assert len(line) <= 400 and f"({len('RuntimeError: ' + HUGE):,} characters in all)" in line
    assert max(len(line) for line in result.output.splitlines()) <= 400


def test_report_json_keeps_the_whole_message(step_fault):
    _, out = step_fault
    report = json.loads((out / "report.json").read_text())
    (step,) = [s for s in report["steps"] if s["id"] == "build:b"]
    assert step["reason"] == f"RuntimeError: {HUGE}" and step["exit_code"] == 3


def test_markdown_and_html_cut_the_message_and_link_its_whole_text(step_fault):
    _, out = step_fault
    whole = out / "artifacts" / "messages" / "build-b.txt"
    assert whole.read_text() == f"RuntimeError: {HUGE}"
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "([full text](artifacts/messages/build-b.txt))" in markdown
    assert '<a href="artifacts/messages/build-b.txt">full text</a>' in html
    ET.fromstring(html)  # still well-formed XHTML
    for text in (markdown, html, (out / "junit.xml").read_text()):
        assert "node 0: op Foo" in text
        assert "; node 4999:" not in text  # the end of the message is only in the file
        assert len(text) < 4 * REPORT_CHARS + 12_000  # the message at most twice, cut
    assert len(markdown.encode()) <= MARKDOWN_LIMIT
