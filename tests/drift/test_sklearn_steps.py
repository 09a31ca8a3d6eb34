"""Per-step drift of sklearn pipelines converted by skl2onnx, on a churn-like frame."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from pandas.api.types import is_numeric_dtype
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from parityspec.drift.sklearn_steps import compare_pipeline_steps

NUMERIC = ["tenure", "monthly_charges", "total_charges"]
CATEGORICAL = ["contract", "payment_method", "internet"]
PREPROCESS_ROWS = [
    "preprocess/numeric/impute",
    "preprocess/numeric/scale",
    "preprocess/numeric",
    "preprocess/categorical",
    "preprocess",
]


def churn_frame(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n).astype(np.float64)
    monthly = np.round(rng.uniform(18, 120, n), 2)
    # Charges in the thousands: far from exactly representable in float32.
    total = np.round(tenure * monthly * rng.uniform(0.9, 1.1, n) + rng.uniform(0, 50, n), 2)
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": rng.choice(
                ["monthly", "one_year", "two_year", "legacy"], n, p=[0.55, 0.25, 0.19, 0.01]
            ),
            "payment_method": rng.choice(
                ["card", "bank", "check", "mail", "crypto"], n, p=[0.3, 0.3, 0.2, 0.19, 0.01]
            ),
            "internet": rng.choice(["fiber", "dsl", "none"], n),
        }
    )
    for column, rate in (("total_charges", 0.05), ("monthly_charges", 0.02)):
        frame.loc[rng.random(n) < rate, column] = np.nan
    logit = -1.0 + 1.2 * (frame["contract"] == "monthly") - tenure / 30 + (monthly - 60) / 40
    target = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, target


def churn_pipeline(classifier, *extra_steps) -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    preprocess = ColumnTransformer(
        [
            ("numeric", numeric, NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("preprocess", preprocess), *extra_steps, ("classifier", classifier)])


def input_type(column: pd.Series):
    return FloatTensorType([None, 1]) if is_numeric_dtype(column) else StringTensorType([None, 1])


def to_onnx(pipeline: Pipeline, frame: pd.DataFrame) -> onnx.ModelProto:
    """The tool's conventions: one input per column, zipmap off, opset 17."""
    initial_types = [(c, input_type(frame[c])) for c in frame.columns]
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}}
    return convert_sklearn(pipeline, initial_types=initial_types, options=options, target_opset=17)


@pytest.fixture(scope="module")
def churn():
    return churn_frame()


@pytest.fixture(scope="module")
def forest(churn):
    frame, target = churn
    classifier = RandomForestClassifier(n_estimators=50, random_state=0)
    pipeline = churn_pipeline(classifier).fit(frame, target)
    return pipeline, to_onnx(pipeline, frame)


@pytest.fixture(scope="module")
def logistic(churn):
    frame, target = churn
    pipeline = churn_pipeline(LogisticRegression(max_iter=1000)).fit(frame, target)
    return pipeline, to_onnx(pipeline, frame)


def by_name(table):
    return {row.name: row for row in table.rows}


def test_forest_drift_starts_at_the_scaler(churn, forest):
    pipeline, model = forest
    table = compare_pipeline_steps(pipeline, model, churn[0], tolerance=1e-7)
    rows = by_name(table)
    assert [r.name for r in table.rows] == [*PREPROCESS_ROWS, "classifier"]
    assert table.origin == "preprocess/numeric/scale"
    assert rows["preprocess/numeric/impute"].status == "ok"
    assert rows["preprocess/categorical"].stats.max_abs == 0
    assert rows["classifier"].status == "over"
    assert rows["classifier"].stats.max_abs > 1e-3
    assert rows["classifier"].onnx_value == "probabilities"


def test_forest_float32_probe_is_consistent(churn, forest):
    pipeline, model = forest
    probe = compare_pipeline_steps(pipeline, model, churn[0], tolerance=1e-7).float32_probe
    assert probe["max_abs_diff_float64_vs_onnx"] > 1e-3
    assert probe["max_abs_diff_float64_vs_float32_inputs"] > 0
    assert 0.0 <= probe["explained_fraction"] <= 1.0
    assert "float32" in probe["verdict"]


def test_logistic_regression_has_no_origin(churn, logistic):
    # A linear model is continuous in its inputs: 1-ulp feature shifts stay ~1e-7.
    pipeline, model = logistic
    table = compare_pipeline_steps(pipeline, model, churn[0], tolerance=1e-4)
    assert table.origin is None
    assert all(row.status == "ok" for row in table.rows)
    assert by_name(table)["classifier"].stats.max_abs < 1e-5


def test_step_removed_by_the_converter_is_unmatched(churn):
    frame, target = churn
    identity = ("identity", FunctionTransformer())
    pipeline = churn_pipeline(LogisticRegression(max_iter=1000), identity).fit(frame, target)
    table = compare_pipeline_steps(pipeline, to_onnx(pipeline, frame), frame, tolerance=1e-4)
    rows = by_name(table)
    assert rows["identity"].status == "unmatched"
    assert rows["identity"].stats is None
    assert "Identity" in rows["identity"].reason
    assert rows["classifier"].status == "ok"


def test_tampered_graph_is_unmatched_not_misread(churn, logistic):
    pipeline, model = logistic
    tampered = onnx.ModelProto()
    tampered.CopyFrom(model)
    scaler = next(node for node in tampered.graph.node if node.op_type == "Scaler")
    offset = next(a for a in scaler.attribute if a.name == "offset")
    offset.floats[0] += 1.0
    rows = by_name(compare_pipeline_steps(pipeline, tampered, churn[0], tolerance=1e-4))
    assert rows["preprocess/numeric/impute"].status == "ok"
    for name in ("preprocess/numeric/scale", "preprocess", "classifier"):
        assert rows[name].status == "unmatched"
        assert "differently" in rows[name].reason


def test_batches_equal_one_batch(churn, forest, tmp_path):
    pipeline, model = forest
    path = tmp_path / "forest.onnx"
    onnx.save(model, path)
    whole = compare_pipeline_steps(pipeline, path, churn[0], tolerance=1e-7, batch_size=10**6)
    batched = compare_pipeline_steps(pipeline, path, churn[0], tolerance=1e-7, batch_size=700)
    assert whole.origin == batched.origin
    for one, many in zip(whole.rows, batched.rows, strict=True):
        assert (one.name, one.status) == (many.name, many.status)
        assert one.stats.max_abs == many.stats.max_abs
        assert one.stats.count == many.stats.count
        assert np.array_equal(one.stats.hist, many.stats.hist)
        assert np.array_equal(one.stats.worst.indices, many.stats.worst.indices)
        assert one.stats.mean_abs == pytest.approx(many.stats.mean_abs, rel=1e-9)
    probe, batched_probe = whole.float32_probe, batched.float32_probe
    for key in ("max_abs_diff_float64_vs_onnx", "max_abs_diff_float64_vs_float32_inputs"):
        assert probe[key] == batched_probe[key]
    assert probe["explained_fraction"] == pytest.approx(batched_probe["explained_fraction"])
