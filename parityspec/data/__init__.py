"""Data sets: rows of features (a frame, or named tensors) and an optional ground truth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

# A string: pandas is imported only when rows are read (a fully cached run reads none).
Features: TypeAlias = "pd.DataFrame | dict[str, np.ndarray]"


class Rows(Protocol):
    """What steps, backends and checks read of the evaluation data: a `Dataset` in memory, or
    a `data.chunked.ChunkedDataset` read from its file a batch at a time (whose `features`
    raises: read them with `batches`)."""

    @property
    def features(self) -> Features: ...
    @property
    def target(self) -> npt.ArrayLike | None: ...
    @property
    def classes(self) -> np.ndarray | None: ...
    @property
    def is_tabular(self) -> bool: ...
    @property
    def columns(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def sample(self) -> Features: ...
    def slice(self, start: int, stop: int) -> Features: ...
    def batches(self, size: int) -> Iterator[tuple[int, Features]]: ...
    def describe_rows(self, indices: list[int]) -> dict[int, dict[str, Any]]: ...
    def fingerprint(self) -> str: ...


@dataclass
class Dataset:
    features: Features
    target: np.ndarray | None = None
    classes: np.ndarray | None = None
    """Sorted distinct target values of a classification task: the classes these rows hold,
    not necessarily the model's (checks take those from the model, see checks/classes.py)."""

    def __len__(self) -> int:
        if not isinstance(self.features, dict):
            return len(self.features)
        return len(next(iter(self.features.values())))

    @property
    def is_tabular(self) -> bool:
        return not isinstance(self.features, dict)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.features]

    def sample(self) -> Features:
        """Rows for input schemas and calibration: here, all of them."""
        return self.features

    def slice(self, start: int, stop: int) -> Features:
        if not isinstance(self.features, dict):
            return self.features.iloc[start:stop]
        return {name: array[start:stop] for name, array in self.features.items()}

    def batches(self, size: int) -> Iterator[tuple[int, Features]]:
        for start in range(0, len(self), size):
            yield start, self.slice(start, start + size)

    def take(self, indices: np.ndarray) -> Dataset:
        if not isinstance(self.features, dict):
            features: Features = self.features.iloc[indices].reset_index(drop=True)
        else:
            features = {name: array[indices] for name, array in self.features.items()}
        target = None if self.target is None else self.target[indices]
        return Dataset(features, target, self.classes)

    def describe_rows(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        return {index: self.describe_row(index) for index in indices}

    def describe_row(self, index: int) -> dict[str, Any]:
        """A row's feature values for a report (tensors by their shape only)."""
        if not isinstance(self.features, dict):
            row = self.features.iloc[index]
            return {str(k): _plain(v) for k, v in row.items()}
        return {name: f"<{a.dtype} {list(a.shape[1:])}>" for name, a in self.features.items()}

    def fingerprint(self) -> str:
        """A content hash of features and target, for lineage and cache keys."""
        digest = hashlib.sha256()
        if not isinstance(self.features, dict):
            digest.update(",".join(map(str, self.features.columns)).encode())
            import pandas as pd

            hashes = pd.util.hash_pandas_object(self.features, index=False)
            digest.update(hashes.to_numpy().tobytes())
        else:
            for name in sorted(self.features):
                array = np.ascontiguousarray(self.features[name])
                digest.update(f"{name}{array.dtype}{array.shape}".encode())
                digest.update(array.tobytes())
        if self.target is not None:
            digest.update(np.ascontiguousarray(self.target).astype(str).tobytes())
        return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    import pandas as pd

    return None if pd.isna(value) else str(value)
