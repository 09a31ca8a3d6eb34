"""The ONNX reference evaluator as an oracle (`kind: onnx_reference`, issue 16.5): it runs
the same graph as ONNX Runtime in numpy, so a report tells the runtime's kernel error from
the conversion's. Row-limited; an op it cannot run is exit 2 naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from parityspec.errors import ExitCode
from tests.conftest import REPO, SPECS


def _figures(folder) -> dict[str, dict]:
    report = json.loads((folder / "report.json").read_text())
    return {c["id"]: c["figures"] for c in report["checks"]}


def test_churn_mlp_the_oracle_agrees_with_both_sides(invoke, tmp_path):
    result = invoke("run", SPECS / "churn_oracle.yaml", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    figures = _figures(tmp_path)
    # Both gaps are float32 rounding: neither the conversion nor the kernels add more.
    assert 0 < figures["conversion"]["max_abs_diff"] < 1e-6
    assert figures["kernels"]["max_abs_diff"] < 1e-6
    assert figures["kernels"]["samples"] == 1200
    report = json.loads((tmp_path / "report.json").read_text())
    facts = report["backends"]["oracle"]["facts"]
    assert facts["evaluator"].startswith("onnx.reference") and facts["max_rows"] == 2000
    # A warm run restores the oracle and writes the same figures.
    warm = tmp_path / "warm"
    assert invoke("run", SPECS / "churn_oracle.yaml", "--out", warm).exit_code == 0
    assert _figures(warm) == figures


def test_forest_the_divergence_is_the_conversions_not_the_runtimes(invoke, tmp_path):
    """churn_forest's 0.08: the reference evaluator, running the same graph, is as far from
    scikit-learn as ONNX Runtime is, and within float32 rounding of ONNX Runtime."""
    spec = yaml.safe_load((SPECS / "churn_oracle.yaml").read_text())
    spec["backends"]["sklearn"]["train"] = str(
        REPO / "examples/churn/train.py:build_forest_pipeline"
    )
    spec["data"]["path"] = str(REPO / "examples/churn/churn.csv")
    spec["report"]["dir"] = str(tmp_path / "out")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = invoke("run", tmp_path / "spec.yaml")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    figures = _figures(tmp_path / "out")
    assert figures["conversion"]["max_abs_diff"] > 0.05
    assert figures["conversion"]["max_abs_diff"] == pytest.approx(
        figures["ort-vs-sklearn"]["max_abs_diff"], abs=1e-6
    )
    assert figures["kernels"]["max_abs_diff"] < 1e-6


def _tensor_spec(folder, model, backends: dict | None = None, **data) -> str:
    spec = {
        "parityspec": 1,
        "name": "oracle",
        "data": {"synthetic": {"rows": 64}, **data},
        "model": {"task": "tensor", "inputs": [{"name": "x", "shape": [4]}]},
        "backends": {
            "onnx": {"kind": "onnx", "path": str(model)},
            "oracle": {"kind": "onnx_reference", "from": "onnx", **(backends or {})},
        },
        "checks": [
            {"id": "kernels", "type": "output_parity", "between": ["oracle", "onnx"]},
        ],
        "report": {"dir": str(folder / "out")},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _graph(folder, node, opsets=(("", 17),)):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12))],
    )
    opset_imports = [helper.make_opsetid(d, v) for d, v in opsets]
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opset_imports), path)
    return path


def test_a_tensor_graph_agrees_with_onnx_runtime(invoke, tmp_path):
    from onnx import helper

    model = _graph(tmp_path, helper.make_node("MatMul", ["x", "w"], ["y"]))
    result = invoke("run", _tensor_spec(tmp_path, model))
    assert result.exit_code == 0, result.output
    assert _figures(tmp_path / "out")["kernels"]["max_abs_diff"] < 1e-6


def test_more_rows_than_max_rows_is_exit_2_naming_the_key(invoke, tmp_path):
    from onnx import helper

    model = _graph(tmp_path, helper.make_node("MatMul", ["x", "w"], ["y"]))
    result = invoke("run", _tensor_spec(tmp_path, model, {"max_rows": 10}))
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    line = next(line for line in result.output.splitlines() if "predict:oracle" in line)
    assert "backends.oracle.max_rows: the reference evaluator predicts at most 10 rows" in line
    # data.rows brings the rows under the limit.
    spec = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    spec["data"]["synthetic"]["rows"] = 10
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert invoke("run", tmp_path / "spec.yaml").exit_code == 0


def test_an_op_the_evaluator_lacks_is_exit_2_naming_it(invoke, tmp_path):
    """ONNX Runtime runs its own com.microsoft ops; the reference evaluator does not."""
    from onnx import helper

    node = helper.make_node("FusedMatMul", ["x", "w"], ["y"], domain="com.microsoft")
    model = _graph(tmp_path, node, opsets=(("", 17), ("com.microsoft", 1)))
    result = invoke("run", _tensor_spec(tmp_path, model))
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    line = next(line for line in result.output.splitlines() if "convert:oracle" in line)
    assert "cannot run this graph" in line and "FusedMatMul" in line
    assert "com.microsoft" in line


def test_max_rows_is_bounded_at_validate(invoke, tmp_path):
    from onnx import helper

    model = _graph(tmp_path, helper.make_node("MatMul", ["x", "w"], ["y"]))
    result = invoke("validate", _tensor_spec(tmp_path, model, {"max_rows": 0}))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "backends.oracle.max_rows" in result.output
