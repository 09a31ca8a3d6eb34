"""Progress on a terminal, plain lines elsewhere, --quiet, -v logging, and --help examples."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from rich.console import Console

from parityspec.backends.base import Predictions
from parityspec.checks.base import CheckResult
from parityspec.cli import cli
from parityspec.cli_output import live_steps
from parityspec.plan.graph import Step
from parityspec.results import StepOutcome
from tests.conftest import SPECS

ONE_CHECK = (SPECS / "iris.yaml", "--check", "logreg-labels")


@pytest.fixture
def parityspec_logger():
    """-v configures the `parityspec` logger; put it back as it was."""
    logger = logging.getLogger("parityspec")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers, logger.level = handlers, level


def test_terminal_shows_each_step_with_rows_per_second():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    predict = StepOutcome(Step("predict:onnx", "predict"), "ok", _predictions(1200), seconds=0.5)
    check = StepOutcome(
        Step("check:parity", "check"), "ok", CheckResult("failed", "max 0.2 > 0.1"), seconds=0.1
    )
    with live_steps(["predict:onnx", "check:parity"], console) as show:
        show(predict)
        show(check)
    text = out.getvalue()
    assert "predict:onnx" in text and "1200 rows, 2,400 rows/s" in text
    assert "FAIL" in text and "max 0.2 > 0.1" in text


def test_not_a_terminal_prints_one_plain_line_per_step(invoke, tmp_path):
    result = invoke("run", *ONE_CHECK, "--out", tmp_path)
    lines = result.output.splitlines()
    assert result.exit_code == 0
    assert lines[0].split() == ["ok", "data:load", lines[0].split()[2]]
    assert any(line.split()[:2] == ["PASS", "check:logreg-labels"] for line in lines)
    assert "\x1b[" not in result.output  # no terminal control codes in logs


def test_quiet_prints_only_the_verdict(invoke, tmp_path, parityspec_logger):
    result = invoke("-v", "run", *ONE_CHECK, "--out", tmp_path, "--quiet")
    assert result.stdout.splitlines() == ["iris: passed (1 of 1 checks passed) -> exit 0"]
    assert "INFO parityspec.run: check:logreg-labels PASS" in result.stderr  # -v: to stderr


@pytest.mark.parametrize("command", [*sorted(cli.commands), None], ids=lambda c: c or "root")
def test_every_help_has_an_example(invoke, command):
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0 and "Example:" in result.output
    assert "parityspec " in result.output.split("Example:")[1]


def _predictions(rows: int) -> Predictions:
    return Predictions("onnx", {"probabilities": np.zeros((rows, 2))})
