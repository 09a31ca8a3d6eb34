"""Issue 18: the drift origin follows each layer's error relative to its own scale, so a
faithful export whose activations grow into the hundreds has none, and a small fault deep in
it is found where it is, not where values first get large."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from parityspec.backends.torch_export import export_torch_to_onnx
from parityspec.checks.drift_table import LayerDriftTolerances, drift_result
from parityspec.drift.torch_layers import compare_torch_onnx_layers

ATOL = 1e-4
RTOL = LayerDriftTolerances.builtin("default").layer_rtol
FAULT = "blocks.4.conv1"


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.conv2(self.relu(self.conv1(x))))


class Growing(nn.Module):
    """A residual net whose `scale` conv lifts activations to ~500 early: float32 rounding
    alone then exceeds an absolute 1e-4 from the second block on."""

    def __init__(self, channels: int = 16, depth: int = 6) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.scale = nn.Conv2d(channels, channels, 1)
        self.blocks = nn.Sequential(*[Block(channels) for _ in range(depth)])
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(channels, 4)
        with torch.no_grad():
            self.scale.weight.mul_(300)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.gap(self.blocks(self.scale(self.stem(x))))))


@pytest.fixture(scope="module")
def growing(tmp_path_factory):
    """The net, its clean export, and the export of a copy with FAULT's weights off by 0.3%."""
    torch.manual_seed(0)
    net = Growing().eval()
    x = torch.randn(8, 3, 16, 16)
    folder = tmp_path_factory.mktemp("growing")
    clean = export_torch_to_onnx(net, (x[:2],), folder / "clean.onnx")
    faulty = copy.deepcopy(net)
    with torch.no_grad():
        faulty.get_submodule(FAULT).weight.mul_(1.003)
    bad = export_torch_to_onnx(faulty, (x[:2],), folder / "faulty.onnx")
    return net, clean, bad, x


def test_clean_export_has_no_origin_although_values_reach_hundreds(growing):
    net, clean, _, x = growing
    table = compare_torch_onnx_layers(net, clean, [(x,)], tolerance=ATOL, rtol=RTOL)
    assert table.origin is None
    matched = [r for r in table.rows if r.stats]
    assert max(r.stats.ref_max for r in matched) > 400
    # What the absolute rule saw: rounding over 1e-4 where values are large, nowhere a fault.
    assert max(r.stats.max_abs for r in matched) > ATOL
    assert all(r.stats.rel_max < 1e-6 and r.status == "ok" for r in matched)
    result = drift_result(table, "layer", ATOL, rtol=RTOL)
    assert result.status == "passed", result.reason
    assert result.gates[0].figure == "max_layer_diff_to_allowed" and result.gates[0].value < 1


def test_absolute_rule_gives_a_false_origin_on_the_clean_export(growing):
    net, clean, _, x = growing
    table = compare_torch_onnx_layers(net, clean, [(x,)], tolerance=ATOL)
    assert table.origin is not None and table.origin != FAULT
    origin = next(r for r in table.rows if r.name == table.origin)
    assert origin.stats.ref_max > 400 and origin.stats.rel_max < 1e-6


def test_small_deep_fault_is_the_origin_not_an_earlier_large_layer(growing):
    net, _, bad, x = growing
    absolute = compare_torch_onnx_layers(net, bad, [(x,)], tolerance=ATOL)
    new = compare_torch_onnx_layers(net, bad, [(x,)], tolerance=ATOL, rtol=RTOL)
    names = [r.name for r in new.rows]
    # The former origin, the first row over an absolute tolerance, is an earlier clean layer.
    old_origin = next(r.name for r in absolute.rows if r.status == "over")
    assert names.index(old_origin) < names.index(FAULT)
    assert new.origin == FAULT
    fault = new.rows[names.index(FAULT)]
    assert fault.status == "over" and 2e-3 < fault.stats.rel_max < 4e-3
    assert fault.allowed == pytest.approx(ATOL + RTOL * fault.stats.ref_max)
    assert all(r.status == "ok" for r in new.rows[: names.index(FAULT)])
    result = drift_result(new, "layer", ATOL, rtol=RTOL)
    assert result.status == "failed" and f"drift origin: layer {FAULT!r}" in result.reason
    assert result.tolerances == {"layer_tol": ATOL, "layer_rtol": RTOL}
    row = result.details["rows"][names.index(FAULT)]
    assert row["rel_diff"] == fault.stats.rel_max and row["allowed"] == fault.allowed


def test_rtol_zero_is_the_absolute_rule(growing):
    net, clean, _, x = growing
    table = compare_torch_onnx_layers(net, clean, [(x,)], tolerance=ATOL, rtol=0.0)
    over = [r for r in table.rows if r.status == "over"]
    assert over and all(r.stats.max_abs > ATOL and r.allowed == ATOL for r in over)


