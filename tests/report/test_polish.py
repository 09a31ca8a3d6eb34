"""How figures read in report.md and report.html: 4 significant digits, NaN and Inf by name,
confusion matrices as tables, unmatched layers' reasons in plain sight."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from parityspec.report.render import format_number, format_value, render
from tests.conftest import REPO

REPORT = json.loads((REPO / "tests/data/golden/churn_forest.report.json").read_text())


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.2500001788139343, "0.25"),
        (0.0799998211860657, "0.08"),
        (1.5668e-06, "1.567e-06"),
        (123456.7, "1.235e+05"),
        (1200, "1200"),
        (float("nan"), "NaN"),
        (float("inf"), "Inf"),
        (float("-inf"), "-Inf"),
        ("nan", "NaN"),  # report.json's form: JSON has no NaN
        ("inf", "Inf"),
        ("-inf", "-Inf"),
        ([0.33, 0.7499998211860657, "nan"], "[0.33, 0.75, NaN]"),
        (None, "-"),
        (True, "True"),
    ],
)
def test_a_figure_has_4_significant_digits_and_nan_inf_by_name(value, shown):
    assert format_number(value) == shown


def test_a_data_value_is_shown_as_it_is_and_a_missing_one_as_nan():
    assert [format_value(v) for v in (None, 37.0, "dsl", math.nan, 10)] == [
        "NaN",
        "37.0",
        "dsl",
        "NaN",
        "10",
    ]


def nonfinite_report() -> dict:
    """The golden report with NaN and Inf figures, as a run holds them (floats) and as
    report.json does (strings)."""
    report = copy.deepcopy(REPORT)
    parity = next(c for c in report["checks"] if c["id"] == "onnx-parity")
    parity["figures"].update(max_abs_diff=math.nan, mean_abs_diff="nan", p99_abs_diff=math.inf)
    parity["gates"][0]["value"] = math.nan
    parity["details"]["worst_samples"][0]["candidate"] = [math.nan, "inf"]
    return report


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_nan_and_inf_never_show_as_none_or_lower_case(fmt):
    text = render(nonfinite_report(), fmt)
    figure = {"markdown": "| max_abs_diff | NaN |", "html": '<td class="num">NaN</td>'}[fmt]
    assert figure in text
    assert "[NaN, Inf]" in text
    assert not re.search(r"(?<![\w-])(None|nan|inf)(?![\w-])", text)


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_full_precision_stays_out_of_the_human_reports(fmt):
    text = render(REPORT, fmt)
    assert "0.2500001788139343" not in text and "[0.25, 0.75]" in text
    assert "0.2500001788139343" in render(REPORT, "json")


def test_the_confusion_matrix_is_a_markdown_table():
    markdown = render(REPORT, "markdown")
    assert (
        "| sklearn ↓ onnx → | 0 | 1 |\n|---|---:|---:|\n| **0** | 1133 | 6 |\n| **1** | 0 | 61 |"
    ) in markdown
    assert "\t" not in markdown


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_a_confusion_matrix_with_rows_without_a_label_names_that_row(fmt):
    """NaN or Inf rows have no label: the matrix grows a row and a column, named for it."""
    report = copy.deepcopy(REPORT)
    labels = next(c for c in report["checks"] if c["details"].get("confusion_matrix"))
    labels["details"]["confusion_matrix"] = [[1133, 5, 1], [0, 61, 0], [0, 0, 0]]
    labels["details"]["confusion_labels"] = ["0", "1", "(no label)"]
    text = render(report, fmt)
    shown = {"markdown": "| **(no label)** | 0 | 0 | 0 |", "html": "says (no label)"}[fmt]
    assert shown in text


def many_rows_with_an_unmatched_one() -> dict:
    """The step-drift table grown past 12 rows (the Markdown then folds it), one unmatched."""
    report = copy.deepcopy(REPORT)
    drift = next(c for c in report["checks"] if c["id"] == "onnx-steps")
    rows = drift["details"]["rows"]
    extra = [dict(rows[0], name=f"extra/{i}") for i in range(12)]
    lost = dict(
        rows[0],
        name="classifier/calibrate",
        status="unmatched",
        max_abs_diff=None,
        mean_abs_diff=None,
        reason="no ONNX node carries this module's scope",
    )
    drift["details"]["rows"] = rows + extra + [lost]
    drift["details"]["unmatched"] = [{"name": lost["name"], "reason": lost["reason"]}]
    return report


def outside_details(text: str) -> str:
    return re.sub(r"<details>.*?</details>", "", text, flags=re.S)


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_unmatched_reasons_are_not_folded_away(fmt):
    text = outside_details(render(many_rows_with_an_unmatched_one(), fmt))
    assert "calibrate" in text
    assert "no ONNX node carries this module" in text


def test_html_shows_every_drift_row_with_its_note():
    html = outside_details(render(REPORT, "html"))
    assert (
        '<code>preprocess/numeric/scale</code></td><td>StandardScaler</td><td class="bad">over'
    ) in html
    assert html.count("max abs 9.54e-07 &gt; tolerance 1e-07") == 3
