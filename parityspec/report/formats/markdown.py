"""`report.md`: for a pull request comment, so it always fits under GitHub's limit."""

from __future__ import annotations

from typing import Any

from parityspec.report.fit import Render, fit_markdown
from parityspec.report.formats.base import FormatContext
from parityspec.report.messages import for_display

FORMAT = "markdown"
FILE = "report.md"
TEMPLATE = "report.md.j2"


def render(report: dict[str, Any], context: FormatContext) -> str:
    return fit_markdown(_with_note(context), for_display(report), context.whole)


def _with_note(context: FormatContext) -> Render:
    template = context.template

    def render_with(report: dict[str, Any], cut: str | None) -> str:
        text = template.render(report=report, cut=cut)
        if cut and cut not in text:  # a user's template that does not show the note
            text += f"\n{cut}\n"
        return text

    return render_with
