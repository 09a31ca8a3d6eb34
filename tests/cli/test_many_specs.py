"""`run` and `validate` over several specs and folders: which files count, the per-spec and
total lines, the worst exit code, --fail-fast, --out refused, and single-spec output kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

MODELS = REPO / "tests" / "data" / "valid" / "models.py"


def write_spec(folder: Path, name: str, abs_tol: float | None = None) -> Path:
    """A small spec (sklearn vs its ONNX export) whose reports go to `folder/reports/NAME`;
    `abs_tol` below the conversion's error makes its check fail."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MODELS, folder / "models.py")
    override = f", abs_tol: {abs_tol}" if abs_tol is not None else ""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"parityspec: 1\nname: {name}\n"
        "data: {sklearn: breast_cancer}\nmodel: {task: binary}\n"
        "backends:\n  sklearn: {kind: sklearn, train: models.py:logistic}\n"
        "  onnx: {kind: onnx, from: sklearn}\n"
        "checks:\n"
        f"  - {{id: parity, type: probability_parity, between: [sklearn, onnx]{override}}}\n"
        f"report: {{dir: reports/{name}, formats: [json]}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def folder(tmp_path):
    """a.yaml passes, b.yaml fails, plus files that are not specs."""
    write_spec(tmp_path, "a")
    write_spec(tmp_path / "sub", "b", abs_tol=1e-300)
    (tmp_path / "notes.yaml").write_text("title: not a spec\n")
    (tmp_path / "data.json").write_text('{"rows": [1, 2]}')
    (tmp_path / "nested.yaml").write_text("meta:\n  parityspec: 1\n")  # not top-level
    # a committed baseline report: its top-level `parityspec` is a mapping, not a version
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.json").write_text('{"parityspec": {"version": "0.1"}}')
    (tmp_path / "reports" / "report.yaml").write_text("parityspec:\n  version: 0.1\n")
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    shutil.copy(tmp_path / "a.yaml", hidden / "a.yaml")
    return tmp_path


def test_a_folder_runs_its_specs_in_sorted_order_and_exits_with_the_worst(invoke, folder):
    result = invoke("run", folder, "--quiet")
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "a: passed (1 of 1 checks passed) -> exit 0",
        "b: failed (0 of 1 checks passed) -> exit 1",
        "total: 2 specs, 1 passed, 1 failed -> exit 1",
    ]
    # each spec's reports go to its own report.dir
    assert json.loads((folder / "reports/a/report.json").read_text())["verdict"] == "passed"
    assert json.loads((folder / "sub/reports/b/report.json").read_text())["verdict"] == "failed"


def test_several_specs_name_each_before_its_steps(invoke, folder):
    result = invoke("run", folder / "a.yaml", folder / "sub" / "b.yaml")
    lines = result.stdout.splitlines()
    assert lines[0] == f"spec 1 of 2: {folder / 'a.yaml'}"
    assert f"spec 2 of 2: {folder / 'sub' / 'b.yaml'}" in lines
    assert lines[-1] == "total: 2 specs, 1 passed, 1 failed -> exit 1"


def test_fail_fast_finishes_the_failing_spec_and_skips_the_rest(invoke, tmp_path):
    first = write_spec(tmp_path, "a", abs_tol=1e-300)
    second = write_spec(tmp_path, "b")
    result = invoke("run", first, second, "--fail-fast", "--quiet")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "a: failed (0 of 1 checks passed) -> exit 1",
        f"{second}: skipped (--fail-fast)",
        "total: 2 specs, 1 failed, 1 skipped -> exit 1",
    ]
    assert "--fail-fast: skipped 1 spec(s) after the first failure" in result.stderr
    assert (tmp_path / "reports/a/report.json").is_file()
    assert not (tmp_path / "reports/b").exists()


