"""`validate` loads no model and none of the heavy libraries: it is a PR check and a
pre-commit hook, so it must stay quick (issue target: under 0.5 s, in benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, SPECS

HEAVY = ("pandas", "torch", "sklearn", "skops", "onnxruntime", "skl2onnx", "pyarrow")
# Optional engines: only a run on workers imports Dask.
HEAVY += ("dask", "distributed")
SCRIPT = """
import json, sys
from parityspec.spec.load import load_spec
for path in sys.argv[1:]:
    load_spec(path)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy})))
"""


def test_validating_every_bundled_spec_imports_no_heavy_library():
    specs = sorted(str(p) for p in SPECS.glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=set(HEAVY)), *specs],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert json.loads(done.stdout) == []
