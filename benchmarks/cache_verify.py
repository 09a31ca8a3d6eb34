"""What checking the step cache costs a warm run.

    python benchmarks/cache_verify.py                  # 100k and 1M rows
    python benchmarks/cache_verify.py --sizes 10000    # a quick look

Runs the benchmark spec (benchmarks/churn_bench.yaml.in) once cold, then warm with the
cache's content checks on and off (a private switch, set by the command that starts
parityspec), alternating, and prints a table: the bytes a warm run restores, the time the
checks take measured directly (every entry checked in this process, as a restore does), the
warm runs' wall times, and the checks' share of a warm run both ways. The direct figure is
the one to quote; the difference of two wall times is noisy on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import PYTHON, measure, prepare, spec_for  # noqa: E402  (benchmarks/run.py)

UNCHECKED = (
    "import sys; import parityspec.run.cache as cache; cache._verify_contents = False; "
    "from parityspec.cli import main; main()"
)


def check_seconds(cache_dir: Path, repeats: int) -> tuple[float, int]:
    """(seconds to check every entry once, bytes checked): the best of `repeats`."""
    from parityspec.run.cache import FORMAT, _checked_entry, _entries

    entries = list(_entries(cache_dir / FORMAT))
    size = sum(f.stat().st_size for e in entries for f in e.iterdir())
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for entry in entries:
            _checked_entry(entry, entry.name)
        best = min(best, time.perf_counter() - started)
    return best, size


def bench(work: Path, rows: int, model: Path, repeats: int) -> tuple:
    spec = spec_for(work, rows, model)
    cache_dir = work / f"cache_{rows}"
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(cache_dir)}
    arguments = ["run", str(spec), "--quiet"]
    measure([PYTHON, "-m", "parityspec", *arguments], env)  # cold: fills the cache
    checked, unchecked = [], []
    for _ in range(repeats):
        checked.append(measure([PYTHON, "-m", "parityspec", *arguments], env)[0])
        unchecked.append(measure([PYTHON, "-c", UNCHECKED, *arguments], env)[0])
    seconds, size = check_seconds(cache_dir, repeats)
    return rows, size, seconds, statistics.median(checked), statistics.median(unchecked)


def table(results: list[tuple]) -> str:
    lines = [
        "| rows | restored MiB | checks s | warm s | warm s, no checks | checks / warm "
        "| (warm - no checks) / warm |",
        "|---|---|---|---|---|---|---|",
    ]
    for rows, size, seconds, checked, unchecked in results:
        lines.append(
            f"| {rows:,} | {size / 2**20:.1f} | {seconds:.3f} | {checked:.2f} | "
            f"{unchecked:.2f} | {seconds / checked:.1%} | {(checked - unchecked) / checked:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parityspec-bench-") as folder:
        work = Path(folder)
        model = prepare(work, args.sizes)
        results = [bench(work, rows, model, args.repeats) for rows in args.sizes]
    print(table(results))


if __name__ == "__main__":
    main()
