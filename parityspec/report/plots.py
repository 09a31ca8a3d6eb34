"""SVG geometry for the HTML report. Every coordinate and label is computed here; the template
only draws what it is given: `lines`, `texts`, and each plot's own shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from parityspec.stats import BINS_PER_DECADE, HIST_HIGH_EXP, shown

BIN_STEP = 10 ** (1 / BINS_PER_DECADE)  # the ratio of a log-histogram bin's two edges
TOLERANCE_KEYS = ("abs_tol", "atol")  # the |diff| limit a histogram is drawn against
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
MAX_DECADE_TICKS = 8
NAME_STEP = 14  # px between the names under a drift curve: each is written whole


def build_plots(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per check id, the plots its details allow: histogram, drift, confusion."""
    plots = {}
    for check in report["checks"]:
        details, entry = check["details"], {}
        if details.get("histogram"):
            entry["histogram"] = histogram_plot(details["histogram"], _tolerance(check))
        if details.get("rows"):
            layer_tol = check["tolerances"].get("layer_tol")
            entry["drift"] = drift_plot(details["rows"], details.get("origin"), layer_tol)
        if details.get("confusion_matrix"):
            entry["confusion"] = confusion_plot(
                details["confusion_matrix"], details["confusion_labels"], check["between"]
            )
        if entry:
            plots[check["id"]] = entry
    return plots


def histogram_plot(bins: list, tolerance: tuple[str, float] | None) -> dict[str, Any]:
    """Bars of |diff| counts on a log x axis; exact zeros get their own bar on the left."""
    width, height, left, right, top, base = 560, 214, 52, 16, 26, 176
    zeros = sum(int(count) for edge, count in bins if float(edge) == 0.0)
    spans = [(*_bin_span(float(edge)), int(count)) for edge, count in bins if float(edge) > 0]
    limit = tolerance[1] if tolerance and tolerance[1] > 0 else None
    lo, hi = _decade_range([v for low, high, _ in spans for v in (low, high)] + [limit])
    x = _scale(lo, hi, left + (48 if zeros else 8), width - right)
    peak = max([zeros] + [count for *_, count in spans])
    # Counts on a log(1 + n) scale: a single outlier beside thousands of rows stays visible.
    linear = _scale(0, math.log10(1 + peak), base, top)
    y = lambda count: linear(math.log10(1 + count))  # noqa: E731
    plot = _axes(width, height, left, right, top, base)
    for value in [10**k for k in range(len(str(peak)))]:
        _ytick(plot, y(value), str(value), left, width - right)
    for d in _decades(lo, hi):
        plot["lines"].append(_line(x(d), base, x(d), base + 4))
        plot["texts"].append(_text(x(d), base + 16, _decade(d)))
    bars = [
        _bar(
            x(math.log10(low)),
            x(math.log10(high)),
            y,
            count,
            f"({shown(low)}, {shown(high)}]: {count}",
        )
        for low, high, count in spans
    ]
    if zeros:
        bars.append(_bar(left + 4, left + 26, y, zeros, f"exactly 0: {zeros}", "zero"))
        plot["texts"].append(_text(left + 15, base + 16, "0"))
    plot["texts"].append(_text(width - right, height - 6, "|difference|, log scale", "end"))
    plot["bars"] = bars
    plot["limit"] = (
        _vmark(x(math.log10(limit)), top, base, f"{tolerance[0]} {limit:g}", width / 2)
        if limit and tolerance
        else None
    )
    return plot


def drift_plot(rows: list[dict], origin: str | None, tolerance: float | None) -> dict[str, Any]:
    """max |diff| per layer (or step) in execution order, log y, and each row's own error
    (`own_max_abs_diff`, what the row adds by itself) as a second curve; the drift origin
    marked. Every name is written whole under its point: the plot widens with the rows."""
    own = [r.get("own_max_abs_diff") for r in rows]
    lo, hi = _decade_range([r["max_abs_diff"] for r in rows] + own + [tolerance])
    # Names are written at -40 degrees, about 6.5 px per character along the text: 4.2 px
    # down and 5 px to the left of the point's x.
    longest = max(len(r["name"]) for r in rows)
    step = max(NAME_STEP, (660 - 56 - 16) / len(rows))
    left = max(56, math.ceil(5 * len(rows[0]["name"]) - step / 2) + 8)
    right, top, base = 16, 26, 216
    width = round(left + right + step * len(rows))
    plot = _axes(width, base + 24 + math.ceil(4.2 * longest), left, right, top, base)
    y = _scale(lo, hi, base, top)
    for d in _decades(lo, hi):
        _ytick(plot, y(d), _decade(d), left, width - right)
    points, own_points = [], []
    for index, row in enumerate(rows):
        cx = round(left + step * (index + 0.5), 1)
        value = row["max_abs_diff"]
        cy = base if not value else y(math.log10(value))  # unmatched or exactly 0: the floor
        points.append({"cx": cx, "cy": cy, "status": row["status"], "title": _row_title(row)})
        mine = own[index]
        if mine is not None:
            own_y = base if not mine else y(math.log10(mine))
            title = f"{row['name']}: own max |diff| {shown(mine)}, {row.get('own_status')}"
            own_points.append(
                {"cx": cx, "cy": own_y, "status": row.get("own_status"), "title": title}
            )
        plot["texts"].append(_text(cx + 3, base + 12, row["name"], "end", -40))
    plot["points"] = points
    plot["curve"] = " ".join(f"{p['cx']},{p['cy']}" for p in points if p["status"] != "unmatched")
    plot["own_points"] = own_points
    plot["own_curve"] = " ".join(f"{p['cx']},{p['cy']}" for p in own_points)
    if own_points:
        plot["texts"].append(
            _text(width - right, 12, "solid: inherited + own; dashed: own (its part alone)", "end")
        )
    plot["limit"] = (
        _hmark(y(math.log10(tolerance)), left, width - right, tolerance) if tolerance else None
    )
    at = next((p["cx"] for p, r in zip(points, rows, strict=True) if r["name"] == origin), None)
    plot["origin"] = None if at is None else _vmark(at, top, base, f"origin: {origin}", width / 2)
    return plot


