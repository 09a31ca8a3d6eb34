"""An ONNX model onnxruntime cannot load: whose fault is it?

A model parityspec made (an export, a quantization) is a fault of that conversion: exit 3,
naming the operator. The same model given as a file by the user is invalid input: exit 2.
The converters are made to emit an operator onnxruntime lacks, as a converter upgrade might.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from tests.bad_input.helpers import complete_report, default_spec, expect, failed_step, write_spec


def _with_unknown_op(model: onnx.ModelProto, domain: str, op: str) -> onnx.ModelProto:
    """The model, plus a node of an operator onnxruntime does not have."""
    last = model.graph.output[-1].name
    model.graph.node.append(helper.make_node(op, [last], ["extra"], domain=domain))
    model.graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, None))
    model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def _run(invoke, tmp_path, spec: dict):
    out = tmp_path / "out"
    return invoke("run", write_spec(tmp_path, spec), "--out", out), out


@pytest.mark.parametrize(
    ("domain", "op"), [("com.microsoft", "NoSuchOp"), ("org.example", "Mystery")]
)
def test_export_onnxruntime_cannot_load_is_a_step_fault(
    invoke, tmp_path, assets, monkeypatch, domain, op
):
    import skl2onnx

    convert = skl2onnx.convert_sklearn
    monkeypatch.setattr(
        skl2onnx,
        "convert_sklearn",
        lambda *args, **kwargs: _with_unknown_op(convert(*args, **kwargs), domain, op),
    )
    result, out = _run(invoke, tmp_path, default_spec(assets))
    expect(
        result,
        3,
        "cannot load the model parityspec made",
        f"no operator {op} of domain {domain}",
    )
    assert "not a loadable ONNX model" not in result.output
    assert failed_step(complete_report(out, 3))["id"] == "export:onnx"


def test_quantization_onnxruntime_cannot_load_is_a_step_fault(
    invoke, tmp_path, assets, monkeypatch
):
    import onnxruntime.quantization as quantization

    quantize = quantization.quantize_dynamic

    def emits_unknown_op(model, out, **kwargs):
        quantize(model, out, **kwargs)
        onnx.save(_with_unknown_op(onnx.load(out), "com.microsoft", "NoSuchOp"), out)

    monkeypatch.setattr(quantization, "quantize_dynamic", emits_unknown_op)
    spec = default_spec(assets)
    spec["backends"]["int8"] = {"kind": "quantized", "from": "onnx"}
    spec["checks"] = [{"id": "int8", "type": "probability_parity", "between": ["onnx", "int8"]}]
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 3, "cannot load the model parityspec made", "NoSuchOp of domain com.microsoft")
    assert failed_step(complete_report(out, 3))["id"] == "quantize:int8"


def test_user_onnx_file_onnxruntime_cannot_load_is_invalid_input(invoke, tmp_path, assets):
    path = tmp_path / "model.onnx"
    model = _with_unknown_op(onnx.load(assets / "model.onnx"), "com.microsoft", "NoSuchOp")
    onnx.save(model, path)
    spec = default_spec(assets)
    spec["backends"]["onnx"] = {"kind": "onnx", "path": str(path)}
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 2, "model.onnx: not a loadable ONNX model", "NoSuchOp")
    assert failed_step(complete_report(out, 2))["id"] == "load:onnx"
