"""Data that cannot fit in memory fails at once with a hint, instead of swapping.

Huge files are sparse (`truncate`): they cost no disk and no time to make.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parityspec.data import sources
from parityspec.errors import InputError
from parityspec.spec.models import DataSpec, ModelSpec
from tests.bad_input.helpers import default_spec, expect, write_spec
from tests.conftest import REPO

GiB = 1 << 30


def _huge_size() -> int:
    """Far more than this machine could hold, whatever it is."""
    return max(100 * GiB, 4 * sources.available_memory())


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with path.open("wb") as stream:
        stream.write(head)
        stream.truncate(size)
    return path


def _never(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{what} was called: the refusal came too late")

    return refuse


def test_file_far_larger_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    """Bounded by what is done, not timed: no byte of the file is parsed."""
    _sparse(tmp_path / "big.csv", _huge_size())
    import pandas as pd

    monkeypatch.setattr(pd, "read_csv", _never("pandas.read_csv"))
    with pytest.raises(InputError) as caught:
        sources.load_dataset(
            DataSpec(path="big.csv", target="t"), ModelSpec(task="binary"), tmp_path
        )
    message = str(caught.value)
    assert message.startswith("big.csv: the data needs about ")
    assert "available" in message and "set data.rows" in message


def test_data_rows_bounds_the_estimate_and_the_read(tmp_path):
    head = b"a,b,t\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 2) for i in range(100))
    _sparse(tmp_path / "big.csv", _huge_size(), head)
    dataset = sources.load_dataset(
        DataSpec(path="big.csv", target="t", rows=50), ModelSpec(task="binary"), tmp_path
    )
    assert len(dataset) == 50 and list(dataset.features.columns) == ["a", "b"]


def test_a_file_without_line_ends_is_not_rescued_by_rows(tmp_path):
    """pandas would read a single line whole, however few rows were asked for."""
    _sparse(tmp_path / "big.csv", _huge_size())
    with pytest.raises(InputError, match="needs about"):
        sources.require_data_fits(
            DataSpec(path="big.csv", target="t", rows=10), ModelSpec(task="binary"), tmp_path
        )


def test_parquet_rows_reads_only_the_first_rows(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": range(1000), "s": ["x", "y"] * 500, "t": [0, 1] * 500})
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=100)
    dataset = sources.load_dataset(
        DataSpec(path="d.parquet", target="t", rows=250), ModelSpec(task="binary"), tmp_path
    )
    assert len(dataset) == 250
    assert dataset.features["s"].dtype == pd.read_parquet(tmp_path / "d.parquet")["s"].dtype


def test_run_refuses_a_file_larger_than_memory(invoke, tmp_path, assets):
    """The whole command: one line, exit 2, refused before the plan hashes the file, so
    nothing runs and no report is written."""
    path = _sparse(tmp_path / "big.csv", 100 << 30)
    spec = default_spec(assets)
    spec["data"]["path"] = str(path)
    out = tmp_path / "out"
    result = invoke("run", write_spec(tmp_path, spec), "--out", out)
    expect(result, 2, "big.csv", "GiB of memory", "available")
    assert not out.exists()


def test_synthetic_data_of_absurd_size_is_refused(invoke, tmp_path, monkeypatch):
    module = f"{REPO}/tests/data/valid/models.py:tiny_mlp"
    spec = {
        "parityspec": 1,
        "name": "giant",
        "data": {"synthetic": {"rows": 256}},
        "model": {"task": "tensor", "inputs": [{"name": "x", "shape": [100000, 100000]}]},
        "backends": {"a": {"kind": "torch", "module": module}},
        "checks": [],
    }
    spec["backends"]["b"] = dict(spec["backends"]["a"])
    spec["checks"] = [{"id": "same", "type": "output_parity", "between": ["a", "b"]}]
    out = tmp_path / "out"
    monkeypatch.setattr(sources, "_synthetic", _never("drawing the synthetic tensors"))
    result = invoke("run", write_spec(tmp_path, spec), "--out", out)
    expect(result, 2, "synthetic data (256 rows of x [100000, 100000])", "TiB of memory")
    expect(result, 2, "lower data.synthetic.rows")
    assert not out.exists()  # refused before any step ran
