"""What input_search refuses before it runs: inputs with nothing to search, and two backends
that read different columns (exit 2, the key and a hint). `problems` runs at `validate`;
`file_problems` reads the data's and model files' headers (no pandas, no model loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parityspec.api import RunOptions, prepare, run
from parityspec.checks import input_search
from parityspec.spec.load import load_spec


def _spec(folder: Path, body: str, check: str = "") -> Path:
    path = folder / "search.yaml"
    path.write_text(
        "parityspec: 1\nname: search\n"
        + body
        + "checks:\n  - {id: search, type: input_search, between: [a, b]"
        + check
        + "}\n"
    )
    return path


def _problems(path: Path) -> list:
    loaded = load_spec(path, check_files=False)  # what validate's file reading adds
    (check,) = loaded.spec.checks
    return input_search.file_problems(check, loaded.spec, loaded.directory)


def test_tensor_inputs_that_are_all_flags_are_refused_at_validate(invoke, tmp_path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.onnx").write_bytes(b"")
    spec = _spec(
        tmp_path,
        "data: {synthetic: {rows: 8}}\n"
        "model: {task: tensor, inputs: [{name: mask, shape: [4], dtype: bool}]}\n"
        "backends:\n  a: {kind: onnx, path: a.onnx}\n  b: {kind: onnx, path: b.onnx}\n",
    )
    result = invoke("validate", spec)
    assert result.exit_code == 2
    assert "checks[0].type: nothing to search: every input in model.inputs is bool" in (
        result.output
    )
    assert "hint: input_search moves numbers and categories" in result.output


def test_a_numeric_tensor_input_is_searched(invoke, tmp_path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.onnx").write_bytes(b"")
    spec = _spec(
        tmp_path,
        "data: {synthetic: {rows: 8}}\n"
        "model: {task: tensor, inputs: [{name: mask, shape: [4], dtype: bool},"
        " {name: x, shape: [4]}]}\n"
        "backends:\n  a: {kind: onnx, path: a.onnx}\n  b: {kind: onnx, path: b.onnx}\n",
    )
    assert invoke("validate", spec).exit_code == 0


def _flags_csv(folder: Path, numeric: bool = False) -> None:
    rng = np.random.default_rng(0)
    lines = ["promo,paperless" + (",tenure" if numeric else "") + ",y"]
    for i in range(50):
        row = [str(bool(rng.integers(2))), str(bool(rng.integers(2)))]
        lines.append(",".join(row + ([str(i)] if numeric else []) + [str(i % 2)]))
    (folder / "rows.csv").write_text("\n".join(lines) + "\n")


TRAINED = (
    "data: {path: rows.csv, target: y}\nmodel: {task: binary}\n"
    "backends:\n  a: {kind: sklearn, train: build.py:build}\n  b: {kind: onnx, from: a}\n"
)


def test_a_table_of_flags_alone_has_nothing_to_search(tmp_path: Path) -> None:
    _flags_csv(tmp_path)
    (tmp_path / "build.py").write_text("def build():\n    raise AssertionError\n")
    ((key, message, hint),) = _problems(_spec(tmp_path, TRAINED))
    assert key == "type"
    assert message == (
        "nothing to search: rows.csv has no numeric and no categorical feature column, "
        "only flags (true/false): promo, paperless"
    )
    assert "list such columns in data.features" in hint
    _flags_csv(tmp_path, numeric=True)
    assert _problems(_spec(tmp_path, TRAINED)) == []


def test_a_table_of_flags_alone_is_refused_at_run(tmp_path: Path) -> None:
    """Where validate cannot tell (a Parquet file), the run refuses it: exit 2."""
    import pandas as pd

    _flags_csv(tmp_path)
    pd.read_csv(tmp_path / "rows.csv").to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "build.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def build():\n    return LogisticRegression()\n"
    )
    spec = _spec(tmp_path, TRAINED.replace("rows.csv", "rows.parquet"))
    outcome = run(prepare(spec, RunOptions(out=tmp_path / "out", use_cache=False)))
    assert int(outcome.exit_code) == 2
    (check,) = json.loads((tmp_path / "out" / "report.json").read_text())["checks"]
    assert "no numeric and no categorical feature column" in check["reason"]


def test_an_empty_feature_list_is_refused_at_validate(invoke, tmp_path: Path) -> None:
    _flags_csv(tmp_path, numeric=True)
    (tmp_path / "build.py").write_text("def build():\n    raise AssertionError\n")
    body = TRAINED.replace("target: y}", "target: y, features: []}")
    result = invoke("validate", _spec(tmp_path, body))
    assert result.exit_code == 2
    assert "nothing to search: data.features lists no column" in result.output


def _xgboost_file(folder: Path, name: str, columns: list[str]) -> None:
    xgboost = pytest.importorskip("xgboost")
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, len(columns))), columns=columns)
    model = xgboost.XGBClassifier(n_estimators=2).fit(frame, (frame.iloc[:, 0] > 0).astype(int))
    model.save_model(str(folder / name))


def _lightgbm_file(folder: Path, name: str, columns: list[str]) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, len(columns))), columns=columns)
    model = lightgbm.LGBMClassifier(n_estimators=2, verbose=-1)
    model.fit(frame, (frame.iloc[:, 0] > 0).astype(int))
    model.booster_.save_model(str(folder / name))


def _table_csv(folder: Path, columns: list[str]) -> None:
    rows = np.random.default_rng(1).normal(size=(20, len(columns))).round(3)
    lines = [",".join([*columns, "y"])] + [",".join(map(str, [*r, 0])) for r in rows]
    (folder / "rows.csv").write_text("\n".join(lines) + "\n")


def test_backends_reading_different_columns_are_refused(tmp_path: Path) -> None:
    _table_csv(tmp_path, ["a", "b", "c", "d"])
    _xgboost_file(tmp_path, "xgb.json", ["a", "b", "c"])
    _lightgbm_file(tmp_path, "lgbm.txt", ["a", "b", "d"])
    body = (
        "data: {path: rows.csv, target: y}\nmodel: {task: binary}\n"
        "backends:\n  a: {kind: xgboost, path: xgb.json}\n  b: {kind: lightgbm, path: lgbm.txt}\n"
    )
    ((key, message, hint),) = _problems(_spec(tmp_path, body))
    assert key == "between"
    assert message == (
        "input_search feeds both backends the same rows, but they read different columns: "
        "a (from a) alone reads c; b (from b) alone reads d"
    )
    assert "its own conversion" in hint


def test_backends_reading_the_same_columns_pass(tmp_path: Path) -> None:
    _table_csv(tmp_path, ["a", "b", "c"])
    _xgboost_file(tmp_path, "xgb.json", ["c", "b", "a"])  # the same set, in its own order
    _lightgbm_file(tmp_path, "lgbm.txt", ["a", "b", "c"])
    (tmp_path / "build.py").write_text("def build():\n    raise AssertionError\n")
    pairs = [
        "  a: {kind: xgboost, path: xgb.json}\n  b: {kind: lightgbm, path: lgbm.txt}\n",
        # A model trained by the spec reads the data's feature columns: a, b, c.
        "  a: {kind: sklearn, train: build.py:build}\n  b: {kind: xgboost, path: xgb.json}\n",
        # A conversion reads what its source does.
        "  x: {kind: xgboost, path: xgb.json}\n  a: {kind: onnx, from: x}\n"
        "  b: {kind: quantized, from: a}\n",
    ]
    for backends in pairs:
        body = "data: {path: rows.csv, target: y}\nmodel: {task: binary}\nbackends:\n" + backends
        assert _problems(_spec(tmp_path, body)) == [], backends


def test_a_model_trained_by_the_spec_on_other_columns_is_refused(tmp_path: Path) -> None:
    _table_csv(tmp_path, ["a", "b", "z"])
    _xgboost_file(tmp_path, "xgb.json", ["a", "b", "c"])
    (tmp_path / "build.py").write_text("def build():\n    raise AssertionError\n")
    body = (
        "data: {path: rows.csv, target: y}\nmodel: {task: binary}\n"
        "backends:\n  a: {kind: sklearn, train: build.py:build}\n"
        "  b: {kind: xgboost, path: xgb.json}\n"
    )
    ((key, message, _),) = _problems(_spec(tmp_path, body))
    assert key == "between"
    assert "a (from a) alone reads z; b (from b) alone reads c" in message


def test_validate_reads_the_files_and_refuses_a_table_of_flags(invoke, tmp_path: Path) -> None:
    """The same refusal as at run, from `parityspec validate`: no model is loaded."""
    _flags_csv(tmp_path)
    (tmp_path / "build.py").write_text("def build():\n    raise SystemExit('not called')\n")
    result = invoke("validate", _spec(tmp_path, TRAINED))
    assert result.exit_code == 2, result.output
    assert "checks[0].type: nothing to search" in result.output
