"""examples/ci/parityspec.yml works from a fresh repository holding specs, a model and data:
its `run:` steps are run here, as a runner runs them (bash -eo pipefail, the workflow's env,
`if: always()` after a failure), in a clone of a scratch git repository, twice: the second
clone gets the first's step cache, as actions/cache restores it.

Installing from git needs the network, so PARITYSPEC_INSTALL names this checkout and the
install step takes its own branch for a parityspec already importable (this test's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / "examples" / "ci" / "parityspec.yml"
FEATURES = ["f0", "f1", "f2", "f3"]
GIT = [
    "git",
    "-c",
    "user.name=ci",
    "-c",
    "user.email=ci@example.com",
    "-c",
    "init.defaultBranch=main",
]


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict[str, Any]]:
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def scratch_repository(root: Path) -> Path:
    """A repository as a team would hold it: a fitted model (skops), rows, and two specs: one
    that passes and one whose tolerance no float conversion meets."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    repo = root / "origin"
    for folder in ("specs", "models", "data"):
        (repo / folder).mkdir(parents=True)
    frame = load_breast_cancer(as_frame=True).frame.iloc[:200]
    frame = frame[[*frame.columns[:4], "target"]].set_axis([*FEATURES, "target"], axis=1)
    frame.to_csv(repo / "data" / "rows.csv", index=False)
    model = LogisticRegression(max_iter=1000).fit(frame[FEATURES], frame["target"])
    sio.dump(model, repo / "models" / "model.skops")
    for name, tolerance in (("parity", ""), ("strict", ", abs_tol: 1.0e-300")):
        (repo / "specs" / f"{name}.yaml").write_text(
            f"parityspec: 1\nname: {name}\n"
            "data: {path: ../data/rows.csv, target: target}\nmodel: {task: binary}\n"
            "backends:\n  sklearn: {kind: sklearn, path: ../models/model.skops}\n"
            "  onnx: {kind: onnx, from: sklearn}\n"
            "checks:\n"
            f"  - {{id: probabilities, type: probability_parity, between: [sklearn, onnx]"
            f"{tolerance}}}\n"
            "  - {id: labels, type: label_agreement, between: [sklearn, onnx]}\n"
            f"report: {{dir: ../reports/{name}, formats: [json, markdown, junit]}}\n"
        )
    subprocess.run([*GIT, "init", "-q", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-qm", "specs and a model"], check=True)
    return repo


def run_workflow(
    origin: Path, workspace: Path, summary: Path, cache: Path | None = None
) -> dict[str, subprocess.CompletedProcess[str] | None]:
    """Clone (actions/checkout), put `cache` in place (actions/cache restoring an earlier
    run's step cache), then each `run:` step in order; None for a step skipped because an
    earlier one failed and it is not `if: always()`."""
    subprocess.run([*GIT, "clone", "-q", str(origin), str(workspace)], check=True)
    if cache is not None:
        shutil.copytree(cache, workspace / workflow()["env"]["PARITYSPEC_CACHE_DIR"])
    env = {
        **os.environ,
        **{k: str(v) for k, v in workflow()["env"].items()},
        "PARITYSPEC_INSTALL": str(REPO),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PARITYSPEC_STATUS_FD", None)
    results: dict[str, subprocess.CompletedProcess[str] | None] = {}
    failed = False
    for step in steps():
        if "run" not in step:
            continue
        if failed and step.get("if") != "always()":
            results[step["name"]] = None
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        results[step["name"]] = done
        failed = failed or done.returncode != 0
    return results


def test_the_workflow_is_what_the_steps_below_assume():
    document = workflow()
    triggers = document.get("on", document.get(True))
    assert set(triggers) == {"pull_request", "push"}
    assert document["defaults"]["run"]["shell"] == "bash"
    uses = {s["uses"].split("@")[0]: s for s in steps() if "uses" in s}
    assert set(uses) >= {"actions/checkout", "actions/cache", "actions/upload-artifact"}
    cache = uses["actions/cache"]["with"]
    assert cache["path"] == "${{ env.PARITYSPEC_CACHE_DIR }}"
    assert "hashFiles('specs/**', 'models/**', 'data/**')" in cache["key"]
    upload = uses["actions/upload-artifact"]
    assert upload["if"] == "always()" and "${{ env.PARITYSPEC_REPORTS }}" in upload["with"]["path"]
    for step in steps():  # run here as they are: no expression for Actions to fill in
        assert "${{" not in step.get("run", ""), step["name"]
    install = next(s["run"] for s in steps() if s.get("name") == "Install parityspec")
    assert 'pip install "$PARITYSPEC_INSTALL"' in install
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    assert document["env"]["PARITYSPEC_INSTALL"].startswith("parityspec @ git+https://")


@pytest.mark.slow
def test_the_run_steps_work_in_a_fresh_clone_and_reuse_the_cache(tmp_path):
    origin = scratch_repository(tmp_path)
    first = run_workflow(origin, tmp_path / "run1", tmp_path / "summary1.md")
    assert (
        "parityspec is installed already: parityspec, version" in first["Install parityspec"].stdout
    )
    assert first["Validate the specs"].returncode == 0, first["Validate the specs"].stderr
    ran = first["Run the specs"]
    assert ran.returncode == 1, ran.stderr  # strict fails: the job fails, after the reports
    document = json.loads((tmp_path / "run1" / "parityspec-run.json").read_text())
    assert [(s["file"], s["verdict"]) for s in document["specs"]] == [
        ("specs/parity.yaml", "passed"),
        ("specs/strict.yaml", "failed"),
    ]
    gathered = first["Gather the reports"]
    assert gathered.returncode == 0, gathered.stderr
    reports = tmp_path / "run1" / "parityspec-reports" / "specs"
    for name in ("parity", "strict"):
        assert {p.name for p in (reports / name).iterdir()} >= {
            "report.json",
            "report.md",
            "junit.xml",
        }
    summary = (tmp_path / "summary1.md").read_text()
    assert "## ✅ parityspec `parity`: passed" in summary
    assert "## ❌ parityspec `strict`: failed" in summary

    # A later CI run: a new clone, the cache folder restored by actions/cache.
    cache = tmp_path / "run1" / ".parityspec-cache"
    second = run_workflow(origin, tmp_path / "run2", tmp_path / "summary2.md", cache)
    assert second["Run the specs"].returncode == 1
    again = json.loads((tmp_path / "run2/parityspec-reports/specs/parity/report.json").read_text())
    before = json.loads((tmp_path / "run1/parityspec-reports/specs/parity/report.json").read_text())
    assert "export:onnx" in again["run"]["from_cache"]
    assert "export:onnx" not in before["run"]["from_cache"]
    assert again["checks"] == before["checks"]


def test_an_invalid_spec_stops_the_job_before_the_run_and_the_reports_step_still_runs(tmp_path):
    origin = tmp_path / "origin"
    (origin / "specs").mkdir(parents=True)
    (origin / "specs" / "broken.yaml").write_text("parityspec: 1\nname: broken\n")
    subprocess.run([*GIT, "init", "-q", str(origin)], check=True)
    subprocess.run([*GIT, "-C", str(origin), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(origin), "commit", "-qm", "a broken spec"], check=True)
    results = run_workflow(origin, tmp_path / "run", tmp_path / "summary.md")
    assert results["Validate the specs"].returncode == 2
    assert "broken.yaml" in results["Validate the specs"].stderr
    assert results["Run the specs"] is None
    assert results["Gather the reports"].returncode == 0


def test_the_readme_install_lines_match_pyproject_and_the_workflow():
    import re
    import tomllib

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Use it in your project") :].split("\n### ")[0]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, requirements in extras.items():
        if extra == "dev":
            continue
        (row,) = [line for line in section.splitlines() if line.startswith(f"| `{extra}` |")]
        for requirement in requirements:
            assert re.split(r"[<>=\[]", requirement)[0] in row, (extra, requirement)
    (torch,) = [r for r in extras["torch"] if r.startswith("torch")]
    cpu = f"pip install {torch} --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in section
    assert cpu in next(s["run"] for s in steps() if s.get("name") == "Install parityspec")
    source = workflow()["env"]["PARITYSPEC_INSTALL"].split(" @ ")[1]
    assert f'pip install "parityspec @ {source}"' in section
