"""`parityspec validate`: many files in one run, machine-readable output, and help texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityspec.cli import cli

REPO = Path(__file__).resolve().parents[2]
VALID = "tests/data/valid"
INVALID = "tests/data/invalid"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def parityspec(*args: str):
    return CliRunner().invoke(cli, list(args))


def golden(name: str) -> str:
    return (REPO / INVALID / name).with_suffix(".expected").read_text(encoding="utf-8")


def test_several_files_one_bad_reports_every_problem():
    result = parityspec(
        "validate",
        f"{VALID}/minimal_tabular.yaml",
        f"{INVALID}/many_problems.yaml",
        f"{VALID}/json_form.json",
    )
    assert result.exit_code == 2
    assert result.stderr == golden("many_problems.yaml") + "2 of 3 spec(s) valid\n"
    assert len(golden("many_problems.yaml").splitlines()) == 5
    assert result.stdout == ""


def test_several_bad_files_are_each_reported_in_order():
    names = ["unknown_check_type.yaml", "profile_extends_cycle.yaml", "invalid_utf8.yaml"]
    result = parityspec("validate", *(f"{INVALID}/{n}" for n in names))
    assert result.exit_code == 2
    assert result.stderr == "".join(golden(n) for n in names) + "0 of 3 spec(s) valid\n"


def test_all_valid_files_exit_zero():
    result = parityspec("validate", f"{VALID}/minimal_tabular.yaml", f"{VALID}/json_form.json")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 of 2 spec(s) valid\n"
    assert result.stderr == ""


def test_json_format_lists_each_spec_and_every_problem_field():
    result = parityspec(
        "validate",
        "--format",
        "json",
        f"{VALID}/minimal_tabular.yaml",
        f"{INVALID}/unknown_data_key.yaml",
        f"{INVALID}/missing_spec.yaml",
    )
    assert result.exit_code == 2
    assert result.stderr == ""
    good, bad, missing = json.loads(result.stdout)
    assert good == {"file": f"{VALID}/minimal_tabular.yaml", "valid": True, "problems": []}
    assert bad["valid"] is False
    assert bad["problems"] == [
        {
            "file": f"{INVALID}/unknown_data_key.yaml",
            "line": 5,
            "col": 3,
            "key": "data.tagret",
            "message": "unknown key 'tagret'",
            "hint": "did you mean 'target'?",
        }
    ]
    assert missing == {
        "file": f"{INVALID}/missing_spec.yaml",
        "valid": False,
        "problems": [{"file": f"{INVALID}/missing_spec.yaml", "message": "no such file"}],
    }


def test_json_format_matches_the_text_goldens():
    """The same problems either way: each JSON problem formats to its golden line."""
    from parityspec.errors import Problem

    names = ["many_problems.yaml", "python_tag.yaml", "unclosed_brace.yaml"]
    result = parityspec("validate", "--format", "json", *(f"{INVALID}/{n}" for n in names))
    assert result.exit_code == 2
    for entry, name in zip(json.loads(result.stdout), names, strict=True):
        lines = "".join(Problem(**p).format() + "\n" for p in entry["problems"])
        assert lines == golden(name)


def test_validate_needs_a_spec():
    result = parityspec("validate")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def _commands():
    return [(), *((name,) for name in sorted(cli.commands))]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "parityspec")
def test_help_shows_an_example(command: tuple[str, ...]):
    result = parityspec(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert "parityspec " in result.stdout.split("Example", 1)[1]
