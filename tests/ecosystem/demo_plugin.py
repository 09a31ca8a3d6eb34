"""The demo plugin package (tests/plugin_pkg) registered as `pip install` would register it:
its entry points, read from its own pyproject.toml, in a dist-info folder on sys.path."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from tests.conftest import REPO

PLUGIN = REPO / "tests" / "plugin_pkg"


def declared_entry_points() -> dict[str, dict[str, str]]:
    """The plugin package's own declaration: entry-point group -> name -> module."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    entries: dict[str, dict[str, str]] = project["entry-points"]
    return entries


def install(site: Path) -> dict[str, str]:
    """Write the dist-info into `site`; returns an environment whose interpreters find it."""
    dist = site / "parityspec_demo_plugin-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: parityspec-demo-plugin\n")
    sections = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in declared_entry_points().items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(sections))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN)])}
