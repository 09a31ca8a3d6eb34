"""A plugin's code makes what the cache keeps (its models, its checks' results, which a warm
run restores), so the version of its distribution enters every cache key."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.ecosystem.demo_plugin import install

SCRIPT = """
import json
import parityspec.checks
from parityspec.backends import key_libraries
print(json.dumps(key_libraries()))
"""


def test_the_cache_keys_hold_the_version_of_every_installed_plugin(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=install(tmp_path / "site"),
        cwd=REPO,
        timeout=120,
        check=True,
    )
    assert "parityspec-demo-plugin" in json.loads(done.stdout)