def confusion_plot(matrix: list[list[int]], classes: list, between: list[str]) -> dict[str, Any]:
    """Counts of (reference label, candidate label); the diagonal is agreement. `classes`:
    the name of each row and column."""
    n, left, top = len(matrix), 84, 52
    size = max(24, min(56, 280 // n))
    peak = max(max(row) for row in matrix) or 1
    names = [str(c)[:8] for c in classes]
    texts = [
        _text(left + n * size / 2, 14, f"{between[1]} (columns)"),
        _text(16, top + n * size / 2, f"{between[0]} (rows)", "middle", -90),
    ]
    texts += [_text(left + j * size + size / 2, top - 8, t) for j, t in enumerate(names)]
    texts += [_text(left - 8, top + i * size + size / 2 + 4, t, "end") for i, t in enumerate(names)]
    cells = [
        _cell(
            left + j * size,
            top + i * size,
            size,
            count,
            peak,
            i == j,
            f"{between[0]} says {classes[i]}, {between[1]} says {classes[j]}: {count}",
        )
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
    ]
    return {
        "width": left + n * size + 16,
        "height": top + n * size + 12,
        "texts": texts,
        "lines": [],
        "grid": [],
        "cells": cells,
    }


def _cell(x: float, y: float, size: int, count: int, peak: int, agree: bool, title: str) -> dict:
    # Log shading: one disagreement among a thousand agreements must still show.
    shade = 0.0 if count == 0 else 0.15 + 0.85 * math.log1p(count) / math.log1p(peak)
    return {
        "x": x,
        "y": y,
        "size": size,
        "opacity": round(shade, 3),
        "agree": agree,
        "count": _text(x + size / 2, y + size / 2 + 4, str(count)),
        "light": shade > 0.55,
        "title": title,
    }


def _tolerance(check: dict) -> tuple[str, float] | None:
    tolerances = check["tolerances"]
    key = next((k for k in TOLERANCE_KEYS if k in tolerances), None)
    return (key, float(tolerances[key])) if key else None


def _bin_span(upper: float) -> tuple[float, float]:
    """A bin's (lower, upper) edges; the overflow bin is drawn one bin past the last edge."""
    if math.isinf(upper):
        upper = 10.0**HIST_HIGH_EXP * BIN_STEP
    return upper / BIN_STEP, upper


def _decade_range(values: list) -> tuple[int, int]:
    logs = [math.log10(v) for v in values if v and math.isfinite(v) and v > 0]
    if not logs:
        return -9, 0
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return lo, max(hi, lo + 1)


def _decades(lo: int, hi: int) -> range:
    return range(lo, hi + 1, max(1, math.ceil((hi - lo) / MAX_DECADE_TICKS)))


def _decade(exponent: int) -> str:
    return "1" if exponent == 0 else f"10{str(exponent).translate(SUPERSCRIPT)}"


def _scale(d0: float, d1: float, r0: float, r1: float) -> Callable[[float], float]:
    span = (d1 - d0) or 1.0
    return lambda v: round(r0 + (v - d0) * (r1 - r0) / span, 1)


def _axes(width: int, height: int, left: int, right: int, top: int, base: int) -> dict[str, Any]:
    lines = [_line(left, base, width - right, base), _line(left, base, left, top)]
    return {"width": width, "height": height, "lines": lines, "grid": [], "texts": []}


def _ytick(plot: dict[str, Any], at: float, label: str, x0: float, x1: float) -> None:
    plot["grid"].append(_line(x0, at, x1, at))
    plot["texts"].append(_text(x0 - 6, at + 4, label, "end"))


def _bar(
    x0: float, x1: float, y: Callable[[float], float], count: int, title: str, kind: str = ""
) -> dict[str, Any]:
    return {
        "x": x0,
        "y": y(count),
        "w": max(round(x1 - x0 - 0.6, 1), 1.0),
        "h": round(y(0) - y(count), 1),
        "title": title,
        "kind": kind,
    }


def _vmark(x: float, top: float, base: float, label: str, middle: float) -> dict:
    """A vertical line with its label on the side with more room."""
    anchor, offset = ("start", 5) if x < middle else ("end", -5)
    return {"line": _line(x, top - 8, x, base), "label": _text(x + offset, top - 2, label, anchor)}


def _hmark(y: float, x0: float, x1: float, tolerance: float) -> dict:
    return {
        "line": _line(x0, y, x1, y),
        "label": _text(x1 - 4, y - 5, f"layer_tol {tolerance:g}", "end"),
    }


def _line(x1: float, y1: float, x2: float, y2: float) -> dict[str, float]:
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def _text(x: float, y: float, text: str, anchor: str = "middle", rotate: int = 0) -> dict:
    return {"x": round(x, 1), "y": round(y, 1), "text": text, "anchor": anchor, "rotate": rotate}


def _row_title(row: dict) -> str:
    value = row["max_abs_diff"]
    figure = "unmatched" if value is None else f"max |diff| {shown(value)}"
    return f"{row['name']} ({row.get('type') or '?'}): {figure}, {row['status']}"
