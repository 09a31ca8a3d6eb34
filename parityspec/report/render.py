"""Render the report dict through Jinja templates and write every format atomically.

Templates run in Jinja's sandbox: a user's template folder (`report.templates`) is text from a
pull request, and must not reach Python from a run that loads only model files."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from parityspec.artifacts import dump_json, write_json, write_text
from parityspec.errors import InputError, first_line
from parityspec.report.fit import fit_markdown
from parityspec.report.messages import TERMINAL_CHARS, clip, for_display, long_messages
from parityspec.report.plots import build_plots

SOURCE_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PACKAGED_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
FORMAT_FILES = {
    "markdown": ("report.md.j2", "report.md"),
    "junit": ("junit.xml.j2", "junit.xml"),
    "html": ("report.html.j2", "report.html"),
}
SEED_PARITY_KEYS = ("samples", "max_abs_diff", "mean_abs_diff")
WHOLE_REPORTS = {"json": "report.json", "html": "report.html"}


def template_dirs(user_dir: Path | None) -> list[Path]:
    """User templates first, then the installed package's, then a source checkout's."""
    dirs = [user_dir] if user_dir else []
    return dirs + [d for d in (PACKAGED_TEMPLATES, SOURCE_TEMPLATES) if d.is_dir()]


def environment(user_dir: Path | None, autoescape: bool = False) -> jinja2.Environment:
    # Immutable: a template cannot change the report that the next format renders.
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(user_dir)]),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["clip"] = clip
    return env


def format_number(value: Any) -> str:
    """Short, stable numbers for humans: 4 significant digits, integers as they are."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(
    report: dict[str, Any],
    fmt: str,
    user_dir: Path | None = None,
    formats: Iterable[str] = ("json",),
) -> str:
    """`formats`: those written with this one; the Markdown names them when it must leave
    something out."""
    if fmt == "json":
        return dump_json(report)
    template_name, _ = FORMAT_FILES[fmt]
    env = environment(user_dir, autoescape=fmt in ("html", "junit"))
    shown = for_display(report)
    try:
        template = env.get_template(template_name)
        if fmt == "markdown":
            return fit_markdown(_markdown_renderer(template), shown, _whole(formats))
        extra = {"plots": build_plots(report)} if fmt == "html" else {}
        return template.render(report=shown, **extra)
    except Exception as error:
        located = _template_error(error, user_dir)
        if located is None:
            raise
        raise located from error


def compile_templates(formats: Iterable[str], user_dir: Path | None) -> None:
    """Compile the user's templates before the run: a syntax error costs no run."""
    if user_dir is None:
        return
    for fmt in formats:
        if fmt not in FORMAT_FILES:
            continue
        try:
            environment(user_dir).get_template(FORMAT_FILES[fmt][0])
        except Exception as error:
            located = _template_error(error, user_dir)
            if located is None:
                raise
            raise located from error


def write_reports(
    report: dict[str, Any], out_dir: Path, formats: list[str], user_dir: Path | None = None
) -> list[Path]:
    """Render every format first, so that a template error writes nothing."""
    texts = {
        ("report.json" if fmt == "json" else FORMAT_FILES[fmt][1]): render(
            report, fmt, user_dir, formats
        )
        for fmt in formats
    }
    if set(formats) & set(FORMAT_FILES):  # the formats that link to the whole messages
        texts.update(long_messages(report))
    written = [write_text(out_dir / name, text) for name, text in texts.items()]
    return written + _seed_parity_reports(report, out_dir)


def _markdown_renderer(template: jinja2.Template):
    def render_with(report: dict[str, Any], cut: str | None) -> str:
        text = template.render(report=report, cut=cut)
        if cut and cut not in text:  # a user's template that does not show the note
            text += f"\n{cut}\n"
        return text

    return render_with


def _whole(formats: Iterable[str]) -> str:
    files = [WHOLE_REPORTS[f] for f in WHOLE_REPORTS if f in formats]
    return " and ".join(files) if files else "report.json, once `report.formats` lists json"


def _template_error(error: Exception, user_dir: Path | None) -> InputError | None:
    """An error in one of the user's templates as one line naming its file and line; None
    for one in a built-in template, which is a bug of parityspec's."""
    if user_dir is None:
        return None
    if isinstance(error, jinja2.TemplateSyntaxError) and error.filename:
        where = (error.filename, error.lineno)
    else:
        frames = traceback.extract_tb(error.__traceback__)
        where = next(
            ((f.filename, f.lineno) for f in reversed(frames) if _inside(f.filename, user_dir)),
            None,
        )
    if where is None or not _inside(where[0], user_dir):
        return None
    message, hint = _explain(error)
    return InputError(
        clip(message, TERMINAL_CHARS), file=f"{_shown(where[0])}:{where[1]}", hint=hint
    )


def _explain(error: Exception) -> tuple[str, str]:
    text = first_line(error).rstrip(".")
    if isinstance(error, jinja2.exceptions.SecurityError):
        return (
            f"template tried to reach Python internals ({text})",
            "report templates run in Jinja's sandbox: use the report's fields and Jinja filters",
        )
    if isinstance(error, jinja2.UndefinedError):
        return f"undefined in template: {text}", "a template can use the fields of report.json"
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"template syntax error: {text}", "see Jinja's template designer documentation"
    if isinstance(error, jinja2.TemplateNotFound):
        return f"template not found: {error.name}", "include or extend a file of the folder"
    return (
        f"template failed: {type(error).__name__}: {text}",
        "the error happened while rendering the report with this template",
    )


def _inside(filename: str, folder: Path) -> bool:
    return Path(filename).resolve().is_relative_to(folder.resolve())


def _shown(filename: str) -> str:
    """Relative to the current directory when under it, as a user would type it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


def _seed_parity_reports(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """The seed pipeline's parity_report.json, one per probability parity check."""
    written = []
    for check in report["checks"]:
        if check["type"] != "probability_parity" or not check["figures"]:
            continue
        seed = {k: check["figures"][k] for k in SEED_PARITY_KEYS}
        seed.update(
            abs_tol=check["tolerances"]["abs_tol"],
            mean_tol=check["tolerances"]["mean_tol"],
            passed=check["passed"],
        )
        written.append(write_json(out_dir / "artifacts" / check["id"] / "parity_report.json", seed))
    return written
