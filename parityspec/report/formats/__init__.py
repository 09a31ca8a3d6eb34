"""Report formats. A new format: one module here satisfying `FormatModule`, one line below."""

import logging
from collections.abc import Mapping
from types import ModuleType

from parityspec.plugins import load_plugins
from parityspec.report.formats import html, json, junit, markdown
from parityspec.report.formats.base import FormatModule, ReportFormat

log = logging.getLogger(__name__)


def registered(
    builtin: Mapping[str, FormatModule | ModuleType], plugins: Mapping[str, ModuleType]
) -> dict[str, ReportFormat]:
    """Every format by name; a plugin writing a file another format writes is skipped with a
    warning, as one taking a built-in name is: it would overwrite that report."""
    formats = {name: ReportFormat.of(module) for name, module in builtin.items()}
    for name, module in plugins.items():
        declared = ReportFormat.of(module)
        taken = next((f.name for f in formats.values() if f.file == declared.file), None)
        if taken:
            log.warning(
                "plugin format %r writes %s as %r does; skipped", name, declared.file, taken
            )
            continue
        formats[name] = declared
    return formats


# This order is the JSON Schema's (its enum of `report.formats`).
BUILTIN: dict[str, FormatModule] = {m.FORMAT: m for m in (json, markdown, junit, html)}
FORMATS: dict[str, ReportFormat] = registered(BUILTIN, load_plugins("parityspec.formats", BUILTIN))
