"""Reading the spec's data: CSV, Parquet, NPZ, scikit-learn bundled sets, synthetic tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from parityspec.data import Dataset
from parityspec.errors import InputError
from parityspec.spec.models import DataSpec, ModelSpec, Split

TORCH_ONLY_DTYPES = {"bfloat16"}


def load_dataset(data: DataSpec, model: ModelSpec, spec_dir: Path) -> Dataset:
    if data.synthetic is not None:
        dataset = _synthetic(data, model)
    elif data.sklearn is not None:
        dataset = _sklearn(data.sklearn, data, model)
    else:
        dataset = _from_file(data, model, spec_dir)
    if len(dataset) == 0:
        raise InputError("the data has no rows", file=data.path or data.sklearn)
    return dataset


def split_dataset(dataset: Dataset, split: Split | None, task: str) -> tuple[Dataset, Dataset]:
    """(train, evaluation). Without a split both are the whole data set."""
    if split is None:
        return dataset, dataset
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(dataset))
    stratify = dataset.target if split.stratify and task in ("binary", "multiclass") else None
    try:
        train, test = train_test_split(
            indices, test_size=split.test_size, random_state=split.seed, stratify=stratify
        )
    except ValueError as error:
        raise InputError(f"cannot split the data: {error}", hint="change data.split") from error
    return dataset.take(np.sort(train)), dataset.take(np.sort(test))


def _from_file(data: DataSpec, model: ModelSpec, spec_dir: Path) -> Dataset:
    path = (spec_dir / data.path).resolve()
    shown = data.path
    if not path.is_file():
        raise InputError(
            "data file does not exist", file=shown, hint="paths are relative to the spec"
        )
    kind = data.format or path.suffix.lstrip(".").lower()
    if kind == "npz":
        return _npz(path, shown, data, model)
    frame = _read_frame(path, shown, kind, data.rows)
    return _frame_dataset(frame, shown, data, model)


def _read_frame(path: Path, shown: str, kind: str, rows: int | None) -> pd.DataFrame:
    try:
        if kind == "csv":
            return pd.read_csv(path, nrows=rows)
        if kind == "parquet":
            frame = pd.read_parquet(path)
            return frame if rows is None else frame.iloc[:rows]
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {kind.upper()}: {_first_line(error)}", file=shown) from error
    except Exception as error:  # pyarrow raises many types for a corrupt file
        raise InputError(f"cannot read {kind.upper()}: {_first_line(error)}", file=shown) from error
    raise InputError(
        f"unknown data format {kind!r}",
        file=shown,
        hint="use .csv, .parquet or .npz, or set format",
    )


def _frame_dataset(frame: pd.DataFrame, shown: str, data: DataSpec, model: ModelSpec) -> Dataset:
    target = None
    if data.target is not None:
        if data.target not in frame.columns:
            raise InputError(
                f"target column {data.target!r} is not in the data",
                file=shown,
                hint=f"columns are: {', '.join(map(str, frame.columns))}",
            )
        target = frame[data.target].to_numpy()
    features = data.features or [c for c in frame.columns if c != data.target]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(f"feature columns missing from the data: {', '.join(missing)}", file=shown)
    return _with_classes(frame[features].reset_index(drop=True), target, model.task, shown)


def _with_classes(features, target, task: str, shown: str) -> Dataset:
    classes = None
    if target is not None and task in ("binary", "multiclass"):
        if pd.isna(pd.Series(target)).any():
            raise InputError("the target has missing values", file=shown)
        classes = np.unique(target)
        if task == "binary" and len(classes) > 2:
            raise InputError(
                f"task is binary but the target has {len(classes)} classes",
                file=shown,
                hint="use task: multiclass",
            )
    return Dataset(features, target, classes)


def _npz(path: Path, shown: str, data: DataSpec, model: ModelSpec) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:
        raise InputError(f"cannot read NPZ: {_first_line(error)}", file=shown) from error
    target = arrays.pop(data.target) if data.target in arrays else None
    if data.target is not None and target is None:
        raise InputError(f"target array {data.target!r} is not in the NPZ file", file=shown)
    if data.rows is not None:
        arrays = {k: v[: data.rows] for k, v in arrays.items()}
        target = None if target is None else target[: data.rows]
    if model.task == "tensor":
        names = [t.name for t in model.inputs or []]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise InputError(f"NPZ file lacks input arrays: {', '.join(missing)}", file=shown)
        return Dataset({n: arrays[n] for n in names}, target)
    frame = pd.DataFrame({k: v for k, v in arrays.items() if v.ndim == 1})
    return _frame_dataset(
        frame.assign(**({data.target: target} if target is not None else {})), shown, data, model
    )


def _sklearn(name: str, data: DataSpec, model: ModelSpec) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.iloc[: data.rows] if data.rows else bunch.frame
    target_column = data.target or "target"
    data = data.model_copy(update={"target": target_column})
    return _frame_dataset(frame, f"sklearn:{name}", data, model)


def _synthetic(data: DataSpec, model: ModelSpec) -> Dataset:
    if not model.inputs:
        raise InputError("synthetic data needs model.inputs", hint="declare the input tensors")
    rng = np.random.default_rng(data.synthetic.seed)
    rows = min(data.synthetic.rows, data.rows or data.synthetic.rows)
    arrays = {}
    for tensor in model.inputs:
        shape = (rows, *tensor.shape)
        if tensor.dtype in ("int64", "int32"):
            values = rng.integers(0, 10, size=shape)
        elif tensor.dtype == "bool":
            values = rng.random(shape) < 0.5
        elif data.synthetic.distribution == "uniform":
            values = rng.random(shape)
        else:
            values = rng.standard_normal(shape)
        # Kept as float32: numpy has no bfloat16, the torch backend casts on its side.
        dtype = "float32" if tensor.dtype in TORCH_ONLY_DTYPES else tensor.dtype
        arrays[tensor.name] = values.astype(dtype)
    return Dataset(arrays)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
