"""The bundled example data is what its generator makes, byte for byte."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHURN = REPO / "examples" / "churn"


def test_churn_csv_is_regenerated_byte_identically(tmp_path):
    script = (
        "import sys, pathlib; sys.path.insert(0, sys.argv[1]); import generate; "
        "generate.write_csv(generate.generate(), pathlib.Path(sys.argv[2]))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(CHURN), str(tmp_path / "churn.csv")], check=True
    )
    assert (tmp_path / "churn.csv").read_bytes() == (CHURN / "churn.csv").read_bytes()
