"""What a report format module declares, and what the renderer hands it.

A format renders the one report dict to the text of one file. A templated format names its
Jinja template: the renderer compiles it in the sandbox, with the user's `report.templates`
overriding it, before the first step runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class FormatContext:
    """What a format gets beside the report."""

    compiled: jinja2.Template | None
    whole: str
    """Where the whole report is, for a format that must leave something out: e.g.
    "report.json and report.html"."""

    @property
    def template(self) -> jinja2.Template:
        """The format's TEMPLATE, compiled in the sandbox."""
        if self.compiled is None:
            raise TypeError("this format declares no TEMPLATE")
        return self.compiled


class FormatModule(Protocol):
    """A module under `parityspec/report/formats/` registered in `FORMATS`, or a plugin's
    module under the entry-point group `parityspec.formats`.

    Optional, with their defaults: `TEMPLATE = None` (a Jinja template's file name: its
    reasons are shown cut, so the long messages are written beside it), `AUTOESCAPE = False`
    (escape the template's output for HTML and XML), `WHOLE = False` (the file holds the
    whole report, so a shortened format names it)."""

    FORMAT: str
    """Its name in `report.formats`."""
    FILE: str
    """The file it writes, under the report folder."""

    def render(self, report: dict[str, Any], context: FormatContext) -> str: ...


@dataclass(frozen=True)
class ReportFormat:
    """A format module's declarations, its optional ones filled with their defaults."""

    name: str
    file: str
    render: Callable[[dict[str, Any], FormatContext], str]
    template: str | None
    autoescape: bool
    whole: bool

    @classmethod
    def of(cls, module: FormatModule | ModuleType) -> ReportFormat:
        return cls(
            module.FORMAT,
            module.FILE,
            module.render,
            getattr(module, "TEMPLATE", None),
            getattr(module, "AUTOESCAPE", False),
            getattr(module, "WHOLE", False),
        )
