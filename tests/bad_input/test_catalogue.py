"""Every input `parityspec run` reads, broken in the ways it breaks in practice.

Each case asserts the exit code (2: bad input, 3: a fault while running, 1: a check that
legitimately fails, 0: input that must work), one clear line naming the file, column or
option, no traceback, and the report: absent when nothing ran, whole JSON when a step failed.
Spec-file problems themselves are covered by tests/spec.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
from tests.conftest import REPO


def _run(invoke, tmp_path: Path, spec: dict, *options: str):
    out = tmp_path / "out"
    return invoke("run", write_spec(tmp_path, spec), "--out", out, *options), out


def _with_data(assets: Path, path: Path, **data) -> dict:
    spec = default_spec(assets)
    spec["data"].update(path=str(path), **data)
    return spec


# --- data files that cannot be read or hold no usable rows ------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _truncated(text: str) -> bytes:
    cut = len("\n".join(_lines(text)[:40])) + 7  # seven characters into line 41
    return text.encode()[:cut]


def _ragged(text: str) -> bytes:
    lines = _lines(text)
    lines[2] += ",1,2"
    return "\n".join(lines).encode()


def _with_cell(text: str, row: int, column: str, value: str) -> bytes:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    return frame.to_csv(index=False).encode()


UNREADABLE: dict[str, tuple[str, Callable[[str], bytes], tuple[str, ...]]] = {
    "empty": ("data.csv", lambda text: b"", ("empty (0 bytes)",)),
    "header-only": ("data.csv", lambda text: _lines(text)[0].encode() + b"\n", ("no rows",)),
    "truncated": ("data.csv", _truncated, ("looks truncated", "of 6 fields")),
    "ragged": ("data.csv", _ragged, ("Expected 6 fields in line 3, saw 8",)),
    "binary": ("data.csv", lambda text: b"\xff\xfe\xfa\xfb" * 500, ("cannot read CSV", "UTF-8")),
    "garbage-parquet": (
        "data.parquet",
        lambda text: b"PAR1" + bytes(range(256)) * 8,
        ("cannot read PARQUET",),
    ),
    "npz-not-a-zip": ("data.npz", lambda text: b"just some text\n", ("not an NPZ file",)),
    "target-missing": (
        "data.csv",
        lambda text: (
            pd.read_csv(io.StringIO(text)).drop(columns="target").to_csv(index=False).encode()
        ),
        ("target column 'target' is not in the data", "columns are: f0"),
    ),
    "target-empty-cell": (
        "data.csv",
        lambda text: _with_cell(text, 9, "target", ""),
        ("target column 'target'", "missing or infinite", "data row 10"),
    ),
    "inf": (
        "data.csv",
        lambda text: _with_cell(text, 4, "f2", "inf"),
        ("column 'f2'", "infinite value", "data row 5"),
    ),
    "beyond-float64": (
        "data.csv",
        lambda text: _with_cell(text, 2, "f1", "1e400"),
        ("column 'f1'", "beyond float64's range", "data row 3"),
    ),
    "minus-inf": (
        "data.csv",
        lambda text: _with_cell(text, 0, "f0", "-inf"),
        ("column 'f0'", "infinite value", "data row 1"),
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unusable_data_file_exits_2_naming_the_file(invoke, tmp_path, assets, case):
    name, content, needles = UNREADABLE[case]
    path = tmp_path / name
    path.write_bytes(content((assets / "data.csv").read_text()))
    result, out = _run(invoke, tmp_path, _with_data(assets, path))
    output = expect(result, 2, name, *needles)
    assert len([line for line in error_lines(output) if name in line]) == 1, output
    report = complete_report(out, 2)
    assert report["verdict"] == "invalid input"
    assert failed_step(report)["id"] == "data:load"


def test_missing_data_file_is_a_spec_problem_and_writes_nothing(invoke, tmp_path, assets):
    result, out = _run(invoke, tmp_path, _with_data(assets, tmp_path / "nowhere.csv"))
    expect(result, 2, "data.path", "file not found", "nowhere.csv")
    no_report(out)


def test_data_path_that_is_a_directory_without_parquet_files_is_a_spec_problem(
    invoke, tmp_path, assets
):
    """A directory is read as Parquet shards (tests/run/test_sharded_data.py); other special
    files (FIFOs, devices, symlink loops): test_special_files.py."""
    (tmp_path / "folder.csv").mkdir()
    result, out = _run(invoke, tmp_path, _with_data(assets, tmp_path / "folder.csv"))
    expect(result, 2, "data.path", "folder.csv is a directory with no .parquet files")
    no_report(out)


def test_data_path_glob_matching_nothing_is_a_spec_problem(invoke, tmp_path, assets):
    result, out = _run(invoke, tmp_path, _with_data(assets, tmp_path / "rows" / "*.parquet"))
    expect(result, 2, "data.path", "the glob matches no file")
    no_report(out)


def test_listed_feature_missing_from_the_data(invoke, tmp_path, assets):
    spec = _with_data(assets, assets / "data.csv", features=["f0", "f1", "nope"])
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 2, "feature columns missing from the data: nope", "columns are: f0")
    complete_report(out, 2)


def test_npz_arrays_of_different_lengths(invoke, tmp_path, assets):
    path = tmp_path / "data.npz"
    np.savez(path, f0=np.zeros(10), f1=np.zeros(9), target=np.zeros(10))
    result, out = _run(invoke, tmp_path, _with_data(assets, path))
    expect(result, 2, "data.npz", "NPZ arrays differ in length", "f1: 9")
    complete_report(out, 2)


# --- data that is unusual but fine ------------------------------------------------------------


def _reordered(assets: Path, folder: Path) -> Path:
    frame = pd.read_csv(assets / "data.csv")
    path = folder / "reordered.csv"
    frame[["target", *reversed(FEATURES)]].to_csv(path, index=False)
    return path


def _pretrained(spec: dict, assets: Path) -> dict:
    spec["backends"]["sk"] = {"kind": "sklearn", "path": str(assets / "model.skops")}
    spec["data"].pop("split")
    return spec


def test_reordered_columns_train_and_pass(invoke, tmp_path, assets):
    result, _ = _run(invoke, tmp_path, _with_data(assets, _reordered(assets, tmp_path)))
    expect(result, 0, "PASS")


def test_reordered_columns_pass_with_features_listed_by_name(invoke, tmp_path, assets):
    spec = _with_data(assets, _reordered(assets, tmp_path), features=FEATURES)
    result, _ = _run(invoke, tmp_path, _pretrained(spec, assets))
    expect(result, 0, "PASS")


def test_reordered_columns_pass_against_a_pretrained_model(invoke, tmp_path, assets):
    spec = _with_data(assets, _reordered(assets, tmp_path))
    result, _ = _run(invoke, tmp_path, _pretrained(spec, assets))
    expect(result, 0, "PASS")


def test_column_a_pretrained_model_needs_is_missing(invoke, tmp_path, assets):
    path = tmp_path / "fewer.csv"
    pd.read_csv(assets / "data.csv").drop(columns="f3").to_csv(path, index=False)
    spec = _pretrained(_with_data(assets, path), assets)
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 2, "the data lacks columns the model was fitted on: f3")
    complete_report(out, 2)


def test_missing_values_are_imputed(invoke, tmp_path, assets):
    frame = pd.read_csv(assets / "data.csv")
    frame.loc[::4, "f1"] = np.nan
    frame.loc[::7, "f3"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    result, _ = _run(invoke, tmp_path, _with_data(assets, path))
    expect(result, 0, "PASS")


def test_unseen_categories_are_ignored_by_the_encoder(invoke, tmp_path, churn_assets):
    frame = pd.read_csv(churn_assets / "churn.csv")
    frame.loc[::3, "region"] = "atlantis"
    frame.loc[::5, "contract"] = "lifetime"
    path = tmp_path / "unseen.csv"
    frame.to_csv(path, index=False)
    spec = {
        "parityspec": 1,
        "name": "unseen",
        "data": {"path": str(path), "target": "churned"},
        "model": {"task": "binary"},
        "backends": {
            "sk": {"kind": "sklearn", "path": str(churn_assets / "model.skops")},
            "onnx": {"kind": "onnx", "from": "sk"},
        },
        "checks": [{"id": "parity", "type": "probability_parity", "between": ["sk", "onnx"]}],
    }
    result, _ = _run(invoke, tmp_path, spec)
    expect(result, 0, "PASS")


# --- model files ------------------------------------------------------------------------------


def _sklearn_from(assets: Path, path: Path, **backend) -> dict:
    spec = default_spec(assets)
    spec["backends"]["sk"] = {"kind": "sklearn", "path": str(path), **backend}
    return spec


def test_missing_skops_is_a_spec_problem_and_writes_nothing(invoke, tmp_path, assets):
    result, out = _run(invoke, tmp_path, _sklearn_from(assets, tmp_path / "gone.skops"))
    expect(result, 2, "backends.sk.path", "file not found", "gone.skops")
    no_report(out)


def test_skops_of_garbage(invoke, tmp_path, assets):
    path = tmp_path / "garbage.skops"
    path.write_bytes(b"\x00garbage\x01" * 50)
    result, out = _run(invoke, tmp_path, _sklearn_from(assets, path))
    expect(result, 2, "garbage.skops", "not a valid skops file")
    assert failed_step(complete_report(out, 2))["id"] == "load:sk"


def test_ordinary_skops_pipeline_loads_without_trust(invoke, tmp_path, assets):
    spec = _sklearn_from(assets, assets / "model.skops")
    result, _ = _run(invoke, tmp_path, spec)
    expect(result, 0, "PASS")


@pytest.mark.parametrize("suffix", [".joblib", ".pkl"])
def test_pickle_without_trust_explains_the_risk_and_the_ways_forward(
    invoke, tmp_path, assets, suffix
):
    path = tmp_path / f"model{suffix}"
    path.write_bytes((assets / "model.joblib").read_bytes())
    result, out = _run(invoke, tmp_path, _sklearn_from(assets, path))
    output = expect(result, 2, path.name, "runs any code", "trusted: true", "--trust-models")
    assert len(error_lines(output)) == 1, output
    complete_report(out, 2)


def test_trusted_joblib_loads(invoke, tmp_path, assets):
    spec = _sklearn_from(assets, assets / "model.joblib", trusted=True)
    result, _ = _run(invoke, tmp_path, spec)
    expect(result, 0, "PASS")


def test_trusted_pickle_of_something_else_than_an_estimator(invoke, tmp_path, assets):
    import joblib

    path = tmp_path / "dict.joblib"
    joblib.dump({"weights": [1, 2, 3]}, path)
    result, out = _run(invoke, tmp_path, _sklearn_from(assets, path), "--trust-models")
    expect(result, 2, "dict.joblib", "holds a dict, not a fitted scikit-learn estimator")
    complete_report(out, 2)


@pytest.mark.parametrize(
    ("source", "code", "needles"),
    [
        ("def build(:\n", 2, ("builder.py is not valid Python", "line 1")),
        # A module found nowhere is the user's to install or point to (python_path): exit 2.
        ("import no_such_module_xyz\n", 2, ("imports no_such_module_xyz", "neither installed")),
        ("def build():\n    raise RuntimeError('boom')\n", 3, ("RuntimeError: boom",)),
    ],
    ids=["syntax-error", "import-error", "raises"],
)
def test_broken_builder_file(invoke, tmp_path, assets, source, code, needles):
    (tmp_path / "builder.py").write_text(source)
    spec = default_spec(assets)
    spec["backends"]["sk"]["train"] = f"{tmp_path / 'builder.py'}:build"
    result, out = _run(invoke, tmp_path, spec)
    expect(result, code, *needles)
    assert failed_step(complete_report(out, code))["id"] == "build:sk"


def _onnx_from(assets: Path, path: Path, **data) -> dict:
    spec = default_spec(assets)
    spec["backends"]["onnx"] = {"kind": "onnx", "path": str(path)}
    spec["data"].update(data)
    return spec


def test_text_file_named_onnx(invoke, tmp_path, assets):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a protobuf\n")
    result, out = _run(invoke, tmp_path, _onnx_from(assets, path))
    expect(result, 2, "model.onnx", "not a loadable ONNX model")
    assert failed_step(complete_report(out, 2))["id"] == "load:onnx"


def test_onnx_input_wider_than_the_data(invoke, tmp_path, assets):
    spec = _onnx_from(assets, assets / "model.onnx", features=FEATURES[:4])
    result, out = _run(invoke, tmp_path, spec)
    expect(result, 2, "ONNX input 'X' takes 5 features, the data has 4")
    complete_report(out, 2)


def test_onnx_inputs_named_after_absent_columns(invoke, tmp_path, assets, onnx_bytes):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame = pd.read_csv(assets / "data.csv").set_axis(["alpha", "beta", *FEATURES[2:], "t"], axis=1)
    model = make_pipeline(
        ColumnTransformer([("keep", "passthrough", ["alpha", "beta"])]),
        LogisticRegression(max_iter=500),
    ).fit(frame[["alpha", "beta"]], frame["t"])
    path = tmp_path / "named.onnx"
    path.write_bytes(onnx_bytes(model, {"alpha": 1, "beta": 1}))
    result, out = _run(invoke, tmp_path, _onnx_from(assets, path))
    expect(result, 2, "ONNX inputs not found among the data columns: alpha, beta", "f0")
    complete_report(out, 2)


def _torch_spec(state_dict: Path) -> dict:
    module = f"{REPO}/tests/data/valid/models.py:tiny_mlp"
    return {
        "parityspec": 1,
        "name": "torch-weights",
        "data": {"synthetic": {"rows": 8}},
        "model": {"task": "tensor", "inputs": [{"name": "x", "shape": [4]}]},
        "backends": {
            "loaded": {"kind": "torch", "module": module, "state_dict": str(state_dict)},
            "fresh": {"kind": "torch", "module": module},
        },
        "checks": [{"id": "same", "type": "output_parity", "between": ["loaded", "fresh"]}],
    }


def test_torch_state_dict_of_garbage(invoke, tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"\x80\x02garbage" * 40)
    result, out = _run(invoke, tmp_path, _torch_spec(path))
    expect(result, 2, "weights.pt", "not a file written by torch.save")
    assert failed_step(complete_report(out, 2))["id"] == "build:loaded"


def test_torch_state_dict_of_another_module(invoke, tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    result, _ = _run(invoke, tmp_path, _torch_spec(path))
    expect(result, 2, "other.pt", "0.weight")


# --- command-line options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        (("--rows", "0"), ("--rows", "0 is not in the range")),
        (("--batch-size", "-1"), ("--batch-size", "-1 is not in the range")),
        (("--check", "parit"), ("--check", "'parit'", "did you mean 'parity'")),
        (("--profile", "strickt"), ("--profile", "'strickt'", "did you mean 'strict'")),
    ],
    ids=["rows-0", "batch-size-negative", "unknown-check", "unknown-profile"],
)
def test_bad_option_exits_2_before_anything_runs(invoke, tmp_path, assets, options, needles):
    result, out = _run(invoke, tmp_path, default_spec(assets), *options)
    expect(result, 2, *needles)
    assert "data:load" not in result.output
    no_report(out)


def test_debug_shows_the_traceback(invoke, tmp_path, assets):
    spec = write_spec(tmp_path, default_spec(assets))
    result = invoke("--debug", "run", spec, "--out", tmp_path / "out", "--check", "parit")
    assert result.exit_code == 2
    assert "Traceback" in result.output and "did you mean 'parity'" in result.output


def test_debug_shows_the_traceback_of_a_failed_step(invoke, tmp_path, assets):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    spec = write_spec(tmp_path, _with_data(assets, path))
    result = invoke("--debug", "run", spec, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_reports_are_readable_by_others(invoke, tmp_path, assets):
    """mkstemp makes 0600 files; a report must get the usual mode for CI artifact uploads."""
    result, out = _run(invoke, tmp_path, default_spec(assets))
    expect(result, 0)
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((out / "report.json").stat().st_mode) == 0o666 & ~mask