def test_an_invalid_spec_is_found_before_any_runs_and_outranks_a_failure(invoke, tmp_path):
    failing = write_spec(tmp_path, "a", abs_tol=1e-300)
    broken = tmp_path / "broken.yaml"
    broken.write_text("parityspec: 1\nname: broken\n")
    result = invoke("run", failing, broken, "--quiet")
    assert result.exit_code == 2
    assert result.stdout.splitlines()[1:] == [
        f"{broken}: invalid input -> exit 2",
        "total: 2 specs, 1 failed, 1 invalid input -> exit 2",
    ]
    assert result.stderr.startswith(f"error: {broken}")
    assert "Traceback" not in result.output


def test_fail_fast_with_an_invalid_spec_runs_nothing(invoke, tmp_path):
    passing = write_spec(tmp_path, "a")
    broken = tmp_path / "broken.yaml"
    broken.write_text("parityspec: 1\nname: broken\n")
    result = invoke("run", passing, broken, "--fail-fast", "--quiet")
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == f"{passing}: skipped (--fail-fast)"
    assert not (tmp_path / "reports").exists()


def test_out_with_several_specs_is_exit_2_with_a_hint(invoke, folder, tmp_path):
    result = invoke("run", folder, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --out names one report folder, and several specs were given "
        "(hint: drop --out: each spec writes to its own report.dir)\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_folder_without_specs_is_refused_like_any_path_that_is_not_a_file(invoke, tmp_path):
    (tmp_path / "notes.yaml").write_text("title: x\n")
    result = invoke("validate", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path}: is a directory, not a regular file")


def test_an_explicit_file_that_is_not_a_spec_is_exit_2(invoke, folder):
    result = invoke("run", folder / "a.yaml", folder / "notes.yaml", "--quiet")
    assert result.exit_code == 2
    assert f"{folder / 'notes.yaml'}: invalid input -> exit 2" in result.stdout
    assert "error: " in result.stderr and "Traceback" not in result.output


def test_validate_takes_folders_and_skips_what_is_not_a_spec(invoke, folder):
    result = invoke("validate", "--format", "json", folder, folder / "a.yaml")
    assert result.exit_code == 0, result.output
    files = [entry["file"] for entry in json.loads(result.stdout)]
    assert files == [str(folder / "a.yaml"), str(folder / "sub" / "b.yaml")]  # named twice: once


def test_one_spec_keeps_its_output(invoke, tmp_path):
    spec = write_spec(tmp_path, "a")
    result = invoke("run", spec, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "a: passed (1 of 1 checks passed) -> exit 0\n"


def test_a_spec_whose_user_code_ends_the_process_is_named_and_not_a_pass(tmp_path):
    """Through the console script: the watching parent names the step and the spec."""
    import subprocess
    import sys

    passing = write_spec(tmp_path, "a")
    dying = write_spec(tmp_path / "dies", "b")
    models = dying.parent / "models.py"
    models.write_text(models.read_text() + "\n\ndef dies():\n    import os\n\n    os._exit(0)\n")
    dying.write_text(dying.read_text().replace("models.py:logistic", "models.py:dies"))
    script = "from parityspec.cli_supervisor import main; main()"
    command = ["run", str(passing), str(dying), "--format", "json", "--no-cache"]
    result = subprocess.run(
        [sys.executable, "-c", script, *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert f"during step build:sklearn of {dying}" in result.stderr
    assert result.stdout == ""  # killed before its document: none rather than half of one


def test_an_error_a_run_raises_ends_that_spec_only(invoke, tmp_path, monkeypatch):
    from parityspec import api
    from parityspec.errors import StepError

    first = write_spec(tmp_path / "one", "a")
    second = write_spec(tmp_path / "two", "b")
    real_run = api.run

    def run(prepared, **kwargs):
        if prepared.loaded.spec.name == "a":
            raise StepError("the report folder vanished")
        return real_run(prepared, **kwargs)

    monkeypatch.setattr(api, "run", run)
    result = invoke("run", first, second, "--quiet")
    assert result.exit_code == 3
    assert result.stdout.splitlines() == [
        f"{first}: error -> exit 3",
        "b: passed (1 of 1 checks passed) -> exit 0",
        "total: 2 specs, 1 passed, 1 error -> exit 3",
    ]
    assert result.stderr == "error: the report folder vanished\n"
