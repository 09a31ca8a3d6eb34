"""Data a model cannot use, refused with the file, the column and a row: text in a column of
numbers, nested Parquet columns, no feature columns, training rows of one class or too few.
Before these checks each failed deep inside pandas or scikit-learn (exit 3, a raw message).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parityspec.data import chunked, sources
from parityspec.errors import InputError
from parityspec.spec.models import DataSpec, ModelSpec
from tests.bad_input.conftest import FEATURES
from tests.bad_input.helpers import (
    complete_report,
    default_spec,
    error_lines,
    expect,
    failed_step,
    no_report,
    write_spec,
)


def _run(invoke, tmp_path, spec: dict):
    out = tmp_path / "out"
    return invoke("run", write_spec(tmp_path, spec), "--out", out), out


def _with_data(assets, path, **data) -> dict:
    spec = default_spec(assets)
    spec["data"].update(path=str(path), **data)
    return spec


def _pretrained(assets, path, **data) -> dict:
    """The fitted pipeline against its export, on every row: the data is streamed."""
    spec = _with_data(assets, path, **data)
    spec["data"].pop("split")
    spec["backends"]["sk"] = {"kind": "sklearn", "path": str(assets / "model.skops")}
    return spec


def _frame(assets) -> pd.DataFrame:
    return pd.read_csv(assets / "data.csv")


# --- text in a column of numbers --------------------------------------------------------------


def _with_text(assets, tmp_path, row: int, value: str = "abc"):
    frame = _frame(assets).astype(str)
    frame.loc[row - 1, "f2"] = value
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("spec_of", [_with_data, _pretrained], ids=["trained", "streamed"])
def test_text_in_a_numeric_column_names_column_row_and_value(invoke, tmp_path, assets, spec_of):
    result, out = _run(invoke, tmp_path, spec_of(assets, _with_text(assets, tmp_path, 17)))
    output = expect(result, 2, "data.csv: column 'f2' data row 17: 'abc' is not a number")
    assert "leave it empty for a missing value" in output
    assert len(error_lines(output)) == 1, output
    assert failed_step(complete_report(out, 2))["id"] == "data:load"


def test_text_in_a_later_part_of_streamed_data_names_the_file_row(
    invoke, tmp_path, assets, monkeypatch
):
    monkeypatch.setattr(chunked, "SCAN_ROWS", 100)  # parts of 100 rows: row 450 is in the 5th
    result, out = _run(invoke, tmp_path, _pretrained(assets, _with_text(assets, tmp_path, 450)))
    expect(result, 2, "column 'f2' data row 450: 'abc' is not a number")
    complete_report(out, 2)


def test_a_column_of_text_with_some_numbers_is_text_not_a_fault(tmp_path):
    """Categories that happen to look like numbers in places are left to the model."""
    frame = pd.DataFrame(
        {"code": ["a", "1", "b", "2", "c", "3"] * 10, "x": range(60), "t": [0, 1] * 30}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    dataset = sources.load_dataset(
        DataSpec(path="d.csv", target="t"), ModelSpec(task="binary"), tmp_path
    )
    assert dataset.features["code"].tolist()[:3] == ["a", "1", "b"]


def test_a_streamed_text_column_with_numbers_in_later_parts_is_not_a_fault(tmp_path, monkeypatch):
    """Each part is judged with what the first part showed: a column of text there stays
    text, whatever share of numbers a later part holds."""
    monkeypatch.setattr(chunked, "SCAN_ROWS", 50)
    codes = ["a", "b"] * 25 + [str(i) for i in range(49)] + ["c"]
    frame = pd.DataFrame({"code": codes, "x": range(100), "t": [0, 1] * 50})
    frame.to_csv(tmp_path / "d.csv", index=False)
    dataset = sources.load_dataset(
        DataSpec(path="d.csv", target="t"), ModelSpec(task="binary"), tmp_path, tmp_path / "w"
    )
    assert len(dataset) == 100


# --- shapes of data no model reads ------------------------------------------------------------


def _parquet_with(assets, path, column: str, values) -> None:
    """The assets' rows and a column of `values(rows)`."""
    table = pa.Table.from_pandas(_frame(assets), preserve_index=False)
    pq.write_table(table.append_column(column, pa.array(values(table.num_rows))), path)


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        (lambda n: [{"a": i, "b": 1.0} for i in range(n)], "struct<"),
        (lambda n: [[i] for i in range(n)], "list<"),
    ],
    ids=["struct", "list"],
)
def test_nested_parquet_column_is_named(invoke, tmp_path, assets, values, shown):
    path = tmp_path / "data.parquet"
    _parquet_with(assets, path, "meta", values)
    result, out = _run(invoke, tmp_path, _with_data(assets, path))
    output = expect(result, 2, "data.parquet: column 'meta' is nested (", shown, "data.features")
    assert len(error_lines(output)) == 1, output
    assert failed_step(complete_report(out, 2))["id"] == "data:load"


