"""The honest benchmark: `parityspec run` against a competent script and the physical limit.

    python benchmarks/run.py                           # 1e5 and 1e6 rows, 3 repeats
    python benchmarks/run.py --sizes 1e5,1e6,1e7 --json bench.json
    python benchmarks/run.py --sizes 1e4 --repeats 1   # a quick look
    python benchmarks/run.py --only specs,startup      # some sections only

Sections, each printed as a Markdown table:

- rows: on the benchmark spec (benchmarks/churn_bench.yaml.in: a trained churn MLP, its
  ONNX export and dynamic INT8 form, on N generated rows), interleaved in every repeat (the
  order rotates from one repeat to the next): (a) the competent hand-written script
  (benchmarks/handwritten.py script), (b) the physical limit (handwritten.py limit: data load
  + each backend's pure batched inference + one comparison, timed in one process), (c)
  `parityspec run` cold (an empty step cache) then warm (the same cache). Wall time and peak
  RSS of every command come from the OS (wait4 of that child alone). Ratios are taken within
  a repeat, then summarised: median (min-max).
- figures: the script's ONNX and INT8 figures beside parityspec's. ONNX (float32) agrees
  whatever the batch size; dynamic INT8 computes activation scales per batch, so its figures
  hold for the batch size they were computed at and differ between the two.
- specs: every bundled spec (specs/*.yaml) cold then warm with a private step cache, and the
  ratio (some specs fail a check on purpose: exit 1 is a complete run).
- startup: `parityspec --help`, `validate specs/churn.yaml`, `plan specs/churn.yaml`.
- layers (with --layers): see benchmarks/layers.py.

Targets (issue 12): run at most 1.10x the script and 1.25x the physical limit; a warm run
at most 20% of a cold one; validate at most 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HANDWRITTEN = ROOT / "benchmarks" / "handwritten.py"
sys.path.insert(0, str(ROOT / "examples" / "churn"))

TARGET_SCRIPT = 1.10
TARGET_LIMIT = 1.25
TARGET_WARM = 0.20
TARGET_VALIDATE = 0.5
SECTIONS = ("rows", "specs", "startup", "layers")
TARGET_ROWS = 1_000_000  # the run's targets hold from this many rows on
STEP_ORDER = ("data", "load", "build", "predict", "export", "quantize", "check")
SOURCE_ENV: dict[str, str] = {}  # --source: where the measured commands import parityspec from
FAILURES: list[dict] = []  # commands that ended unexpectedly (each is retried once)


# --- measuring one command ---------------------------------------------------------------


class CommandFailed(Exception):
    def __init__(self, command: list[str], code: int | str, output: str):
        super().__init__(f"{' '.join(command)} exited {code}:\n{output}")
        self.code, self.output = code, output


def measure_run(
    command: list[str], env: dict | None = None, cwd: Path | None = None, codes=(0,)
) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MiB, exit code, stdout) of one command.

    Linux counts a child's peak RSS from the memory of the process it was forked from, so
    the command is started by a fresh, small interpreter (`--measure`), not by this one.
    """
    probe = [PYTHON, __file__, "--measure", *command]
    env = {**(os.environ if env is None else env), **SOURCE_ENV}
    # Never from the checkout: `python -m parityspec` (the supervisor's child) puts the
    # working folder first on sys.path, which would shadow the --source snapshot.
    cwd = cwd or Path(tempfile.gettempdir())
    done = subprocess.run(probe, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    lines = done.stdout.rstrip("\n").split("\n")
    output = (done.stdout + done.stderr).strip()[-1500:]
    if done.returncode != 0 or not lines[-1].startswith("@measure "):
        raise CommandFailed(command, "?", output)
    _, wall, rss, code = lines[-1].split()
    if int(code) not in codes:
        raise CommandFailed(command, code, output)
    return float(wall), float(rss), int(code), "\n".join(lines[:-1])


def attempt(label: str, measurement, *arguments):
    """measurement(*arguments), tried twice: a command that ends unexpectedly is recorded in
    FAILURES (the report lists them) and tried once more; None if it fails both times."""
    for number in (1, 2):
        try:
            return measurement(*arguments)
        except CommandFailed as failure:
            FAILURES.append(
                {"what": label, "try": number, "exit": failure.code, "output": failure.output}
            )
            print(f"  {label}: exited {failure.code} (try {number} of 2)", file=sys.stderr)
    return None


def measure(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a command that may exit 0 or 1 (a check failed)."""
    wall, rss, _, _ = measure_run(command, env, codes=(0, 1))
    return wall, rss


def _measure_here(command: list[str]) -> None:
    sys.stdout.flush()
    started = time.perf_counter()
    child = subprocess.Popen(command)  # the child's stdout is this probe's
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    print(f"\n@measure {wall:.3f} {usage.ru_maxrss / 1024:.1f} {code}")


# --- data and spec -----------------------------------------------------------------------


def prepare(work: Path, sizes: list[int]) -> Path:
    """The churn MLP pipeline trained on the bundled churn.csv (model.skops), and one
    generated CSV per size (churn_N.csv)."""
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
            work / f"churn_{rows}.csv", index=False, float_format="%.2f"
        )
    return work / "model.skops"


def spec_for(work: Path, rows: int, model: Path) -> Path:
    text = (ROOT / "benchmarks" / "churn_bench.yaml.in").read_text()
    text = text.replace("@DATA@", str(work / f"churn_{rows}.csv")).replace("@MODEL@", str(model))
    path = work / f"churn_{rows}.yaml"
    path.write_text(text.replace("@OUT@", str(work / f"report_{rows}")))
    return path


def parityspec_command() -> list[str]:
    script = Path(PYTHON).parent / "parityspec"
    return [str(script)] if script.is_file() else [PYTHON, "-m", "parityspec"]


# --- the sections ------------------------------------------------------------------------


def bench_rows(work: Path, model: Path, sizes: list[int], repeats: int, run_args: list[str]):
    """Per size: lists (one entry per repeat) of script, limit, cold and warm measurements."""
    results = {
        rows: {"script": [], "limit": [], "cold": [], "warm": [], "figures": {}} for rows in sizes
    }
    units = ["script", "limit", "parityspec"]
    for repeat in range(repeats):
        order = units[repeat % len(units) :] + units[: repeat % len(units)]
        for rows in sizes:
            for unit in order:
                label = f"repeat {repeat + 1}/{repeats}, {rows:,} rows: {unit}"
                print(f"  {label}", file=sys.stderr)
                entries = attempt(
                    label, _bench_unit, work, model, rows, unit, results[rows], run_args
                )
                for phase, entry in (entries or {}).items():
                    results[rows][phase].append({"repeat": repeat, **entry})
    return results


def _bench_unit(work, model, rows, unit, out, run_args) -> dict:
    """{phase: measurement} of one unit: script, limit, or parityspec (cold and warm)."""
    data = work / f"churn_{rows}.csv"
    hand_dir = work / "hand"
    hand_dir.mkdir(exist_ok=True)
    if unit in ("script", "limit"):
        wall, rss, _, text = measure_run(
            [PYTHON, str(HANDWRITTEN), unit, str(model), str(data), str(hand_dir)]
        )
        figures = json.loads(text.strip().splitlines()[-1])
        out["figures"].setdefault(unit, figures)
        return {unit: {"wall": wall, "rss": rss, **figures}}
    spec = spec_for(work, rows, model)
    cache = work / f"cache_{rows}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(cache)}
    command = [*parityspec_command(), "run", str(spec), "--quiet", *run_args]
    entries = {}
    for phase in ("cold", "warm"):
        wall, rss, code, _ = measure_run(command, env, codes=(0, 1))
        report = json.loads((work / f"report_{rows}" / "report.json").read_text())
        steps = report["run"].get("step_seconds", {})
        entries[phase] = {"wall": wall, "rss": rss, "exit": code, "steps": steps}
        if phase == "cold" and "parityspec" not in out["figures"]:
            out["figures"]["parityspec"] = {c["id"]: c["figures"] for c in report["checks"]}
            out["figures"]["parityspec_batch"] = _batch_size(report, run_args)
    shutil.rmtree(cache, ignore_errors=True)
    return entries


def _batch_size(report: dict, run_args: list[str]) -> str:
    """The batch size parityspec's INT8 figures hold for, as far as the report says."""
    facts = report.get("backends", {}).get("int8", {}).get("facts", {})
    stated = {k: v for k, v in facts.items() if "batch" in k}
    if stated:
        return ", ".join(f"{k} {v}" for k, v in stated.items())
    if "--batch-size" in run_args:
        return f"--batch-size {run_args[run_args.index('--batch-size') + 1]}"
    try:
        from parityspec.spec.models import DataSpec

        return f"data.batch_size default {DataSpec.model_fields['batch_size'].default}"
    except Exception:  # the benchmark outlives the layout of parityspec's modules
        return "the spec's data.batch_size"


def bench_specs(work: Path, repeats: int) -> dict:
    """Every bundled spec, cold then warm with a private cache, `repeats` times."""
    results: dict[str, list] = {}
    for repeat in range(repeats):
        for spec in sorted((ROOT / "specs").glob("*.yaml")):
            label = f"repeat {repeat + 1}/{repeats}, spec {spec.name}"
            print(f"  {label}", file=sys.stderr)
            entry = attempt(label, _cold_warm, work, spec)
            results.setdefault(spec.name, [])
            if entry:
                results[spec.name].append({"repeat": repeat, **entry})
    return results


def _cold_warm(work: Path, spec: Path) -> dict:
    cache, out = work / f"speccache_{spec.stem}", work / f"specreport_{spec.stem}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(cache)}
    command = [*parityspec_command(), "run", str(spec), "--quiet", "--out", str(out)]
    try:
        cold = measure_run(command, env, codes=(0, 1))
        warm = measure_run(command, env, codes=(0, 1))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {
        "cold": cold[0],
        "warm": warm[0],
        "cold_rss": cold[1],
        "warm_rss": warm[1],
        "exit": [cold[2], warm[2]],
    }


STARTUP = {
    "parityspec --help": ["--help"],
    "parityspec validate specs/churn.yaml": ["validate", "specs/churn.yaml"],
    "parityspec plan specs/churn.yaml": ["plan", "specs/churn.yaml"],
}


def bench_startup(repeats: int) -> dict:
    results: dict[str, list] = {name: [] for name in STARTUP}
    for _ in range(repeats):
        for name, arguments in STARTUP.items():
            command = [*parityspec_command(), *arguments]
            measured = attempt(name, measure_run, command, None, ROOT)
            if measured:
                results[name].append({"wall": measured[0], "rss": measured[1]})
    return results


# --- tables ------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 2, unit: str = "") -> str:
    """median (min-max); the median alone for one value, '-' for none."""
    if not values:
        return "-"
    middle = f"{statistics.median(values):.{digits}f}{unit}"
    if len(values) < 2:
        return middle
    return f"{middle} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def verdict(values: list[float], target: float) -> str:
    """Met when the median is within the target; says so when the range straddles it."""
    if not values:
        return "-"
    median = statistics.median(values)
    if min(values) <= target < max(values):
        return ("yes" if median <= target else "**no**") + " (range straddles it)"
    return "yes" if median <= target else "**no**"


def rows_tables(results: dict) -> str:
    out = [
        "### Wall time, seconds: median (min-max) of the repeats",
        "",
        "| rows | script | physical limit | limit + start-up | parityspec cold | parityspec warm |",
        "|---|---|---|---|---|---|",
    ]
    for rows, r in results.items():
        out.append(
            f"| {rows:,} | {spread(_walls(r['script']))} "
            f"| {spread([x['seconds']['limit'] for x in r['limit']])} "
            f"| {spread([_limit_startup(x) for x in r['limit']])} | {spread(_walls(r['cold']))} "
            f"| {spread(_walls(r['warm']))} |"
        )
    out += [
        "",
        "The physical limit is the sum of its timed phases (table below); limit + "
        "start-up adds the imports, model load, export and quantization any process doing "
        "this work pays (measured in the same process).",
        "",
        "### Ratios within each repeat: median (min-max)",
        "",
        "| rows | ratio | measured | target | met |",
        "|---|---|---|---|---|",
    ]
    for rows, r in results.items():
        cold, limit = r["cold"], r["limit"]
        pairs = [
            ("run cold / script", paired(cold, r["script"], _wall, _wall), TARGET_SCRIPT, "x"),
            ("run cold / physical limit", paired(cold, limit, _wall, _limit), TARGET_LIMIT, "x"),
            (
                "run cold / (limit + start-up)",
                paired(cold, limit, _wall, _limit_startup),
                None,
                "x",
            ),
            ("run warm / run cold", paired(r["warm"], cold, _wall, _wall), TARGET_WARM, ""),
        ]
        for name, values, target, unit in pairs:
            if target is None:
                limit, met = "", ""
            else:
                limit = f"<= {target:.2f}{unit}"
                met = verdict(values, target)
                if unit and rows < TARGET_ROWS:
                    met = f"({met}: the target is for {TARGET_ROWS:,}+ rows)"
            out.append(f"| {rows:,} | {name} | {spread(values, 2, unit)} | {limit} | {met} |")
    out += [
        "",
        "### Peak RSS, MiB: median (min-max)",
        "",
        "| rows | script | limit process | parityspec cold | parityspec warm |",
        "|---|---|---|---|---|",
    ]
    for rows, r in results.items():
        cells = [spread([x["rss"] for x in r[k]], 0) for k in ("script", "limit", "cold", "warm")]
        out.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    phases = [
        ("load", "load CSV"),
        ("sklearn", "scikit-learn"),
        ("onnx", "ONNX"),
        ("int8", "INT8"),
        ("compare", "compare"),
        ("limit", "**limit**"),
        ("setup", "start-up*"),
        ("inputs", "inputs*"),
    ]
    out += [
        "",
        "### The physical limit, phase by phase: median seconds",
        "",
        "| rows | " + " | ".join(p[1] for p in phases) + " |",
        "|---|" + "---|" * len(phases),
    ]
    for rows, r in results.items():
        cells = [f"{statistics.median(x['seconds'][p] for x in r['limit']):.3f}" for p, _ in phases]
        out.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    out += [
        "",
        "\\* not part of the limit: start-up is imports, model load, export and "
        "quantization; inputs is building each batch's frame and feeds.",
        "",
        "### parityspec cold, step by step (its own step_seconds): median seconds",
        "",
    ]
    steps = sorted(
        {s for r in results.values() for x in r["cold"] for s in x["steps"]}, key=_step_rank
    )
    out += [
        "| rows | " + " | ".join(steps) + " | sum | wall - sum |",
        "|---|" + "---|" * (len(steps) + 2),
    ]
    for rows, r in results.items():
        cells = [statistics.median(x["steps"].get(s, 0.0) for x in r["cold"]) for s in steps]
        rest = statistics.median(x["wall"] - sum(x["steps"].values()) for x in r["cold"])
        out.append(
            f"| {rows:,} | "
            + " | ".join(f"{c:.2f}" for c in cells)
            + f" | {sum(cells):.2f} | {rest:.2f} |"
        )
    out += ["", "wall - sum: start-up (imports), planning, the cache and the reports."]
    return "\n".join(out)


def figures_table(results: dict) -> str:
    out = [
        "### Figures: the script against parityspec (first repeat)",
        "",
        "| rows | comparison | figure | script (65,536-row batches) | parityspec |",
        "|---|---|---|---|---|",
    ]
    checks = {"onnx": ("onnx-parity", "onnx-parity"), "int8": ("int8-parity", "int8-labels")}
    batch = ""
    for rows, r in results.items():
        script, tool = r["figures"].get("script"), r["figures"].get("parityspec")
        if not script or not tool:
            continue
        batch = r["figures"]["parityspec_batch"]
        for backend, (parity, labels) in checks.items():
            for figure, check in (
                ("max_abs_diff", parity),
                ("mean_abs_diff", parity),
                ("agreement", labels),
            ):
                theirs = tool.get(check, {}).get(figure)
                if theirs is None:
                    continue
                out.append(
                    f"| {rows:,} | sklearn vs {backend} | {figure} "
                    f"| {script[backend][figure]:.6g} | {theirs:.6g} |"
                )
    out += [
        "",
        f"parityspec's batch size: {batch}. Dynamic INT8 quantizes activations with "
        "scales computed per batch, so its figures differ between batch sizes; the ONNX "
        "figures do not.",
    ]
    return "\n".join(out)


def specs_table(results: dict) -> str:
    out = [
        "### Bundled specs, warm against cold: median (min-max) seconds",
        "",
        "| spec | exit | cold s | warm s | warm / cold | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        ratios = [x["warm"] / x["cold"] for x in runs]
        exits = sorted({x["exit"][0] for x in runs})
        out.append(
            f"| {name} | {'/'.join(map(str, exits))} | {spread([x['cold'] for x in runs])} "
            f"| {spread([x['warm'] for x in runs])} | {spread([r * 100 for r in ratios], 0)}"
            f"% | <= {TARGET_WARM:.0%} | {verdict(ratios, TARGET_WARM)} |"
        )
    return "\n".join(out)


def startup_table(results: dict) -> str:
    out = [
        "### Start-up: median (min-max) seconds, peak RSS MiB",
        "",
        "| command | seconds | MiB | target | met |",
        "|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        walls = _walls(runs)
        target, met = ("", "")
        if "validate" in name:
            target, met = f"<= {TARGET_VALIDATE} s", verdict(walls, TARGET_VALIDATE)
        out.append(
            f"| `{name}` | {spread(walls)} | {spread([x['rss'] for x in runs], 0)} "
            f"| {target} | {met} |"
        )
    return "\n".join(out)


def _step_rank(step: str) -> tuple[int, str]:
    verb = step.split(":")[0]
    return (STEP_ORDER.index(verb) if verb in STEP_ORDER else len(STEP_ORDER), step)


def _walls(runs: list[dict]) -> list[float]:
    return [x["wall"] for x in runs]


def paired(a: list[dict], b: list[dict], fa, fb) -> list[float]:
    """fa(x) / fb(y) for the entries x of `a` and y of `b` measured in the same repeat."""
    by_repeat = {y["repeat"]: y for y in b}
    return [fa(x) / fb(by_repeat[x["repeat"]]) for x in a if x["repeat"] in by_repeat]


def _wall(x: dict) -> float:
    return x["wall"]


def _limit(x: dict) -> float:
    return x["seconds"]["limit"]


def _limit_startup(x: dict) -> float:
    return x["seconds"]["limit"] + x["seconds"]["setup"]


def machine() -> str:
    from importlib.metadata import version

    libraries = ", ".join(
        f"{name} {version(name)}"
        for name in ("scikit-learn", "onnxruntime", "skl2onnx", "pyarrow", "pandas", "numpy")
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {libraries}"
    )


# --- command line ------------------------------------------------------------------------


def sizes_arg(text: str) -> list[int]:
    return [int(float(part)) for part in text.replace(" ", ",").split(",") if part]


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        _measure_here(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=sizes_arg,
        default=[100_000, 1_000_000],
        help="rows, comma-separated (1e5,1e6 by default; 1e7 takes minutes)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        type=lambda t: t.split(","),
        default=list(SECTIONS[:3]),
        help=f"sections, comma-separated, of {', '.join(SECTIONS)} (default: all but layers)",
    )
    parser.add_argument("--layers", action="store_true", help="add the per-layer section")
    parser.add_argument(
        "--layer-rows",
        type=sizes_arg,
        default=[256, 4096],
        help="rows (one batch) of the per-layer section: 256,4096 by default",
    )
    parser.add_argument(
        "--run-arg",
        action="append",
        default=[],
        help="an extra argument of `parityspec run` (repeatable), e.g. "
        "--run-arg=--batch-size --run-arg=65536",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--source",
        type=Path,
        help="import parityspec from this folder (PYTHONPATH), e.g. a `git "
        "archive` of a commit, not from a working tree others are editing",
    )
    args = parser.parse_args()
    if args.layers:
        args.only.append("layers")
    if args.source:
        if not (args.source / "parityspec" / "__init__.py").is_file():
            parser.error(f"{args.source} holds no parityspec package")
        SOURCE_ENV["PYTHONPATH"] = str(args.source.resolve())
        # `python -m` puts the working directory (the repository) first on the path.
        SOURCE_ENV["PYTHONSAFEPATH"] = "1"
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    header = (
        f"Measured {machine()}; parityspec {measured_source(args.source)}; "
        f"{args.repeats} repeats, interleaved."
    )
    measured: dict = {"header": header, "repeats": args.repeats, "failures": FAILURES}

    def show(name: str, results, table: str) -> None:
        """Print a section as soon as it is measured, and keep the JSON up to date."""
        measured[name] = results
        print(table + "\n", flush=True)
        if args.json:
            args.json.write_text(json.dumps(measured, indent=1, default=str))

    print(header + "\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="parityspec-bench-") as folder:
        work = Path(folder)
        if "rows" in args.only:
            print("preparing the model and data", file=sys.stderr)
            model = prepare(work, args.sizes)
            rows = bench_rows(work, model, args.sizes, args.repeats, args.run_arg)
            show("rows", rows, rows_tables(rows) + "\n\n" + figures_table(rows))
        if "specs" in args.only:
            specs = bench_specs(work, args.repeats)
            show("specs", specs, specs_table(specs))
        if "startup" in args.only:
            startup = bench_startup(args.startup_repeats)
            show("startup", startup, startup_table(startup))
        if "layers" in args.only:
            # layers.py imports `run`: this very module (its SOURCE_ENV and FAILURES), not a
            # second copy of the script.
            sys.modules.setdefault("run", sys.modules[__name__])
            from layers import bench_layers, layers_table  # benchmarks/layers.py

            layered = bench_layers(work, args.repeats, args.layer_rows)
            show("layers", layered, layers_table(layered))
    show("failures", FAILURES, failures_table())


def measured_source(source: Path | None) -> str:
    """Which parityspec was measured: a --source folder (its COMMIT file, if any) or the
    working tree (its commit, and whether files under parityspec/ differ from it)."""
    if source:
        commit = source / "COMMIT"
        return f"from {source}" + (
            f" (commit {commit.read_text().strip()})" if commit.is_file() else ""
        )
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "parityspec"], capture_output=True, text=True
    )
    state = ", with uncommitted changes under parityspec/" if dirty.stdout.strip() else ""
    return f"working tree at {head.stdout.strip() or 'an unknown commit'}{state}"


def failures_table() -> str:
    if not FAILURES:
        return "No command ended unexpectedly."
    out = [
        "### Commands that ended unexpectedly (each was tried once more)",
        "",
        "| what | try | exit | last output |",
        "|---|---|---|---|",
    ]
    for f in FAILURES:
        tail = " ".join(f["output"].split())[-300:].replace("|", "/")
        out.append(f"| {f['what']} | {f['try']} | {f['exit']} | {tail} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
