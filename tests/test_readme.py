"""The README stays true: its spec reference, its set-up commands, and CI running them."""

from __future__ import annotations

import re

from parityspec.spec.reference import END, START, reference_markdown
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_spec_reference_matches_the_models():
    embedded = README[README.index(START) + len(START) : README.index(END)].strip()
    assert embedded == reference_markdown().strip(), (
        "README spec reference is stale: paste `parityspec schema --reference` between the "
        "spec-reference markers"
    )


def _setup_commands() -> list[str]:
    section = README[README.index("## Set up") : README.index("## Use")]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands():
    main_job, tests = _setup_commands()
    assert main_job.endswith("parityspec run specs/churn.yaml")
    assert "'.[dev]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = _setup_commands()
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()


def test_every_bundled_spec_is_described_in_the_readme():
    for spec in sorted((REPO / "specs").glob("*.yaml")):
        assert f"`specs/{spec.name}`" in README, spec.name


def test_the_python_example_runs(tmp_path, monkeypatch, capsys):
    section = README[README.index("### From Python") : README.index("### In CI and editors")]
    (example,) = re.findall(r"```python\n(.+?)\n```", section, flags=re.S)
    monkeypatch.chdir(REPO)
    example = example.replace('Path("out")', f"Path({str(tmp_path)!r})")
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert "0 passed" in printed
    assert printed[-1].startswith("logreg-parity passed ")
