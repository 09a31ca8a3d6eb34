"""Assets for the bad-input tests, built once per worker: a small breast-cancer CSV, the
builder of the pipeline the specs train, that pipeline fitted and saved as skops, joblib and
ONNX, and a mixed-type churn pipeline with a categorical encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO

FEATURES = ["f0", "f1", "f2", "f3", "f4"]
BUILDER = """
def build():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
"""


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    import joblib
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("assets")
    frame = load_breast_cancer(as_frame=True).frame
    frame = frame[[*frame.columns[:5], "target"]].set_axis([*FEATURES, "target"], axis=1)
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "builder.py").write_text(BUILDER)
    namespace: dict = {}
    exec(BUILDER, namespace)
    model = namespace["build"]().fit(frame[FEATURES], frame["target"])
    sio.dump(model, folder / "model.skops")
    joblib.dump(model, folder / "model.joblib")
    (folder / "model.onnx").write_bytes(_to_onnx(model, {"X": len(FEATURES)}))
    return folder


@pytest.fixture(scope="session")
def churn_assets(tmp_path_factory) -> Path:
    """A ColumnTransformer pipeline (OneHotEncoder(handle_unknown='ignore')) fitted on churn
    rows, saved as skops; the evaluation data is written by the tests."""
    import sys

    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    sys.path.insert(0, str(REPO / "examples" / "churn"))
    try:
        from train import build_preprocess
    finally:
        sys.path.pop(0)
    folder = tmp_path_factory.mktemp("churn")
    frame = pd.read_csv(REPO / "examples" / "churn" / "churn.csv").iloc[:600]
    frame.to_csv(folder / "churn.csv", index=False)
    model = Pipeline(
        [("preprocess", build_preprocess()), ("classifier", LogisticRegression(max_iter=500))]
    ).fit(frame.drop(columns="churned"), frame["churned"])
    sio.dump(model, folder / "model.skops")
    return folder


def _to_onnx(model, inputs: dict[str, int]) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    onnx_model = to_onnx(
        model,
        initial_types=[(name, FloatTensorType([None, width])) for name, width in inputs.items()],
        options={id(final): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onnx_model.SerializeToString()


@pytest.fixture(scope="session")
def onnx_bytes():
    return _to_onnx
