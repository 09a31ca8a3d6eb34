"""Report rendering: golden files for each format, and user templates that override them."""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from parityspec.checks import CHECKS
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


def test_each_probability_parity_check_writes_its_seed_artifact(tmp_path):
    """Declared by the check module (`artifacts`), written with any format."""
    report = copy.deepcopy(REPORT)
    skipped = next(c for c in report["checks"] if c["id"] == "int8-parity")
    skipped.update(status="skipped", figures={}, gates=[])
    written = write_reports(report, tmp_path, ["markdown"])
    seed = tmp_path / "artifacts" / "onnx-parity" / "parity_report.json"
    assert seed in written and not (tmp_path / "artifacts" / "int8-parity").exists()
    assert json.loads(seed.read_text()) == {
        "samples": 1200,
        "max_abs_diff": 0.07999982118606569,
        "mean_abs_diff": 0.0031000122876837827,
        "abs_tol": 0.04,
        "mean_tol": 0.01,
        "passed": False,
    }


def test_a_check_artifact_outside_its_folder_writes_nothing(tmp_path, monkeypatch):
    module = SimpleNamespace(artifacts=lambda entry: {"../../report.json": {}})
    monkeypatch.setitem(CHECKS, "label_agreement", module)
    with pytest.raises(ValueError, match=r"artifact '../../report.json' is outside"):
        write_reports(REPORT, tmp_path / "out", ["json"])
    assert not (tmp_path / "out").exists()


def test_html_shows_each_worst_samples_features():
    html = render(REPORT, "html")
    check = next(c for c in REPORT["checks"] if c["details"].get("worst_samples"))
    sample = check["details"]["worst_samples"][0]
    name, _value = sorted(sample["features"].items())[0]
    assert "<th>features</th>" in html
    assert f"{name}=" in html


def test_html_draws_each_rows_own_error_as_a_dashed_curve():
    report = copy.deepcopy(REPORT)
    rows = [
        {
            "name": n,
            "type": "Conv2d",
            "status": "over",
            "max_abs_diff": d,
            "own_max_abs_diff": o,
            "own_status": "over" if o > 1e-4 else "ok",
            "mean_abs_diff": d / 2,
            "sqnr_db": 60.0,
            "reason": None,
            "layout": None,
        }
        for n, d, o in (("stem", 1e-7, 1e-7), ("blocks.4.conv1", 3e-2, 3e-2), ("fc", 1e-2, 2e-7))
    ]
    report["checks"].append(
        {
            **report["checks"][0],
            "id": "layers",
            "type": "layer_drift",
            "tolerances": {"layer_tol": 1e-4},
            "details": {"rows": rows, "origin": "blocks.4.conv1"},
        }
    )
    html = render(report, "html")
    assert '<polyline class="curve own"' in html
    assert "dashed: each row's own error" in html


def test_a_batch_dependent_backends_sentence_names_an_input_search_that_predicted_alone():
    report = copy.deepcopy(REPORT)
    name = next(iter(report["backends"]))
    report["backends"][name]["batch_rows"] = 4096
    report["checks"].append(
        {
            **report["checks"][0],
            "id": "search",
            "type": "input_search",
            "details": {"search": {"predicted_row_by_row": [name]}},
        }
    )
    for fmt in ("markdown", "html"):
        text = render(report, fmt)
        assert "its figures hold for batches of 4096 rows (" in text
        assert "predicted one row at a time)." in text
    report["checks"][-1]["details"]["search"]["predicted_row_by_row"] = []
    assert "one row at a time" not in render(report, "markdown")
