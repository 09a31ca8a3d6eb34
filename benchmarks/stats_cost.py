"""What the checks' statistics cost beside inference, on the benchmark spec (issue 12: <= 5%).

    python benchmarks/stats_cost.py                        # 1e6 rows, 3 repeats
    python benchmarks/stats_cost.py --rows 1e5 --repeats 1 --work /tmp/stats-cost
    PYTHONPATH=/tmp/old python benchmarks/stats_cost.py --batch-size 4096   # another parityspec

Prepares the model and data as benchmarks/run.py does (kept in --work for the next time),
then, at the spec's batch size (or --batch-size):

- inference: scikit-learn, ONNX and dynamic INT8 over every row (each batch's inputs built
  before the clock starts, as in `handwritten.py limit`);
- checks: the spec's three checks (`probability_parity` twice, `label_agreement`), each
  module's `run` on the stored predictions as a run reads them, and `diff_stats` alone;
- limit: a bare numpy pass per batch over the same arrays, the physical limit of any
  statistics: max and sum of |a - b| for each parity check, argmax agreement for the labels.

Every figure is the fastest of the repeats. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import handwritten
import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import yaml
from run import ROOT, prepare, sizes_arg

from parityspec.backends.base import Predictions
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckInputs
from parityspec.checks.batching import aligned_batches, diff_stats
from parityspec.data import Dataset
from parityspec.data.stored import OutputWriter
from parityspec.spec.composition import Spec
from parityspec.spec.profiles import resolve_tolerances

TARGET = 0.05
LIMIT = "limit: bare numpy pass, all checks"


def fastest(repeats: int, work: Callable[..., object], *arguments: object) -> float:
    best = float("inf")
    for _ in range(repeats):
        clock = time.perf_counter()
        work(*arguments)
        best = min(best, time.perf_counter() - clock)
    return best


def bench_spec(data: Path, model: Path, batch_size: int | None) -> Spec:
    text = (ROOT / "benchmarks" / "churn_bench.yaml.in").read_text()
    text = text.replace("@DATA@", str(data)).replace("@MODEL@", str(model))
    raw = yaml.safe_load(text.replace("@OUT@", "report"))
    if batch_size:
        raw["data"]["batch_size"] = batch_size
    return Spec.model_validate(raw)


def infer(model_path: Path, data: Path, batch: int, repeats: int, folder: Path):
    """({phase: seconds}, {backend: stored outputs}) of the three backends over every row."""
    model = handwritten.load_model(str(model_path))
    types = handwritten.column_types(str(data), list(model.feature_names_in_))
    sessions = [handwritten.session(p) for p in handwritten.export(model, types, folder)]
    table = pacsv.read_csv(
        str(data),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
    )
    batches = [
        handwritten.inputs(table.slice(start, batch), types)
        for start in range(0, table.num_rows, batch)
    ]
    runners = {
        "sklearn": lambda frame, feeds: model.predict_proba(frame),
        **{
            name: lambda frame, feeds, s=s: s.run(["probabilities"], feeds)[0]
            for name, s in zip(handwritten.BACKENDS, sessions, strict=True)
        },
    }
    seconds, stored = {}, {}
    for name, runner in runners.items():
        writer = OutputWriter(folder / name)
        for frame, feeds in batches:
            writer.append({"probabilities": runner(frame, feeds)})
        stored[name] = writer.close()
        seconds[name] = fastest(repeats, run_batches, runner, batches)
    return seconds, stored


def run_batches(runner, batches) -> None:
    for frame, feeds in batches:
        runner(frame, feeds)


def bare_parity(ref, other, batch: int) -> None:
    biggest, total = 0.0, 0.0
    for _, a, b in aligned_batches(ref, other, batch):
        diff = np.abs(a - b)
        biggest, total = max(biggest, float(diff.max())), total + float(diff.sum())


def bare_labels(ref, other, batch: int) -> None:
    agree = 0
    for _, a, b in aligned_batches(ref, other, batch):
        agree += int(np.count_nonzero(a.argmax(1) == b.argmax(1)))


def measure(
    rows: int, repeats: int, work: Path, batch_size: int | None
) -> tuple[int, list[tuple[str, float]]]:
    data, model = work / f"churn_{rows}.csv", work / "model.skops"
    if not (data.is_file() and model.is_file()):
        prepare(work, [rows])
    spec = bench_spec(data, model, batch_size)
    batch, k = spec.data.batch_size, spec.report.worst_samples
    rows_data = Dataset(pd.read_csv(data).drop(columns=[spec.data.target]))
    with tempfile.TemporaryDirectory() as folder:
        seconds, stored = infer(model, data, batch, repeats, Path(folder))
        figures = [(f"inference: {name}", s) for name, s in seconds.items()]
        figures.append(("inference: total", sum(seconds.values())))
        checks, parts, limits = [], [], []
        for check in spec.checks:
            first, second = (Predictions(b, stored[b]) for b in check.between)
            ref, cand = first.outputs["probabilities"], second.outputs["probabilities"]
            tolerances = resolve_tolerances(
                check.TOLERANCES, check.profile, spec.profiles, check.tolerance_overrides()
            )
            inputs = CheckInputs(spec, rows_data, first, second)
            run = CHECKS[check.type].run
            checks.append((check.id, fastest(repeats, run, check, tolerances, inputs)))
            if check.type == "probability_parity":
                parts.append(fastest(repeats, diff_stats, ref, cand, batch, k))
                limits.append(fastest(repeats, bare_parity, ref, cand, batch))
            else:
                limits.append(fastest(repeats, bare_labels, ref, cand, batch))
    figures += [(f"check: {name}", s) for name, s in checks]
    figures.append(("checks: total", sum(s for _, s in checks)))
    figures.append(("  of which diff_stats (parity checks)", sum(parts)))
    figures.append((LIMIT, sum(limits)))
    return batch, figures


def table(rows: int, batch: int, figures: list[tuple[str, float]]) -> str:
    named = dict(figures)
    inference, checks, limit = named["inference: total"], named["checks: total"], named[LIMIT]
    lines = [
        f"Statistics cost at {rows:,} rows, {batch:,} a batch (fastest of the repeats)",
        "",
        "| part | seconds | % of inference |",
        "|---|---:|---:|",
        *(f"| {name} | {s:.3f} | {s / inference:.1%} |" for name, s in figures),
        "",
        f"checks / inference: {checks / inference:.1%} (target <= {TARGET:.0%}: "
        f"{'met' if checks / inference <= TARGET else 'missed'}); "
        f"checks / bare limit: {checks / limit:.1f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=sizes_arg, default=[1_000_000], help="e.g. 1e6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keeps the model and data (default: a temp dir)")
    parser.add_argument("--batch-size", type=int, help="default: the spec's data.batch_size")
    args = parser.parse_args()
    rows = args.rows[0]
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        batch, figures = measure(rows, args.repeats, args.work, args.batch_size)
    else:
        with tempfile.TemporaryDirectory() as work:
            batch, figures = measure(rows, args.repeats, Path(work), args.batch_size)
    print(table(rows, batch, figures))


if __name__ == "__main__":
    main()
