"""step_drift on a boosting family: the re-conversion it compares with goes through the same
converters as the export, so it names where the float32 effect arises."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO

pytest.importorskip("xgboost")


def test_step_drift_names_the_scaler_behind_xgboost(invoke, tmp_path):
    """XGBoost splits at training values; the ONNX scaler's float32 rounding crosses them."""
    result = invoke("run", REPO / "specs" / "churn_xgboost_scaled.yaml", "--out", tmp_path)
    assert result.exit_code == 1, result.output
    checks = {c["id"]: c for c in json.loads((tmp_path / "report.json").read_text())["checks"]}
    steps = checks["onnx-steps"]
    assert steps["figures"]["steps_unmatched"] == 0
    assert steps["details"]["origin"] == "preprocess/numeric/scale"
