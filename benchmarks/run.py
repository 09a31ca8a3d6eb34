"""Side-by-side benchmark: a hand-written script vs `parityspec run`, and the per-layer check.

    python benchmarks/run.py                 # 10k, 100k, 1M rows
    python benchmarks/run.py --sizes 10000   # a quick look

Prints a table: wall time and peak RSS of each command (measured by the OS for that child
process alone), and parityspec's ratio to the hand-written script. Cold runs start with an
empty step cache; warm runs reuse it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(ROOT / "examples" / "churn"))


def measure(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one command.

    Linux counts a child's peak RSS from the memory of the process it was forked from, so
    the command is started by a fresh, small interpreter (`--measure`), not by this one.
    """
    probe = [PYTHON, __file__, "--measure", *command]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    wall, rss = done.stdout.split()
    return float(wall), float(rss)


def _measure_here(command: list[str]) -> None:
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: a check failed, still a complete run
        sys.exit(f"exited {code}: {child.stderr.read().decode()}")
    print(f"{wall:.3f} {usage.ru_maxrss / 1024:.1f}")


def prepare(work: Path, sizes: list[int]) -> Path:
    import pandas as pd
    import skops.io as sio
    from generate import COLUMNS, generate
    from train import build_pipeline

    training = pd.read_csv(ROOT / "examples" / "churn" / "churn.csv")
    model = build_pipeline().fit(training.drop(columns=["churned"]), training["churned"])
    sio.dump(model, work / "model.skops")
    for rows in sizes:
        data = generate(rows, seed=rows)
        pd.DataFrame({c: data[c] for c in COLUMNS}).to_csv(
            work / f"churn_{rows}.csv", index=False, float_format="%.2f")
    return work / "model.skops"


def spec_for(work: Path, rows: int, model: Path) -> Path:
    text = (ROOT / "benchmarks" / "churn_bench.yaml.in").read_text()
    text = text.replace("@DATA@", str(work / f"churn_{rows}.csv")).replace("@MODEL@", str(model))
    path = work / f"churn_{rows}.yaml"
    path.write_text(text.replace("@OUT@", str(work / f"report_{rows}")))
    return path


def bench_rows(work: Path, sizes: list[int]) -> list[tuple]:
    model = prepare(work, sizes)
    rows_out = []
    for rows in sizes:
        spec = spec_for(work, rows, model)
        cache_env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(work / f"cache_{rows}")}
        hand = measure([PYTHON, str(ROOT / "benchmarks" / "handwritten.py"), str(model),
                        str(work / f"churn_{rows}.csv"), str(work)])
        tool = [PYTHON, "-m", "parityspec", "run", str(spec), "--quiet"]
        cold = measure(tool, cache_env)
        warm = measure(tool, cache_env)
        rows_out.append((f"{rows:,} rows", hand, cold, warm))
    return rows_out


def bench_layers(work: Path) -> tuple:
    script = ROOT / "benchmarks" / "layer_baseline.py"
    hand = measure([PYTHON, str(script), str(work / "cnn.onnx")])
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(work / "cache_cnn")}
    tool = [PYTHON, "-m", "parityspec", "run", str(ROOT / "specs" / "cnn.yaml"), "--quiet",
            "--check", "onnx-layers", "--out", str(work / "report_cnn")]
    return ("CNN per-layer", hand, measure(tool, env), measure(tool, env))


def table(results: list[tuple]) -> str:
    lines = ["| workload | script s | script MiB | parityspec cold s | ratio | cold MiB "
             "| warm s | warm/cold |", "|---|---|---|---|---|---|---|---|"]
    for name, hand, cold, warm in results:
        lines.append(f"| {name} | {hand[0]:.2f} | {hand[1]:.0f} | {cold[0]:.2f} | "
                     f"{cold[0] / hand[0]:.2f}x | {cold[1]:.0f} | {warm[0]:.2f} | "
                     f"{warm[0] / cold[0]:.0%} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        _measure_here(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-layers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parityspec-bench-") as folder:
        work = Path(folder)
        results = bench_rows(work, args.sizes)
        if not args.skip_layers:
            results.append(bench_layers(work))
    print(table(results))


if __name__ == "__main__":
    main()
