"""Report rendering: golden files for each format, and user templates that override them."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from parityspec.report.render import render, write_reports
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "data" / "golden"
REPORT = json.loads((GOLDEN / "churn_forest.report.json").read_text())


@pytest.mark.parametrize(
    ("fmt", "golden"), [("markdown", "churn_forest.report.md"), ("junit", "churn_forest.junit.xml")]
)
def test_rendering_matches_the_golden_file(fmt, golden):
    """A failing run with every kind of detail: worst samples, a confusion matrix, a
    per-step drift table, an inert INT8 model. UPDATE_GOLDEN=1 rewrites the files."""
    text = render(REPORT, fmt)
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text()


def test_json_rendering_round_trips():
    assert json.loads(render(REPORT, "json")) == REPORT


def test_markdown_names_the_failure_its_figure_and_tolerance():
    markdown = render(REPORT, "markdown")
    assert "❌ `onnx-parity`" in markdown
    assert "**max_abs_diff = 0.08**" in markdown and "<= abs_tol 0.04" in markdown
    assert "**Drift origin: `preprocess/numeric/scale`**" in markdown
    assert "quantization changed nothing" in markdown


def test_junit_has_one_failing_testcase_per_failed_check():
    suite = ET.fromstring(render(REPORT, "junit"))
    cases = suite.iter("testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {c["id"] for c in REPORT["checks"] if c["status"] == "failed"}


def test_a_user_template_overrides_the_built_in_one(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text("{{ report.spec.name }}: {{ report.verdict }}\n")
    written = write_reports(REPORT, tmp_path / "out", ["json", "markdown", "junit"], templates)
    assert (tmp_path / "out" / "report.md").read_text() == "churn-forest: failed\n"
    # The formats it does not override still come from the built-in templates.
    assert (tmp_path / "out" / "junit.xml").read_text() == render(REPORT, "junit")
    assert {p.name for p in written} >= {"report.json", "report.md", "junit.xml"}


def test_a_broken_template_writes_nothing(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text("{{ report.no_such_key.x }}\n")
    with pytest.raises(Exception, match="no_such_key"):
        write_reports(REPORT, tmp_path / "out", ["json", "markdown"], templates)
    assert not (tmp_path / "out" / "report.json").exists()
