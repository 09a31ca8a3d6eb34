"""Report formats. A new format: one module here satisfying `FormatModule`, one line below."""

from parityspec.plugins import load_plugins
from parityspec.report.formats import html, json, junit, markdown
from parityspec.report.formats.base import FormatModule, ReportFormat

# This order is the JSON Schema's (its enum of `report.formats`).
BUILTIN: dict[str, FormatModule] = {m.FORMAT: m for m in (json, markdown, junit, html)}
FORMATS: dict[str, ReportFormat] = {
    name: ReportFormat.of(module)
    for name, module in {**BUILTIN, **load_plugins("parityspec.formats", BUILTIN)}.items()
}
