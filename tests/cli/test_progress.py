"""The live progress line counts the steps `plan` lists, and rows/s shows only where a model
predicted rows."""

from __future__ import annotations

import io
import json

import numpy as np
from rich.console import Console

from parityspec.api import prepare
from parityspec.backends.base import Predictions
from parityspec.checks.base import CheckResult
from parityspec.cli_output import live_steps, progress
from parityspec.plan.graph import Step
from parityspec.results import StepOutcome
from tests.conftest import SPECS


def test_the_live_line_counts_the_steps_plan_lists(invoke):
    listed = json.loads(invoke("plan", SPECS / "churn.yaml", "--format", "json").stdout)
    ids = [step["id"] for step in listed["steps"]]
    planned = [step.id for step in prepare(SPECS / "churn.yaml").plan.steps]
    assert planned == ids  # what cli._run_one hands the live line
    assert progress(planned, 0) == f"[1/{len(ids)}] data:load"
    run_steps = len(prepare(SPECS / "churn.yaml").step_ids)  # every step but the report
    assert progress(planned, run_steps) == f"[{len(ids)}/{len(ids)}] report: writing reports"


def test_rows_per_second_only_on_prediction_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    predict = StepOutcome(
        Step("predict:onnx", "predict"),
        "ok",
        Predictions("onnx", {"probabilities": np.zeros((1200, 2))}),
        seconds=0.5,
    )
    result = CheckResult("passed", "max 0.01 <= 0.1", figures={"samples": 1200})
    check = StepOutcome(Step("check:parity", "check"), "ok", result, seconds=0.25)
    with live_steps(["predict:onnx", "check:parity", "report"], console) as show:
        show(predict)
        show(check)
    lines = out.getvalue().splitlines()
    (predict_line,) = [line for line in lines if "predict:onnx" in line and "0.50s" in line]
    (check_line,) = [line for line in lines if "check:parity" in line and "0.25s" in line]
    assert "1200 rows, 2,400 rows/s" in predict_line
    assert "rows" not in check_line and "max 0.01 <= 0.1" in check_line
