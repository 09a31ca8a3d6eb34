"""`report.json`: the machine record, every character of it, with sorted keys."""

from __future__ import annotations

from typing import Any

from parityspec.artifacts import dump_json
from parityspec.report.formats.base import FormatContext

FORMAT = "json"
FILE = "report.json"
WHOLE = True


def render(report: dict[str, Any], context: FormatContext) -> str:
    return dump_json(report)
