"""One pass over streamed data: the file is parsed once per run, every backend predicts each
batch in that pass, an ONNX model and its INT8 form share the batch's inputs, and the rows a
report describes come from the pass's spool, not from parsing the file again."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parityspec.api import RunOptions, run
from parityspec.backends import onnx as onnx_backend
from parityspec.backends import quantized as quantized_backend
from parityspec.data import csv_stream
from parityspec.data.chunked import SAMPLE_ROWS
from parityspec.errors import ExitCode
from tests.conftest import REPO, SPECS
from tests.run.test_streaming import pretrained  # noqa: F401  (a fixture)

CHURN_CSV = REPO / "examples" / "churn" / "churn.csv"
ROWS = 6000


def _spec(tmp_path, model, batch_size=1024, int8=None, checks=None) -> str:
    spec = {
        "parityspec": 1,
        "name": "one-pass",
        "data": {"path": str(CHURN_CSV), "target": "churned", "batch_size": batch_size},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "path": str(model), "trusted": True},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx", **(int8 or {})},
        },
        "checks": checks
        or [
            {"id": "p", "type": "probability_parity", "between": ["sklearn", "onnx"]},
            {"id": "flips", "type": "threshold_flips", "between": ["sklearn", "int8"]},
            {"id": "labels", "type": "label_agreement", "between": ["onnx", "int8"]},
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _run(tmp_path, spec: str, name: str = "out"):
    return run(spec, RunOptions(out=tmp_path / name, use_cache=False))


def test_a_cold_run_parses_the_data_file_once(tmp_path, pretrained, monkeypatch):  # noqa: F811
    parsed = []
    tables = csv_stream.CsvStream.tables

    def counting(self, size, rows=None):
        for table in tables(self, size, rows):
            parsed.append(table.num_rows)
            yield table

    monkeypatch.setattr(csv_stream.CsvStream, "tables", counting)
    outcome = _run(tmp_path, _spec(tmp_path, pretrained))
    assert outcome.exit_code == ExitCode.PASSED, outcome.report
    parity = next(c for c in outcome.report["checks"] if c["id"] == "p")
    worst = parity["details"]["worst_samples"]
    assert worst and all(w["features"] for w in worst), "described rows come from the spool"
    # The sample opening the file, then one pass that every backend predicts in.
    assert sum(parsed) == min(SAMPLE_ROWS, ROWS) + ROWS


def test_onnx_and_int8_share_each_batchs_inputs(tmp_path, pretrained, monkeypatch):  # noqa: F811
    built = []
    column_feed = onnx_backend._column_feed

    def counting(frame, binding):
        built.append(binding.name)
        return column_feed(frame, binding)

    monkeypatch.setattr(onnx_backend, "_column_feed", counting)
    outcome = _run(tmp_path, _spec(tmp_path, pretrained, batch_size=1000))
    assert outcome.exit_code == ExitCode.PASSED, outcome.report
    columns = len(pd.read_csv(CHURN_CSV, nrows=1).columns) - 1  # one ONNX input per column
    assert len(built) == (ROWS // 1000) * columns


def test_a_backend_failing_mid_pass_fails_alone(tmp_path, pretrained, monkeypatch):  # noqa: F811
    calls = []
    predict = quantized_backend.predict

    def failing_on_the_third_batch(model, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("the runtime gave up")
        return predict(model, batch)

    monkeypatch.setattr(quantized_backend, "predict", failing_on_the_third_batch)
    outcome = _run(tmp_path, _spec(tmp_path, pretrained))
    assert outcome.exit_code == ExitCode.STEP_ERROR
    statuses = {c["id"]: c["status"] for c in outcome.report["checks"]}
    assert statuses == {"p": "passed", "flips": "skipped", "labels": "skipped"}
    steps = {s.step.id: s for s in outcome.state.outcomes.values()}
    assert steps["predict:int8"].status == "error"
    assert "the runtime gave up" in (steps["predict:int8"].reason or "")
    assert steps["predict:onnx"].status == steps["predict:sklearn"].status == "ok"
    assert len(calls) == 3, "a failed backend leaves the pass"


def test_serve_batch_size_gives_the_predictions_of_that_batch_size(tmp_path, pretrained):  # noqa: F811
    """Dynamic INT8 scales activations per call: declared at 300 rows, its figures are those
    of a run whose data comes in batches of 300, whatever data.batch_size says."""
    checks = [{"id": "p", "type": "probability_parity", "between": ["sklearn", "int8"]}]

    def figures(batch_size, int8, name):
        folder = tmp_path / name
        folder.mkdir()
        spec = _spec(folder, pretrained, batch_size, int8, checks)
        outcome = _run(folder, spec)
        assert outcome.exit_code in (ExitCode.PASSED, ExitCode.CHECK_FAILED), outcome.report
        return outcome.report["checks"][0]["figures"]

    served = figures(4096, {"serve_batch_size": 300}, "served")
    batched = figures(300, {}, "batched")
    # The checks sum in data.batch_size batches: a mean may differ in its last bit.
    assert served.pop("mean_abs_diff") == pytest.approx(batched.pop("mean_abs_diff"), rel=1e-12)
    assert served == batched
    assert served["max_abs_diff"] != figures(4096, {}, "whole")["max_abs_diff"]


def test_the_report_states_the_batch_every_dynamic_int8_figure_holds_for(tmp_path, pretrained):  # noqa: F811
    spec = _spec(tmp_path, pretrained, 2048, {"serve_batch_size": 512})
    run(spec, RunOptions(out=tmp_path / "out", use_cache=False))
    backends = json.loads((tmp_path / "out" / "report.json").read_text())["backends"]
    assert backends["int8"]["batch_rows"] == 512
    assert "batch_rows" not in backends["onnx"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "its figures hold for batches of 512 rows" in markdown
    run(_spec(tmp_path, pretrained, 2048), RunOptions(out=tmp_path / "default", use_cache=False))
    report = json.loads((tmp_path / "default" / "report.json").read_text())
    assert report["backends"]["int8"]["batch_rows"] == 2048


@pytest.mark.parametrize(
    ("batch", "served", "expected"),
    [(4096, [], 4096), (4096, [1000], 4000), (4096, [300, 400], 3600), (100, [300], 300)],
)
def test_the_pass_batch_is_a_multiple_of_every_served_batch(
    tmp_path,
    pretrained,  # noqa: F811
    batch,
    served,
    expected,
):
    from parityspec.spec.load import load_spec

    spec = load_spec(_spec(tmp_path, pretrained, batch)).spec
    backends = dict(spec.backends)
    for name, size in zip(("int8", "onnx"), served, strict=False):
        backends[name] = backends[name].model_copy(update={"serve_batch_size": size})
    assert spec.model_copy(update={"backends": backends}).prediction_batch_size() == expected


def test_read_values_equal_pandas_read_csv(tmp_path, monkeypatch):
    """Small blocks, so that an integer column meets a fraction, and a column empty at first
    meets text, in a later block: the stream widens them and reads on."""
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 256)
    rows = 60
    frame = pd.DataFrame(
        {
            "count": [*range(rows - 1), 2.5],
            "gappy": [np.nan if i % 7 == 0 else i for i in range(rows)],
            "value": np.linspace(-1e-3, 1e300, rows),
            "word": ["NA" if i % 5 == 0 else f"w{i % 3}" for i in range(rows)],
            "late": [""] * 40 + ["x"] * 20,
            "flag": ["True" if i % 2 else "false" for i in range(rows)],
            "note": [f"line one\nline {i}, quoted" for i in range(rows)],
        }
    )
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    expected = pd.read_csv(path)
    tables = list(csv_stream.CsvStream(path, "d.csv").tables(16))
    assert [t.num_rows for t in tables] == [16, 16, 16, 12]
    got = pd.concat([csv_stream.to_frame(t) for t in tables], ignore_index=True)
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        want, have = expected[column].to_numpy(), got[column].to_numpy()
        if want.dtype.kind in "fiu":
            np.testing.assert_array_equal(want.astype(float), have.astype(float), err_msg=column)
        else:
            assert pd.Series(want).astype(object).equals(pd.Series(have).astype(object)), column


_CELLS = {
    "int": st.integers(-(2**53), 2**53),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
    # With a letter: pandas reads a quoted number with a line break ("1\n") as a number,
    # pyarrow as text, a quirk not copied.
    "text": st.text(st.sampled_from("ab ,\"\n'x1."), min_size=1, max_size=6).filter(
        lambda cell: any(c.isalpha() for c in cell)
    ),
    "word": st.sampled_from(["yes", "no", "NA", "", "None", "n/a", "maybe"]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(sorted(_CELLS)), min_size=2, max_size=4),
    rows=st.integers(1, 40),
    gaps=st.booleans(),
    data=st.data(),
)
def test_any_table_reads_as_pandas_reads_it(tmp_path_factory, kinds, rows, gaps, data):
    """A law: whatever a CSV holds, the stream's frames hold what `pd.read_csv` gives."""
    columns = {}
    for number, kind in enumerate(kinds):
        cells = st.one_of(_CELLS[kind], st.none()) if gaps else _CELLS[kind]
        columns[f"c{number}"] = data.draw(st.lists(cells, min_size=rows, max_size=rows))
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    expected = pd.read_csv(path)
    got = pd.concat(
        [csv_stream.to_frame(t) for t in csv_stream.CsvStream(path, "d.csv").tables(7)],
        ignore_index=True,
    )
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        want, have = expected[column].to_numpy(), got[column].to_numpy()
        if want.dtype.kind in "fiu" and have.dtype.kind in "fiu":
            np.testing.assert_array_equal(want.astype(float), have.astype(float))
        else:
            assert pd.Series(want, dtype=object).equals(pd.Series(have, dtype=object)), column


def test_batches_default_to_65536_table_rows_and_4096_tensor_rows():
    from parityspec.spec.load import load_spec

    assert load_spec(SPECS / "churn.yaml").spec.data.batch_size == 65_536
    assert load_spec(SPECS / "transformer.yaml").spec.data.batch_size == 4_096
    assert load_spec(SPECS / "cnn.yaml").spec.data.batch_size == 32  # as the spec says
