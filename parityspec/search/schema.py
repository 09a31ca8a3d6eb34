"""What a search can know before anything runs, read cheaply from files (no pandas, no model
loaded): the kinds of the data's feature columns, and the columns a model file names.

`validate` calls these through input_search's `file_problems`: a spec whose data has nothing
to search, or whose two backends read different columns, is refused there, not at run."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np

SNIFFED_ROWS = 1000
"""Rows of a CSV read to tell a flag column (true/false only) from the others."""
FLAG_WORDS = {"true", "false"}


def data_columns(path: Path, kind: str) -> dict[str, str] | None:
    """Each column of a CSV or NPZ table and its kind (`flag`, `number or category`); None
    where it cannot be told without a heavy library (Parquet) or the file cannot be read."""
    try:
        if kind == "csv":
            return _csv_columns(path)
        if kind == "npz":
            return _npz_columns(path)
    except (OSError, ValueError, csv.Error, zipfile.BadZipFile, UnicodeDecodeError):
        return None  # the run says what is wrong with the file
    return None


def _csv_columns(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        seen: list[set[str]] = [set() for _ in header]
        for number, row in enumerate(reader):
            if number >= SNIFFED_ROWS:
                break
            for values, cell in zip(seen, row, strict=False):
                if cell.strip():
                    values.add(cell.strip().lower())
    # pandas reads a column of true/false words as a flag: nothing to move but its other value.
    return {
        name: "flag" if values and values <= FLAG_WORDS else "number or category"
        for name, values in zip(header, seen, strict=True)
    }


def _npz_columns(path: Path) -> dict[str, str]:
    """Each 1-D array's kind from its header alone: nothing is decompressed past it."""
    columns = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as handle:
                major, _ = np.lib.format.read_magic(handle)
                read = (
                    np.lib.format.read_array_header_1_0
                    if major == 1
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(handle)
            if len(shape) == 1:
                columns[member[: -len(".npy")]] = (
                    "flag" if dtype.kind == "b" else "number or category"
                )
    return columns


def model_file_columns(kind: str, path: Path) -> list[str] | None:
    """The feature names an XGBoost JSON or LightGBM text model file holds; None when it
    names none (trained on arrays: `f0`, `Column_0`) or is of another kind."""
    try:
        if kind == "xgboost" and path.suffix.lower() == ".json":
            learner = json.loads(path.read_text(encoding="utf-8")).get("learner", {})
            names = [str(n) for n in learner.get("feature_names") or []]
        elif kind == "lightgbm":
            names = _lightgbm_names(path)
        else:
            return None
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None  # the run says what is wrong with the file
    generated = all(n in (f"f{i}", f"Column_{i}") for i, n in enumerate(names))
    return None if generated else names


def _lightgbm_names(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("feature_names="):
                return line.strip().partition("=")[2].split()
            if line.startswith("Tree="):
                break  # the header is over
    return []
