"""Issue 16.8: every float tensor of the fp32 graph finds its counterpart in its static INT8
form, QDQ and QOperator, per-tensor and per-channel; the quantized op whose float output
no longer exists is named, and the row that carries it says so."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnxruntime.quantization import QuantFormat, quantize_static

from parityspec.backends.torch_export import export_torch_to_onnx
from parityspec.drift.torch_layers import compare_onnx_tensors
from tests.drift.test_torch_layers import SmallCNN, _Calibration

FORMATS = [
    (fmt, per_channel) for fmt in (QuantFormat.QDQ, QuantFormat.QOperator) for per_channel in (0, 1)
]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    torch.manual_seed(0)
    net = SmallCNN().eval()
    x = torch.randn(32, 3, 16, 16)
    path = export_torch_to_onnx(net, (x[:2],), tmp_path_factory.mktemp("qdq") / "cnn.onnx")
    return path, {onnx.load(str(path)).graph.input[0].name: x.numpy()}


def _static(fp32, tmp_path, fmt, per_channel):
    path, feeds = fp32
    out = tmp_path / f"cnn.{fmt.name}.{per_channel}.onnx"
    quantize_static(
        str(path), str(out), _Calibration(feeds), quant_format=fmt, per_channel=bool(per_channel)
    )
    return out


def _convs(path):
    return [n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


@pytest.mark.parametrize(("fmt", "per_channel"), FORMATS)
def test_every_float_tensor_has_its_counterpart(fp32, tmp_path, fmt, per_channel):
    path, feeds = fp32
    int8 = _static(fp32, tmp_path, fmt, per_channel)
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert ("QLinearConv" in ops) == (fmt == QuantFormat.QOperator)
    table = compare_onnx_tensors(path, int8, [feeds], tolerance=1e-4, rtol=1e-5)
    rows = {r.name: r for r in table.rows}
    carried = {name for r in table.rows for name in r.carries}
    for conv in _convs(path):  # where the quantization error of each Conv is born
        if fmt == QuantFormat.QDQ:
            assert rows[conv].stats is not None and not carried
        else:  # only the quantized value after the fused Relu exists
            assert rows[conv].status == "unmatched" and conv in carried
            assert "into QLinearConv" in rows[conv].reason and "carries" in rows[conv].reason
    for row in table.rows:
        assert row.status != "unmatched" or row.name in carried, (row.name, row.reason)
        if row.stats is not None:  # a counterpart of the same value, quantized: close
            assert 0 < row.stats.rel_max < 0.05 and row.sqnr_db > 30, row.name
            assert row.own is not None  # the part between compared values ran alone
    assert table.origin == table.rows[0].name if fmt == QuantFormat.QDQ else "relu"


@pytest.mark.parametrize(("fmt", "per_channel"), FORMATS)
def test_a_weight_fault_in_one_conv_is_its_origin(fp32, tmp_path, fmt, per_channel):
    """conv2's fp32 weights off by 10% before quantization: its row (or the Relu row that
    carries it) has the largest own error, the rows after it only pass it on."""
    path, feeds = fp32
    model = onnx.load(str(path))
    weight = next(i for i in model.graph.initializer if i.name == "conv2.weight")
    faulty = onnx.numpy_helper.to_array(weight) * np.float32(1.1)
    weight.CopyFrom(onnx.numpy_helper.from_array(faulty, weight.name))
    onnx.save(model, str(tmp_path / "faulty.onnx"))
    int8 = _static((tmp_path / "faulty.onnx", feeds), tmp_path, fmt, per_channel)
    table = compare_onnx_tensors(path, int8, [feeds], tolerance=1e-4, rtol=1e-5)
    conv2 = _convs(path)[1]
    worst = max((r for r in table.rows if r.own), key=lambda r: r.own.rel_max)
    assert worst.name == conv2 or conv2 in worst.carries
    assert worst.own.rel_max > 0.05


@pytest.mark.parametrize(("fmt", "per_channel"), FORMATS)
def test_residual_adds_are_matched_in_every_format(tmp_path, fmt, per_channel):
    """A residual net: QLinearAdd (a com.microsoft op shape inference does not type) is
    dequantized by its zero point's type; only pre-activations QOperator fuses are unmatched,
    each carried by its Relu's row."""
    from tests.drift.test_scale_aware_origin import Growing

    torch.manual_seed(0)
    net = Growing(channels=8, depth=2).eval()
    x = torch.randn(16, 3, 8, 8)
    path = export_torch_to_onnx(net, (x[:2],), tmp_path / "residual.onnx")
    feeds = {onnx.load(str(path)).graph.input[0].name: x.numpy()}
    int8 = _static((path, feeds), tmp_path, fmt, per_channel)
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert ("QLinearAdd" in ops) == (fmt == QuantFormat.QOperator)
    table = compare_onnx_tensors(path, int8, [feeds], tolerance=1e-4, rtol=1e-5)
    carried = {name for r in table.rows for name in r.carries}
    unmatched = {r.name for r in table.rows if r.status == "unmatched"}
    assert unmatched == carried and (bool(unmatched) == (fmt == QuantFormat.QOperator))
    adds = [r for r in table.rows if r.module_type == "Add"]
    assert len(adds) == 2
    for add in adds:  # compared itself (QDQ) or through the Relu row that carries it
        assert add.stats is not None or add.name in carried
    assert all(r.stats.rel_max < 0.05 for r in table.rows if r.stats)
