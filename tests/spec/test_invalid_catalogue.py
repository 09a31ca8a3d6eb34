"""The catalogue of invalid specs: each one fails `parityspec validate` with its golden errors.

`tests/data/invalid/<what_is_wrong>.yaml` (or `.json`) sits beside `<what_is_wrong>.expected`,
the exact problem lines `parityspec validate` prints on stderr for it. After changing a
message on purpose, rewrite the goldens with

    UPDATE_GOLDEN=1 pytest tests/spec/test_invalid_catalogue.py

and read the diff: every line must still be right and helpful.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from parityspec.cli import cli
from parityspec.errors import SpecError
from parityspec.spec import yaml_source
from parityspec.spec.load import load_spec
from parityspec.spec.yaml_source import MAX_DEPTH, MAX_NODES

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if p.suffix in (".yaml", ".json"))
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
SUMMARY = "0 of 1 spec(s) valid"
# What the `!!python/object/apply:os.system` tag of python_tag.yaml would create if run.
PWNED = "parityspec-pwned"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    """Paths are shown as given: run from the root so goldens hold `tests/data/invalid/...`."""
    monkeypatch.chdir(REPO)


def validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def shown(spec: Path) -> str:
    return spec.relative_to(REPO).as_posix()


def golden_of(spec: Path) -> Path:
    return spec.with_suffix(".expected")


def test_catalogue_is_complete():
    assert len(CASES) >= 30
    stems = [p.stem for p in CASES]
    assert len(stems) == len(set(stems)), "two specs would share one .expected file"
    missing = [p.name for p in CASES if not golden_of(p).exists()]
    assert UPDATE_GOLDEN or not missing, f"no golden for {missing}: run with UPDATE_GOLDEN=1"
    orphans = {p.stem for p in INVALID.glob("*.expected")} - set(stems)
    assert not orphans, f".expected files without a spec: {sorted(orphans)}"


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.name)
def test_invalid_spec_matches_golden(spec: Path):
    result = validate(shown(spec))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    *problems, summary = result.stderr.splitlines()
    assert summary == SUMMARY
    assert problems, "an invalid spec must report at least one problem"
    for line in problems:
        assert line.startswith(f"{shown(spec)}:"), line
    text = "\n".join(problems) + "\n"
    golden = golden_of(spec)
    if UPDATE_GOLDEN:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_all_invalid_specs_at_once_report_every_golden_line():
    """Several files in one run: each file's problems, in the order given, then the summary."""
    result = validate(*(shown(p) for p in CASES))
    assert result.exit_code == 2
    expected = "".join(golden_of(p).read_text(encoding="utf-8") for p in CASES)
    assert result.stderr == expected + f"0 of {len(CASES)} spec(s) valid\n"


def test_python_tag_is_never_executed(tmp_path, monkeypatch):
    spec = tmp_path / "python_tag.yaml"
    shutil.copy(INVALID / "python_tag.yaml", spec)
    monkeypatch.chdir(tmp_path)
    result = validate(spec.name)
    assert result.exit_code == 2
    assert "'!!python/object/apply:os.system' is not allowed" in result.stderr
    assert not (tmp_path / PWNED).exists()


def test_python_tag_canary_would_fire_under_an_unsafe_loader(tmp_path, monkeypatch):
    """Proves the check above can fail: the same document, loaded unsafely, runs its command."""
    monkeypatch.chdir(tmp_path)
    yaml.unsafe_load((INVALID / "python_tag.yaml").read_text())
    assert (tmp_path / PWNED).exists()


@pytest.mark.parametrize("name", ["alias_bomb.yaml", "deep_nesting.yaml"])
def test_resource_bombs_stop_at_the_limits(name: str, monkeypatch):
    """The work is bounded, not timed: nodes composed and values built are counted, and one
    past the limits fails the test at once (the alias bomb expands to 9**9 values)."""
    counts = {"composed": 0, "built": 0}
    bounds = {"composed": MAX_NODES + MAX_DEPTH + 1, "built": MAX_NODES + 1}

    def counting(kind: str, original):
        def wrapper(*args, **kwargs):
            counts[kind] += 1
            assert counts[kind] <= bounds[kind], f"{kind} more than {bounds[kind]} nodes"
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        yaml_source._Loader, "compose_node", counting("composed", yaml_source._Loader.compose_node)
    )
    monkeypatch.setattr(
        yaml_source._Builder, "build", counting("built", yaml_source._Builder.build)
    )
    with pytest.raises(SpecError):
        load_spec(INVALID / name)
    assert counts["composed"] > 0


def test_binary_bytes_written_at_test_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("garbage.yaml").write_bytes(bytes(range(256)) * 4)
    result = validate("garbage.yaml")
    assert result.exit_code == 2
    assert result.stderr == f"garbage.yaml: binary file, not YAML text\n{SUMMARY}\n"


def test_directory_given_as_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("specs.yaml").mkdir()
    result = validate("specs.yaml")
    assert result.exit_code == 2
    assert result.stderr == (
        "specs.yaml: is a directory, not a regular file (hint: give the path of a spec file)\n"
        f"{SUMMARY}\n"
    )


def test_missing_spec_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = validate("nowhere/spec.yaml")
    assert result.exit_code == 2
    assert result.stderr == f"nowhere/spec.yaml: no such file\n{SUMMARY}\n"
    assert "Traceback" not in result.output


def test_installed_command_in_a_subprocess(tmp_path):
    """The real entry point, in a fresh process, in a folder where `touch` would leave a trace."""
    names = ["python_tag.yaml", "alias_bomb.yaml", "deep_nesting.yaml", "invalid_utf8.yaml"]
    for name in names:
        shutil.copy(INVALID / name, tmp_path / name)
    command = [sys.executable, "-m", "parityspec", "validate", *names]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    expected = "".join(
        golden_of(INVALID / n).read_text(encoding="utf-8").replace(shown(INVALID / n), n)
        for n in names
    )
    assert done.stderr == expected + f"0 of {len(names)} spec(s) valid\n"
    assert not (tmp_path / PWNED).exists()
