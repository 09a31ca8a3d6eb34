"""mypy, with the `[tool.mypy]` settings of pyproject.toml, over the whole `parityspec` package:
zero errors, default strictness plus `disallow_untyped_defs`."""

from __future__ import annotations

from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[1]


def test_package_type_checks(tmp_path: Path) -> None:
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),  # a fresh cache: no stale result passes for a check
            str(ROOT / "parityspec"),
        ]
    )
    assert status == 0, stdout + stderr
