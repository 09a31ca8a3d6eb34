"""Per-layer drift engine on small nets exported with the real exporters."""

from __future__ import annotations

import math
import tracemalloc
import weakref

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from torch import nn

from parityspec.backends.torch_export import export_torch_to_onnx
from parityspec.drift import torch_layers
from parityspec.drift.torch_layers import (
    compare_onnx_tensors,
    compare_torch_onnx_layers,
    inject_fault,
    leaf_calls,
)

TOL = 1e-4


class SmallCNN(nn.Module):
    """Conv+BN (fused on export), in-place ReLU, a ReLU module used twice, pools, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.conv3(x))
        return self.fc(self.flat(self.gap(x)))


CNN_ROWS = ["conv1", "bn1", "act1", "conv2", "relu", "pool", "conv3", "relu#2", "gap"]
CNN_ROWS += ["flat", "fc"]


def _rows(table):
    return {row.name: row for row in table.rows}


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    torch.manual_seed(0)
    net = SmallCNN()
    with torch.no_grad():  # non-trivial running stats, so the BatchNorm matters
        net.bn1.running_mean.uniform_(-0.5, 0.5)
        net.bn1.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(6, 3, 16, 16)
    path = export_torch_to_onnx(net, (x[:2],), tmp_path_factory.mktemp("cnn") / "cnn.onnx")
    return net, path, x


class _Calibration(CalibrationDataReader):
    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        (name, x), step = next(iter(feeds.items())), 16
        self.batches = iter([{name: x[i : i + step]} for i in range(0, len(x), step)])

    def get_next(self):
        return next(self.batches, None)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """fp32 MLP 30-256-256-2, its dynamic INT8 and static QDQ forms, one batch of feeds."""
    torch.manual_seed(0)
    layers = [nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2)]
    net = nn.Sequential(*layers).eval()
    x = torch.randn(64, 30)
    folder = tmp_path_factory.mktemp("mlp")
    fp32 = export_torch_to_onnx(net, (x[:2],), folder / "mlp.onnx")
    feeds = {onnx.load(str(fp32)).graph.input[0].name: x.numpy()}
    dynamic, qdq = folder / "mlp.int8.onnx", folder / "mlp.qdq.onnx"
    quantize_dynamic(str(fp32), str(dynamic), weight_type=QuantType.QInt8)
    quantize_static(str(fp32), str(qdq), _Calibration(feeds), quant_format=QuantFormat.QDQ)
    return fp32, dynamic, qdq, feeds


def test_cnn_every_matched_layer_ok(cnn):
    net, path, x = cnn
    table = compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL)
    rows = _rows(table)
    assert [r.name for r in table.rows] == CNN_ROWS
    assert table.origin is None and table.tolerance == TOL
    # The exporter folds conv1 into bn1: conv1 has no node, bn1 gets the fused Conv.
    assert rows["conv1"].status == "unmatched" and "fused" in rows["conv1"].reason
    for name in CNN_ROWS[1:]:
        row = rows[name]
        assert row.status == "ok", (name, row.reason)
        assert row.stats.max_abs <= TOL and row.stats.count > 0 and row.sqnr_db > 60
    assert rows["relu"].onnx_value != rows["relu#2"].onnx_value
    assert rows["bn1"].module_type == "BatchNorm2d"


@pytest.mark.parametrize("layer", ["conv2", "relu#2"])
def test_injected_fault_is_the_origin(cnn, tmp_path, layer):
    net, path, x = cnn
    faulty = tmp_path / "faulty.onnx"
    value = inject_fault(path, faulty, module_path=layer, scale=1.5)
    table = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=TOL)
    assert table.origin == layer
    position = CNN_ROWS.index(layer)
    assert _rows(table)[layer].onnx_value == value
    assert _rows(table)[layer].status == "over"
    for row in table.rows[:position]:
        assert row.status == "ok" or row.name == "conv1", row.name
    # Scaled values match under no permutation, although pool's (B, 8, 8, 8) allows two.
    assert all(row.layout is None for row in table.rows)


def test_nonfinite_layer_is_the_origin(cnn, tmp_path):
    net, path, x = cnn
    inject_fault(path, tmp_path / "inf.onnx", module_path="conv3", scale=math.inf)
    table = compare_torch_onnx_layers(net, tmp_path / "inf.onnx", [(x,)], tolerance=TOL)
    row = _rows(table)["conv3"]
    assert table.origin == "conv3"
    assert row.status == "nonfinite" and "0 in reference" in row.reason


def test_transformer_rows_are_ok_or_explained(tmp_path):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, batch_first=True).eval()
    x = torch.randn(4, 5, 32)
    path = export_torch_to_onnx(layer, (x[:2],), tmp_path / "encoder.onnx")
    table = compare_torch_onnx_layers(layer, path, [(x,)], tolerance=TOL)
    rows = _rows(table)
    # MultiheadAttention is not a leaf and calls out_proj functionally: no row for them.
    assert {"norm1", "linear1", "linear2", "norm2"} <= set(rows)
    for name in ("norm1", "linear1", "linear2", "norm2"):
        assert rows[name].status == "ok", name
    unmatched = [r for r in table.rows if r.status == "unmatched"]
    assert {r.module_type for r in unmatched} == {"Dropout"}
    assert all(r.reason and r.stats is None for r in unmatched)
    assert table.origin is None


def test_layer_is_compared_before_an_inplace_relu_rewrites_it(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert (net[1](net[0](x)) < 0).any()  # otherwise the ReLU could not corrupt the "1" row
    path = export_torch_to_onnx(net, (x,), tmp_path / "inplace.onnx")
    rows = _rows(compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL))
    assert rows["1"].status == rows["2"].status == "ok"
    assert [c.name for c in leaf_calls(net, (x,))] == ["0", "1", "2"]


def _store_nhwc(model: onnx.ModelProto, value: str) -> None:
    """Mimic a converter keeping `value` NHWC: the module's last node now emits NHWC and an
    unscoped Transpose restores NCHW for its consumers, so the final output is unchanged."""
    producer = next(node for node in model.graph.node if value in node.output)
    producer.output[0] = f"{value}_nchw"
    to_nhwc = helper.make_node("Transpose", [f"{value}_nchw"], [f"{value}_nhwc"], perm=[0, 2, 3, 1])
    to_nhwc.metadata_props.extend(producer.metadata_props)
    back = helper.make_node("Transpose", [f"{value}_nhwc"], [value], perm=[0, 3, 1, 2])
    index = list(model.graph.node).index(producer)
    model.graph.node.insert(index + 1, back)
    model.graph.node.insert(index + 1, to_nhwc)


def test_layout_mismatch_is_flagged_with_the_permutation(cnn, tmp_path):
    net, path, x = cnn
    rows = _rows(compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL))
    model = onnx.load(str(path))
    _store_nhwc(model, rows["pool"].onnx_value)  # (B, 8, 8, 8): same shape either way
    _store_nhwc(model, rows["conv2"].onnx_value)  # (B, 8, 16, 16) -> (B, 16, 16, 8)
    onnx.save(model, str(tmp_path / "nhwc.onnx"))
    table = compare_torch_onnx_layers(net, tmp_path / "nhwc.onnx", [(x,)], tolerance=TOL)
    rows = _rows(table)
    assert table.origin == "pool"
    assert rows["pool"].status == "over" and rows["pool"].stats.max_abs > 0.1
    assert rows["pool"].layout == "NCHW->NHWC (0, 2, 3, 1)"
    assert rows["conv2"].status == "unmatched" and "shape differs" in rows["conv2"].reason
    assert rows["conv2"].layout == "NCHW->NHWC (0, 2, 3, 1)"
    assert all(r.status == "ok" for r in table.rows[CNN_ROWS.index("pool") + 1 :])
    assert rows["relu"].layout is None


def test_int8_dynamic_drift_is_measured_per_tensor(mlp):
    fp32, int8, _, feeds = mlp
    table = compare_onnx_tensors(fp32, int8, [feeds], tolerance=TOL)
    matched = [r for r in table.rows if r.stats is not None]
    assert len(matched) == len(table.rows) >= 5  # 3 Gemm + 2 Relu outputs keep their names
    assert any(r.status == "over" for r in matched)
    assert table.origin == table.rows[0].name
    assert all(math.isfinite(r.sqnr_db) and r.sqnr_db > 0 for r in matched)
    assert {r.module_type for r in matched} == {"Gemm", "Relu"}


def test_over_means_max_abs_strictly_above_tolerance(mlp):
    fp32, int8, _, feeds = mlp
    worst = compare_onnx_tensors(fp32, int8, [feeds], tolerance=TOL).rows[0].stats.max_abs
    at = compare_onnx_tensors(fp32, int8, [feeds], tolerance=worst)
    below = compare_onnx_tensors(fp32, int8, [feeds], tolerance=np.nextafter(worst, 0))
    assert at.rows[0].status == "ok" and below.rows[0].status == "over"


def test_onnx_model_against_itself_is_exact(mlp):
    fp32, _, _, feeds = mlp
    table = compare_onnx_tensors(fp32, fp32, [feeds], tolerance=0.0)
    assert table.origin is None
    assert all(r.status == "ok" and r.sqnr_db == math.inf for r in table.rows)


def test_int8_static_qdq_compares_what_consumers_read(mlp):
    fp32, _, qdq, feeds = mlp
    rows = _rows(compare_onnx_tensors(fp32, qdq, [feeds], tolerance=TOL))
    # QDQ fuses Relu into Gemm: "relu" names the pre-activation, the DQ output is the ReLU.
    assert rows["relu"].onnx_value.endswith("DequantizeLinear_Output")
    assert 0 < rows["relu"].stats.max_abs < 0.1
    # The Gemm, paired by structure (issue 16.8), is compared before its output's Q/DQ.
    assert rows["linear"].onnx_value == "relu" and 0 < rows["linear"].stats.max_abs < 0.1


def _assert_same_rows(one, two, rel=0.0):
    assert [r.name for r in one.rows] == [r.name for r in two.rows]
    assert one.origin == two.origin
    for a, b in zip(one.rows, two.rows, strict=True):
        assert a.status == b.status, a.name
        if a.stats is not None:
            assert a.stats.max_abs == pytest.approx(b.stats.max_abs, rel=rel, abs=0), a.name
            assert a.stats.count == b.stats.count, a.name
            assert a.stats.mean_abs == pytest.approx(b.stats.mean_abs, rel=max(rel, 1e-9)), a.name
            assert a.sqnr_db == pytest.approx(b.sqnr_db, rel=max(rel, 1e-9)), a.name
            assert list(a.stats.worst.indices) == list(b.stats.worst.indices), a.name


def test_streaming_torch_batches_equal_one_batch(cnn, tmp_path):
    net, path, x = cnn
    faulty = tmp_path / "faulty.onnx"  # a fault makes the stats non-trivial
    inject_fault(path, faulty, module_path="conv3", scale=1.01)
    one = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=TOL)
    two = compare_torch_onnx_layers(net, faulty, [(x[:4],), (x[4:],)], tolerance=TOL)
    _assert_same_rows(one, two)
    assert one.origin == "conv3"


def test_streaming_onnx_batches_equal_one_batch(mlp):
    # Static QDQ: dynamic INT8 derives activation scales from each batch, so its diffs
    # legitimately depend on how rows are batched.
    fp32, _, qdq, feeds = mlp
    name, x = next(iter(feeds.items()))
    one = compare_onnx_tensors(fp32, qdq, [feeds], tolerance=TOL)
    two = compare_onnx_tensors(fp32, qdq, [{name: x[:40]}, {name: x[40:]}], tolerance=TOL)
    _assert_same_rows(one, two)


class TwiceInARow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.act(self.fc(x)))


def test_calls_that_cannot_be_paired_are_unmatched(tmp_path):
    net, x = TwiceInARow().eval(), torch.randn(3, 4)
    path = export_torch_to_onnx(net, (x,), tmp_path / "twice.onnx")
    rows = _rows(compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL))
    assert rows["fc"].status == "ok"
    for name in ("act", "act#2"):
        assert rows[name].status == "unmatched" and "cannot be paired" in rows[name].reason


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_legacy_export_is_refused_for_per_layer_work(cnn, tmp_path):
    net, _, x = cnn
    path = export_torch_to_onnx(net, (x[:2],), tmp_path / "legacy.onnx", dynamo=False)
    with pytest.raises(ValueError, match="dynamo"):
        compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL)


def test_sub_batches_equal_the_same_rows_batched_by_the_caller(cnn, mlp, tmp_path):
    # sub_batch_bytes=1: one row at a time, as one-row batches would be (torch's CPU kernels
    # may round differently at another batch size); worst-sample indices stay global.
    net, path, x = cnn
    faulty = tmp_path / "faulty.onnx"
    inject_fault(path, faulty, module_path="conv3", scale=1.01)
    one_row = [(x[i : i + 1],) for i in range(len(x))]
    by_caller = compare_torch_onnx_layers(net, faulty, one_row, tolerance=TOL)
    threads = torch.get_num_threads()
    split = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=TOL, sub_batch_bytes=1)
    assert torch.get_num_threads() == threads  # one thread for a split batch, then restored
    _assert_same_rows(by_caller, split)
    fp32, _, qdq, feeds = mlp
    name, rows = next(iter(feeds.items()))
    by_caller = compare_onnx_tensors(fp32, qdq, [{name: r[None]} for r in rows], tolerance=TOL)
    split = compare_onnx_tensors(fp32, qdq, [feeds], tolerance=TOL, sub_batch_bytes=1)
    # The Gemms' float outputs (before their Q/DQ) are compared too: ONNX Runtime's Gemm
    # rounds per batch size, in the last bits.
    _assert_same_rows(by_caller, split, rel=1e-6)


def test_dynamic_int8_is_compared_on_whole_batches(mlp):
    # Its activation scales come from the whole batch, as they did for its predictions.
    fp32, int8, _, feeds = mlp
    whole = compare_onnx_tensors(fp32, int8, [feeds], tolerance=TOL)
    split = compare_onnx_tensors(fp32, int8, [feeds], tolerance=TOL, sub_batch_bytes=1)
    for a, b in zip(whole.rows, split.rows, strict=True):
        assert a.stats.max_abs == b.stats.max_abs and a.sqnr_db == b.sqnr_db, a.name


class _LiveValues:
    """Spies on what the comparison holds, ONNX values and copies of torch outputs: the peak
    of their bytes alive at once, sampled after every session run, at every leaf-module call
    and at every row update."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.refs: list[weakref.ref] = []
        self.peak = 0
        run, clone, update = torch_layers._run, torch.Tensor.clone, torch_layers._RowAcc.update

        def spied_run(*args, **kwargs):
            values = run(*args, **kwargs)
            self.refs += [weakref.ref(v) for v in values.values()]
            self.sample()
            return values

        def spied_clone(tensor, *args, **kwargs):
            copy = clone(tensor, *args, **kwargs)
            self.refs.append(weakref.ref(copy))
            return copy

        def spied_update(acc, *args):
            self.sample()
            update(acc, *args)

        monkeypatch.setattr(torch_layers, "_run", spied_run)
        monkeypatch.setattr(torch.Tensor, "clone", spied_clone)
        monkeypatch.setattr(torch_layers._RowAcc, "update", spied_update)

    def sample(self, *_args: object) -> None:
        self.refs = [ref for ref in self.refs if ref() is not None]
        self.peak = max(self.peak, sum(ref().nbytes for ref in self.refs))


