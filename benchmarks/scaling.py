"""Scaling out: the same spec on a sharded Parquet data set, run locally and on 1 and 2 Dask
workers of this machine.

    python benchmarks/scaling.py --sizes 1e6,1e7 --work /tmp/scaling
    python benchmarks/scaling.py --sizes 1e8 --work /tmp/scaling --json scaling.json

The data (the churn generator's rows, in Parquet files of 4,194,304 rows and row groups of
1,048,576) is written once under --work and reused; nothing is committed. The spec is the
benchmark spec's (benchmarks/churn_bench.yaml.in: the churn MLP, its ONNX export and its
dynamic INT8 form) with the checks that compute on shards.

Each placement runs `parityspec run` as a subprocess, with no step cache:
- local: the run alone; its peak RSS from wait4 (that process alone, forked by a small
  launcher: a child's ru_maxrss would otherwise count this script's memory);
- workers K: on a LocalCluster of K single-threaded worker processes that this script starts
  before the run and restarts before each (`--scheduler`), so a worker's peak RSS (read from
  the worker after the run: VmHWM) is this run's alone; the client's peak RSS from wait4.
  The cluster's start-up is outside the wall time (`--workers K` adds it: measured once).

Wall times are of the whole command. The report.json of every placement is compared with the
local one outside its `run` section: the table says whether they are the same bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "churn"))
sys.path.insert(0, str(ROOT / "benchmarks"))

FILE_ROWS = 1 << 22
GROUP_ROWS = 1 << 20
CHUNK_ROWS = 1 << 20


def write_data(work: Path, rows: int) -> Path:
    """The rows as Parquet files under work/rows_N (written once)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from generate import COLUMNS, generate

    folder = work / f"rows_{rows}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for file_number, file_start in enumerate(range(0, rows, FILE_ROWS)):
        file_rows = min(FILE_ROWS, rows - file_start)
        with pq.ParquetWriter(folder / f"part-{file_number:05d}.parquet", _schema()) as writer:
            for start in range(0, file_rows, CHUNK_ROWS):
                count = min(CHUNK_ROWS, file_rows - start)
                data = generate(count, seed=file_start + start + 1)
                frame = pd.DataFrame({c: data[c] for c in COLUMNS})
                writer.write_table(
                    pa.Table.from_pandas(frame, schema=_schema(), preserve_index=False),
                    row_group_size=GROUP_ROWS,
                )
    done.write_text("")
    return folder


def _schema():
    import pandas as pd
    import pyarrow as pa
    from generate import COLUMNS, generate

    data = generate(16, seed=0)
    frame = pd.DataFrame({c: data[c] for c in COLUMNS})
    return pa.Schema.from_pandas(frame, preserve_index=False)


def train(work: Path) -> Path:
    import pandas as pd
    import skops.io as sio
    from train import build_pipeline

    path = work / "model.skops"
    if not path.exists():
        frame = pd.read_csv(ROOT / "examples" / "churn" / "churn.csv")
        model = build_pipeline().fit(frame.drop(columns=["churned"]), frame["churned"])
        sio.dump(model, path)
    return path


def spec_for(work: Path, data: Path, model: Path, name: str) -> Path:
    text = (ROOT / "benchmarks" / "churn_bench.yaml.in").read_text()
    text = text.replace("@DATA@", str(data)).replace("@MODEL@", str(model))
    text = text.replace("@OUT@", str(work / f"report_{name}"))  # each run gives --out
    # Only checks that compute on shards.
    text = "\n".join(line for line in text.splitlines() if "label_agreement" not in line)
    path = work / f"{name}.yaml"
    path.write_text(text + "\n")
    return path


def command() -> list[str]:
    script = Path(sys.executable).parent / "parityspec"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "parityspec"]


# A child's ru_maxrss counts the memory of the process it was forked from (Linux carries the
# parent's high-water mark across fork and exec): a small launcher forks the measured command,
# so its peak is its own, not this script's (which holds the generated data).
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def timed(args: list[str]) -> tuple[float, int, int]:
    """(wall seconds, exit code, peak RSS MiB of that process alone)."""
    started = time.perf_counter()
    # Out of the checkout: `python -m parityspec` puts the working folder first on sys.path,
    # which would shadow a --source snapshot given through PYTHONPATH.
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - started
    peak_kib, code = (int(v) for v in done.stdout.split())
    if code not in (0, 1):
        sys.stderr.write(done.stderr)
    return wall, code, peak_kib // 1024


def worker_peak_mib() -> int:
    """The worker process's own peak RSS (VmHWM: its memory's high-water mark since exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def body(report: Path) -> str:
    document = json.loads(report.read_text())
    document.pop("run")
    return json.dumps(document, sort_keys=True)


def measure(work: Path, rows: int, placements: list[int]) -> list[dict]:
    data = write_data(work, rows)
    model = train(work)
    results = []
    local_body = None
    spec = spec_for(work, data, model, f"churn_{rows}")  # one file: the report names it
    for workers in placements:
        name = f"{rows}_{workers}"
        out = work / f"report_{name}"
        args = [*command(), "run", str(spec), "--no-cache", "-q", "--out", str(out)]
        peaks: list[int] = []
        if workers == 0:
            wall, code, client_peak = timed(args)
        else:
            import dask
            from distributed import Client, LocalCluster

            from parityspec.run.distributed import WORKER_CONFIG

            with (
                dask.config.set(WORKER_CONFIG),  # as `--workers K` starts its workers
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=50
                ) as cluster,
                Client(cluster) as client,
            ):
                client.restart()
                wall, code, client_peak = timed([*args, "--scheduler", cluster.scheduler_address])
                peaks = sorted(client.run(worker_peak_mib).values())
        report = out / "report.json"
        same = None
        if workers == 0:
            local_body = body(report)
        elif local_body is not None:
            same = body(report) == local_body
        results.append(
            {
                "rows": rows,
                "placement": "local" if workers == 0 else f"{workers} worker(s)",
                "seconds": round(wall, 2),
                "rows_per_second": round(rows / wall),
                "exit_code": code,
                "client_peak_mib": client_peak,
                "worker_peak_mib": peaks,
                "same_report": same,
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def startup_seconds(work: Path, workers: int) -> float:
    """What `--workers K` adds to a run: starting and stopping its cluster."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=50
        ) as cluster,
        Client(cluster),
    ):
        pass
    return time.perf_counter() - started


def table(results: list[dict]) -> str:
    lines = [
        "| rows | placement | wall s | rows/s | client peak MiB | worker peak MiB | "
        "report = local |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        workers = ", ".join(str(p) for p in r["worker_peak_mib"]) or "-"
        same = {None: "-", True: "yes", False: "**no**"}[r["same_report"]]
        lines.append(
            f"| {r['rows']:,} | {r['placement']} | {r['seconds']:.1f} | {r['rows_per_second']:,} "
            f"| {r['client_peak_mib']} | {workers} | {same} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--workers", default="0,1,2", help="0: local")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="parityspec-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    placements = [int(w) for w in args.workers.split(",")]
    results = []
    for size in args.sizes.split(","):
        results += measure(work, int(float(size)), placements)
    startup = {k: round(startup_seconds(work, k), 2) for k in placements if k}
    print(table(results))
    print(f"\ncluster start-up and shut-down (what --workers K adds): {startup}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "startup": startup}, indent=1))


if __name__ == "__main__":
    main()