def test_own_error_separates_the_fault_from_what_it_passes_on(growing):
    net, _, bad, x = growing
    table = compare_torch_onnx_layers(net, bad, [(x,)], tolerance=ATOL, rtol=RTOL)
    rows = {r.name: r for r in table.rows}
    assert table.origin == FAULT and table.origin_rule == "own error"
    assert rows[FAULT].own_status == "over" and rows[FAULT].own.rel_max > 2e-3
    # Downstream rows inherit the fault (over) but add nothing of their own.
    after = table.rows[[r.name for r in table.rows].index(FAULT) + 1 :]
    assert after and all(r.status == "over" and r.own_status == "ok" for r in after)
    assert all(r.own.rel_max < 1e-6 for r in after)


def test_own_rule_finds_the_fault_even_under_an_absolute_tolerance(growing):
    """With layer_rtol 0 the first row over is blocks.1.out, where values reach ~500 and
    rounding alone passes 1e-4; no row's own error is over there, the fault's is."""
    net, clean, bad, x = growing
    faulty = compare_torch_onnx_layers(net, bad, [(x,)], tolerance=ATOL)
    first_over = next(r.name for r in faulty.rows if r.status == "over")
    assert first_over == "blocks.1.out" and faulty.origin == FAULT
    clean_table = compare_torch_onnx_layers(net, clean, [(x,)], tolerance=ATOL)
    assert clean_table.origin == "blocks.1.out" and clean_table.origin_rule == "first over"
    assert all(r.own_status == "ok" for r in clean_table.rows if r.own)
    result = drift_result(clean_table, "layer", ATOL, rtol=0.0)
    assert "(first over: no own error is)" in result.reason


def test_fused_neighbour_is_carried_by_the_row_whose_part_computes_it(tmp_path):
    """The fault sits in conv2's weights; the exporter folds conv2 into bn2, whose part of
    the graph (Conv+BatchNorm) run on torch's pool output carries it: bn2 is the origin by
    its own error, and relu#2 after it adds nothing."""
    from examples.torch.nets import small_cnn, small_cnn_faulty

    torch.manual_seed(0)
    net, faulty = small_cnn().eval(), small_cnn_faulty().eval()
    x = torch.randn(8, 3, 16, 16)
    path = export_torch_to_onnx(faulty, (x[:2],), tmp_path / "faulty.onnx")
    table = compare_torch_onnx_layers(net, path, [(x,)], tolerance=ATOL, rtol=RTOL)
    rows = {r.name: r for r in table.rows}
    assert rows["conv2"].status == "unmatched" and rows["bn2"].carries == ["conv2"]
    assert rows["conv2"].reason == "fused into 'bn2' by the exporter: its row carries this layer"
    assert table.origin == "bn2" and table.origin_rule == "own error"
    assert rows["bn2"].own_status == "over" and rows["relu#2"].own_status == "ok"
    assert rows["relu#2"].status == "over"


def test_exposure_effect_is_the_plain_sessions_distance_from_the_exposing_one(growing):
    """Exposing every compared value stops ONNX Runtime fusing Conv+Add+Relu in the blocks:
    the final outputs of the graph the rows are measured on move away from the deployed one's."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    net, clean, _, x = growing
    table = compare_torch_onnx_layers(net, clean, [(x,)], tolerance=ATOL, rtol=RTOL)
    model = onnx.load(str(clean))
    feeds = {model.graph.input[0].name: x.numpy()}
    final = model.graph.output[0].name
    plain = ort.InferenceSession(str(clean), providers=["CPUExecutionProvider"])
    for row in table.rows:
        if row.onnx_value and row.onnx_value != final:
            model.graph.output.append(
                helper.make_tensor_value_info(row.onnx_value, onnx.TensorProto.FLOAT, None)
            )
    exposing = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = np.abs(
        plain.run([final], feeds)[0].astype(np.float64) - exposing.run([final], feeds)[0]
    ).max()
    assert expected > 0 and table.exposure_effect == expected
    details = drift_result(table, "layer", ATOL, rtol=RTOL).details
    assert details["exposure_effect"]["max_abs_diff"] == expected


def test_a_no_op_module_is_said_to_be_removed_not_fused(tmp_path):
    from parityspec.drift.torch_layers import NO_SCOPE_REASON, REMOVED_REASON

    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Identity(), nn.ReLU()).eval()
    x = torch.randn(6, 4)
    path = export_torch_to_onnx(net, (x[:2],), tmp_path / "net.onnx")
    rows = {r.name: r for r in compare_torch_onnx_layers(net, path, [(x,)], tolerance=ATOL).rows}
    assert rows["1"].reason == rows["2"].reason == REMOVED_REASON
    assert rows["0"].status == rows["3"].status == "ok" and not rows["0"].carries
    assert NO_SCOPE_REASON not in {r.reason for r in rows.values()}
