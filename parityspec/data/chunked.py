"""A data file read a batch at a time, on every pass: memory does not grow with its rows.

Used when nothing needs all rows at once: no split, no training in the run. The first rows
are kept as a sample (for a conversion's input schema, calibration, benchmarks), the ground
truth is kept on disk, and everything else is read again when a step iterates the batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from parityspec.data import Dataset, Features
from parityspec.data.stored import OutputWriter, StoredArray
from parityspec.errors import InputError
from parityspec.loading import file_sha256

SAMPLE_ROWS = 10_000
SCAN_ROWS = 65_536


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
    ):
        """`to_dataset(frame, first_row, text_columns)`: a raw chunk to a validated in-memory
        Dataset, given the columns the first rows hold as text; `rows`: read at most this
        many."""
        self.path, self.kind, self.shown, self.rows = path, kind, shown, rows
        self._to_dataset = to_dataset
        self._length = 0
        self._sample: Dataset | None = None
        classes: set[Any] = set()  # whatever `tolist()` gives: numbers, text, ...
        targets = OutputWriter(work_dir)
        in_memory_targets: list[np.ndarray] = []
        for _, part in self._parts(SCAN_ROWS):
            if self._sample is None:
                self._sample = part.take(np.arange(min(len(part), SAMPLE_ROWS)))
            self._length += len(part)
            if part.target is not None and part.target.dtype.kind in "biuf":
                targets.append({"target": part.target})
            elif part.target is not None:  # text labels: kept, they cannot go to a raw file
                in_memory_targets.append(part.target)
            classes.update([] if part.classes is None else part.classes.tolist())
        stored = targets.close()
        self.target: np.ndarray | StoredArray | None = stored.get("target")
        if in_memory_targets:
            self.target = np.concatenate(in_memory_targets)
        self.classes = np.array(sorted(classes)) if classes else None
        if self._sample is None:
            raise InputError("the data has no rows", file=shown)

    @property
    def columns(self) -> list[str]:
        return self._head.columns

    @property
    def features(self) -> pd.DataFrame:
        raise TypeError("a chunked data set has no in-memory features; use batches()")

    def __len__(self) -> int:
        return self._length

    def sample(self) -> pd.DataFrame:
        """The first rows: enough for input schemas and calibration, not for statistics."""
        return _frame(self._head.features)

    def batches(self, size: int) -> Iterator[tuple[int, pd.DataFrame]]:
        for start, part in self._parts(size):
            yield start, _frame(part.features)

    def slice(self, start: int, stop: int) -> pd.DataFrame:
        if stop <= len(self._head):
            return _frame(self._head.slice(start, stop))
        rows = [
            f.iloc[max(0, start - s) : stop - s]
            for s, f in self.batches(SCAN_ROWS)
            if s < stop and s + len(f) > start
        ]
        return pd.concat(rows, ignore_index=True)

    def describe_rows(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(indices))
        found: dict[int, dict[str, Any]] = {}
        for start, part in self._parts(SCAN_ROWS):
            for index in wanted:
                if start <= index < start + len(part):
                    found[index] = part.describe_rows([index - start])[index - start]
            if wanted and start + len(part) > wanted[-1]:
                break
        return found

    def fingerprint(self) -> str:
        return file_sha256(self.path)

    @property
    def _head(self) -> Dataset:
        """The sample: `__init__` reads it, and refuses data without rows."""
        if self._sample is None:
            raise InputError("the data has no rows", file=self.shown)
        return self._sample

    def _parts(self, size: int) -> Iterator[tuple[int, Dataset]]:
        start = 0
        for frame in self._frames(size):
            text = frozenset(self._text_columns() or ())  # known once the first part is read
            yield start, self._to_dataset(frame, start, text)
            start += len(frame)

    def _frames(self, size: int) -> Iterator[pd.DataFrame]:
        try:
            if self.kind == "csv":
                yield from pd.read_csv(
                    self.path, chunksize=size, nrows=self.rows, dtype=self._text_columns()
                )
            else:
                yield from self._parquet_frames(size)
        except (InputError, GeneratorExit):
            raise
        except Exception as error:  # pandas and pyarrow raise many types for a bad file
            first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
            raise InputError(
                f"cannot read {self.kind.upper()}: {first_line}", file=self.shown
            ) from error

    def _parquet_frames(self, size: int) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        left = self.rows
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size):
            frame = batch.to_pandas()
            yield frame if left is None else frame.iloc[:left]
            if left is not None:
                left -= len(frame)
                if left <= 0:
                    return

    def _text_columns(self) -> dict[str, Any] | None:
        # Text columns stay text in every chunk, even one where a column is all empty. Kind
        # "O" covers object and pandas' own string dtype alike.
        if self._sample is None:
            return None
        frame = _frame(self._sample.features)
        return {str(c): frame[c].dtype for c in frame.columns if frame[c].dtype.kind == "O"} or None


def _frame(features: Features) -> pd.DataFrame:
    """A part's features: always a frame, read from a CSV or Parquet file."""
    if not isinstance(features, pd.DataFrame):
        raise TypeError("a chunked data set holds frames, not named tensors")
    return features
