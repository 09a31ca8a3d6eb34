"""Latency, throughput and size of two backends on the spec's data, with speed and size gates.

The seed pipeline's benchmark stage as a check. Two latencies per backend and batch size:
`latency`, the runtime's own call with its inputs prepared outside the timed region (the
backend's `runtime_call`: ONNX Runtime's `run` on ready feeds, a torch forward on ready
tensors), which the speedup compares; and `end_to_end_latency`, parityspec's whole predict,
converting the rows as well. Timings change from run to run, so they go to the report's `run`
section (`run.timings`); the check's body keeps only what is the same for the same inputs:
file sizes, their ratio, and the verdict. Cached like every check, its timings are measured
once per pair of models; `--rebench` measures again.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, capabilities
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.spec.profiles import CheckTolerances

TYPE = "benchmark"
TASKS = ("binary", "multiclass", "regression", "tensor")
NEEDS_MODELS = True
NEEDS_PREDICTIONS = False  # it times the models itself
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class Spec(CheckSpecBase):
    """Each backend predicts batches of the evaluation rows, `repeats` times per batch size
    after one warm-up call; speedup = reference latency / candidate latency (p50, at the
    largest batch size)."""

    type: Literal["benchmark"]
    batch_sizes: Annotated[list[Annotated[int, Field(gt=0, le=100_000)]], Field(min_length=1)] = [
        1,
        256,
    ]
    repeats: Annotated[int, Field(gt=0, le=10_000)] = 20
    min_speedup: PositiveFloat | None = None
    """The candidate must be at least this many times faster than the reference."""
    max_size_ratio: PositiveFloat | None = None
    """The candidate's model file may be at most this fraction of the reference's."""


def run(spec: Spec, tolerances: CheckTolerances, inputs: CheckInputs) -> CheckResult:
    reference, candidate = (inputs.models[b] for b in spec.between)
    sizes = {
        m.backend: capabilities(BACKENDS[m.kind]).model_size(m) for m in (reference, candidate)
    }
    size_ratio = sizes[candidate.backend] / sizes[reference.backend]
    gates = []
    if spec.max_size_ratio is not None:
        gates.append(Gate("size_ratio", size_ratio, "<=", "max_size_ratio", spec.max_size_ratio))
    latency = {m.backend: _latencies(m, inputs, spec, runtime=True) for m in (reference, candidate)}
    end_to_end = {
        m.backend: _latencies(m, inputs, spec, runtime=False) for m in (reference, candidate)
    }
    largest = str(max(spec.batch_sizes))
    speedup = latency[reference.backend][largest]["p50_ms"] / max(
        latency[candidate.backend][largest]["p50_ms"], 1e-9
    )
    timed = []
    if spec.min_speedup is not None:
        timed.append(Gate("speedup", speedup, ">=", "min_speedup", spec.min_speedup))
    status, reason = judge(gates)
    if not gates and not timed:
        reason = "measured; no gate set (min_speedup, max_size_ratio)"
    speed_ok = all(g.ok for g in timed)
    if timed:
        reason += ("; " if gates else "") + (
            f"speedup {'meets' if speed_ok else 'misses'} min_speedup {spec.min_speedup:g} "
            "(timings in the run section)"
        )
        status = "passed" if status == "passed" and speed_ok else "failed"
    return CheckResult(
        status,
        reason,
        figures={"size_bytes": sizes, "size_ratio": size_ratio},
        tolerances={k: getattr(spec, k) for k in ("min_speedup", "max_size_ratio")},
        gates=gates,
        timings={
            "latency": latency,
            "end_to_end_latency": end_to_end,
            "speedup_p50_at_largest_batch": speedup,
            "gates": [g.as_dict() for g in timed],
        },
    )


def _latencies(model: LoadedModel, inputs: CheckInputs, spec: Spec, *, runtime: bool) -> dict:
    """p50/p95/p99 per batch size of the runtime's own call (`runtime`), or of the whole
    predict with the rows' conversion."""
    module = BACKENDS[model.kind]
    prepare = capabilities(module).runtime_call if runtime else None
    table = {}
    for size in spec.batch_sizes:
        batch = inputs.data.slice(0, min(size, len(inputs.data)))
        call = prepare(model, batch) if prepare else functools.partial(module.predict, model, batch)
        call()  # warm-up: first-call allocations are not latency
        seconds = []
        for _ in range(spec.repeats):
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
        ms = np.array(seconds) * 1000
        rows = len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)
        table[str(size)] = {
            "rows": rows,
            "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)),
            "rows_per_s": rows / float(np.median(seconds)),
        }
    return table
