"""Per-layer drift of torchvision models against their ONNX exports (issue 18, point 7).

For resnet18, resnet50, mobilenet_v3_small and vit_b_16, re-initialised from a fixed seed
(`examples/torch/vision.py`: no zero head, activations that keep their scale), in eval mode
at 224x224: a spec (the torch backend from the factory, its dynamo ONNX export `from: torch`,
one `layer_drift` check under the default profile) is written to a temporary folder and run
with `parityspec run ... --out ...`; the table is read from the report's `layer_drift`
details. Needs torchvision, which parityspec's environments do not carry; in a separate venv:

    python -m venv /tmp/tv
    /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tv/bin/pip install -e .
    /tmp/tv/bin/python benchmarks/vision_layers.py [--rows 8] [--models resnet18,vit_b_16]

`--init torchvision` runs the same on torchvision's own random initialisation instead, for
contrast: vit_b_16's head is zeros (logits exactly 0) and mobilenet_v3_small's logits tiny.

`calls` counts the rows of the check: every leaf module call (a module called twice gives two)
plus every call of a module that is not a leaf but computes something of its own (a residual
block's Add, an attention); `leaf calls` counts the first kind only, as export-validator's
`leaves` does. `> 1e-4 abs` counts matched rows whose max |diff| exceeds 1e-4, the published
table's rule, for comparison only: parityspec gates on `layer_tol + layer_rtol * max |ref|`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VISION = ROOT / "examples" / "torch" / "vision.py"
HERE = Path(__file__).resolve()
MODELS = {
    "resnet18": (VISION, "resnet18"),
    "resnet50": (HERE, "resnet50"),  # not in vision.py (its tests do not need it)
    "mobilenet_v3_small": (VISION, "mobilenet_v3_small"),
    "vit_b_16": (VISION, "vit_b_16"),
}
# `--init torchvision`: torchvision's own random initialisation, for contrast (degenerate:
# vit_b_16's head is zeros, mobilenet_v3_small's logits are tiny)
DEFAULT_INIT = {model: (HERE, f"default_{model}") for model in MODELS}
SIZE = 224
ABSOLUTE = 1e-4  # export-validator's tolerance, counted for comparison only
SPEC = """parityspec: 1
name: vision-{model}
data:
  synthetic: {{rows: {rows}, seed: 0}}
  batch_size: {rows}
model:
  task: tensor
  inputs:
    - {{name: image, shape: [3, {size}, {size}], dtype: float32}}
  outputs: [logits]
backends:
  torch: {{kind: torch, module: "{file}:{function}"}}
  onnx: {{kind: onnx, from: torch, opset: 18}}
checks:
  - {{id: layers, type: layer_drift, between: [torch, onnx]}}
