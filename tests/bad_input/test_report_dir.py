"""A report folder that cannot be written is refused before any step runs (exit 2)."""

from __future__ import annotations

from tests.bad_input.helpers import default_spec, expect, write_spec


def test_out_pointing_at_a_file(invoke, tmp_path, assets):
    target = tmp_path / "report.txt"
    target.write_text("keep me\n")
    result = invoke("run", write_spec(tmp_path, default_spec(assets)), "--out", target)
    expect(result, 2, "--out", "report.txt", "is a file")
    assert "build:" not in result.output  # refused before any step ran
    assert target.read_text() == "keep me\n"


def test_out_under_a_file(invoke, tmp_path, assets):
    target = tmp_path / "report.txt"
    target.write_text("keep me\n")
    result = invoke("run", write_spec(tmp_path, default_spec(assets)), "--out", target / "sub")
    expect(result, 2, "--out", "is a file")


def test_report_dir_under_proc(invoke, tmp_path, assets):
    spec = default_spec(assets)
    spec["report"] = {"dir": "/proc/parityspec-reports"}
    result = invoke("run", write_spec(tmp_path, spec))
    expect(result, 2, "report.dir", "/proc/parityspec-reports", "cannot write reports")
    assert "build:" not in result.output
