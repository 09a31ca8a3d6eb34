"""Predictions kept on disk: written batch by batch, read back in slices.

A backend's outputs for millions of rows would otherwise stay in memory for the whole run.
Reads go through `readinto` on a plain file, not a memory map, so what was read once does
not stay counted in the process's resident memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt


class StoredArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A read-only, row-addressable array in a raw file: checks slice it batch by batch.

    Arithmetic and numpy functions work too (`a - b`, `np.abs(a)`), on the whole array read
    into memory: convenient for a plugin's check, not for millions of rows.
    """

    def __init__(self, path: Path, dtype: str, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), tuple(shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, int | np.integer):
            index = int(key) + (len(self) if key < 0 else 0)
            return self._rows(index, index + 1)[(0, *rest)]
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
            return self._rows(start, max(start, stop))[(slice(None), *rest)]
        return np.asarray(self)[(key, *rest)]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        whole = self._rows(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        arrays = [np.asarray(i) if isinstance(i, StoredArray) else i for i in inputs]
        return getattr(ufunc, method)(*arrays, **kwargs)

    def _rows(self, start: int, stop: int) -> np.ndarray:
        row_shape = self.shape[1:]
        per_row = int(np.prod(row_shape, dtype=np.int64)) * self.dtype.itemsize
        out = np.empty((stop - start, *row_shape), dtype=self.dtype)
        with self.path.open("rb") as handle:
            handle.seek(start * per_row)
            handle.readinto(out.reshape(-1).view(np.uint8).data)
        return out


class OutputWriter:
    """Appends batches of each named output to its own file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, BinaryIO] = {}
        self._meta: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}

    def append(self, outputs: dict[str, np.ndarray]) -> None:
        for name, values in outputs.items():
            values = np.ascontiguousarray(values)
            dtype, row_shape, rows = self._meta.get(name, (values.dtype, values.shape[1:], 0))
            if values.dtype != dtype or values.shape[1:] != row_shape:
                raise ValueError(f"output {name!r} changed shape or type between batches")
            if name not in self._files:
                self._files[name] = (self.folder / f"{name}.bin").open("wb")
            self._files[name].write(values.tobytes())
            self._meta[name] = (dtype, row_shape, rows + len(values))

    def close(self) -> dict[str, StoredArray]:
        for handle in self._files.values():
            handle.close()
        return {
            name: StoredArray(self.folder / f"{name}.bin", dtype.str, (rows, *row_shape))
            for name, (dtype, row_shape, rows) in self._meta.items()
        }
