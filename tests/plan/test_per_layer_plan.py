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
    checks = {c["id"]: c for c in report["checks"]}
    assert {k: c["status"] for k, c in checks.items()} == {
        "onnx-layers": "passed",
        "int8-tensors": "passed",
    }
    # The README's figures for the static QDQ form: every tensor matched (issue 16.8), the
    # second Conv compared before its Q/DQ, its ReLU adding half a quantization step.
    tensors = checks["int8-tensors"]
    assert (
        tensors["figures"]["tensors_matched"] == 8 and tensors["figures"]["tensors_unmatched"] == 0
    )
    rows = tensors["details"]["rows"]
    convs = [k for k, r in enumerate(rows) if r["type"] == "Conv"]
    conv, relu = rows[convs[1]], rows[convs[1] + 1]
    assert relu["type"] == "Relu" and relu["onnx_value"].endswith("_DequantizeLinear_Output")
    assert 1.0e-2 < conv["rel_diff"] < 1.5e-2 and 3.5e-3 < conv["own_rel_diff"] < 5.5e-3
    assert 1.5e-3 < relu["own_rel_diff"] < 2.5e-3
