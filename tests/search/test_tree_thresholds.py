"""Split thresholds read from XGBoost and LightGBM models (native boosters and their
scikit-learn estimators, alone or last in a Pipeline) are the models' own, on the right
columns; and a LightGBM model against its ONNX export, whose float32 thresholds round the
booster's float64 ones, is caught on a value just beside a split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parityspec.api import RunOptions, prepare, run
from parityspec.search.trees import model_thresholds

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

COLUMNS = ["tenure", "charges", "calls"]


def _frame(rows: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows).astype(float),
            "charges": rng.uniform(20, 120, rows).round(2),
            "calls": rng.integers(0, 9, rows).astype(float),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
        }
    )
    logit = 0.05 * frame["charges"] - 0.04 * frame["tenure"] + 0.3 * frame["calls"] - 3
    target = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, target


def _spans(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    return {c: (float(frame[c].min()), float(frame[c].max())) for c in COLUMNS}


def _by_column(found) -> dict[str, set[float]]:
    columns: dict[str, set[float]] = {}
    for threshold in found:
        columns.setdefault(threshold.column, set()).add(threshold.raw)
    return columns


def _xgboost_splits(booster, names: list[str]) -> dict[str, set[float]]:
    table = booster.trees_to_dataframe()
    splits = table[table["Feature"] != "Leaf"]
    out: dict[str, set[float]] = {}
    for feature, split in zip(splits["Feature"], splits["Split"], strict=True):
        name = (
            names[int(feature[1:])]
            if feature.startswith("f") and feature[1:].isdigit()
            else feature
        )
        out.setdefault(name, set()).add(float(np.float32(split)))
    return out


def test_xgboost_estimator_alone_reads_its_own_splits() -> None:
    frame, target = _frame()
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3).fit(frame[COLUMNS], target)
    found, unmapped = model_thresholds(model, frame[COLUMNS].head(1), _spans(frame), "xgb")
    assert unmapped == 0
    assert _by_column(found) == _xgboost_splits(model.get_booster(), COLUMNS)
    assert {t.tree for t in found} <= set(range(8))


def test_xgboost_last_in_a_pipeline_maps_passthrough_columns_back() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, target = _frame()
    preprocess = ColumnTransformer(
        [("numeric", "passthrough", COLUMNS), ("plan", OneHotEncoder(), ["plan"])]
    )
    pipeline = Pipeline(
        [("preprocess", preprocess), ("model", xgboost.XGBClassifier(n_estimators=8))]
    ).fit(frame, target)
    found, unmapped = model_thresholds(pipeline, frame.head(1), _spans(frame), "xgb")
    # Splits on the one-hot features belong to no numeric column: counted, not mapped.
    booster = pipeline[-1].get_booster()
    features = booster.trees_to_dataframe()["Feature"]
    assert unmapped == int(features.isin(["f3", "f4", "f5"]).sum()) > 0
    expected = _xgboost_splits(booster, [*COLUMNS, "p0", "p1", "p2"])
    assert _by_column(found) == {k: v for k, v in expected.items() if k in COLUMNS}


def _lightgbm_splits(booster, names: list[str]) -> dict[str, set[float]]:
    out: dict[str, set[float]] = {}
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                out.setdefault(names[node["split_feature"]], set()).add(node["threshold"])
                stack += [node["left_child"], node["right_child"]]
    return out


@pytest.mark.parametrize("native", [True, False], ids=["Booster", "LGBMClassifier"])
def test_lightgbm_reads_its_own_splits_on_the_data_columns(native: bool) -> None:
    frame, target = _frame()
    # Trained on an array: the booster names its features Column_0..., the data's stand in.
    model = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1)
    model.fit(frame[COLUMNS].to_numpy(), target)
    predictor = model.booster_ if native else model
    found, unmapped = model_thresholds(predictor, frame[COLUMNS].head(1), _spans(frame), "lgbm")
    assert unmapped == 0
    assert _by_column(found) == _lightgbm_splits(model.booster_, COLUMNS)


@pytest.mark.slow
def test_a_lightgbm_model_against_its_onnx_export_is_caught_beside_a_split(
    tmp_path: Path,
) -> None:
    frame, target = _frame()
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1)
    model.fit(frame[COLUMNS], target)
    model.booster_.save_model(str(tmp_path / "model.txt"))
    frame[COLUMNS].assign(y=target).to_csv(tmp_path / "rows.csv", index=False)
    spec = tmp_path / "lgbm.yaml"
    spec.write_text(
        "parityspec: 1\nname: lgbm\n"
        "data: {path: rows.csv, target: y}\n"
        "model: {task: binary}\n"
        "backends:\n"
        "  lightgbm: {kind: lightgbm, path: model.txt}\n"
        "  onnx: {kind: onnx, from: lightgbm}\n"
        "checks:\n"
        "  - {id: search, type: input_search, between: [lightgbm, onnx], max_examples: 60}\n"
    )
    outcome = run(prepare(spec, RunOptions(out=tmp_path / "out", use_cache=False)))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (check,) = report["checks"]
    assert int(outcome.exit_code) == 1, check["reason"]
    assert check["figures"]["split_thresholds"] > 0
    minimal = check["details"]["minimal_counterexample"]
    ((column, label),) = minimal["moved"].items()
    assert "at split threshold" in label and "float64 side" in label
    # A value the booster (x <= t in float64) and the export (in float32) send to different
    # sides of the split nearest it.
    value = minimal["features"][column]
    splits = _lightgbm_splits(model.booster_, COLUMNS)[column]
    split = min(splits, key=lambda t: abs(t - value))
    assert (value <= split) != (np.float32(value) <= np.float32(split))


def test_catboost_reads_its_own_splits_when_installed() -> None:
    catboost = pytest.importorskip("catboost")
    frame, target = _frame()
    model = catboost.CatBoostClassifier(
        iterations=8, depth=3, verbose=0, allow_writing_files=False, random_seed=0
    )
    model.fit(frame[COLUMNS].to_numpy(), target)  # names its features "0", "1", "2"
    found, unmapped = model_thresholds(model, frame[COLUMNS].head(1), _spans(frame), "cb")
    assert unmapped == 0
    # Each border CatBoost keeps is a split of one of its trees, in float32.
    borders = {
        COLUMNS[index]: {float(np.float32(b)) for b in values}
        for index, values in model.get_borders().items()
        if values
    }
    assert _by_column(found) == borders
    assert {t.tree for t in found} == set(range(model.tree_count_))