def test_nested_parquet_column_left_out_by_data_features_is_fine(invoke, tmp_path, assets):
    path = tmp_path / "data.parquet"
    _parquet_with(assets, path, "meta", lambda n: [[i] for i in range(n)])
    result, _ = _run(invoke, tmp_path, _pretrained(assets, path, features=FEATURES))
    expect(result, 0, "PASS")


def test_csv_of_only_the_target(invoke, tmp_path, assets):
    path = tmp_path / "data.csv"
    _frame(assets)[["target"]].to_csv(path, index=False)
    result, out = _run(invoke, tmp_path, _with_data(assets, path))
    expect(result, 2, "data.csv: the data has no feature columns, only 'target'", "hint:")
    assert failed_step(complete_report(out, 2))["id"] == "data:load"


# --- training rows a classifier cannot learn from ---------------------------------------------


def test_training_rows_of_one_class(invoke, tmp_path, assets):
    path = tmp_path / "data.csv"
    _frame(assets).assign(target=1).to_csv(path, index=False)
    result, out = _run(invoke, tmp_path, _with_data(assets, path))
    expect(result, 2, "data.csv: every training row is of class 1", "two classes", "hint:")
    assert failed_step(complete_report(out, 2))["id"] == "build:sk"


def _two_rows(assets, tmp_path):
    frame = _frame(assets)
    path = tmp_path / "data.csv"
    pd.concat([frame[frame.target == 0][:1], frame[frame.target == 1][:1]]).to_csv(
        path, index=False
    )
    return path


def test_two_rows_cannot_be_split_with_every_class_in_both_parts(invoke, tmp_path, assets):
    result, out = _run(invoke, tmp_path, _with_data(assets, _two_rows(assets, tmp_path)))
    expect(result, 2, "cannot split the data", "has 1 row", "data.split.stratify: false")
    assert failed_step(complete_report(out, 2))["id"] == "data:split"


def test_two_rows_split_leave_one_row_to_train_on(invoke, tmp_path, assets):
    spec = _with_data(assets, _two_rows(assets, tmp_path))
    spec["data"]["split"]["stratify"] = False
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 2, "data.csv: 1 training row(s): too few to train a model", "test_size")
    assert failed_step(complete_report(out, 2))["id"] == "build:sk"


def test_two_rows_of_two_classes_without_a_split_train_and_pass(invoke, tmp_path, assets):
    spec = _with_data(assets, _two_rows(assets, tmp_path))
    spec["data"].pop("split")
    result, _ = _run(invoke, tmp_path, spec)
    expect(result, 0, "PASS")


# --- a lone surrogate in the spec -------------------------------------------------------------


def test_lone_surrogate_is_caught_by_validate_and_run(invoke, tmp_path, assets):
    text = write_spec(tmp_path, default_spec(assets)).read_text()
    spec = tmp_path / "surrogate.yaml"
    spec.write_text(text.replace("name: bad-input", 'name: bad-input\ndescription: "a\\uD800b"'))
    line = next(i for i, s in enumerate(spec.read_text().splitlines(), 1) if "description" in s)
    needle = f"{spec}:{line}:14: description: lone surrogate U+D800 in a string"
    expect(invoke("validate", spec), 2, needle, "hint:")
    out = tmp_path / "out"
    expect(invoke("run", spec, "--out", out), 2, needle)
    no_report(out)


def test_escaped_surrogate_pair_is_the_character_it_encodes(tmp_path, assets):
    """JSON writes a character beyond U+FFFF as two escapes: that is valid, not a fault."""
    import json

    from parityspec.spec.load import load_spec

    spec = default_spec(assets) | {"description": "\U0001f600"}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))  # ensure_ascii: "\ud83d\ude00"
    assert "\\ud83d\\ude00" in path.read_text()
    assert load_spec(path).spec.description == "\U0001f600"


def test_the_loader_names_the_first_stray_cell_and_counts_the_others(tmp_path):
    cells = [str(i) for i in range(40)]
    cells[2], cells[30] = "x", "n/a?"
    frame = pd.DataFrame({"a": cells, "t": [0, 1] * 20})
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(InputError, match=r"column 'a' data row 3: 'x' is not a number \(nor"):
        sources.load_dataset(DataSpec(path="d.csv", target="t"), ModelSpec(task="binary"), tmp_path)
