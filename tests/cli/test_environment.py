"""Every `run` option has a PARITYSPEC_* environment variable (documented in the README), and
click's own shell completion works through the supervised console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from parityspec.cli import run
from tests.conftest import REPO, SPECS

README = (REPO / "README.md").read_text()
OPTIONS = [p for p in run.params if isinstance(p, click.Option)]
SCRIPT = Path(sys.executable).parent / "parityspec"  # the console script of this environment


def env_name(option: click.Option) -> str:
    """--batch-size -> PARITYSPEC_BATCH_SIZE: the long name, so the variable reads as the flag."""
    long = max(option.opts, key=len)
    return "PARITYSPEC_" + long.lstrip("-").upper().replace("-", "_")


def sample(option: click.Option) -> tuple[str, object]:
    """A value for the variable, and what the option should then hold: never its default."""
    kind = option.type
    if option.is_flag:
        return "1", True
    if option.multiple:
        return "a b", ("a", "b")
    if isinstance(kind, click.Choice):
        choice = next(c for c in kind.choices if c != option.default)
        return str(choice), choice
    if isinstance(kind, click.types.IntParamType):
        return "7", 7
    if isinstance(kind, click.types.FloatParamType):
        return "2.5", 2.5
    if isinstance(kind, click.Path):
        return "some/where", Path("some/where")
    if kind is click.STRING:
        return "strict", "strict"
    raise AssertionError(f"{option.name}: no sample value for a {kind!r} option; add one here")


def parsed(monkeypatch, env: dict[str, str]) -> dict[str, object]:
    for option in OPTIONS:
        monkeypatch.delenv(env_name(option), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return run.make_context("run", ["spec.yaml"]).params


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_each_run_option_reads_its_environment_variable(option, monkeypatch):
    """A new option without `envvar=` fails here: CI configures runs through the environment."""
    assert option.envvar == env_name(option), f"{option.name}: envvar={env_name(option)!r}"
    assert option.show_envvar, f"{option.name}: show_envvar=True, so --help names it"
    text, expected = sample(option)
    assert parsed(monkeypatch, {})[option.name] != expected
    assert parsed(monkeypatch, {env_name(option): text})[option.name] == expected


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_the_readme_lists_each_variable(option):
    section = README[README.index("### Environment variables") :]
    assert f"`{env_name(option)}`" in section.split("\n### ")[0]


def test_a_command_line_option_beats_its_variable(monkeypatch):
    params = parsed(monkeypatch, {"PARITYSPEC_ROWS": "7"})
    assert params["rows"] == 7
    monkeypatch.setenv("PARITYSPEC_ROWS", "7")
    assert run.make_context("run", ["spec.yaml", "--rows", "3"]).params["rows"] == 3


def test_a_run_configured_only_by_the_environment(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PARITYSPEC_CHECK", "logreg-labels")
    monkeypatch.setenv("PARITYSPEC_OUT", str(tmp_path / "r"))
    monkeypatch.setenv("PARITYSPEC_QUIET", "1")
    result = invoke("run", SPECS / "iris.yaml")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["iris: passed (1 of 1 checks passed) -> exit 0"]
    assert (tmp_path / "r" / "report.json").is_file()


def test_a_bad_value_names_the_variable(invoke, monkeypatch):
    monkeypatch.setenv("PARITYSPEC_ROWS", "many")
    result = invoke("run", SPECS / "iris.yaml")
    assert result.exit_code == 2
    assert "Invalid value for '--rows' (env var: 'PARITYSPEC_ROWS')" in result.stderr


def complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed console script, supervisor included, as a shell calls it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("_PARITYSPEC")}
    return subprocess.run(
        [str(SCRIPT)], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _parityspec_completion parityspec"),
        ("zsh", "compdef _parityspec_completion parityspec"),
        ("fish", "complete --no-files --command parityspec"),
    ],
)
def test_completion_prints_a_script_for_each_shell(shell, marker):
    done = complete({"_PARITYSPEC_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout


def test_completion_completes_commands_and_options():
    command = complete(
        {"_PARITYSPEC_COMPLETE": "bash_complete", "COMP_WORDS": "parityspec ru", "COMP_CWORD": "1"}
    )
    assert command.stdout.split() == ["plain,run"]
    option = complete(
        {
            "_PARITYSPEC_COMPLETE": "bash_complete",
            "COMP_WORDS": "parityspec run --fail",
            "COMP_CWORD": "2",
        }
    )
    assert option.stdout.split() == ["plain,--fail-fast"]


def test_an_option_from_the_environment_is_named_so_when_refused(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PARITYSPEC_OUT", str(tmp_path / "r"))
    result = invoke("run", SPECS / "iris.yaml", SPECS / "churn.yaml")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: PARITYSPEC_OUT (--out) names one report folder, and several specs were given "
        "(hint: unset PARITYSPEC_OUT: each spec writes to its own report.dir)\n"
    )
