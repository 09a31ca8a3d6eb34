"""Report format `csv`: `checks.csv`, one row per check with its headline figure, for a
spreadsheet or a dashboard that tracks parity across runs."""

from __future__ import annotations

import csv
import io
from typing import Any

from parityspec.report.formats.base import FormatContext

FORMAT = "csv"
FILE = "checks.csv"
COLUMNS = ("id", "type", "status", "figure", "value", "op", "limit", "limit_value")


def render(report: dict[str, Any], context: FormatContext) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for check in report["checks"]:
        writer.writerow({**check, **headline(check)})
    return out.getvalue()


def headline(check: dict[str, Any]) -> dict[str, Any]:
    """The gate that decided: the first one broken, else the first one; none for a check
    that errored or was skipped."""
    gates = check["gates"]
    return next((g for g in gates if not g["ok"]), gates[0]) if gates else {}
