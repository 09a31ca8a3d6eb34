"""The HTML drift chart (issue 18.2): both curves, cumulative and own, and every layer's
name written whole under its point, whatever its length or the number of rows."""

from __future__ import annotations

import itertools
import math

from parityspec.report.plots import build_plots


def _row(name, diff, own, status="ok", own_status="ok"):
    return {
        "name": name,
        "type": "Conv2d",
        "status": status,
        "max_abs_diff": diff,
        "own_max_abs_diff": own,
        "own_status": own_status,
    }


def _check(rows, origin=None):
    return {
        "id": "layers",
        "type": "layer_drift",
        "between": ["torch", "onnx"],
        "tolerances": {"layer_tol": 1e-4, "layer_rtol": 1e-5},
        "details": {"rows": rows, "origin": origin},
    }


def test_own_error_is_a_second_curve_below_the_inherited_one():
    rows = [
        _row("stem", 1e-7, 1e-7),
        _row("blocks.4.conv1", 3e-2, 3e-2, "over", "over"),
        _row("blocks.4.relu", 3e-2, 0.0, "over"),
        _row("dropout", None, None, "unmatched", None),
        _row("fc", 1e-2, 2e-7, "over"),
    ]
    drift = build_plots({"checks": [_check(rows, "blocks.4.conv1")]})["layers"]["drift"]
    own = drift["own_points"]
    assert [p["cx"] for p in own] == [drift["points"][i]["cx"] for i in (0, 1, 2, 4)]
    assert drift["own_curve"].count(",") == 4  # the unmatched row has no own error
    # Same log axis: equal figures at the same height; smaller own errors lower (y grows down).
    assert own[0]["cy"] == drift["points"][0]["cy"] and own[1]["cy"] == drift["points"][1]["cy"]
    assert own[3]["cy"] > drift["points"][4]["cy"]
    assert own[2]["cy"] == 216  # exactly 0: the floor
    assert "own" in own[1]["title"] and "over" in own[1]["title"]
    assert any("dashed: own" in t["text"] for t in drift["texts"])


def test_names_are_never_shortened_and_the_plot_widens_for_them():
    long = "encoder.layers.11.self_attention.out_proj"
    rows = [_row(f"{long}.{k}", 1e-6 * (k + 1), 1e-7) for k in range(120)]
    drift = build_plots({"checks": [_check(rows)]})["layers"]["drift"]
    names = [t["text"] for t in drift["texts"] if t["rotate"] == -40]
    assert names == [r["name"] for r in rows]  # every row, each whole
    xs = [p["cx"] for p in drift["points"]]
    assert min(b - a for a, b in itertools.pairwise(xs)) >= 14  # labels do not overlap
    # The first name, slanting left of its point, stays inside the plot; so does the last.
    first = names[0]
    assert xs[0] - 5 * len(first) >= 0 and xs[-1] < drift["width"]
    assert drift["height"] >= 216 + math.ceil(4.2 * len(first))


def test_rows_without_own_errors_draw_one_curve():
    rows = [{**_row("a", 1e-6, None), "own_status": None}, _row("b", 1e-6, None)]
    drift = build_plots({"checks": [_check(rows)]})["layers"]["drift"]
    assert drift["own_points"] == [] and drift["own_curve"] == ""
    assert not any("dashed" in t["text"] for t in drift["texts"])
