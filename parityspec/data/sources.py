"""Reading the spec's data: CSV, Parquet, NPZ, scikit-learn bundled sets, synthetic tensors.

Every problem with the data is an `InputError` naming the file (exit 2). Before a file is read,
its size in memory is estimated and compared with the memory available, so that a file far
larger than memory fails at once with a hint instead of swapping the machine to a halt.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from parityspec.data import Dataset, Rows
from parityspec.data.shards import ParquetShards, file_shards, is_sharded, open_shards
from parityspec.errors import InputError, first_line
from parityspec.loading import NotRegularFile, file_problem, read_regular_file
from parityspec.spec.models import DataSpec, ModelSpec, SpecBase, Split, Synthetic, TensorSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from parityspec.data.chunked import ChunkedDataset

TORCH_ONLY_DTYPES = {"bfloat16"}
CSV_EXPANSION = 2
"""In-memory bytes per CSV byte: float64 cells are about as long as their text, and pandas
holds a parsing copy; string cells take more, so this is a floor, not a bound."""
MEMORY_FALLBACK = 4 << 30
"""Bytes assumed available where the operating system cannot say."""
SAMPLE_BYTES = 1 << 20
NUMERIC_SHARE = 0.9
"""A text column with at least this share of numbers is numeric, and its other cells faults."""
STRAY_PROBE = 100
SHARD_READ_ROWS = 65_536
ROWS_HINT = "set data.rows to read only the first rows, or use a smaller file"


def streams(spec: SpecBase, spec_dir: Path) -> bool:
    """Whether the data can be read a batch at a time on each pass, never whole: a CSV or
    Parquet file or a set of Parquet shards, with no split and nothing trained on it in the
    run."""
    data = spec.data
    if data.path is None or data.split is not None:
        return False
    trains = any(getattr(b, "train", None) for b in spec.backends.values())
    return _kind(data, spec_dir) in ("csv", "parquet") and not trains


def _kind(data: DataSpec, spec_dir: Path) -> str:
    path = _shown_path(data)
    if is_sharded(spec_dir, path):
        return "parquet"
    return data.format or Path(path).suffix.lstrip(".").lower()


@overload
def load_dataset(
    data: DataSpec, model: ModelSpec, spec_dir: Path, stream_dir: None = None
) -> Dataset: ...
@overload
def load_dataset(
    data: DataSpec, model: ModelSpec, spec_dir: Path, stream_dir: Path | None
) -> Dataset | ChunkedDataset: ...
def load_dataset(
    data: DataSpec, model: ModelSpec, spec_dir: Path, stream_dir: Path | None = None
) -> Dataset | ChunkedDataset:
    """In memory, or, given `stream_dir` (see `streams`), a `ChunkedDataset`."""
    if stream_dir is not None:
        return _chunked(data, model, spec_dir, stream_dir)
    require_data_fits(data, model, spec_dir)
    if data.synthetic is not None:
        dataset = _synthetic(data.synthetic, data, model)
    elif data.sklearn is not None:
        dataset = _sklearn(data.sklearn, data, model)
    else:
        dataset = _from_file(data, model, spec_dir)
    if len(dataset) == 0:
        raise InputError("the data has no rows", file=data.path or data.sklearn)
    return dataset


def require_data_fits(data: DataSpec, model: ModelSpec, spec_dir: Path) -> None:
    """Refuse data that cannot fit in memory, reading only sizes and file metadata: cheap
    enough to call before anything reads or hashes a data file."""
    if data.synthetic is not None and model.inputs:
        rows = min(data.synthetic.rows, data.rows or data.synthetic.rows)
        require_memory(
            _synthetic_bytes(rows, model.inputs),
            f"synthetic data ({rows} rows of {_shapes(model.inputs)})",
            None,
            hint="lower data.synthetic.rows or the shapes in model.inputs",
        )
    elif data.path is not None and not is_sharded(spec_dir, data.path):
        path = spec_dir / data.path
        kind = _kind(data, spec_dir)
        if file_problem(path) is None and kind in ("csv", "parquet", "npz"):
            needed = _estimated_bytes(path, data.path, kind, data.rows)
            require_memory(needed, "the data", data.path)


def split_dataset(dataset: Rows, split: Split | None, task: str) -> tuple[Rows, Rows]:
    """(train, evaluation). Without a split both are the whole data set, which is the only way
    a chunked one comes (see `streams`)."""
    if split is None:
        return dataset, dataset
    if not isinstance(dataset, Dataset):
        raise TypeError("only a data set in memory can be split")
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(dataset))
    stratify = dataset.target if split.stratify and task in ("binary", "multiclass") else None
    if stratify is not None:
        values, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2:
            raise InputError(
                f"cannot split the data with every class in both parts: class "
                f"{values[counts.argmin()]} has {counts.min()} row",
                hint="use more rows, or set data.split.stratify: false",
            )
    try:
        train, test = train_test_split(
            indices, test_size=split.test_size, random_state=split.seed, stratify=stratify
        )
    except ValueError as error:
        raise InputError(f"cannot split the data: {error}", hint="change data.split") from error
    return dataset.take(np.sort(train)), dataset.take(np.sort(test))


# --- files -----------------------------------------------------------------------------------


def _chunked(data: DataSpec, model: ModelSpec, spec_dir: Path, work_dir: Path) -> ChunkedDataset:
    from parityspec.data.chunked import ChunkedDataset

    shown = _shown_path(data)
    if is_sharded(spec_dir, shown):
        shards: ParquetShards | None = _checked_shards(data, spec_dir)
        path, kind = (spec_dir / shown), "parquet"
    else:
        path, kind = _checked_file(data, spec_dir)
        # A Parquet file's row groups are its shards: batches never straddle two, as when
        # workers read them.
        shards = file_shards(path, shown) if kind == "parquet" else None
    return ChunkedDataset(
        path,
        kind,
        shown,
        data.rows,
        lambda frame, first_row, text: _frame_dataset(frame, shown, data, model, first_row, text),
        work_dir,
        shards,
    )


def open_data_shards(data: DataSpec, spec_dir: Path) -> ParquetShards:
    """The shards of `data.path`: a directory or glob of Parquet files, or one Parquet file
    (its row groups); anything else cannot be read shard by shard."""
    shown = _shown_path(data)
    if is_sharded(spec_dir, shown):
        return _checked_shards(data, spec_dir)
    path, kind = _checked_file(data, spec_dir)
    if kind != "parquet":
        raise InputError(
            f"the data is {kind.upper()}: only Parquet data is read shard by shard",
            file=shown,
            hint="convert it to Parquet (a file or a directory of files), or run without "
            "--workers/--scheduler",
        )
    return file_shards(path, shown)


def shard_rows(
    shards: ParquetShards,
    number: int,
    size: int,
    data: DataSpec,
    model: ModelSpec,
    text_columns: frozenset[str],
) -> Iterator[tuple[int, Dataset]]:
    """Shard `number`'s rows in validated batches of at most `size` rows, each with the id
    of its first row: what a worker reads of the data."""
    shard = shards.shards[number]
    start, shown = shard.first_row, shards.shown_file(shard.file)
    in_file = shards.first_row_in_file(shard)  # errors name the shard's file and its row
    for table in shards.read(shard, size):
        rows = _frame_dataset(table.to_pandas(), shown, data, model, in_file, text_columns)
        yield start, rows
        start += table.num_rows
        in_file += table.num_rows


def shard_classes(
    shards: ParquetShards, number: int, size: int, data: DataSpec, model: ModelSpec
) -> np.ndarray | None:
    """The classes of shard `number`'s ground truth, from its target column alone, as
    `shard_rows`' batches would say them together: what a worker needs of every shard when
    no model names its classes (a shard may lack one)."""
    if data.target is None or model.task not in ("binary", "multiclass"):
        return None
    shard = shards.shards[number]
    shown, in_file = shards.shown_file(shard.file), shards.first_row_in_file(shard)
    found: set = set()  # whatever `tolist()` gives, as a chunked data set collects them
    for table in shards.read(shard, size, columns=[data.target]):
        _require_column(data.target, table.column_names, shards.schema.names, shown)
        target = table.select([data.target]).to_pandas()[data.target].to_numpy()
        _require_complete_target(target, data.target, shown, in_file)
        found.update(np.unique(target).tolist())
        in_file += table.num_rows
    return np.array(sorted(found)) if found else None


def _checked_shards(data: DataSpec, spec_dir: Path) -> ParquetShards:
    shown = _shown_path(data)
    if data.format not in (None, "parquet"):
        raise InputError(
            f"a directory or a glob is read as Parquet shards, not {data.format}",
            file=shown,
            hint="drop data.format, or name one file",
        )
    shards = open_shards(spec_dir, shown)
    _require_flat_schema(shards.schema, data)
    return shards


def _shown_path(data: DataSpec) -> str:
    """`data.path`, for the readers of a data file: a spec has exactly one data source."""
    if data.path is None:
        raise ValueError("the data is not a file")
    return data.path


def _checked_file(data: DataSpec, spec_dir: Path) -> tuple[Path, str]:
    shown = _shown_path(data)
    problem = file_problem(spec_dir / shown)
    if problem == "no such file":
        raise InputError(
            "data file does not exist", file=shown, hint="paths are relative to the spec"
        )
    if problem:
        raise InputError(problem, file=shown, hint="data.path names a CSV, Parquet or NPZ file")
    path = (spec_dir / shown).resolve()
    try:
        # One byte read, not the size reported: a /proc file reports 0 and holds text.
        empty = not read_regular_file(path, 0)
    except NotRegularFile as error:
        raise InputError(str(error), file=shown) from error
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", file=shown) from error
    if empty:
        raise InputError("the data file is empty (0 bytes)", file=shown)
    kind = data.format or path.suffix.lstrip(".").lower()
    if kind not in ("csv", "parquet", "npz"):
        raise InputError(
            f"unknown data format {kind!r}",
            file=shown,
            hint="use .csv, .parquet or .npz, or set format",
        )
    if kind == "parquet":
        _require_flat_parquet(path, data)
    return path, kind


def _require_flat_parquet(path: Path, data: DataSpec) -> None:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # not a Parquet file: reading it says so, with pyarrow's reason
        return
    _require_flat_schema(schema, data)


def _require_flat_schema(schema: pa.Schema, data: DataSpec) -> None:
    """A struct or list column reaches a model as Python objects it cannot read."""
    import pyarrow.types as pat

    used = None if data.features is None else {*data.features, data.target}
    for field in schema:
        if pat.is_nested(field.type) and (used is None or field.name in used):
            raise InputError(
                f"column {field.name!r} is nested ({field.type}), not one value per row",
                file=data.path,
                hint="flatten it into columns of numbers or text, or list the other columns "
                "in data.features",
            )


def _from_file(data: DataSpec, model: ModelSpec, spec_dir: Path) -> Dataset:
    shown = _shown_path(data)
    if is_sharded(spec_dir, shown):
        shards = _checked_shards(data, spec_dir)
        import pyarrow as pa

        tables = [table for _, table in shards.tables(SHARD_READ_ROWS, data.rows)]
        return _frame_dataset(pa.concat_tables(tables).to_pandas(), shown, data, model)
    path, kind = _checked_file(data, spec_dir)
    if kind == "npz":
        return _npz(path, shown, data, model)
    frame = _read_frame(path, shown, kind, data.rows)
    if kind == "csv" and (data.rows is None or len(frame) < data.rows):
        _require_complete_last_line(path, shown, frame)
    return _frame_dataset(frame, shown, data, model)


def _read_frame(path: Path, shown: str, kind: str, rows: int | None) -> pd.DataFrame:
    import pandas as pd

    try:
        if kind == "csv":
            return pd.read_csv(path, nrows=rows)
        return _read_parquet(path, rows)
    except UnicodeDecodeError as error:
        raise InputError(
            f"cannot read {kind.upper()}: {first_line(error)}",
            file=shown,
            hint="is it a text CSV file? save it as UTF-8",
        ) from error
    except Exception as error:  # pandas and pyarrow raise many types for a corrupt file
        raise InputError(f"cannot read {kind.upper()}: {first_line(error)}", file=shown) from error


def _read_parquet(path: Path, rows: int | None) -> pd.DataFrame:
    import pandas as pd

    if rows is None:
        return pd.read_parquet(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Only the first `rows` rows are decoded: data.rows bounds memory for Parquet too.
    source = pq.ParquetFile(path)
    batches, count = [], 0
    for batch in source.iter_batches(batch_size=min(rows, 65536)):
        batches.append(batch)
        count += batch.num_rows
        if count >= rows:
            break
    table = pa.Table.from_batches(batches, schema=source.schema_arrow)
    return table.slice(0, rows).to_pandas()


def _require_complete_last_line(path: Path, shown: str, frame: pd.DataFrame) -> None:
    """pandas pads a short last line with NaN: a cut-off download would pass as data with
    missing values. A last line without its newline and with too few fields is refused."""
    if frame.empty:
        return
    tail = _tail(path, shown)
    if tail.endswith((b"\n", b"\r")):
        return
    last = tail.splitlines()[-1].decode("utf-8", errors="replace") if tail else ""
    fields = len(next(csv.reader([last]), []))
    if fields < len(frame.columns) and frame.iloc[-1].isna().iloc[fields:].all():
        raise InputError(
            f"the last line has {fields} of {len(frame.columns)} fields and no line end: "
            "the file looks truncated",
            file=shown,
            hint="write or download the file again",
        )


def _tail(path: Path, shown: str, size: int = 65536) -> bytes:
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - size))
            return stream.read()
    except OSError as error:
        raise InputError(f"cannot read: {first_line(error)}", file=shown) from error


def _frame_dataset(
    frame: pd.DataFrame,
    shown: str,
    data: DataSpec,
    model: ModelSpec,
    first_row: int = 0,
    text_columns: frozenset[str] = frozenset(),
) -> Dataset:
    """`first_row`: where `frame` starts in the file, so that errors name the file's rows;
    `text_columns`: columns known to hold text (in earlier rows), whatever this frame holds."""
    target = None
    if data.target is not None:
        _require_column(data.target, frame.columns, frame.columns, shown)
        target = frame[data.target].to_numpy()
        _require_complete_target(target, data.target, shown, first_row)
    features = data.features or [c for c in frame.columns if c != data.target]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(
            f"feature columns missing from the data: {', '.join(map(str, missing))}",
            file=shown,
            hint=f"columns are: {', '.join(map(str, frame.columns))}",
        )
    if not features:
        raise InputError(
            f"the data has no feature columns, only {', '.join(map(repr, frame.columns))}",
            file=shown,
            hint="the file must hold the model's input columns beside the target",
        )
    features_frame = frame[features].reset_index(drop=True)
    _require_numbers(features_frame, shown, first_row, text_columns)
    _require_no_infinity(features_frame, shown, first_row)
    return _with_classes(features_frame, target, model.task, shown)


def _require_column(target: str, read: Any, columns: Any, shown: str) -> None:
    """`read`: the columns at hand; `columns`: the data's, for the hint."""
    if target not in read:
        raise InputError(
            f"target column {target!r} is not in the data",
            file=shown,
            hint=f"columns are: {', '.join(map(str, columns))}",
        )