@pytest.mark.parametrize("depth", [8, 32])
def test_memory_is_bounded_by_one_layer_whatever_the_depth(tmp_path, monkeypatch, depth):
    torch.manual_seed(0)
    width, rows = 8, 8192
    net = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())])
    x = torch.randn(rows, width)
    path = export_torch_to_onnx(net.eval(), (x[:2],), tmp_path / "deep.onnx")
    layer = rows * width * 4  # one layer's output, every row
    live = _LiveValues(monkeypatch)
    for leaf in net:
        leaf.register_forward_hook(live.sample)
    tracemalloc.start()
    try:
        table = compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL, sub_batch_bytes=layer)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(row.status == "ok" for row in table.rows)
    assert 0 < live.peak <= layer  # the whole batch would hold 2 * depth layers, twice
    assert peak - held <= 2 * layer  # numpy's temporaries (the rows' statistics are `held`)


def test_onnx_tensor_own_error_separates_a_weight_fault_from_what_follows(mlp, tmp_path):
    """The second Linear's weights off by 1% in a copy: its tensor is the origin by its own
    error; every tensor after it is over by inheritance, adding nothing of its own."""
    fp32, _, _, feeds = mlp
    model = onnx.load(str(fp32))
    weights = [i for i in model.graph.initializer if len(i.dims) == 2]
    faulty_weight = weights[1]
    array = onnx.numpy_helper.to_array(faulty_weight) * np.float32(1.01)
    faulty_weight.CopyFrom(onnx.numpy_helper.from_array(array, faulty_weight.name))
    onnx.save(model, str(tmp_path / "faulty.onnx"))
    table = compare_onnx_tensors(fp32, tmp_path / "faulty.onnx", [feeds], tolerance=TOL, rtol=1e-5)
    reads = {n.output[0] for n in model.graph.node if faulty_weight.name in n.input}
    assert table.origin in reads and table.origin_rule == "own error"
    position = [r.name for r in table.rows].index(table.origin)
    assert all(r.status == "ok" and r.own_status == "ok" for r in table.rows[:position])
    after = table.rows[position + 1 :]
    assert after and all(r.status == "over" and r.own.max_abs == 0 for r in after)
    assert table.rows[position].own.rel_max > 1e-3


