"""The yardsticks for `parityspec run` on the benchmark spec (benchmarks/churn_bench.yaml.in).

    python benchmarks/handwritten.py script MODEL DATA WORKDIR   # the competent script
    python benchmarks/handwritten.py limit  MODEL DATA WORKDIR   # the physical limit

Both do exactly the spec's work: load the trained churn pipeline (skops), export it to ONNX
with skl2onnx (opset 17, ai.onnx.ml 3, no ZipMap, one input per column: float32 numerics,
strings), quantize the export with ONNX Runtime's dynamic INT8 (QInt8 weights, per tensor),
predict scikit-learn, ONNX and INT8 over the whole CSV, and compare each ONNX model with
scikit-learn: max and mean |dp| and label (argmax) agreement. Each prints one JSON line.

`script` is that work written to be as fast as a competent engineer would write it:
pyarrow's CSV reader streams the file in large blocks (bounded memory, parsing on a background
thread), the rows are cut into exact BATCH-row batches, each batch's inputs are built once
straight from the arrow columns (numerics as float32 columns, strings as object arrays taken
from the dictionary by index, no Python string per row) and shared by the ONNX and INT8
sessions, and the comparison is a running vectorised max / sum / count per batch.

`limit` is the physical limit of the same work, timed phase by phase in one process: reading
the whole CSV (pyarrow, all threads), each backend's pure batched inference (its inputs built
before the timer starts) and one comparison. Start-up (imports, model load, export,
quantization, sessions) and input building are timed too but are not part of the limit.

Dynamic INT8 computes its activation scales per batch: its figures hold for BATCH rows and
differ from those of a run at another batch size. The ONNX (float32) figures do not depend on
the batch size.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (the imports are part of what `limit` times as start-up)
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import skops.io as sio  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # noqa: E402

BATCH = 65_536
BLOCK_BYTES = 1 << 20  # pyarrow's default: larger blocks parse no faster, read further ahead
BACKENDS = ("onnx", "int8")


class Comparison:
    """Running max and sum of |reference - other| and the count of equal argmax labels."""

    def __init__(self) -> None:
        self.max = 0.0
        self.sum = 0.0
        self.values = 0
        self.rows = 0
        self.agree = 0

    def update(self, reference: np.ndarray, other: np.ndarray) -> None:
        diff = np.abs(reference - other)
        self.max = max(self.max, float(diff.max()))
        self.sum += float(diff.sum())
        self.values += diff.size
        self.rows += len(reference)
        self.agree += int(np.count_nonzero(reference.argmax(1) == other.argmax(1)))

    def figures(self) -> dict:
        return {
            "max_abs_diff": self.max,
            "mean_abs_diff": self.sum / self.values,
            "agreement": self.agree / self.rows,
            "samples": self.rows,
        }


def load_model(model_path: str):
    return sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))


def column_types(data_path: str, features: list[str]) -> dict[str, pa.DataType]:
    """Numerics as float64 (an integer column may have a gap further down the file), strings
    dictionary-encoded; the types of the first block, fixed for the whole stream."""
    schema = pacsv.open_csv(data_path).schema
    return {
        name: pa.dictionary(pa.int32(), pa.string())
        if pa.types.is_string(schema.field(name).type)
        else pa.float64()
        for name in features
    }


def export(model, types: dict[str, pa.DataType], work: Path) -> tuple[Path, Path]:
    """model.onnx (skl2onnx, as parityspec exports it) and model.int8.onnx (dynamic INT8)."""
    initial = [
        (name, FloatTensorType([None, 1]) if kind == pa.float64() else StringTensorType([None, 1]))
        for name, kind in types.items()
    ]
    onnx_model = convert_sklearn(
        model,
        initial_types=initial,
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(model.steps[-1][1]): {"zipmap": False}},
    )
    fp32, int8 = work / "hand.onnx", work / "hand.int8.onnx"
    fp32.write_bytes(onnx_model.SerializeToString())
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=False)
    return fp32, int8


def session(path: Path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def column_values(column: pa.ChunkedArray) -> np.ndarray:
    """One column of a batch as numpy: float64 with NaN for gaps, or an object array of str
    (the dictionary's strings picked by index: no new Python object per row)."""
    if not pa.types.is_dictionary(column.type):
        return column.to_numpy()
    parts = []
    for chunk in column.chunks:
        if chunk.null_count:  # a gap in a string column: pyarrow gives None there
            parts.append(chunk.to_numpy(zero_copy_only=False))
        else:
            words = chunk.dictionary.to_numpy(zero_copy_only=False)
            parts.append(words[chunk.indices.to_numpy()])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def inputs(table: pa.Table, types: dict[str, pa.DataType]) -> tuple[pd.DataFrame, dict]:
    """scikit-learn's frame and the ONNX feeds (shared by both sessions) of one batch."""
    values = {name: column_values(table.column(name)) for name in types}
    # Series of the arrays' own dtypes: pandas 3 would turn object arrays of str into its
    # arrow-backed str dtype, which scikit-learn turns back into objects (30% slower).
    frame = pd.DataFrame(
        {name: pd.Series(v, dtype=v.dtype, copy=False) for name, v in values.items()}, copy=False
    )
    feeds = {
        name: (v.astype(np.float32) if v.dtype.kind == "f" else v).reshape(-1, 1)
        for name, v in values.items()
    }
    return frame, feeds


def exact_batches(tables, size: int):
    """The rows of a stream of record batches, cut into tables of exactly `size` rows (the
    last one shorter): dynamic INT8's figures hold for one batch size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for block in tables:
        pending.append(block)
        count += block.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def script(model_path: str, data_path: str, work_dir: str) -> dict:
    model = load_model(model_path)
    types = column_types(data_path, list(model.feature_names_in_))
    sessions = [session(p) for p in export(model, types, Path(work_dir))]
    reader = pacsv.open_csv(
        data_path,
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
    )
    comparisons = {name: Comparison() for name in BACKENDS}
    for table in exact_batches(reader, BATCH):
        frame, feeds = inputs(table, types)
        reference = model.predict_proba(frame)
        for name, runner in zip(BACKENDS, sessions, strict=True):
            comparisons[name].update(reference, runner.run(["probabilities"], feeds)[0])
    return {"batch": BATCH, **{n: c.figures() for n, c in comparisons.items()}}


def limit(model_path: str, data_path: str, work_dir: str) -> dict:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    model = load_model(model_path)
    types = column_types(data_path, list(model.feature_names_in_))
    sessions = [session(p) for p in export(model, types, Path(work_dir))]
    seconds["setup"] = time.perf_counter() - STARTED  # imports, model, export, quantization
    seconds["model_export_quantize"] = time.perf_counter() - clock

    clock = time.perf_counter()
    table = pacsv.read_csv(
        data_path,
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
    )
    seconds["load"] = time.perf_counter() - clock

    for phase in ("inputs", "sklearn", *BACKENDS, "compare"):
        seconds[phase] = 0.0
    comparisons = {name: Comparison() for name in BACKENDS}
    for start in range(0, table.num_rows, BATCH):
        clock = time.perf_counter()
        frame, feeds = inputs(table.slice(start, BATCH), types)
        seconds["inputs"] += time.perf_counter() - clock  # outside the limit
        clock = time.perf_counter()
        reference = model.predict_proba(frame)
        seconds["sklearn"] += time.perf_counter() - clock
        outputs = {}
        for name, runner in zip(BACKENDS, sessions, strict=True):
            clock = time.perf_counter()
            outputs[name] = runner.run(["probabilities"], feeds)[0]
            seconds[name] += time.perf_counter() - clock
        clock = time.perf_counter()
        for name in BACKENDS:
            comparisons[name].update(reference, outputs[name])
        seconds["compare"] += time.perf_counter() - clock
    seconds["limit"] = sum(seconds[p] for p in ("load", "sklearn", *BACKENDS, "compare"))
    return {"batch": BATCH, "seconds": seconds, **{n: c.figures() for n, c in comparisons.items()}}


def main() -> None:
    modes = {"script": script, "limit": limit}
    if len(sys.argv) != 5 or sys.argv[1] not in modes:
        raise SystemExit(__doc__)
    print(json.dumps(modes[sys.argv[1]](*sys.argv[2:5])), flush=True)
    # Everything is written: skip the interpreter's teardown, which takes 0.7 s here once
    # skops has imported every scikit-learn module (and torch through array_api_compat).
    os._exit(0)


if __name__ == "__main__":
    main()