def _require_complete_target(target: np.ndarray, name: str, shown: str, first_row: int) -> None:
    """Ground truth cannot be imputed: a missing or infinite target is an error on any task."""
    import pandas as pd

    missing = pd.isna(pd.Series(target)).to_numpy()
    if target.dtype.kind == "f":
        missing = missing | np.isinf(target)
    if missing.any():
        first = first_row + int(np.flatnonzero(missing)[0]) + 1
        raise InputError(
            f"the target column {name!r} has {int(missing.sum())} missing or infinite "
            f"value(s), the first in data row {first}",
            file=shown,
            hint="drop those rows",
        )


def _require_numbers(
    frame: pd.DataFrame, shown: str, first_row: int, text_columns: frozenset[str]
) -> None:
    """pandas reads a column as text when one cell is not a number, and the model then fails
    deep inside its library. A text column whose cells are numbers but for a few is refused
    here, naming the first stray cell; a column of text, such as categories, is left alone."""
    for column in frame.columns:
        if str(column) in text_columns or frame[column].dtype.kind in "biufcmM":
            continue
        strays = _stray_text(frame[column])
        if strays is None or not strays.any():
            continue
        position = int(np.flatnonzero(strays)[0])
        more = int(strays.sum()) - 1
        raise InputError(
            f"column {column!r} data row {first_row + position + 1}: "
            f"{frame[column].iloc[position]!r} is not a number"
            + (f" (nor are {more} more of its cells)" if more else ""),
            file=shown,
            hint="the column's other cells are numbers: fix the cell, or leave it empty for a "
            "missing value",
        )


