"""Data stored as many Parquet files (a directory or a glob): shards are the files' row groups
in path order, row ids are global, batches never straddle two shards, and a set of shards
gives the report one file of the same rows gives when their batches are the same."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from parityspec.api import RunOptions, run
from parityspec.backends import sklearn as sklearn_backend
from parityspec.data.shards import open_shards
from parityspec.errors import ExitCode, InputError
from tests.run.test_streaming import CHURN, pretrained  # noqa: F401  (a fixture)

ROWS = 3000


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return pd.read_csv(CHURN / "churn.csv").head(ROWS)


def write_shards(folder, frame: pd.DataFrame, files: list[int], row_group: int) -> None:
    """`files`: rows per file, in order; each file in row groups of `row_group` rows. Names
    sort in the rows' order (part-0000.parquet, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for number, rows in enumerate(files):
        table = pa.Table.from_pandas(frame.iloc[start : start + rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{number:04d}.parquet", row_group_size=row_group)
        start += rows


def spec_file(tmp_path, model, data_path: str, batch_size: int, name="spec.yaml") -> str:
    spec = {
        "parityspec": 1,
        "name": "sharded",
        "data": {"path": data_path, "target": "churned", "batch_size": batch_size},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "path": str(model), "trusted": True},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx"},
        },
        "checks": [
            {"id": "parity", "type": "probability_parity", "between": ["sklearn", "onnx"]},
            {"id": "int8", "type": "probability_parity", "between": ["sklearn", "int8"]},
            {"id": "labels", "type": "label_agreement", "between": ["sklearn", "int8"]},
            {"id": "flips", "type": "threshold_flips", "between": ["sklearn", "int8"]},
            {"id": "metrics", "type": "metric_delta", "between": ["sklearn", "int8"]},
        ],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def checks_of(outcome) -> str:
    return json.dumps(outcome.report["checks"], sort_keys=True)


def test_shards_are_row_groups_in_path_order_with_global_row_ids(tmp_path, churn):
    write_shards(tmp_path / "rows", churn, [1000, 1000, 1000], row_group=400)
    (tmp_path / "rows" / "_SUCCESS").write_text("")  # Spark's marker: not a shard
    shards = open_shards(tmp_path, "rows")
    assert [(s.file.name, s.row_group, s.first_row, s.rows) for s in shards.shards] == [
        (f"part-{f:04d}.parquet", g, f * 1000 + g * 400, [400, 400, 200][g])
        for f in range(3)
        for g in range(3)
    ]
    assert len(shards) == ROWS
    read = pa.concat_tables(t for _, t in shards.tables(256)).to_pandas()
    pd.testing.assert_frame_equal(read, churn.reset_index(drop=True))
    # No table holds rows of two shards: 400 = 256 + 144, 200 = 200.
    sizes = [t.num_rows for _, t in shards.tables(256)]
    assert sizes == [256, 144, 256, 144, 200] * 3


def test_a_glob_names_its_files_and_a_hive_partition_becomes_a_column(tmp_path, churn):
    for day, part in (("mon", churn.head(10)), ("tue", churn.iloc[10:25])):
        write_shards(tmp_path / "rows" / f"day={day}", part, [len(part)], row_group=8)
    (tmp_path / "rows" / "notes.txt").write_text("not rows")
    shards = open_shards(tmp_path, "rows/*/*.parquet")
    read = pa.concat_tables(t for _, t in shards.tables(64)).to_pandas()
    assert read["day"].tolist() == ["mon"] * 10 + ["tue"] * 15
    assert len(open_shards(tmp_path, "rows")) == 25  # the directory: every .parquet under it


def test_a_directory_of_shards_reports_what_one_file_of_its_rows_reports(
    tmp_path,
    churn,
    pretrained,  # noqa: F811
):
    """Shards of 1,000 rows and batches of 500: the same batches as one file in batches of
    500, so every figure, worst-sample row id and described row is the same."""
    write_shards(tmp_path / "rows", churn, [1000, 1000, 1000], row_group=500)
    pq.write_table(pa.Table.from_pandas(churn, preserve_index=False), tmp_path / "one.parquet")
    sharded = run(
        spec_file(tmp_path, pretrained, "rows", 500),
        RunOptions(out=tmp_path / "a", use_cache=False),
    )
    single = run(
        spec_file(tmp_path, pretrained, "one.parquet", 500, name="single.yaml"),
        RunOptions(out=tmp_path / "b", use_cache=False),
    )
    assert sharded.exit_code == single.exit_code
    assert sharded.report["checks"][0]["figures"]["samples"] == ROWS
    assert checks_of(sharded) == checks_of(single)


def test_batches_never_straddle_two_shards(tmp_path, churn, pretrained, monkeypatch):  # noqa: F811
    """Dynamic INT8 sets its scales per batch: the batches a backend sees follow the shards,
    so they do not depend on how many readers share the shards."""
    write_shards(tmp_path / "rows", churn, [700, 1300, 1000], row_group=700)
    seen: list[int] = []
    predict = sklearn_backend.predict

    def counting(model, batch):
        seen.append(len(batch))
        return predict(model, batch)

    monkeypatch.setattr(sklearn_backend, "predict", counting)
    outcome = run(
        spec_file(tmp_path, pretrained, "rows/", 512),
        RunOptions(out=tmp_path / "out", use_cache=False),
    )
    assert outcome.exit_code in (ExitCode.PASSED, ExitCode.CHECK_FAILED), outcome.report
    # Row groups of 700, 700 + 600, 700 + 300, each cut into batches of 512.
    assert seen == [512, 188, 512, 188, 512, 88, 512, 188, 300]


@pytest.mark.parametrize(
    ("layout", "data_path", "message"),
    [
        ("empty", "rows", "the directory has no .parquet files"),
        ("two", "rows/*.csv", "the glob matches no file"),
        ("other-schema", "rows", "part-0001.parquet: another schema than rows/part-0000.parquet"),
        ("not-parquet", "rows", "rows/part-0001.parquet: cannot read PARQUET"),
    ],
)
def test_bad_shards_are_one_line_naming_the_file(tmp_path, churn, layout, data_path, message):
    folder = tmp_path / "rows"
    folder.mkdir()
    if layout != "empty":
        write_shards(folder, churn.head(20), [10, 10], row_group=10)
    if layout == "other-schema":
        changed = churn.iloc[10:20].drop(columns=["tenure_months"]).assign(extra=1.5)
        pq.write_table(
            pa.Table.from_pandas(changed, preserve_index=False), folder / "part-0001.parquet"
        )
    if layout == "not-parquet":
        (folder / "part-0001.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError) as raised:
        open_shards(tmp_path, data_path)
    assert message in str(raised.value)
    if layout == "other-schema":
        assert "lacks tenure_months" in str(raised.value) and "adds extra" in str(raised.value)


def test_the_cli_says_one_line_for_a_shard_with_another_schema(
    tmp_path,
    churn,
    pretrained,  # noqa: F811
):
    write_shards(tmp_path / "rows", churn.head(20), [10, 10], row_group=10)
    other = churn.iloc[10:20].astype({"tenure_months": "float32"})
    pq.write_table(
        pa.Table.from_pandas(other, preserve_index=False), tmp_path / "rows" / "part-0001.parquet"
    )
    spec = spec_file(tmp_path, pretrained, "rows", 512)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "parityspec",
            "run",
            spec,
            "--no-cache",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == ExitCode.INVALID_INPUT, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if "another schema" in x)
    assert "rows/part-0001.parquet" in line and "tenure_months is float" in line


def test_rows_are_numbered_across_shards(tmp_path, churn):
    write_shards(tmp_path / "rows", churn, [1000, 2000], row_group=1000)
    shards = open_shards(tmp_path, "rows")
    assert [s.first_row for s in shards.shards] == [0, 1000, 2000]
    assert np.diff([s.first_row for s in shards.shards]).tolist() == [1000, 1000]


def test_a_changed_added_or_renamed_shard_changes_the_data_steps_key(tmp_path, churn):
    from parityspec.data.shards import shards_sha256

    write_shards(tmp_path / "rows", churn, [1000, 1000], row_group=1000)
    first = shards_sha256(tmp_path, "rows")
    assert first == shards_sha256(tmp_path, "rows/*.parquet")  # the same files, the same key
    write_shards(tmp_path / "rows", churn.iloc[::-1], [1000, 1000], row_group=1000)
    changed = shards_sha256(tmp_path, "rows")
    (tmp_path / "rows" / "part-0001.parquet").rename(tmp_path / "rows" / "part-0009.parquet")
    renamed = shards_sha256(tmp_path, "rows")
    write_shards(tmp_path / "rows" / "more", churn.head(5), [5], row_group=5)
    added = shards_sha256(tmp_path, "rows")
    assert len({first, changed, renamed, added}) == 4


def test_a_warm_run_sees_a_changed_shard(tmp_path, churn, pretrained):  # noqa: F811
    """The step cache keys the data by every shard's name and bytes: a changed shard is read
    again, never answered from the cache."""
    write_shards(tmp_path / "rows", churn, [1500, 1500], row_group=1500)
    spec = spec_file(tmp_path, pretrained, "rows", 500)
    cache = {"cache_dir": tmp_path / "cache"}
    first = run(spec, RunOptions(out=tmp_path / "a", **cache))
    write_shards(tmp_path / "rows", churn.head(2000), [1000, 1000], row_group=1000)
    second = run(spec, RunOptions(out=tmp_path / "b", **cache))
    assert first.report["checks"][0]["figures"]["samples"] == ROWS
    assert second.report["checks"][0]["figures"]["samples"] == 2000


def test_a_parquet_files_row_groups_are_its_shards(tmp_path, churn):
    """One file: batches stop at its row groups too, as when workers read them."""
    from parityspec.data.sources import open_data_shards
    from parityspec.spec.models import DataSpec

    pq.write_table(
        pa.Table.from_pandas(churn, preserve_index=False),
        tmp_path / "one.parquet",
        row_group_size=700,
    )
    shards = open_data_shards(DataSpec(path="one.parquet", target="churned"), tmp_path)
    assert [(s.first_row, s.rows) for s in shards.shards] == [
        (0, 700),
        (700, 700),
        (1400, 700),
        (2100, 700),
        (2800, 200),
    ]
    assert [t.num_rows for _, t in shards.tables(512)] == [512, 188] * 4 + [200]
