"""Streaming: predictions on disk read back in slices, data files read a batch at a time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml

from parityspec.data import chunked as chunked_module
from parityspec.data.sources import load_dataset, streams
from parityspec.data.stored import OutputWriter
from parityspec.spec.load import load_spec
from tests.conftest import REPO

CHURN = REPO / "examples" / "churn"


def test_stored_outputs_read_back_exactly_as_written(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.random((n, 3)) for n in (5, 1, 7)]
    writer = OutputWriter(tmp_path)
    for batch in batches:
        writer.append({"p": batch})
    stored = writer.close()["p"]
    whole = np.concatenate(batches)
    assert stored.shape == (13, 3) and len(stored) == 13 and stored.size == 39
    np.testing.assert_array_equal(np.asarray(stored), whole)
    np.testing.assert_array_equal(stored[4:9], whole[4:9])
    np.testing.assert_array_equal(stored[-1], whole[-1])
    np.testing.assert_array_equal(stored[:, 2], whole[:, 2])
    assert stored[(6, 1)] == whole[6, 1]
    np.testing.assert_array_equal(np.abs(stored - stored), np.zeros_like(whole))


def test_writer_refuses_a_batch_of_another_shape(tmp_path):
    writer = OutputWriter(tmp_path)
    writer.append({"p": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="changed shape"):
        writer.append({"p": np.zeros((2, 4))})


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """The churn MLP trained once and saved: a spec that loads it trains nothing."""
    import sys

    sys.path.insert(0, str(CHURN))
    from train import build_pipeline

    frame = pd.read_csv(CHURN / "churn.csv")
    model = build_pipeline().fit(frame.drop(columns=["churned"]), frame["churned"])
    folder = tmp_path_factory.mktemp("pretrained")
    sio.dump(model, folder / "model.skops")
    return folder / "model.skops"


def _spec(tmp_path, model, batch_size: int, **data) -> str:
    spec = {
        "parityspec": 1,
        "name": "streamed",
        "data": {
            "path": str(CHURN / "churn.csv"),
            "target": "churned",
            "batch_size": batch_size,
            **data,
        },
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "path": str(model), "trusted": True},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx"},
        },
        "checks": [
            {
                "id": "parity",
                "type": "probability_parity",
                "between": ["sklearn", "onnx"],
                "profile": "lenient",
            },
            {
                "id": "labels",
                "type": "label_agreement",
                "between": ["sklearn", "onnx"],
                "profile": "lenient",
            },
            {
                "id": "flips",
                "type": "threshold_flips",
                "between": ["sklearn", "onnx"],
                "profile": "lenient",
            },
            {
                "id": "metrics",
                "type": "metric_delta",
                "between": ["sklearn", "onnx"],
                "profile": "lenient",
                "max_metric_drop": 0.05,
            },
        ],
    }
    path = tmp_path / f"spec_{batch_size}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_a_spec_that_trains_nothing_and_splits_nothing_streams(tmp_path, pretrained):
    loaded = load_spec(_spec(tmp_path, pretrained, 512)).spec
    assert streams(loaded, tmp_path)
    assert not streams(
        loaded.model_copy(
            update={"data": loaded.data.model_copy(update={"split": {"test_size": 0.2}})}
        ),
        tmp_path,
    )
    churn = load_spec(REPO / "specs" / "churn.yaml")
    assert not streams(churn.spec, churn.directory)  # it trains


def test_streamed_batches_are_the_rows_of_the_file(tmp_path, pretrained, monkeypatch):
    monkeypatch.setattr(chunked_module, "SAMPLE_ROWS", 200)  # so slices also go past it
    loaded = load_spec(_spec(tmp_path, pretrained, 512))
    args = (loaded.spec.data, loaded.spec.model, loaded.directory)
    whole, chunked = load_dataset(*args), load_dataset(*args, stream_dir=tmp_path / "work")
    assert len(chunked) == len(whole) == 6000
    assert chunked.columns == whole.columns
    np.testing.assert_array_equal(np.asarray(chunked.target), whole.target)
    np.testing.assert_array_equal(chunked.classes, whole.classes)
    streamed = pd.concat([frame for _, frame in chunked.batches(999)], ignore_index=True)
    pd.testing.assert_frame_equal(streamed, whole.features, check_dtype=False)
    assert chunked.describe_rows([5, 4321]) == whole.describe_rows([5, 4321])
    for start, stop in ((100, 120), (5990, 6000)):  # inside the kept sample, and beyond it
        pd.testing.assert_frame_equal(
            chunked.slice(start, stop).reset_index(drop=True),
            whole.slice(start, stop).reset_index(drop=True),
            check_dtype=False,
        )


def test_results_do_not_depend_on_the_batch_size(invoke, tmp_path, pretrained):
    """sklearn vs its float ONNX form. (Dynamic INT8 would differ: it scales activations
    per batch, so its outputs depend on how rows are batched.)"""
    checks = {}
    for batch_size in (97, 4096):
        out = tmp_path / str(batch_size)
        result = invoke("run", _spec(tmp_path, pretrained, batch_size), "--out", out)
        assert result.exit_code == 0, result.output
        report = json.loads((out / "report.json").read_text())
        checks[batch_size] = {c["id"]: c for c in report["checks"]}
    small, large = checks[97], checks[4096]
    for check_id in ("labels", "flips", "metrics"):
        assert small[check_id]["figures"] == large[check_id]["figures"], check_id
    parity_small, parity_large = small["parity"]["figures"], large["parity"]["figures"]
    assert parity_small["max_abs_diff"] == parity_large["max_abs_diff"]
    assert parity_small["mean_abs_diff"] == pytest.approx(parity_large["mean_abs_diff"])
    assert (
        small["parity"]["details"]["worst_samples"] == large["parity"]["details"]["worst_samples"]
    )