def _stray_text(values: pd.Series) -> np.ndarray | None:
    """Which cells are not numbers, in a column of numbers but for at most one cell in ten;
    None for a column of text. A first look at a few cells keeps text columns cheap."""
    import pandas as pd

    present = values.notna().to_numpy()
    if not present.any():
        return None
    head = values[present][:STRAY_PROBE]
    if pd.to_numeric(head, errors="coerce").notna().mean() < NUMERIC_SHARE:
        return None
    strays = present & pd.isna(pd.to_numeric(values, errors="coerce")).to_numpy()
    return strays if strays.sum() <= (1 - NUMERIC_SHARE) * present.sum() else None


def _require_no_infinity(frame: pd.DataFrame, shown: str, first_row: int) -> None:
    """NaN is missing data, which a pipeline can impute; Inf is not, and scikit-learn refuses
    it mid-run. Refusing it here names the column and the row."""
    for column in frame.columns:
        if frame[column].dtype.kind != "f":
            continue
        infinite = np.isinf(frame[column].to_numpy(dtype=np.float64, na_value=np.nan))
        if infinite.any():
            first = first_row + int(np.flatnonzero(infinite)[0]) + 1
            raise InputError(
                f"column {column!r} has {int(infinite.sum())} infinite value(s) (or beyond "
                f"float64's range), the first in data row {first}",
                file=shown,
                hint="replace them; an empty cell is read as a missing value",
            )


