"""input_search on tensor models: arrays shaped by `model.inputs`, moved within and beyond the
data's range. A band planted in an ONNX graph where the data never goes is found and the
counterexample lies in it; the samples found are an NPZ file a plain spec replays (exit 1);
two runs write the same report and the same NPZ bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from parityspec.api import RunOptions, prepare, run

WIDTH, FEATURE = 6, 2
# Inside this band of x[FEATURE] the candidate adds 1 to its output; the data is N(0, 1), so
# its values stay within about +-3.5.
BAND_LO, BAND_HI = 5.5, 6.5


def _graph(planted: bool) -> onnx.ModelProto:
    """y = x @ W + b; planted: y + 1 where BAND_LO < x[:, FEATURE] < BAND_HI."""
    weights = np.random.default_rng(1).normal(size=(WIDTH, 3)).astype(np.float32)
    initializers = [
        helper.make_tensor("W", TensorProto.FLOAT, list(weights.shape), weights.ravel()),
        helper.make_tensor("b", TensorProto.FLOAT, [3], [0.1, -0.2, 0.3]),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y_clean" if planted else "y"]),
    ]
    if planted:
        initializers += [
            helper.make_tensor("column", TensorProto.INT64, [1], [FEATURE]),
            helper.make_tensor("lo", TensorProto.FLOAT, [], [BAND_LO]),
            helper.make_tensor("hi", TensorProto.FLOAT, [], [BAND_HI]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ]
        nodes += [
            helper.make_node("Gather", ["x", "column"], ["picked"], axis=1),
            helper.make_node("Greater", ["picked", "lo"], ["above"]),
            helper.make_node("Less", ["picked", "hi"], ["below"]),
            helper.make_node("And", ["above", "below"], ["in_band"]),
            helper.make_node("Add", ["y_clean", "one"], ["y_moved"]),
            helper.make_node("Where", ["in_band", "y_moved", "y_clean"], ["y"]),
        ]
    graph = helper.make_graph(
        nodes,
        "planted" if planted else "clean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _spec(folder: Path, name: str, data: str, check: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"parityspec: 1\nname: {name}\n"
        f"data: {{path: {data}}}\n"
        "model:\n"
        "  task: tensor\n"
        f"  inputs: [{{name: x, shape: [{WIDTH}]}}]\n"
        "  outputs: [y]\n"
        "backends:\n"
        "  reference: {kind: onnx, path: clean.onnx}\n"
        "  candidate: {kind: onnx, path: planted.onnx}\n"
        f"checks:\n  - {check}\n"
    )
    return path


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    rows = np.random.default_rng(0).normal(size=(256, WIDTH)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", x=rows)
    onnx.save(_graph(planted=False), tmp_path / "clean.onnx")
    onnx.save(_graph(planted=True), tmp_path / "planted.onnx")
    check = "{id: search, type: input_search, between: [reference, candidate]}"
    return _spec(tmp_path, "planted", "samples.npz", check)


def _run(spec: Path, out: Path) -> tuple[int, dict]:
    outcome = run(prepare(spec, RunOptions(out=out, use_cache=False)))
    return int(outcome.exit_code), json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_default_budget_finds_the_planted_band_and_replays_it(planted: Path) -> None:
    folder = planted.parent
    code, report = _run(planted, folder / "out")
    (check,) = report["checks"]
    assert code == 1, check["reason"]
    minimal = check["details"]["minimal_counterexample"]
    # One move, on the planted element or on the whole input, and into the band.
    assert len(minimal["moved"]) == 1
    (moved, label) = next(iter(minimal["moved"].items()))
    assert moved in (f"x[{FEATURE}]", "x"), label
    assert "beyond the observed range" in label
    written = folder / "out" / "artifacts" / "search" / "counterexamples.npz"
    with np.load(written) as archive:
        samples = archive["x"]
    assert samples.shape == (len(check["details"]["worst_samples"]), WIDTH)
    assert BAND_LO < samples[0, FEATURE] < BAND_HI
    # The planted +1 on every output, not rounding.
    moved_by = np.subtract(minimal["candidate"], minimal["reference"])
    assert moved_by == pytest.approx(np.ones(3), abs=1e-4)
    assert minimal["abs_diff"] == pytest.approx(1.0, abs=1e-4)
    assert minimal["tolerance_ratio"] > 1
    assert check["details"]["search"]["ended_by"] == "max_examples"
    # The NPZ is a data file: a plain output_parity spec over it fails as the search did.
    (folder / "replay.npz").write_bytes(written.read_bytes())
    parity = "{id: parity, type: output_parity, between: [reference, candidate]}"
    code, replayed = _run(_spec(folder, "replay", "replay.npz", parity), folder / "replay-out")
    (parity_check,) = replayed["checks"]
    assert code == 1, parity_check["reason"]
    assert parity_check["figures"]["max_abs_diff"] == pytest.approx(1.0, abs=1e-5)


def test_two_runs_write_the_same_report_and_npz(planted: Path) -> None:
    text = planted.read_text().replace("candidate]}", "candidate], max_examples: 15}")
    planted.write_text(text)
    reports, files = [], []
    for name in ("a", "b"):
        out = planted.parent / name
        _, report = _run(planted, out)
        report.pop("run")
        reports.append(json.dumps(report, sort_keys=True))
        files.append((out / "artifacts" / "search" / "counterexamples.npz").read_bytes())
    assert reports[0] == reports[1]
    assert files[0] == files[1]
    check = json.loads(reports[0])["checks"][0]
    assert check["figures"]["rows"] == 15 * 64
    # Every sample shown says what moved, in the input's own terms.
    for sample in check["details"]["worst_samples"]:
        assert all(key == "x" or key.startswith("x[") for key in sample["moved"])


def test_a_batch_dependent_candidate_predicts_each_sample_alone(tmp_path: Path) -> None:
    """Dynamic INT8 scales each batch by its own values: one extreme sample would move every
    other sample of its batch, so the search predicts its samples one by one."""
    rows = np.random.default_rng(0).normal(size=(64, WIDTH)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", x=rows)
    onnx.save(_graph(planted=False), tmp_path / "clean.onnx")
    spec = tmp_path / "int8.yaml"
    spec.write_text(
        "parityspec: 1\nname: int8\n"
        "data: {path: samples.npz}\n"
        f"model: {{task: tensor, inputs: [{{name: x, shape: [{WIDTH}]}}], outputs: [y]}}\n"
        "backends:\n"
        "  onnx: {kind: onnx, path: clean.onnx}\n"
        "  int8: {kind: quantized, from: onnx, method: dynamic}\n"
        "checks:\n"
        "  - {id: search, type: input_search, between: [onnx, int8], max_examples: 5,"
        " rows_per_example: 8}\n"
    )
    _, report = _run(spec, tmp_path / "out")
    (check,) = report["checks"]
    assert check["details"]["search"]["predicted_row_by_row"] == ["int8"]
    assert check["figures"]["rows"] == 40
