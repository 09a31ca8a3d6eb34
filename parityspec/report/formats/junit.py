"""`junit.xml`: one testcase per check, for CI systems that show test results."""

from __future__ import annotations

from typing import Any

from parityspec.report.formats.base import FormatContext
from parityspec.report.messages import for_display

FORMAT = "junit"
FILE = "junit.xml"
TEMPLATE = "junit.xml.j2"
AUTOESCAPE = True


def render(report: dict[str, Any], context: FormatContext) -> str:
    return context.template.render(report=for_display(report))
