"""User templates run in Jinja's sandbox: one that reaches for Python internals, has a syntax
error or names an undefined field fails with exit 2 naming its file and line, writes nothing,
and never runs a command."""

from __future__ import annotations

import json

import jinja2
import pytest

from parityspec.errors import InputError
from parityspec.report.render import write_reports
from tests.conftest import REPO
from tests.report.helpers import model_file_spec, write_spec

REPORT = json.loads((REPO / "tests" / "data" / "golden" / "churn_forest.report.json").read_text())

# Two well-known escapes: through object's subclasses (os._wrap_close holds os's globals) and
# through a Jinja global function's module globals. Each touches MARKER.
PAYLOADS = {
    "subclasses": (
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
        "{% if c.__name__ == '_wrap_close' %}"
        "{{ c.__init__.__globals__['system']('touch MARKER') }}"
        "{% endif %}{% endfor %}"
    ),
    "globals": "{{ lipsum.__globals__.os.system('touch MARKER') }}",
}


def _template(payload: str, marker) -> str:
    """The payload on line 3, after two harmless lines."""
    return f"# {{{{ report.spec.name }}}}\n\n{payload.replace('MARKER', str(marker))}\n"


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_the_payloads_run_commands_without_the_sandbox(tmp_path, payload):
    """What the sandbox stops: rendered by a plain Jinja environment, each payload runs."""
    marker = tmp_path / "pwned"
    jinja2.Environment().from_string(_template(PAYLOADS[payload], marker)).render(report=REPORT)
    assert marker.exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_template_reaching_python_internals_fails_and_runs_nothing(
    invoke, tmp_path, model_files, payload
):
    """A spec that loads only ONNX files, run without --trust-models: its templates must not
    be a way to run code either."""
    marker = tmp_path / "pwned"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text(_template(PAYLOADS[payload], marker))
    spec = model_file_spec(model_files)
    spec["report"]["templates"] = "templates"
    result = invoke("run", write_spec(tmp_path, spec))
    assert result.exit_code == 2, result.output
    assert not marker.exists()
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(
        f"error: {templates.resolve() / 'report.md.j2'}:3: template tried to reach Python internals"
    )
    assert "(hint: report templates run in Jinja's sandbox" in errors[0]
    assert not (tmp_path / "out" / "report.json").exists()
    assert not (tmp_path / "out" / "junit.xml").exists()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("ok\n{% if %}\n", 2, "template syntax error: Expected an expression"),
        ("ok\n\n{{ report.no_such_key }}\n", 3, "undefined in template: 'dict object' has no"),
        ("{% include 'missing.j2' %}\n", 1, "template not found: missing.j2"),
        ("ok\n{{ 1 // 0 }}\n", 2, "template failed: ZeroDivisionError"),
    ],
    ids=["syntax", "undefined", "include", "runtime"],
)
def test_a_broken_template_names_its_file_and_line(tmp_path, text, line, message):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.html.j2").write_text(text)
    with pytest.raises(InputError) as raised:
        write_reports(REPORT, tmp_path / "out", ["json", "markdown", "html"], templates)
    assert str(raised.value).startswith(f"{templates / 'report.html.j2'}:{line}: {message}")
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()  # the other formats rendered, and none was written


def test_a_template_cannot_change_the_report_the_next_format_renders(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text("{{ report.checks.clear() }}\n")
    with pytest.raises(InputError, match="template tried to reach Python internals"):
        write_reports(REPORT, tmp_path / "out", ["markdown", "json"], templates)


def test_a_template_syntax_error_is_found_before_any_step_runs(invoke, tmp_path, model_files):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text("ok\n{% if %}\n")
    spec = model_file_spec(model_files)
    spec["report"]["templates"] = "templates"
    result = invoke("run", write_spec(tmp_path, spec))
    assert result.exit_code == 2, result.output
    assert "report.md.j2:2: template syntax error" in result.output
    assert "data:load" not in result.output  # refused before the first step
