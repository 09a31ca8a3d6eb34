"""A CSV file parsed by pyarrow's streaming reader, as Arrow tables of exactly `size` rows.

pyarrow parses in large blocks on a background thread, about three times faster than pandas'
chunked reader here; the tables become the pandas frames the backends take in `to_frame`,
with the values pandas' `read_csv` gives: the same missing-value words, `int64` columns
(`float64` with NaN where a batch has a gap, as pandas makes them), text as Python `str`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from parityspec.errors import InputError, first_line

BLOCK_BYTES = 1 << 20
"""pyarrow's default block: larger blocks parse no faster and read further ahead."""
NA_WORDS = sorted(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"}
    | {"1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
"""pandas' default `na_values`: a cell reads as missing exactly when pandas reads it so."""
TRUE_WORDS, FALSE_WORDS = ["True", "TRUE", "true"], ["False", "FALSE", "false"]
TEXT = pa.dictionary(pa.int32(), pa.string())
"""Text columns stay dictionary-encoded: each distinct word becomes one Python str."""
QUOTED_NEWLINES = pacsv.ParseOptions(newlines_in_values=True)
"""A quoted cell may span lines, as pandas allows; no slower here at 1e6 rows."""
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): .*CSV conversion error to (\w+)")


class CsvStream:
    def __init__(self, path: Path, shown: str, text_columns: Iterable[str] = ()):
        """`text_columns`: columns read as text whatever the first block holds."""
        self.path, self.shown = path, shown
        self.names = self._header()
        first = self._open(column_types=None).schema
        self.types = {field.name: _pinned(field.type) for field in first}
        self.types |= {name: TEXT for name in text_columns if name in self.types}
        # What a column becomes when a later block does not fit its type: an integer column
        # holding a fraction becomes float64; one empty in the first block, text.
        self._widen = {
            field.name: TEXT if pa.types.is_null(field.type) else pa.float64()
            for field in first
            if pa.types.is_null(field.type) or pa.types.is_integer(field.type)
        }

    def tables(self, size: int, rows: int | None = None) -> Iterator[pa.Table]:
        """The first `rows` rows (all by default) in tables of `size` rows, the last shorter.

        The column types are the first block's; a column that a later block does not fit is
        widened once (see `_widen`) and the file read again, skipping the rows given."""
        given = 0
        while True:
            try:
                for table in exact_tables(self._blocks(rows, skip=given), size):
                    given += table.num_rows
                    yield table
                return
            except (pa.ArrowException, OSError) as error:
                if not self._widened(str(error)):
                    raise self._unreadable(error) from error

    def _blocks(self, rows: int | None, skip: int) -> Iterator[pa.RecordBatch]:
        """Record batches from row `skip`, at most `rows` rows from the file's start."""
        position = 0
        for block in self._open(column_types=self.types):
            end = position + block.num_rows
            if rows is not None and end > rows:
                block, end = block.slice(0, rows - position), rows
            if end > skip:
                yield block.slice(max(0, skip - position))
            position = end
            if rows is not None and position >= rows:
                return

    def _widened(self, message: str) -> bool:
        found = _CONVERSION_ERROR.search(message)
        name = self.names[int(found[1])] if found else None
        if name not in self._widen:
            return False
        self.types[name] = self._widen.pop(name)
        return True

    def _open(self, column_types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
        try:
            return pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    block_size=BLOCK_BYTES, column_names=self.names, skip_rows=1
                ),
                parse_options=QUOTED_NEWLINES,
                convert_options=pacsv.ConvertOptions(
                    column_types=column_types,
                    null_values=NA_WORDS,
                    true_values=TRUE_WORDS,
                    false_values=FALSE_WORDS,
                    strings_can_be_null=True,
                ),
            )
        except (pa.ArrowException, OSError) as error:
            raise self._unreadable(error) from error

    def _header(self) -> list[str]:
        """The header's names, a repeated one suffixed `.1`, `.2`, ... as pandas does."""
        try:
            names = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=QUOTED_NEWLINES,
            ).schema.names
        except (pa.ArrowException, OSError) as error:
            raise self._unreadable(error) from error
        seen: dict[str, int] = {}
        unique = []
        for name in names:
            count = seen.get(name, 0)
            seen[name] = count + 1
            unique.append(name if count == 0 else f"{name}.{count}")
        return unique

    def _unreadable(self, error: Exception) -> InputError:
        text = first_line(error)
        hint = "is it a text CSV file? save it as UTF-8" if "UTF8" in text else None
        return InputError(f"cannot read CSV: {text}", file=self.shown, hint=hint)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The pandas frame `pd.read_csv` would give for these rows."""
    columns = {name: _values(table.column(name)) for name in table.column_names}
    # Series of the arrays' own dtypes: pandas 3 would turn object arrays of str into its
    # arrow-backed str dtype, which scikit-learn turns back into objects.
    return pd.DataFrame(
        {name: pd.Series(v, dtype=v.dtype, copy=False) for name, v in columns.items()},
        copy=False,
    )


def _values(column: pa.ChunkedArray) -> np.ndarray:
    chunks = column.chunks
    if not chunks:
        return np.empty(0, dtype=object if pa.types.is_dictionary(column.type) else float)
    parts = [_chunk_values(chunk) for chunk in chunks]
    if len(parts) == 1:
        return parts[0]
    if len({p.dtype for p in parts}) > 1:  # int64 in one chunk, float64 with a gap in another
        return np.concatenate([p.astype(float) if p.dtype.kind in "iu" else p for p in parts])
    return np.concatenate(parts)


def _chunk_values(chunk: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(chunk.type):
        # The dictionary's words picked by index, a gap as NaN: no new Python str per row.
        words = np.append(chunk.dictionary.to_numpy(zero_copy_only=False), np.nan)
        indices = chunk.indices.fill_null(len(words) - 1) if chunk.null_count else chunk.indices
        return words[indices.to_numpy()]
    if pa.types.is_boolean(chunk.type) and chunk.null_count:
        values: Any = chunk.to_numpy(zero_copy_only=False)
        values[pd.isna(values)] = np.nan
        return values
    if pa.types.is_null(chunk.type):
        return np.full(len(chunk), np.nan)
    return chunk.to_numpy(zero_copy_only=False)  # int64 with a gap: float64 with NaN


def _pinned(inferred: pa.DataType) -> pa.DataType:
    """The type a column keeps for the whole file, from what its first block holds."""
    if pa.types.is_integer(inferred):
        return pa.int64()
    if pa.types.is_floating(inferred) or pa.types.is_null(inferred):
        return pa.float64()  # an empty column: pandas reads its gaps as float NaN
    if pa.types.is_boolean(inferred):
        return pa.bool_()
    return TEXT  # dates and times too: pandas reads them as text


def exact_tables(blocks: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """The blocks' rows in tables of exactly `size` rows, the last one shorter: dynamic INT8
    computes its scales per batch, so batches must not depend on how the file was parsed."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for block in blocks:
        if not block.num_rows:
            continue
        pending.append(block)
        count += block.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)
