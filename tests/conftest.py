"""Shared helpers: paths of the repository, and running the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from parityspec.cli import cli

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


@pytest.fixture
def invoke():
    """Run `parityspec ARGS...` in-process; returns click's Result."""

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(autouse=True)
def _private_step_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty step cache, never the user's."""
    monkeypatch.setenv("PARITYSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
