"""A data file read a batch at a time: memory does not grow with its rows, and the file is
parsed once per run.

Used when nothing needs all rows at once: no split, no training in the run. Opening reads only
the first rows, kept as a sample (for a conversion's input schema, calibration, benchmarks).
The first full pass over the batches, made by the steps that predict, also counts the rows,
keeps the ground truth on disk and spools each parsed batch as an Arrow file, so that later
passes, slices and the rows a report describes are read back from the spool, not parsed again.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from parityspec.data import Dataset, Features
from parityspec.data.csv_stream import CsvStream, exact_tables, to_frame
from parityspec.data.shards import ParquetShards
from parityspec.data.stored import OutputWriter, StoredArray
from parityspec.errors import InputError
from parityspec.loading import file_sha256

SAMPLE_ROWS = 10_000
SCAN_ROWS = 65_536


@dataclass
class _Spool:
    """What the first full pass learnt: the rows, the ground truth and the parsed batches."""

    length: int = 0
    target: np.ndarray | StoredArray | None = None
    classes: np.ndarray | None = None
    files: list[Path] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    """The first row of each spooled batch."""
    shards: list[int] = field(default_factory=list)
    """The shard each spooled batch belongs to: later passes batch within shards too."""


class ChunkedDataset:
    is_tabular = True

    def __init__(
        self,
        path: Path,
        kind: str,
        shown: str,
        rows: int | None,
        to_dataset: Callable[[pd.DataFrame, int, frozenset[str]], Dataset],
        work_dir: Path,
        shards: ParquetShards | None = None,
    ):
        """`to_dataset(frame, first_row, text_columns)`: a raw chunk to a validated in-memory
        Dataset, given the columns the first rows hold as text; `rows`: read at most this
        many; `shards`: the Parquet files `path` names when it is a directory or a glob (no
        batch then holds rows of two shards)."""
        self.path, self.kind, self.shown, self.rows = path, kind, shown, rows
        self.shards = shards
        self._to_dataset = to_dataset
        self._work_dir = work_dir
        self._spool: _Spool | None = None
        self._text: frozenset[str] = frozenset()
        self._csv = CsvStream(path, shown) if kind == "csv" else None
        first = next((t for _, t in self._tables(SAMPLE_ROWS)), None)
        if first is None:
            raise InputError("the data has no rows", file=shown)
        self._head = self._to_dataset(self._to_frame(first), 0, self._text)
        frame = _frame(self._head.features)
        # Text columns stay text in every batch, even one where a column is all empty. Kind
        # "O" covers object and pandas' own string dtype alike.
        self._text = frozenset(str(c) for c in frame.columns if frame[c].dtype.kind == "O")

    @property
    def columns(self) -> list[str]:
        return self._head.columns

    @property
    def features(self) -> pd.DataFrame:
        raise TypeError("a chunked data set has no in-memory features; use batches()")

    @property
    def target(self) -> np.ndarray | StoredArray | None:
        return self._spooled().target

    @property
    def classes(self) -> np.ndarray | None:
        return self._spooled().classes

    def __len__(self) -> int:
        return self._spooled().length

    def sample(self) -> pd.DataFrame:
        """The first rows: enough for input schemas and calibration, not for statistics."""
        return _frame(self._head.features)

    def batches(self, size: int) -> Iterator[tuple[int, pd.DataFrame]]:
        for start, part in self._parts(size):
            yield start, _frame(part.features)

    def slice(self, start: int, stop: int) -> pd.DataFrame:
        if stop <= len(self._head):
            return _frame(self._head.slice(start, stop))
        parts = self._spooled_parts(start, stop)
        rows = [_frame(d.features).iloc[max(0, start - s) : stop - s] for s, d in parts]
        return pd.concat(rows, ignore_index=True)

    def describe_rows(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for index in sorted(set(indices)):
            for start, part in self._spooled_parts(index, index + 1):
                found[index] = part.describe_rows([index - start])[index - start]
        return found

    def fingerprint(self) -> str:
        return self.shards.fingerprint() if self.shards else file_sha256(self.path)

    def _parts(self, size: int) -> Iterator[tuple[int, Dataset]]:
        """Validated batches of `size` rows: from the spool once a pass has filled it, else
        from the file, filling the spool on the way."""
        if self._spool is not None:
            start = 0
            for files in _by_shard(self._spool):
                blocks = (b for f in files for b in _read_spooled(f).to_batches())
                for table in exact_tables(blocks, size):
                    yield start, self._to_dataset(self._to_frame(table), start, self._text)
                    start += table.num_rows
            return
        yield from self._spool_while_reading(size)

    def _spool_while_reading(self, size: int) -> Iterator[tuple[int, Dataset]]:
        spool = _Spool()
        folder = self._work_dir / "spool"
        folder.mkdir(parents=True, exist_ok=True)
        targets = OutputWriter(self._work_dir / "target")
        in_memory_targets: list[np.ndarray] = []
        classes: set[Any] = set()  # whatever `tolist()` gives: numbers, text, ...
        for shard, table in self._tables(size):
            part = self._to_dataset(self._to_frame(table), spool.length, self._text)
            spool.files.append(_write_spooled(folder / f"{len(spool.files):06d}.arrow", table))
            spool.starts.append(spool.length)
            spool.shards.append(shard)
            yield spool.length, part
            spool.length += len(part)
            if part.target is not None and part.target.dtype.kind in "biuf":
                targets.append({"target": part.target})
            elif part.target is not None:  # text labels: kept, they cannot go to a raw file
                in_memory_targets.append(part.target)
            classes.update([] if part.classes is None else part.classes.tolist())
        spool.target = targets.close().get("target")
        if in_memory_targets:
            spool.target = np.concatenate(in_memory_targets)
        spool.classes = np.array(sorted(classes)) if classes else None
        self._spool = spool  # only a pass read to its end fills the spool

    def _spooled(self) -> _Spool:
        """The spool, after a pass over the whole file if none was made yet."""
        if self._spool is None:
            for _ in self._spool_while_reading(SCAN_ROWS):
                pass
        assert self._spool is not None  # the pass above read to the end
        return self._spool

    def _spooled_parts(self, start: int, stop: int) -> Iterator[tuple[int, Dataset]]:
        """The spooled batches holding rows `start` to `stop`, each with its first row."""
        spool = self._spooled()
        first = max(0, bisect.bisect_right(spool.starts, start) - 1)
        for number in range(first, len(spool.files)):
            begin = spool.starts[number]
            if begin >= stop:
                return
            table = _read_spooled(spool.files[number])
            yield begin, self._to_dataset(self._to_frame(table), begin, self._text)

    def _tables(self, size: int) -> Iterator[tuple[int, pa.Table]]:
        """Tables of at most `size` rows, each with the number of its shard (a CSV or a
        single Parquet file is one shard)."""
        if self._csv is not None:
            yield from ((0, t) for t in self._csv.tables(size, self.rows))
            return
        if self.shards is not None:
            yield from self.shards.tables(size, self.rows)
            return
        raise ValueError("a Parquet data set is read through its shards")

    def _to_frame(self, table: pa.Table) -> pd.DataFrame:
        if self._csv is not None:
            return to_frame(table)
        return table.to_pandas()


def _by_shard(spool: _Spool) -> Iterator[list[Path]]:
    """The spooled files, grouped by shard."""
    group: list[Path] = []
    for number, file in enumerate(spool.files):
        if group and spool.shards[number] != spool.shards[number - 1]:
            yield group
            group = []
        group.append(file)
    if group:
        yield group


def _write_spooled(path: Path, table: pa.Table) -> Path:
    # One file per batch, its dictionaries unified: the file format cannot replace one.
    options = pa.ipc.IpcWriteOptions(unify_dictionaries=True)
    with pa.ipc.new_file(str(path), table.schema, options=options) as writer:
        writer.write_table(table)
    return path


def _read_spooled(path: Path) -> pa.Table:
    # Memory-mapped: the table's buffers keep the map open, and only touched pages are read.
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _frame(features: Features) -> pd.DataFrame:
    """A part's features: always a frame, read from a CSV or Parquet file."""
    if not isinstance(features, pd.DataFrame):
        raise TypeError("a chunked data set holds frames, not named tensors")
    return features
