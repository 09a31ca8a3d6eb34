"""HistGradientBoosting's workaround, converter errors as one line, and a family whose
library is missing."""

from __future__ import annotations

import sys

import pytest

from parityspec.backends import converters
from tests.families.conftest import checks, run_spec

HISTGB_BUILDER = """
from sklearn.ensemble import HistGradientBoostingClassifier

def build():
    return HistGradientBoostingClassifier(max_iter=20, random_state=0)
"""


def test_histgb_converts_and_agrees_on_rows_with_gaps(invoke, cancer):
    """skl2onnx 1.20 under protobuf 7 fails on it ("Expected an int, got a boolean") without
    the cast; with it, the missing-value directions survive: rows with a gap agree too."""
    from skl2onnx.common import tree_ensemble

    folder, features, _ = cancer
    assert features.loc[:, "mean_radius"].isna().sum() == 82
    (folder / "histgb.py").write_text(HISTGB_BUILDER)
    original = tree_ensemble.add_node
    exit_code, report, output = run_spec(
        invoke,
        folder,
        {
            "name": "histgb",
            "data": {"path": "rows.csv", "target": "y", "split": {"test_size": 0.5, "seed": 0}},
            "model": {"task": "binary"},
            "backends": {
                "hgb": {"kind": "sklearn", "train": "histgb.py:build"},
                "onnx": {"kind": "onnx", "from": "hgb"},
            },
            "checks": [
                {
                    "id": "parity",
                    "type": "probability_parity",
                    "between": ["hgb", "onnx"],
                    "abs_tol": 1e-6,
                },
                {
                    "id": "labels",
                    "type": "label_agreement",
                    "between": ["hgb", "onnx"],
                    "profile": "strict",
                },
            ],
        },
    )
    assert exit_code == 0, output
    assert checks(report)["parity"]["figures"]["samples"] == 285
    assert tree_ensemble.add_node is original  # the cast lasts the conversion only


def test_the_cast_keeps_missing_value_directions():
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    x[::3, 0] = np.nan
    y = np.where(np.isnan(x[:, 0]), 5.0, x[:, 1])  # gaps learn their own branch
    model = HistGradientBoostingRegressor(max_iter=10).fit(x, y)
    with converters.hist_gradient_boosting_fix():
        graph = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    tracks = next(a for a in graph.graph.node[0].attribute if a.name.endswith("tracks_true"))
    assert set(tracks.ints) == {0, 1}


def test_a_converter_error_is_one_clipped_line_and_the_whole_text_a_file(tmp_path):
    attributes = "{'nodes_modes': [" + "'BRANCH_LEQ',\n" * 20_000 + "]}"
    try:
        try:
            raise TypeError("Field onnx.AttributeProto.ints: Expected an int, got a boolean")
        except TypeError as cause:
            raise ValueError(f"Unable to create node with attributes={attributes}") from cause
    except ValueError as error:
        failure = converters.converter_failure(
            "skl2onnx", "HistGradientBoostingClassifier", error, tmp_path
        )
    line = str(failure)
    assert "\n" not in line and len(line) < 600
    assert "TypeError: Field onnx.AttributeProto.ints: Expected an int, got a boolean" in line
    whole = (tmp_path / "converter_error.txt").read_text()
    assert len(whole) > len(attributes) and str(tmp_path / "converter_error.txt") in line


def test_an_export_failure_exits_3_with_one_line(invoke, cancer):
    folder, _, _ = cancer
    (folder / "custom.py").write_text(
        "from sklearn.base import BaseEstimator, ClassifierMixin\n"
        "from sklearn.dummy import DummyClassifier\n"
        "class Mine(DummyClassifier):\n    pass\n"
        "def build():\n    return Mine()\n"
    )
    exit_code, report, output = run_spec(
        invoke,
        folder,
        {
            "name": "custom",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "sk": {"kind": "sklearn", "train": "custom.py:build"},
                "onnx": {"kind": "onnx", "from": "sk"},
            },
            "checks": [{"id": "c", "type": "label_agreement", "between": ["sk", "onnx"]}],
        },
    )
    assert exit_code == 3, output
    line = next(line for line in output.splitlines() if "export:onnx" in line)
    assert "\n" not in line and "skl2onnx cannot convert Mine: Mine (custom.py) has no" in line
    reason = next(s for s in report["steps"] if s["id"] == "export:onnx")["reason"]
    assert "converters: [file.py:function]" in reason and "converter_error.txt" in reason


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_a_missing_library_exits_2_naming_the_extra(invoke, cancer, monkeypatch, kind):
    folder, _, _ = cancer
    (folder / "model.txt").write_text("tree\n")
    (folder / "model.json").write_text("{}")
    monkeypatch.setitem(sys.modules, kind, None)  # `import xgboost` raises ImportError
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": f"no-{kind}",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "a": {"kind": kind, "path": "model.json" if kind == "xgboost" else "model.txt"},
                "b": {"kind": "onnx", "from": "a"},
            },
            "checks": [{"id": "c", "type": "label_agreement", "between": ["a", "b"]}],
        },
    )
    assert exit_code == 2, output
    assert f"pip install 'parityspec[{kind}]'" in output


def test_a_builder_importing_a_missing_family_exits_2_naming_the_extra(invoke, cancer, monkeypatch):
    folder, _, _ = cancer
    (folder / "xgb_builder.py").write_text(
        "def build():\n    from xgboost import XGBClassifier\n    return XGBClassifier()\n"
    )
    monkeypatch.setitem(sys.modules, "xgboost", None)
    exit_code, _, output = run_spec(
        invoke,
        folder,
        {
            "name": "no-xgboost-builder",
            "data": {"path": "rows.csv", "target": "y"},
            "model": {"task": "binary"},
            "backends": {
                "a": {"kind": "sklearn", "train": "xgb_builder.py:build"},
                "b": {"kind": "onnx", "from": "a"},
            },
            "checks": [{"id": "c", "type": "label_agreement", "between": ["a", "b"]}],
        },
    )
    assert exit_code == 2, output
    assert "pip install 'parityspec[xgboost]'" in output