def test_static_qdq_own_error_of_the_first_tensor_is_its_whole_error(mlp):
    """Nothing compared upstream of the first tensor: its own error is all of its error."""
    fp32, _, qdq, feeds = mlp
    table = compare_onnx_tensors(fp32, qdq, [feeds], tolerance=TOL)
    first = next(r for r in table.rows if r.own)
    # Equal up to kernel rounding: the part runs in its own session, fused differently.
    assert first.own.max_abs == pytest.approx(first.stats.max_abs, rel=1e-5)
    assert first.stats.max_abs > 0


def test_parts_that_cannot_run_alone_fall_back_to_each_rows_error(cnn, tmp_path, monkeypatch):
    net, path, x = cnn
    faulty = tmp_path / "faulty.onnx"
    inject_fault(path, faulty, module_path="relu#2", scale=1.5)
    isolating = torch_layers._isolating_model

    def unrunnable(*args):
        isolated = isolating(*args)
        isolated.model.graph.node.append(helper.make_node("NoSuchOp", ["x"], ["y"]))
        return isolated

    monkeypatch.setattr(torch_layers, "_isolating_model", unrunnable)
    table = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=TOL)
    assert table.origin == "relu#2" and table.origin_rule == "not isolated"
    assert "could not be run alone" in table.own_reason
    assert all(r.own is None for r in table.rows)


def test_nonfinite_final_outputs_are_counted_by_the_drift_run_itself(cnn, tmp_path):
    """The per-layer checks read no predictions (issue 18.6): NaN in the final outputs of
    either side is counted from their own runs, rows on each side."""
    net, path, x = cnn
    faulty = tmp_path / "nan.onnx"
    inject_fault(path, faulty, module_path="fc", scale=float("nan"))
    assert compare_torch_onnx_layers(net, path, [(x,)], tolerance=TOL).final_nonfinite == (0, 0)
    table = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=TOL)
    assert table.final_nonfinite == (0, len(x))
    feeds = {onnx.load(str(path)).graph.input[0].name: x.numpy()}
    table = compare_onnx_tensors(faulty, path, [feeds], tolerance=TOL)
    assert table.final_nonfinite == (len(x), 0)
    assert compare_onnx_tensors(path, path, [feeds], tolerance=0).final_nonfinite == (0, 0)
