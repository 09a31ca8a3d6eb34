"""The bundled search spec finds what the README says: on the churn forest's ONNX export, a
row not in the data, one feature beside a split threshold, shrunk to that one move."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import REPO, SPECS


@pytest.mark.slow
def test_the_churn_forest_search_finds_a_threshold_crossing_row(invoke, tmp_path) -> None:
    result = invoke("run", SPECS / "churn_forest_search.yaml", "--out", tmp_path)
    assert result.exit_code == 1, result.output
    (check,) = json.loads((tmp_path / "report.json").read_text())["checks"]
    minimal = check["details"]["minimal_counterexample"]
    ((column, label),) = minimal["moved"].items()
    assert column == "support_calls"
    assert "at split threshold 2.49999997 of tree" in label and "float64 side below" in label
    assert minimal["abs_diff"] == pytest.approx(0.09, abs=0.005)
    assert check["details"]["search"]["ended_by"] == "max_examples"
    assert check["figures"]["failing_rows"] == 8
    # Not a row of the data: support_calls there are whole numbers.
    data = pd.read_csv(REPO / "examples" / "churn" / "churn.csv")
    assert minimal["features"][column] not in set(data[column].dropna())
    worst = max(w["abs_diff"] for w in check["details"]["worst_samples"])
    assert worst == pytest.approx(0.11, abs=0.005)
