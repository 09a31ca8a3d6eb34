"""`report.html`: one self-contained page, with the plots drawn as inline SVG."""

from __future__ import annotations

from typing import Any

from parityspec.report.formats.base import FormatContext
from parityspec.report.messages import for_display
from parityspec.report.plots import build_plots

FORMAT = "html"
FILE = "report.html"
TEMPLATE = "report.html.j2"
AUTOESCAPE = True
WHOLE = True


def render(report: dict[str, Any], context: FormatContext) -> str:
    return context.template.render(report=for_display(report), plots=build_plots(report))
