"""input_search on real models: a divergence planted where the data never goes is found and
lies in its region, a clean conversion passes, two runs write the same report, the rows found
reproduce the failure as a plain spec, and bad budgets or inputs are refused at validate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper

from parityspec.api import RunOptions, prepare, run
from parityspec.checks.input_search import counterexample_file
from parityspec.search.space import TableSpace

# The planted band: x1 in [BAND_LO, BAND_HI] swaps the candidate's probabilities; the data
# holds x1 in [0, 10] only.
BAND_LO, BAND_HI = 23.0, 24.0


def _data(folder: Path, rows: int = 300, scale: float = 10.0) -> Path:
    rng = np.random.default_rng(0)
    features = rng.uniform(0, scale, size=(rows, 3))
    logit = (features @ np.array([1.0, -0.5, 0.3]) - scale * 0.4) / scale * 8
    frame = pd.DataFrame(features, columns=["x0", "x1", "x2"]).round(2)
    frame["y"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    path = folder / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def _logistic_onnx(data: Path) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(data)
    model = LogisticRegression().fit(frame[["x0", "x1", "x2"]].to_numpy(), frame["y"])
    return convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 3]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}},
        name="logreg",
    )


def _planted(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph, its probabilities swapped where BAND_LO < x1 < BAND_HI."""
    planted = onnx.ModelProto()
    planted.CopyFrom(model)
    graph = planted.graph
    probabilities = graph.output[1].name
    graph.node[-1].output[list(graph.node[-1].output).index(probabilities)] = "p_clean"
    for node in graph.node:
        node.output[:] = ["p_clean" if o == probabilities else o for o in node.output]
    graph.initializer.extend(
        [
            helper.make_tensor("column", TensorProto.INT64, [1], [1]),
            helper.make_tensor("lo", TensorProto.FLOAT, [], [BAND_LO]),
            helper.make_tensor("hi", TensorProto.FLOAT, [], [BAND_HI]),
            helper.make_tensor("swap", TensorProto.INT64, [2], [1, 0]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gather", ["X", "column"], ["x1"], axis=1),
            helper.make_node("Greater", ["x1", "lo"], ["above"]),
            helper.make_node("Less", ["x1", "hi"], ["below"]),
            helper.make_node("And", ["above", "below"], ["in_band"]),
            helper.make_node("Gather", ["p_clean", "swap"], ["p_swapped"], axis=1),
            helper.make_node("Where", ["in_band", "p_swapped", "p_clean"], [probabilities]),
        ]
    )
    onnx.checker.check_model(planted)
    return planted


def _write_spec(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"parityspec: 1\nname: {name}\n{body}")
    return path


SEARCH = "{id: search, type: input_search, between: [reference, candidate]}"


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    data = _data(tmp_path)
    clean = _logistic_onnx(data)
    onnx.save(clean, tmp_path / "clean.onnx")
    onnx.save(_planted(clean), tmp_path / "planted.onnx")
    return _write_spec(
        tmp_path,
        "planted",
        "data: {path: rows.csv, target: y}\n"
        "model: {task: binary}\n"
        "backends:\n"
        "  reference: {kind: onnx, path: clean.onnx}\n"
        "  candidate: {kind: onnx, path: planted.onnx}\n"
        f"checks:\n  - {SEARCH}\n",
    )


def _run(spec: Path, out: Path) -> tuple[int, dict]:
    # Uncached: each run searches again, so equal reports mean an equal search.
    outcome = run(prepare(spec, RunOptions(out=out, use_cache=False)))
    return int(outcome.exit_code), json.loads((out / "report.json").read_text())


def _check(report: dict) -> dict:
    (check,) = report["checks"]
    return check


@pytest.mark.slow
def test_default_budget_finds_the_planted_band(planted: Path, tmp_path: Path) -> None:
    code, report = _run(planted, tmp_path / "out")
    check = _check(report)
    assert code == 1, check["reason"]
    assert check["status"] == "failed"
    minimal = check["details"]["minimal_counterexample"]
    # Shrunk: only x1 moved, and into the band; the other features are the typical row's.
    assert list(minimal["moved"]) == ["x1"]
    assert BAND_LO < minimal["features"]["x1"] < BAND_HI
    assert "beyond the observed range" in minimal["moved"]["x1"]
    assert minimal["abs_diff"] > 0.04
    # The two outputs are each other's swap: the planted fault, not rounding.
    assert minimal["reference"] == pytest.approx(minimal["candidate"][::-1], abs=1e-6)
    assert check["details"]["search"]["ended_by"] == "max_examples"
    assert check["figures"]["examples"] == 200


@pytest.mark.slow
def test_two_runs_write_the_same_report(planted: Path, tmp_path: Path) -> None:
    reports = []
    for name in ("a", "b"):
        _, report = _run(planted, tmp_path / name)
        report.pop("run")
        reports.append(json.dumps(report, sort_keys=True))
    assert reports[0] == reports[1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_the_counterexample_file_reproduces_the_failure(
    planted: Path, tmp_path: Path, kind: str
) -> None:
    if kind == "npz":  # the same rows as one 1-D array per column: the file is NPZ too
        frame = pd.read_csv(tmp_path / "rows.csv")
        np.savez(tmp_path / "rows.npz", **{c: frame[c].to_numpy() for c in frame.columns})
        planted.write_text(planted.read_text().replace("rows.csv", "rows.npz"))
    _, report = _run(planted, tmp_path / "out")
    made = counterexample_file(_check(report))
    assert made is not None
    name, content = made
    assert name == f"counterexamples.{kind}"
    # The run wrote it beside its report: the file a team pins as a regression spec's data.
    written = tmp_path / "out" / "artifacts" / _check(report)["id"] / name
    assert written.read_bytes() == content
    (tmp_path / name).write_bytes(written.read_bytes())
    replay = _write_spec(
        tmp_path,
        "replay",
        f"data: {{path: {name}, target: y}}\n"
        "model: {task: binary}\n"
        "backends:\n"
        "  reference: {kind: onnx, path: clean.onnx}\n"
        "  candidate: {kind: onnx, path: planted.onnx}\n"
        "checks:\n"
        "  - {id: parity, type: probability_parity, between: [reference, candidate]}\n",
    )
    code, replayed = _run(replay, tmp_path / "replay-out")
    check = _check(replayed)
    assert code == 1
    found = [w["abs_diff"] for w in _check(report)["details"]["worst_samples"]]
    assert check["figures"]["samples"] == len(found)
    assert check["figures"]["max_abs_diff"] == pytest.approx(max(found))


@pytest.mark.slow
def test_a_clean_logistic_regression_conversion_passes(tmp_path: Path) -> None:
    _data(tmp_path, scale=100.0)
    (tmp_path / "build.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def build():\n    return LogisticRegression()\n"
    )
    spec = _write_spec(
        tmp_path,
        "clean",
        "data: {path: rows.csv, target: y}\n"
        "model: {task: binary}\n"
        "backends:\n"
        "  reference: {kind: sklearn, train: build.py:build}\n"
        "  candidate: {kind: onnx, from: reference}\n"
        "checks:\n  - {id: search, type: input_search, between: [reference, candidate], "
        "max_examples: 60}\n",
    )
    code, report = _run(spec, tmp_path / "out")
    check = _check(report)
    assert code == 0, check["reason"]
    assert check["figures"]["rows"] == 60 * 64
    assert check["figures"]["failing_rows"] == 0
    assert check["details"]["minimal_counterexample"] is None


def test_no_example_database_is_written(planted: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _run(planted, tmp_path / "out")
    assert not (tmp_path / ".hypothesis").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_examples", 0), ("max_examples", -3), ("max_seconds", 0), ("max_seconds", -1.5)],
)
def test_budgets_must_be_positive(invoke, planted: Path, field: str, value: float) -> None:
    text = planted.read_text().replace(SEARCH, SEARCH[:-1] + f", {field}: {value}}}")
    planted.write_text(text)
    result = invoke("validate", planted)
    assert result.exit_code == 2
    assert f"checks[0].{field}: {field} must be above 0" in result.output
    assert "hint:" in result.output


def test_a_backend_reading_other_columns_is_an_input_error(planted: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(tmp_path / "rows.csv").rename(columns={"x2": "z"})
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    (tmp_path / "build.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def build():\n    return LogisticRegression()\n"
    )
    model = tmp_path / "fitted.skops"
    import skops.io
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit(frame[["x0", "x1", "z"]], frame["y"])
    skops.io.dump(fitted, model)
    text = planted.read_text().replace(
        "{kind: onnx, path: clean.onnx}", "{kind: sklearn, path: fitted.skops}"
    )
    planted.write_text(text)
    code, report = _run(planted, tmp_path / "out")
    assert code == 2
    assert report["checks"][0]["status"] == "error"
    assert "z" in report["checks"][0]["reason"]


def test_a_schema_without_numeric_or_categorical_columns_has_nothing_to_search() -> None:
    space = TableSpace(pd.DataFrame({"flag": [True, False, True]}), max_moves=3)
    assert space.columns == []


def test_the_report_says_the_time_bound_ended_the_search(planted: Path, tmp_path: Path) -> None:
    text = planted.read_text().replace(SEARCH, SEARCH[:-1] + ", max_seconds: 1.0e-9}")
    planted.write_text(text)
    _, report = _run(planted, tmp_path / "out")
    check = _check(report)
    assert check["details"]["search"]["ended_by"] == "max_seconds"
    assert "ended by max_seconds" in check["reason"]