def _with_classes(
    features: pd.DataFrame, target: np.ndarray | None, task: str, shown: str
) -> Dataset:
    classes = None
    if target is not None and task in ("binary", "multiclass"):
        classes = np.unique(target)
        if task == "binary" and len(classes) > 2:
            raise InputError(
                f"task is binary but the target has {len(classes)} classes",
                file=shown,
                hint="use task: multiclass",
            )
    return Dataset(features, target, classes)


def _npz(path: Path, shown: str, data: DataSpec, model: ModelSpec) -> Dataset:
    import pandas as pd

    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it, and say so
        raise InputError(
            "not an NPZ file (an NPZ is a zip archive)", file=shown, hint="write it with np.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:
        raise InputError(f"cannot read NPZ: {first_line(error)}", file=shown) from error
    target = arrays.pop(data.target) if data.target in arrays else None
    if data.target is not None and target is None:
        raise InputError(
            f"target array {data.target!r} is not in the NPZ file",
            file=shown,
            hint=f"arrays are: {', '.join(sorted(arrays))}",
        )
    if data.rows is not None:
        arrays = {k: v[: data.rows] for k, v in arrays.items()}
        target = None if target is None else target[: data.rows]
    if model.task == "tensor":
        return _npz_tensors(arrays, target, shown, model)
    columns = {k: v for k, v in arrays.items() if v.ndim == 1}
    if target is not None and target.ndim != 1:
        raise InputError(f"target array {data.target!r} is {target.ndim}-D, not 1-D", file=shown)
    if target is not None:
        columns[data.target] = target
    _require_same_length(columns, shown)
    return _frame_dataset(pd.DataFrame(columns), shown, data, model)


def _npz_tensors(
    arrays: dict[str, np.ndarray], target: np.ndarray | None, shown: str, model: ModelSpec
) -> Dataset:
    names = [t.name for t in model.inputs or []]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise InputError(
            f"NPZ file lacks input arrays: {', '.join(missing)}",
            file=shown,
            hint=f"arrays are: {', '.join(sorted(arrays))}",
        )
    for tensor in model.inputs or []:
        sample = list(arrays[tensor.name].shape[1:])
        if tensor.shape and sample != list(tensor.shape):
            raise InputError(
                f"NPZ array {tensor.name!r} holds samples of shape {sample}, "
                f"model.inputs declares {list(tensor.shape)}",
                file=shown,
            )
    used = {n: arrays[n] for n in names}
    _require_same_length({**used, **({"target": target} if target is not None else {})}, shown)
    return Dataset(used, target)


def _require_same_length(arrays: dict[str, np.ndarray], shown: str) -> None:
    lengths = {name: len(array) if array.ndim else 0 for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}: {length}" for name, length in sorted(lengths.items()))
        raise InputError(f"NPZ arrays differ in length ({listed})", file=shown)


def _sklearn(name: str, data: DataSpec, model: ModelSpec) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.iloc[: data.rows] if data.rows else bunch.frame
    target_column = data.target or "target"
    data = data.model_copy(update={"target": target_column})
    return _frame_dataset(frame, f"sklearn:{name}", data, model)


def _synthetic(synthetic: Synthetic, data: DataSpec, model: ModelSpec) -> Dataset:
    if not model.inputs:
        raise InputError("synthetic data needs model.inputs", hint="declare the input tensors")
    rng = np.random.default_rng(synthetic.seed)
    rows = min(synthetic.rows, data.rows or synthetic.rows)
    arrays = {}
    for tensor in model.inputs:
        shape = (rows, *tensor.shape)
        values: np.ndarray
        if tensor.dtype in ("int64", "int32"):
            values = rng.integers(0, 10, size=shape)
        elif tensor.dtype == "bool":
            values = rng.random(shape) < 0.5
        elif synthetic.distribution == "uniform":
            values = rng.random(shape)
        else:
            values = rng.standard_normal(shape)
        # Kept as float32: numpy has no bfloat16, the torch backend casts on its side.
        dtype = "float32" if tensor.dtype in TORCH_ONLY_DTYPES else tensor.dtype
        arrays[tensor.name] = values.astype(dtype)
    return Dataset(arrays)


def _synthetic_bytes(rows: int, inputs: list[TensorSpec]) -> int:
    """Values are drawn as 8-byte numbers, then cast: both copies live at once."""
    total = 0
    for tensor in inputs:
        dtype = "float32" if tensor.dtype in TORCH_ONLY_DTYPES else tensor.dtype
        total += rows * math.prod(tensor.shape) * (8 + np.dtype(dtype).itemsize)
    return total


def _shapes(inputs: list[TensorSpec]) -> str:
    return ", ".join(f"{t.name} {list(t.shape)}" for t in inputs)


# --- memory ----------------------------------------------------------------------------------


def require_memory(needed: int, what: str, shown: str | None, hint: str = ROWS_HINT) -> None:
    available = available_memory()
    if needed > available:
        raise InputError(
            f"{what} needs about {_size(needed)} of memory, more than the {_size(available)} "
            "available",
            file=shown,
            hint=hint,
        )


def available_memory() -> int:
    """Bytes this process can use without swapping: free plus reclaimable memory, capped by a
    container's (cgroup) limit; a fixed guess where the operating system cannot say."""
    free = _meminfo_available() or _sysconf_available() or MEMORY_FALLBACK
    headroom = _cgroup_headroom()
    return free if headroom is None else min(free, headroom)


def _meminfo_available() -> int | None:
    # MemAvailable counts page cache that can be dropped; SC_AVPHYS_PAGES does not, and a
    # machine that has read many files would look full.
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _estimated_bytes(path: Path, shown: str, kind: str, rows: int | None) -> int:
    if kind == "parquet":
        return _parquet_bytes(path, rows)
    if kind == "npz":
        return _npz_bytes(path)  # np.load decompresses whole arrays: data.rows does not help
    size = path.stat().st_size * CSV_EXPANSION
    if rows is None:
        return size
    return min(size, rows * _csv_line_bytes(path, shown) * CSV_EXPANSION)


def _csv_line_bytes(path: Path, shown: str) -> int:
    """The mean line length of the file's first megabyte; a file without a line end in it is
    taken as one long line, which pandas would read whole."""
    try:
        with path.open("rb") as stream:
            sample = stream.read(SAMPLE_BYTES)
    except OSError as error:
        raise InputError(f"cannot read: {first_line(error)}", file=shown) from error
    lines = sample.count(b"\n")
    return path.stat().st_size if lines == 0 else math.ceil(len(sample) / lines)


def _parquet_bytes(path: Path, rows: int | None) -> int:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except Exception:  # not a Parquet file: reading it says so, with pyarrow's reason
        return 0
    stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    total = max(stored, meta.num_rows * meta.num_columns * 8)
    if rows is None or meta.num_rows == 0:
        return total
    return total * min(rows, meta.num_rows) // meta.num_rows


def _npz_bytes(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return 0  # reading it says what is wrong


def _size(count: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 1024:.1f} KiB"
