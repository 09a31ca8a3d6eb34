"""What the search generates, checked as laws over everything hypothesis draws: tensor samples
keep their shape and type, and each move is the kind its label says; ONNX `TreeEnsemble*`
thresholds are the converted model's own; a Parquet counterexample file reads back as the
rows found."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings

from parityspec.checks.input_search import counterexample_file
from parityspec.search.space import Generated
from parityspec.search.tensors import SCALES, TensorSpace

RNG = np.random.default_rng(0)
SAMPLE = {
    "image": RNG.normal(size=(40, 2, 3)).astype(np.float32),
    "tokens": RNG.integers(0, 50, size=(40, 4)),
    "mask": RNG.random((40, 4)) < 0.5,
}
SPACE = TensorSpace(SAMPLE, max_moves=3)
SPACE.columns[0].missing_ok = True  # as if the reference took a NaN in `image`


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(SPACE.strategy(4))
def test_tensor_samples_keep_shape_type_and_say_what_moved(rows: list[Generated]) -> None:
    batch = SPACE.batch(rows)
    for name, values in SAMPLE.items():
        assert batch[name].shape == (4, *values.shape[1:])
        assert batch[name].dtype == values.dtype
    for row in rows:
        assert 1 <= len(row.moves) <= 3
        inputs = SPACE.values(row)
        base = SPACE.bases[row.base]
        for move in row.moves:
            tensor = next(t for t in SPACE.inputs if t.name == move.column)
            lo, hi = tensor.lo, tensor.hi
            if move.kind == "scale":
                assert move.value in SCALES and move.index is None
                assert move.label.startswith(f"{move.column} scaled by")
                continue
            if move.kind == "fill":
                assert move.label.startswith(f"every element of {move.column}")
                continue
            element = SPACE.moved(move)
            assert element in move.label
            if move.kind == "in_range":
                assert lo <= move.value <= hi
            elif move.kind == "beyond":
                assert not lo <= move.value <= hi
            elif move.kind == "missing":
                assert np.isnan(move.value) and move.column == "image"
            elif move.kind == "flip":
                assert move.column == "mask"
                flat = inputs["mask"].reshape(-1)
                others = [m for m in row.moves if m.column == "mask" and m is not move]
                if not others:
                    assert flat[move.index] != base["mask"].reshape(-1)[move.index]
            if move.column == "tokens":
                assert float(move.value).is_integer()


def test_the_typical_sample_is_the_element_wise_median() -> None:
    typical = SPACE.bases[0]
    assert np.array_equal(typical["image"], np.median(SAMPLE["image"], axis=0).astype(np.float32))
    assert np.array_equal(typical["tokens"], np.round(np.median(SAMPLE["tokens"], axis=0)))
    assert np.array_equal(typical["mask"], SAMPLE["mask"].mean(axis=0) >= 0.5)
    assert SPACE.base_name(0) == "the typical sample"


def test_onnx_tree_ensemble_thresholds_are_the_models_own(tmp_path: Path) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier

    from parityspec.search.trees import onnx_thresholds

    features = RNG.normal(size=(200, 3))
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)
    model.fit(features, features[:, 0] + features[:, 2] > 0)
    graph = convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 3]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}},
    )
    path = tmp_path / "forest.onnx"
    path.write_bytes(graph.SerializeToString())
    found = onnx_thresholds(path, {"X": ["a", "b", "c"]}, "onnx")
    # skl2onnx stores each split as a float32 next to scikit-learn's float64 one.
    splits = [
        (["a", "b", "c"][feature], float(value))
        for tree in model.estimators_
        for feature, value in zip(
            tree.tree_.feature[tree.tree_.feature >= 0],
            tree.tree_.threshold[tree.tree_.feature >= 0],
            strict=True,
        )
    ]
    assert len(found) == len(splits)
    for threshold in found:
        assert np.float32(threshold.raw) == threshold.raw
        assert any(
            column == threshold.column
            and abs(value - threshold.raw) <= abs(np.spacing(np.float32(value)))
            for column, value in splits
        )
    assert {t.tree for t in found} == set(range(5))
    assert all(t.node.startswith("TreeEnsembleClassifier") for t in found)


def test_a_parquet_counterexample_file_reads_back_as_the_rows() -> None:
    table = {
        "format": "parquet",
        "columns": ["x", "plan", "y"],
        "rows": [[1.5, "pro", 1], [None, None, 0]],
    }
    name, content = counterexample_file({"details": {"table": table}})
    assert name == "counterexamples.parquet"
    frame = pd.read_parquet(io.BytesIO(content))
    assert list(frame.columns) == ["x", "plan", "y"]
    assert frame["x"].tolist()[0] == 1.5 and np.isnan(frame["x"].tolist()[1])
    assert frame["plan"][0] == "pro" and pd.isna(frame["plan"][1])
