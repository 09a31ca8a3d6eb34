"""Assets for the report tests: rows of a binary task and an ONNX model fitted on them, so a
spec can load only model files (no builder, no --trust-models)."""

from __future__ import annotations

from pathlib import Path

import pytest

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("model-files")
    frame = load_breast_cancer(as_frame=True).frame.iloc[:200]
    frame = frame[[*frame.columns[:4], "target"]].set_axis([*FEATURES, "target"], axis=1)
    frame.to_csv(folder / "data.csv", index=False)
    model = LogisticRegression(max_iter=1000).fit(frame[FEATURES], frame["target"])
    onnx_model = to_onnx(
        model,
        initial_types=[("X", FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (folder / "model.onnx").write_bytes(onnx_model.SerializeToString())
    return folder
