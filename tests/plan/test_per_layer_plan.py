"""Issue 18.6: a spec whose checks are all per-layer / per-tensor runs no full predict step;
those checks judge NaN or Inf in the final outputs from their own runs of the models."""

from __future__ import annotations

import json

import pytest

from parityspec.plan.compile import compile_plan
from parityspec.spec.load import load_spec
from tests.conftest import SPECS

PER_LAYER = ["--check", "onnx-layers", "--check", "int8-tensors"]


@pytest.fixture(scope="module")
def cnn():
    return load_spec(SPECS / "cnn.yaml").spec


def test_per_layer_checks_plan_no_predict_step(cnn):
    ids = compile_plan(cnn, ["onnx-layers", "int8-tensors"]).ids
    assert not [i for i in ids if i.startswith("predict:")]
    assert {"build:torch", "export:onnx", "quantize:int8", "check:onnx-layers"} <= set(ids)


def test_output_checks_still_plan_their_predict_steps(cnn):
    ids = compile_plan(cnn, ["onnx-logits", "onnx-layers"]).ids
    assert {"predict:torch", "predict:onnx"} <= set(ids) and "predict:int8" not in ids


def test_plan_command_lists_no_predict_step(invoke):
    result = invoke("plan", SPECS / "cnn.yaml", *PER_LAYER)
    assert result.exit_code == 0, result.output
    assert "check:onnx-layers" in result.output and "predict:" not in result.output


def test_run_executes_no_predict_step_and_passes(invoke, tmp_path):
    result = invoke("run", SPECS / "cnn.yaml", *PER_LAYER, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    steps = [s["id"] for s in report["steps"]]
    assert "check:int8-tensors" in steps and not [s for s in steps if s.startswith("predict:")]
    assert {c["id"]: c["status"] for c in report["checks"]} == {
        "onnx-layers": "passed",
        "int8-tensors": "passed",
    }
