"""Render the report dict through Jinja templates and write every format atomically.

Templates run in Jinja's sandbox: a user's template folder (`report.templates`) is text from a
pull request, and must not reach Python from a run that loads only model files."""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from parityspec.artifacts import dump_json, folder_name, write_bytes, write_text
from parityspec.checks import CHECKS
from parityspec.checks.capabilities import check_capabilities
from parityspec.errors import InputError, first_line
from parityspec.report.formats import FORMATS
from parityspec.report.formats.base import FormatContext, ReportFormat
from parityspec.report.messages import MESSAGE_DIR, TERMINAL_CHARS, clip, long_messages

SOURCE_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PACKAGED_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


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
    env.filters["value"] = format_value
    env.filters["clip"] = clip
    return env


NON_FINITE = {"nan": "NaN", "inf": "Inf", "-inf": "-Inf"}
"""report.json holds NaN and Inf as the strings "nan", "inf" (JSON has neither)."""


def format_number(value: Any) -> str:
    """A figure for humans: 4 significant digits, integers as they are, NaN and Inf by those
    names (a float or report.json's string), a list item by item, nothing (None) as `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        return _non_finite(value) or f"{value:.4g}"
    if isinstance(value, str):
        return NON_FINITE.get(value.lower(), value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_number(v) for v in value) + "]"
    return str(value)


def format_value(value: Any) -> str:
    """A data value (a feature of a row) as it is, a missing one as NaN, as pandas shows it."""
    if value is None:
        return "NaN"
    if isinstance(value, float):
        return _non_finite(value) or repr(value)
    return str(value)


def _non_finite(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    return None if math.isfinite(value) else NON_FINITE[str(value)]


def render(
    report: dict[str, Any],
    fmt: str,
    user_dir: Path | None = None,
    formats: Iterable[str] = ("json",),
) -> str:
    """`formats`: those written with this one; the Markdown names them when it must leave
    something out."""
    declared = FORMATS[fmt]
    with _located(user_dir):
        compiled = _compile(declared, user_dir)
        return declared.render(report, FormatContext(compiled, _whole(formats)))


def compile_templates(formats: Iterable[str], user_dir: Path | None) -> None:
    """Compile the user's templates before the run: a syntax error costs no run."""
    if user_dir is None:
        return
    for fmt in formats:
        with _located(user_dir):
            _compile(FORMATS[fmt], user_dir)


def write_reports(
    report: dict[str, Any], out_dir: Path, formats: list[str], user_dir: Path | None = None
) -> list[Path]:
    """Render every format and every check's artifacts first, so that an error writes
    nothing."""
    texts = {FORMATS[fmt].file: render(report, fmt, user_dir, formats) for fmt in formats}
    # Templates show long reasons cut, with a link to the whole text.
    if any(FORMATS[fmt].template for fmt in formats):
        texts.update(long_messages(report))
    files: dict[str, str | bytes] = {**texts, **check_artifacts(report)}
    written = [
        write_bytes(out_dir / name, content)
        if isinstance(content, bytes)
        else write_text(out_dir / name, content)
        for name, content in files.items()
    ]
    _remove_stale_messages(out_dir, set(written))
    return written


def _remove_stale_messages(out_dir: Path, written: set[Path]) -> None:
    """A long message an earlier run wrote into this folder is not this report's: left
    there, it would read as this run's reason."""
    folder = out_dir / MESSAGE_DIR
    if not folder.is_dir():
        return
    for stale in folder.glob("*.txt"):
        if stale not in written and stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)


def check_artifacts(report: dict[str, Any]) -> dict[str, str | bytes]:
    """The files each check's module makes from its report entry (its optional `artifacts`
    hook), by their path under the report folder: `artifacts/<check id>/...`; bytes are
    written as they are, anything else as JSON."""
    files: dict[str, str | bytes] = {}
    for check in report["checks"]:
        module = CHECKS.get(check["type"])
        made = check_capabilities(module).artifacts(check) if module else {}
        for name, content in made.items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(
                    f"check type {check['type']}: artifact {name!r} is outside its folder"
                )
            path = f"artifacts/{folder_name(check['id'])}/{relative}"
            files[path] = content if isinstance(content, bytes) else dump_json(content)
    return files


def _compile(declared: ReportFormat, user_dir: Path | None) -> jinja2.Template | None:
    """The format's template, if it has one."""
    if declared.template is None:
        return None
    return environment(user_dir, declared.autoescape).get_template(declared.template)


@contextmanager
def _located(user_dir: Path | None) -> Iterator[None]:
    """An error in a user's template becomes one line naming its file and line."""
    try:
        yield
    except Exception as error:
        located = _template_error(error, user_dir)
        if located is None:
            raise
        raise located from error


def _whole(formats: Iterable[str]) -> str:
    names = set(formats)
    files = [f.file for name, f in FORMATS.items() if f.whole and name in names]
    return " and ".join(files) if files else "report.json, once `report.formats` lists json"


def _template_error(error: Exception, user_dir: Path | None) -> InputError | None:
    """An error in one of the user's templates as one line naming its file and line; None
    for one in a built-in template, which is a bug of parityspec's."""
    if user_dir is None:
        return None
    where: tuple[str, int | None] | None
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
