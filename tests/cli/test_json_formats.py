"""`--format json` of plan, run, diff and cache verify: one JSON document on stdout, nothing
else there, and the keys each document promises (README, "Machine-readable output")."""

from __future__ import annotations

import json

from tests.cli.test_many_specs import write_spec
from tests.conftest import SPECS
from tests.run.test_cache_integrity import _entry, _stored

RUN_KEYS = {"exit_code", "counts", "specs"}
RUN_SPEC_KEYS = {
    "file",
    "name",
    "verdict",
    "exit_code",
    "errors",
    "checks",
    "notes",
    "report_dir",
    "reports",
}
COUNT_KEYS = {"passed", "failed", "invalid input", "error", "skipped"}


def document(result) -> dict:
    """The whole of stdout is one JSON document."""
    return json.loads(result.stdout)


def test_plan_json_lists_the_steps_in_order(invoke):
    result = invoke("plan", SPECS / "iris.yaml", "--check", "logreg-labels", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = document(result)
    assert set(plan) == {"spec", "file", "steps"}
    assert plan["spec"] == "iris" and plan["file"] == str(SPECS / "iris.yaml")
    text = invoke("plan", SPECS / "iris.yaml", "--check", "logreg-labels").stdout
    ids = [step["id"] for step in plan["steps"]]
    assert ids == [line.split()[1] for line in text.splitlines()[1:]]
    for step in plan["steps"]:
        assert set(step) == {"id", "action", "subject", "deps", "key"}
        assert all(dep in ids[: ids.index(step["id"])] for dep in step["deps"])
    check = next(step for step in plan["steps"] if step["id"] == "check:logreg-labels")
    assert (check["action"], check["subject"], len(check["key"])) == ("check", "logreg-labels", 64)


def test_run_json_one_spec(invoke, tmp_path):
    spec = write_spec(tmp_path, "a")
    result = invoke("run", spec, "--format", "json")
    assert result.exit_code == 0, result.output
    run = document(result)
    assert set(run) == RUN_KEYS and set(run["counts"]) == COUNT_KEYS
    assert run["exit_code"] == 0 and run["counts"]["passed"] == 1
    (entry,) = run["specs"]
    assert set(entry) == RUN_SPEC_KEYS
    assert (entry["file"], entry["name"], entry["verdict"], entry["exit_code"]) == (
        str(spec),
        "a",
        "passed",
        0,
    )
    (check,) = entry["checks"]
    assert set(check) == {"id", "status", "reason"} and check["status"] == "passed"
    assert entry["report_dir"] == str(tmp_path / "reports" / "a")
    assert str(tmp_path / "reports" / "a" / "report.json") in entry["reports"]
    assert all(path.startswith(entry["report_dir"]) for path in entry["reports"])
    # progress went to stderr
    assert "check:parity" in result.stderr and "a: passed" in result.stderr


def test_run_json_several_specs_with_an_invalid_and_a_skipped_one(invoke, tmp_path):
    failing = write_spec(tmp_path, "a", abs_tol=1e-300)
    passing = write_spec(tmp_path, "b")
    broken = tmp_path / "broken.yaml"
    broken.write_text("parityspec: 1\nname: broken\n")
    result = invoke("run", failing, passing, "--format", "json", "--fail-fast", "-q")
    run = document(result)
    assert result.exit_code == 1 == run["exit_code"]
    assert [(s["verdict"], s["exit_code"]) for s in run["specs"]] == [
        ("failed", 1),
        ("skipped", None),
    ]
    assert all(set(s) == RUN_SPEC_KEYS for s in run["specs"])
    assert run["specs"][0]["checks"][0]["status"] == "failed"

    result = invoke("run", passing, broken, "--format", "json", "-q")
    run = document(result)
    assert result.exit_code == 2 == run["exit_code"]
    invalid = run["specs"][1]
    assert invalid["verdict"] == "invalid input" and invalid["name"] is None
    assert invalid["errors"] and invalid["errors"][0].startswith(str(broken))
    assert invalid["reports"] == [] and invalid["report_dir"] is None


def test_diff_json_has_every_check_and_writes_nan_as_text(invoke, tmp_path):
    def report(value, status: str) -> dict:
        gate = {"figure": "f", "op": "<=", "value": value, "limit_value": 0.5, "ok": True}
        return {
            "spec": {"name": "demo"},
            "verdict": status,
            "checks": [
                {"id": "a", "status": status, "figures": {"n": 3}, "gates": [gate]},
                {"id": "same", "status": "passed", "figures": {"n": 3}, "gates": []},
            ],
        }

    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(report(0.1, "passed")))
    new.write_text(json.dumps(report("nan", "failed")))
    result = invoke("diff", old, new, "--format", "json")
    assert result.exit_code == 1
    diff = document(result)
    assert set(diff) == {"old", "new", "threshold", "failing", "exit_code", "checks"}
    assert diff["old"] == {"spec": "demo", "verdict": "passed"}
    assert (diff["failing"], diff["exit_code"], diff["threshold"]) == (True, 1, 0.0)
    changed, same = diff["checks"]
    keys = {"id", "old_status", "new_status", "changed", "regressed", "worsened", "figures"}
    assert set(changed) == keys == set(same)
    assert (changed["regressed"], same["changed"], same["figures"]) == (True, False, [])
    (figure,) = changed["figures"]
    assert figure == {
        "name": "f",
        "old": 0.1,
        "new": "nan",
        "delta": "nan",
        "op": "<=",
        "worsened": True,
    }


def test_cache_verify_json(invoke, tmp_path):
    root = tmp_path / "cache"
    _stored(tmp_path, root, "onnx", "int8")
    (_entry(root, "int8") / "entry.json").write_text("{")
    result = invoke("cache", "verify", "--cache-dir", root, "--format", "json")
    assert result.exit_code == 1
    verify = document(result)
    assert verify == {
        "cache_dir": str(root),
        "checked": 2,
        "repair": False,
        "damaged": [
            {
                "entry": str(_entry(root, "int8").relative_to(root)),
                "reason": "entry.json: not valid JSON",
                "removed": False,
            }
        ],
        "older": 0,
        "exit_code": 1,
    }
    repaired = invoke("cache", "verify", "--cache-dir", root, "--format", "json", "--repair")
    assert repaired.exit_code == 0 and document(repaired)["damaged"][0]["removed"] is True
