"""A warm run of an unchanged spec restores every step and so imports no heavy library: no
model is built, loaded or opened and no check compares again (issue 12: a warm run at most
20% of a cold one, measured by benchmarks/run.py, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parityspec.api import RunOptions, run
from tests.conftest import REPO, SPECS

HEAVY = ("torch", "sklearn", "skops", "onnxruntime", "onnx", "skl2onnx", "scipy")
HEAVY += ("pandas", "pyarrow", "dask", "distributed")
# The command as the supervisor's child runs it, then what it imported.
SCRIPT = """
import json, sys
from parityspec.cli import main
sys.argv = ["parityspec", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    code = done.code
print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in {heavy})]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_a_warm_run_of_a_bundled_spec_imports_no_heavy_library(spec, tmp_path):
    cache = tmp_path / "cache"
    cold = run(SPECS / spec, RunOptions(out=tmp_path / "cold", cache_dir=cache))
    arguments = ["run", str(SPECS / spec), "--out", str(tmp_path / "warm"), "-q"]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=set(HEAVY)), *arguments, "--cache-dir", cache],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    code, imported = json.loads(done.stdout.splitlines()[-1])
    assert (code, imported) == (int(cold.exit_code), [])
    written = [json.loads((tmp_path / r / "report.json").read_text()) for r in ("cold", "warm")]
    assert written[1]["run"]["from_cache"] == [s["id"] for s in written[1]["steps"]]
    for report in written:
        report.pop("run")
    assert written[0] == written[1]