"""


def _vision():
    spec = importlib.util.spec_from_file_location("parityspec_vision", VISION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resnet50():
    """As vision.py's factories: torchvision's resnet50, re-initialised from the seed."""
    import torch
    from torchvision.models import resnet50 as build

    vision = _vision()
    torch.manual_seed(vision.SEED)
    return vision.non_degenerate(build(weights=None))


def _default(model: str):
    import torch
    import torchvision.models

    torch.manual_seed(_vision().SEED)
    return getattr(torchvision.models, model)(weights=None).eval()


def default_resnet18():
    return _default("resnet18")


def default_resnet50():
    return _default("resnet50")


def default_mobilenet_v3_small():
    return _default("mobilenet_v3_small")


def default_vit_b_16():
    return _default("vit_b_16")


def _build(model: str):
    file, function = MODELS[model]
    if file == HERE:
        return globals()[function]()
    return getattr(_vision(), function)()


def _leaves(model: str) -> set[str]:
    built = _build(model)
    return {name for name, module in built.named_modules() if name and not list(module.children())}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_model(model: str, rows: int, work: Path, init: str = "seeded") -> dict:
    file, function = (MODELS if init == "seeded" else DEFAULT_INIT)[model]
    folder = work / f"{model}-{init}"
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.yaml"
    spec.write_text(
        SPEC.format(model=model, rows=rows, size=SIZE, file=file.as_posix(), function=function)
    )
    out = folder / "report"
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(folder / "cache")}  # cold, and our own
    command = [sys.executable, "-m", "parityspec", "run", str(spec), "--out", str(out), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    report_file = out / "report.json"
    if not report_file.is_file():
        raise RuntimeError(f"{model}: exit {done.returncode}, no report\n{done.stderr[-4000:]}")
    report = json.loads(report_file.read_text())
    check = next(c for c in report["checks"] if c["type"] == "layer_drift")
    return {
        "model": model,
        "init": init,
        "rows": rows,
        "exit": done.returncode,
        "wall_s": wall,
        "step_seconds": report["run"].get("step_seconds", {}),
        "check": check,
        "leaves": sorted(_leaves(model)),
    }


def _reason_kind(reason: str) -> str:
    if reason.startswith("fused into"):
        return "fused"
    if reason.startswith("removed by the exporter"):
        return "removed (eval no-op)"
    if reason.startswith("no ONNX node"):
        return "no ONNX node"
    return re.sub(r"'[^']*'", "'...'", reason)


def _worst(rows: list[dict], key: str, lowest: bool = False) -> tuple[float | None, str]:
    # JSON writes an infinite figure (an SQNR with no error) as the string "inf"
    found = [(float(r[key]), r["name"]) for r in rows if r.get(key) is not None]
    if not found:
        return None, "-"
    pick = min if lowest else max
    return pick(found, key=lambda item: item[0])


def _g(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}g}"


def summarise(result: dict) -> dict:
    check = result["check"]
    details = check["details"]
    rows = details["rows"]
    leaves = set(result["leaves"])
    matched = [r for r in rows if r["status"] != "unmatched"]
    unmatched = [r for r in rows if r["status"] == "unmatched"]
    kinds: dict[str, list[str]] = {}
    for r in unmatched:
        kinds.setdefault(_reason_kind(r["reason"] or ""), []).append(r["name"])
    # a row without SQNR is an exact match (no error to measure a ratio against)
    sqnr_rows = [
        {**r, "sqnr_db": math.inf if r.get("sqnr_db") is None else float(r["sqnr_db"])}
        for r in matched
    ]
    heads = [r for r in matched if r.get("ref_max_abs") is not None]
    exposure = details.get("exposure_effect") or {}
    origin = details.get("origin")
    return {
        "model": result["model"],
        "init": result["init"],
        "rows": result["rows"],
        "seconds": result["wall_s"],
        "exit": result["exit"],
        "status": check["status"],
        "calls": len(rows),
        "leaf_calls": sum(1 for r in rows if r["name"].split("#")[0] in leaves),
        "matched": len(matched),
        "over": sum(1 for r in matched if r["status"] == "over"),
        "over_abs": sum(1 for r in matched if (r["max_abs_diff"] or 0) > ABSOLUTE),
        "unmatched": {kind: len(names) for kind, names in kinds.items()},
        "unmatched_names": kinds,
        "worst_rel": _worst(matched, "rel_diff"),
        "worst_own_rel": _worst(matched, "own_rel_diff"),
        "worst_sqnr": _worst(sqnr_rows, "sqnr_db", lowest=True),
        "worst_abs": _worst(matched, "max_abs_diff"),
        "largest_ref": _worst(heads, "ref_max_abs"),
        "origin": f"{origin} ({details.get('origin_rule')})" if origin else "none",
        "exposure": exposure.get("max_abs_diff"),
        "last_row": (heads[-1]["name"], heads[-1]["ref_max_abs"]) if heads else ("-", None),
        "check_s": result["step_seconds"].get("check:layers"),
        "export_s": result["step_seconds"].get("export:onnx"),
        "reason": check.get("reason"),
    }


def model_table(s: dict) -> str:
    unmatched = ", ".join(f"{kind} {n}" for kind, n in s["unmatched"].items()) or "none"
    lines = [
        f"#### {s['model']} ({s['init']} init, {s['rows']} rows, {SIZE}x{SIZE})",
        "",
        "| figure | value |",
        "|---|---|",
        f"| check | {s['status']} (exit {s['exit']}) |",
        f"| calls (rows) | {s['calls']} ({s['leaf_calls']} leaf calls) |",
        f"| matched | {s['matched']} |",
        f"| unmatched by reason | {unmatched} |",
        f"| over the default profile | {s['over']} |",
        f"| over {ABSOLUTE:g} absolute (export-validator's rule) | {s['over_abs']} |",
        f"| worst relative error | {_g(s['worst_rel'][0])} at `{s['worst_rel'][1]}` |",
        f"| worst own relative error | {_g(s['worst_own_rel'][0])} at `{s['worst_own_rel'][1]}` |",
        f"| worst SQNR (dB) | {_g(s['worst_sqnr'][0])} at `{s['worst_sqnr'][1]}` |",
        f"| worst max abs diff | {_g(s['worst_abs'][0])} at `{s['worst_abs'][1]}` |",
        f"| largest max abs ref | {_g(s['largest_ref'][0])} at `{s['largest_ref'][1]}` |",
        f"| drift origin | {s['origin']} |",
        f"| exposure effect (exposed vs plain session, final outputs) | {_g(s['exposure'])} "
        f"(last row `{s['last_row'][0]}` up to {_g(s['last_row'][1])}) |",
        f"| wall s (export s, check s) | {s['seconds']:.1f} ({_g(s['export_s'], 3)}, "
        f"{_g(s['check_s'], 3)}) |",
    ]
    for kind, names in s["unmatched_names"].items():
        if kind != "fused":
            shown = ", ".join(f"`{n}`" for n in names[:6]) + (" ..." if len(names) > 6 else "")
            lines.append(f"\n{kind}: {shown}")
    return "\n".join(lines)


def summary_table(summaries: list[dict]) -> str:
    lines = [
        "| model | calls (leaf) | matched | unmatched by reason | over | > 1e-4 abs "
        "| worst rel (where) | worst SQNR dB (where) | worst abs (where) | origin "
        "| exposure effect |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        unmatched = ", ".join(f"{kind} {n}" for kind, n in s["unmatched"].items()) or "none"
        lines.append(
            f"| {s['model']} | {s['calls']} ({s['leaf_calls']}) | {s['matched']} | {unmatched} "
            f"| {s['over']} | {s['over_abs']} "
            f"| {_g(s['worst_rel'][0])} (`{s['worst_rel'][1]}`) "
            f"| {_g(s['worst_sqnr'][0])} (`{s['worst_sqnr'][1]}`) "
            f"| {_g(s['worst_abs'][0])} (`{s['worst_abs'][1]}`) | {s['origin']} "
            f"| {_g(s['exposure'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="images per model (default 8)")
    parser.add_argument(
        "--init",
        choices=("seeded", "torchvision"),
        default="seeded",
        help="vision.py's seeded non-degenerate init (default), or torchvision's own",
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--work", type=Path, help="keep specs and reports here (default: temp)")
    parser.add_argument("--json", type=Path, help="write the summaries here")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    if importlib.util.find_spec("torchvision") is None:
        print("torchvision is not installed: see this file's docstring", file=sys.stderr)
        return 2
    versions = {
        p: _version(p) for p in ("torch", "torchvision", "onnxruntime", "onnx", "onnxscript")
    }
    print(
        f"parityspec {_commit()}; "
        + ", ".join(f"{p} {v}" for p, v in versions.items())
        + f"; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs\n"
    )
    summaries = []
    with tempfile.TemporaryDirectory(prefix="vision_layers_") as temp:
        work = args.work or Path(temp)
        for model in models:
            print(f"running {model} ({args.rows} rows) ...", file=sys.stderr, flush=True)
            summary = summarise(run_model(model, args.rows, work, args.init))
            summaries.append(summary)
            print(model_table(summary) + "\n", flush=True)
    print(summary_table(summaries))
    if args.json:
        args.json.write_text(json.dumps({"versions": versions, "models": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
