"""`parityspec diff`: what changed between two reports, and when that fails a pipeline."""

from __future__ import annotations

import json

import pytest

from parityspec.report.diff import as_markdown, as_text, diff_reports


def _check(check_id: str, status: str = "passed", **gates: tuple[str, float]) -> dict:
    """A report entry whose gates are `figure=(op, value)`, all against a limit of 0.5."""
    return {
        "id": check_id,
        "status": status,
        "figures": {"samples": 100, **{k: v for k, (_, v) in gates.items()}},
        "gates": [
            {"figure": k, "op": op, "value": v, "limit": "tol", "limit_value": 0.5, "ok": True}
            for k, (op, v) in gates.items()
        ],
    }


def _report(*checks: dict, verdict: str = "passed") -> dict:
    return {"spec": {"name": "demo"}, "verdict": verdict, "checks": list(checks)}


def test_same_reports_change_nothing():
    report = _report(_check("a", max_abs_diff=("<=", 0.1)))
    result = diff_reports(report, report)
    assert not result.failing and not any(c.changed for c in result.checks)
    assert "0 changed" in as_text(result)


@pytest.mark.parametrize(
    ("op", "old", "new", "worse"),
    [
        ("<=", 0.1, 0.2, True),  # a max diff grew toward its limit
        ("<=", 0.2, 0.1, False),
        (">=", 0.99, 0.98, True),  # an agreement fell toward its minimum
        (">=", 0.98, 0.99, False),
        ("<=", 0.1, float("nan"), True),
        ("<=", 0.1, "inf", True),  # reports write non-finite floats as text
    ],
)
def test_worse_follows_the_gate_direction(op, old, new, worse):
    result = diff_reports(_report(_check("a", f=(op, old))), _report(_check("a", f=(op, new))))
    (change,) = result.checks[0].figures
    assert change.worsened is worse and result.failing is worse


def test_threshold_is_absolute_in_the_figures_units():
    old, new = _report(_check("a", f=("<=", 0.10))), _report(_check("a", f=("<=", 0.13)))
    assert diff_reports(old, new, threshold=0.05).failing is False
    assert diff_reports(old, new, threshold=0.01).failing is True
    (change,) = diff_reports(old, new, threshold=0.05).checks[0].figures
    assert change.delta == pytest.approx(0.03)


def test_ungated_figures_are_listed_but_never_fail():
    old, new = _report(_check("a")), _report(_check("a"))
    new["checks"][0]["figures"]["samples"] = 120
    result = diff_reports(old, new)
    assert [(f.name, f.old, f.new, f.op) for f in result.checks[0].figures] == [
        ("samples", 100, 120, None)
    ]
    assert not result.failing


def test_verdict_changes_new_and_vanished_checks():
    old = _report(_check("kept"), _check("gone"), _check("fixed", status="failed"))
    new = _report(_check("kept", status="error"), _check("fixed"), _check("added"))
    result = diff_reports(old, new)
    by_id = {c.id: c for c in result.checks}
    assert [c.id for c in result.checks] == ["kept", "fixed", "added", "gone"]
    assert by_id["kept"].regressed and not by_id["fixed"].regressed
    assert (by_id["added"].old_status, by_id["gone"].new_status) == (None, None)
    assert result.failing
    text = as_text(result)
    assert "passed -> error REGRESSED" in text and "new (passed)" in text
    assert "vanished (was passed)" in text
    assert "| `kept` | passed -> error REGRESSED |" in as_markdown(result)


def test_repeated_gate_figures_are_told_apart():
    def check(second: float) -> dict:
        entry = _check("multi", violation_fraction=("<=", 0.0))
        entry["gates"].append({**entry["gates"][0], "value": second})
        return entry

    result = diff_reports(_report(check(0.0)), _report(check(0.2)))
    assert [f.name for f in result.checks[0].figures] == ["violation_fraction#2"]


def test_cli_exit_codes(invoke, tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report(_check("a", f=("<=", 0.1)))))
    new.write_text(json.dumps(_report(_check("a", f=("<=", 0.3)))))
    assert invoke("diff", old, old).exit_code == 0
    worse = invoke("diff", old, new, "--format", "markdown")
    assert worse.exit_code == 1 and "❌ worse" in worse.output
    assert invoke("diff", old, new, "--threshold", "0.5").exit_code == 0
    (tmp_path / "bad.json").write_text("{not json")
    for unreadable in (tmp_path / "bad.json", tmp_path / "missing.json"):
        result = invoke("diff", old, unreadable)
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and result.output.startswith("error: ")


def test_markdown_stays_under_githubs_comment_limit():
    old = _report(*(_check(f"check-{i:04d}", max_abs_diff=("<=", 0.01)) for i in range(3000)))
    new = _report(*(_check(f"check-{i:04d}", max_abs_diff=("<=", 0.02)) for i in range(3000)))
    result = diff_reports(old, new, 0.0)
    markdown = as_markdown(result)
    assert len(markdown.encode()) <= 65_536
    assert "more rows left out" in markdown
    assert markdown.splitlines()[-1].startswith("3000 checks, 3000 changed")  # the summary stays
    small = as_markdown(diff_reports(old, old, 0.0))
    assert "left out" not in small
