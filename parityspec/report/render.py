"""Render the report dict through Jinja templates and write every format atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from parityspec.artifacts import dump_json, write_json, write_text
from parityspec.report.plots import build_plots

SOURCE_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PACKAGED_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
FORMAT_FILES = {
    "markdown": ("report.md.j2", "report.md"),
    "junit": ("junit.xml.j2", "junit.xml"),
    "html": ("report.html.j2", "report.html"),
}
SEED_PARITY_KEYS = ("samples", "max_abs_diff", "mean_abs_diff")


def template_dirs(user_dir: Path | None) -> list[Path]:
    """User templates first, then the installed package's, then a source checkout's."""
    dirs = [user_dir] if user_dir else []
    return dirs + [d for d in (PACKAGED_TEMPLATES, SOURCE_TEMPLATES) if d.is_dir()]


def environment(user_dir: Path | None, autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(user_dir)]),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
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


def render(report: dict[str, Any], fmt: str, user_dir: Path | None = None) -> str:
    if fmt == "json":
        return dump_json(report)
    template_name, _ = FORMAT_FILES[fmt]
    env = environment(user_dir, autoescape=fmt in ("html", "junit"))
    extra = {"plots": build_plots(report)} if fmt == "html" else {}
    return env.get_template(template_name).render(report=report, **extra)


def write_reports(
    report: dict[str, Any], out_dir: Path, formats: list[str], user_dir: Path | None = None
) -> list[Path]:
    """Render every format first, so that a template error writes nothing."""
    texts = {
        ("report.json" if fmt == "json" else FORMAT_FILES[fmt][1]): render(report, fmt, user_dir)
        for fmt in formats
    }
    written = [write_text(out_dir / name, text) for name, text in texts.items()]
    return written + _seed_parity_reports(report, out_dir)


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
