"""The per-layer section of benchmarks/run.py (`--layers`): the `layer_drift` check's cost.

For each net (the bundled small CNN, a 50-layer MLP and a ResNet-like net of 101 leaf modules,
benchmarks/layer_nets.py) at 256 and 4,096 rows (one batch), interleaved in every repeat:

- the baseline, benchmarks/layer_baseline.py: one dynamo export plus one forward per side
  (torch and ONNX Runtime), nothing more;
- `parityspec run --check layers` on a spec of that net (torch against its ONNX export,
  `layer_drift`), cold: an empty step cache, so it exports and predicts too.

Wall time and peak RSS of both from the OS, and the ratios. Target (issue 12, point 5): the
ResNet-like net at 4,096 rows within 2x the baseline's time and 1.5x its memory.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from run import PYTHON, ROOT, attempt, measure_run, paired, parityspec_command, spread, verdict

BASELINE = ROOT / "benchmarks" / "layer_baseline.py"
NETS = {
    "small CNN": (ROOT / "examples" / "torch" / "nets.py", "small_cnn", [3, 16, 16]),
    "MLP, 50 layers": (ROOT / "benchmarks" / "layer_nets.py", "mlp50", [128]),
    "ResNet-like, 101 leaves": (ROOT / "benchmarks" / "layer_nets.py", "resnet_like", [3, 16, 16]),
}
ROWS = (256, 4096)
TARGET_TIME = 2.0
TARGET_MEMORY = 1.5
SPEC = """parityspec: 1
name: layers
data:
  synthetic: {{rows: {rows}, seed: 0}}
  batch_size: {rows}
model:
  task: tensor
  inputs:
    - {{name: x, shape: {shape}, dtype: float32}}
  outputs: [out]
backends:
  torch: {{kind: torch, module: "{file}:{function}"}}
  onnx: {{kind: onnx, from: torch, opset: 18}}
checks:
  - {{id: layers, type: layer_drift, between: [torch, onnx]}}
report:
  dir: {out}
"""


def bench_layers(work: Path, repeats: int, rows_list=ROWS) -> dict:
    results: dict[str, dict] = {}
    for repeat in range(repeats):
        for net, (file, function, shape) in NETS.items():
            for rows in rows_list:
                print(
                    f"  repeat {repeat + 1}/{repeats}, layers: {net}, {rows} rows", file=sys.stderr
                )
                entry = results.setdefault(f"{net}|{rows}", {"baseline": [], "parityspec": []})
                units = [("baseline", _baseline), ("parityspec", _parityspec)]
                for name, unit in units[repeat % 2 :] + units[: repeat % 2]:
                    label = f"repeat {repeat + 1}/{repeats}, layers: {net}, {rows} rows: {name}"
                    measured = attempt(label, unit, work, file, function, shape, rows)
                    if measured:
                        entry[name].append({"repeat": repeat, **measured})
    return results


def _baseline(work, file, function, shape, rows) -> dict:
    command = [
        PYTHON,
        str(BASELINE),
        f"{file}:{function}",
        ",".join(map(str, shape)),
        str(rows),
        str(work / "layers_baseline.onnx"),
    ]
    wall, rss, _, text = measure_run(command)
    return {"wall": wall, "rss": rss, **json.loads(text.splitlines()[-1])}


def _parityspec(work, file, function, shape, rows) -> dict:
    spec = work / f"layers_{function}_{rows}.yaml"
    out, cache = work / f"layers_report_{function}_{rows}", work / "layers_cache"
    spec.write_text(SPEC.format(rows=rows, shape=shape, file=file, function=function, out=out))
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(cache)}
    command = [*parityspec_command(), "run", str(spec), "--quiet", "--check", "layers"]
    wall, rss, code, _ = measure_run(command, env, codes=(0, 1))
    steps = json.loads((out / "report.json").read_text())["run"].get("step_seconds", {})
    shutil.rmtree(cache, ignore_errors=True)
    return {"wall": wall, "rss": rss, "exit": code, "steps": steps}


def layers_table(results: dict) -> str:
    out = [
        "### Per-layer check (`layer_drift`, cold run) against one export plus one forward "
        "per side: median (min-max)",
        "",
        "| net | rows | baseline s | parityspec s | check s | time ratio | baseline MiB "
        "| parityspec MiB | memory ratio | target met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        net, rows = key.split("|")
        base, tool = r["baseline"], r["parityspec"]
        times = paired(tool, base, lambda x: x["wall"], lambda x: x["wall"])
        memory = paired(tool, base, lambda x: x["rss"], lambda x: x["rss"])
        check = [x["steps"].get("check:layers", 0.0) for x in tool]
        met = ""
        if net.startswith("ResNet") and rows == "4096":
            met = (
                f"time <= {TARGET_TIME}x: {verdict(times, TARGET_TIME)}; memory <= "
                f"{TARGET_MEMORY}x: {verdict(memory, TARGET_MEMORY)}"
            )
        out.append(
            f"| {net} | {int(rows):,} | {spread([x['wall'] for x in base])} "
            f"| {spread([x['wall'] for x in tool])} | {spread(check)} | {spread(times, 2, 'x')} "
            f"| {spread([x['rss'] for x in base], 0)} | {spread([x['rss'] for x in tool], 0)} "
            f"| {spread(memory, 2, 'x')} | {met} |"
        )
    return "\n".join(out)
