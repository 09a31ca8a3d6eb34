"""A run on a Dask cluster: each worker reads its own shards of the data, predicts them with
every backend and sums them up for each check; the client merges the summaries and judges.

Rows never travel through the client, nor do predictions: only models (once per worker, as
files, skops bytes, or a torch module's state dict loaded into the module the spec's factory
builds there; a runtime session is opened on the worker, never pickled) and summaries. A
summary merges exactly whatever the split into shards and the merge order
(`checks.base.ShardedCheck`), so the report is the one a local run writes. Batches stop at
shard boundaries in local runs too, so a model whose outputs depend on its batch (dynamic
INT8) sees the same batches wherever it runs.

Dask is optional (`parityspec[dask]`); nothing else imports this module's dependencies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, Predictions, capabilities
from parityspec.backends.context import RunContext
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase
from parityspec.checks.classes import merged_classes
from parityspec.data.sources import open_data_shards, shard_classes, shard_rows
from parityspec.errors import InputError, ParitySpecError, first_line
from parityspec.plan.compile import DATA_SPLIT, model_step_id
from parityspec.plan.graph import Plan, Step
from parityspec.results import RunState, StepOutcome
from parityspec.run.executor import ShardPass
from parityspec.run.steps import check_tolerances, refuse_inert, served

if TYPE_CHECKING:
    from distributed import Client

SCHEDULER_TIMEOUT = 10  # seconds to reach a scheduler before exit 2
DASK_HINT = "install the extra: pip install 'parityspec[dask]'"
# Dask's statistical profiler keeps a call tree for every second a worker computes, up to
# `distributed.admin.low-level-log-length` (1000) of them: a worker's memory would grow with
# the run's length (54 MiB in a one-minute run), not with its batches.
WORKER_PROFILING = "distributed.worker.profile.enabled"
WORKER_CONFIG = {WORKER_PROFILING: False}


@dataclass(frozen=True)
class Placement:
    """Where a run computes: `workers` local processes, or the cluster at `scheduler`."""

    workers: int | None = None
    scheduler: str | None = None

    def describe(self) -> str:
        if self.scheduler:
            return f"the Dask cluster at {self.scheduler}"
        return f"a local Dask cluster of {self.workers} worker{'s' * (self.workers != 1)}"


def sharded(module: Any) -> bool:
    """Whether a check module computes on shards (see `checks.base.ShardedCheck`)."""
    return callable(getattr(module, "summarize", None)) and callable(
        getattr(module, "conclude", None)
    )


def unshardable_checks(checks: list[CheckSpecBase]) -> list[CheckSpecBase]:
    """Checks that read predictions but cannot compute on shards: a run on workers refuses
    them, it could only judge them on the client's sample."""
    from parityspec.checks.capabilities import check_capabilities

    return [
        c
        for c in checks
        if check_capabilities(CHECKS[c.type]).NEEDS_PREDICTIONS and not sharded(CHECKS[c.type])
    ]


@contextlib.contextmanager
def cluster(placement: Placement) -> Iterator[Client]:
    """A client of the placement's cluster; a cluster it starts is always shut down (on an
    error, a stop signal or a timeout too)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--workers and --scheduler need Dask", hint=DASK_HINT) from None
    if placement.scheduler:
        try:
            client = Client(placement.scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise InputError(
                f"cannot reach the Dask scheduler at {placement.scheduler}: {first_line(error)}",
                hint="check the address (tcp://host:8786), or start one with dask-scheduler",
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    with dask.config.set(WORKER_CONFIG):  # read by each worker process as it (re)starts
        local = LocalCluster(
            n_workers=placement.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=50,  # logging.CRITICAL: a worker's chatter is not the run's output
        )
        try:
            with Client(local) as client:
                yield client
        finally:
            local.close()


# --- client side ------------------------------------------------------------------------


@dataclass
class ShippedModel:
    """A model as it travels: its files' bytes (opened on the worker with the backend's
    `reopen`) or its predictor as skops bytes."""

    name: str
    kind: str
    facts: dict[str, Any]
    inert: str | None
    files: dict[str, str]
    """Role -> file name in `contents`."""
    contents: dict[str, bytes]
    """The files of the model's artifact folder, and of its source's (settings it reads)."""
    sources: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Artifact folders of the backends it was made from, by backend name."""
    skops: bytes | None = None
    state: bytes | None = None
    """A torch module's state dict (torch.save): the worker rebuilds the module with the
    spec's factory and loads it."""


@dataclass
class Job:
    """What every worker receives once (scattered to all): the spec and the models."""

    token: str
    spec: Any
    spec_dir: str
    trust_models: bool
    text_columns: frozenset[str]
    batch_size: int
    threads: int
    """ONNX Runtime's intra-op threads on a worker: its share of the host's cores."""
    models: dict[str, ShippedModel]
    checks: list[tuple[CheckSpecBase, Any]]
    """Each check to compute, with its resolved tolerances."""


@dataclass
class ShardResult:
    rows: int
    summaries: dict[str, Any]
    seconds: float


class ShardFailed(Exception):
    """A shard whose computation failed for good: the run ends with exit 3 naming it."""


def evaluate_on_workers(
    client: Client,
    plan: Plan,
    ctx: RunContext,
    state: RunState,
    restore: set[str],
    placement: Placement,
) -> tuple[dict[str, StepOutcome], set[str]]:
    """Every predict step, and every check that reads predictions and is not restored from
    the cache, computed on the workers: their outcomes, and the ids of those whose value must
    not be cached (predictions, which stayed on the workers)."""
    started = time.perf_counter()
    predicts = [s for s in plan.steps if s.action == "predict" and s.id not in state.outcomes]
    checks = [
        s
        for s in plan.steps
        if s.action == "check"
        and s.id not in state.outcomes.keys() | restore
        and any(d.startswith("predict:") for d in s.deps)
    ]
    specs = {c.id: c for c in ctx.spec.checks}
    names = sorted({b for s in checks for b in specs[s.about].between})
    models = {n: state.outcomes[model_step_id(ctx.spec, n)].value for n in names}
    outcomes: dict[str, StepOutcome] = {}
    for step in predicts:  # what a predict step leaves on the client: no rows, facts only
        model = state.outcomes[model_step_id(ctx.spec, step.about)].value
        value = Predictions(step.about, {}, inert=model.inert, classes=model.facts.get("classes"))
        outcomes[step.id] = StepOutcome(step, "ok", value)
    if not checks:  # every check came from the cache: nothing to compute
        return outcomes, {s.id for s in predicts}
    evaluation = state.outcomes[DATA_SPLIT].value[1]
    shards = open_data_shards(ctx.spec.data, ctx.spec_dir)
    workers = _worker_hosts(client)
    import dask

    # dask.config.get: a worker has it whatever else it lacks
    if any(client.run(dask.config.get, WORKER_PROFILING).values()):
        state.notes.append(
            "the cluster's workers run Dask's profiler, whose history grows their memory with "
            "the run's length: start them with distributed.worker.profile.enabled: false"
        )
    job = Job(
        token=uuid.uuid4().hex,
        spec=ctx.spec,
        spec_dir=str(ctx.spec_dir),
        trust_models=ctx.trust_models,
        text_columns=getattr(evaluation, "_text", frozenset()),
        batch_size=ctx.spec.prediction_batch_size(),
        threads=max(1, (os.cpu_count() or 1) // max(1, max(workers.values(), default=1))),
        models={n: _shipped(ctx, m) for n, m in models.items()},
        checks=[(specs[s.about], check_tolerances(ctx, specs[s.about])) for s in checks],
    )
    [shared] = client.scatter([job], broadcast=True)
    classes = _data_classes(client, shared, job, shards) if _from_data(ctx, models) else None
    futures = [
        client.submit(
            _evaluate_shard,
            shared,
            number,
            classes,
            pure=False,
            key=f"shard-{number}-{job.token}",
        )
        for number in range(len(shards.shards))
    ]
    merged, rows = _merged_as_they_come(client, futures, shards)
    seconds = time.perf_counter() - started
    state.notes.append(f"ran on {placement.describe()}: {len(shards.shards)} shards, {rows} rows")
    if client_side := [
        s.about
        for s in plan.steps
        if s.action == "check" and not any(d.startswith("predict:") for d in s.deps)
    ]:
        state.notes.append(
            f"computed on the client, as in a local run (they run the models themselves): "
            f"{', '.join(client_side)}"
        )
    for step in predicts:
        outcomes[step.id] = replace(outcomes[step.id], seconds=seconds / len(predicts))
    for step in checks:
        check = specs[step.about]
        outcomes[step.id] = _concluded(ctx, step, check, models, merged[check.id], evaluation)
    return outcomes, {s.id for s in predicts}


def _concluded(
    ctx: RunContext,
    step: Step,
    check: CheckSpecBase,
    models: dict[str, LoadedModel],
    merged: Any,
    evaluation: Any,
) -> StepOutcome:
    module: Any = CHECKS[check.type]  # a ShardedCheck: see `sharded`
    reference, candidate = (
        Predictions(b, {}, inert=models[b].inert, classes=models[b].facts.get("classes"))
        for b in check.between
    )
    inputs = CheckInputs(ctx.spec, evaluation, reference, candidate, dict(models))
    result: CheckResult = module.conclude(check, check_tolerances(ctx, check), merged, inputs)
    return StepOutcome(step, "ok", refuse_inert(result, reference, candidate))


def _merged_as_they_come(
    client: Client, futures: list[Any], shards: Any
) -> tuple[dict[str, Any], int]:
    """Each check's summary of every shard, and the rows: a shard's result is merged as soon
    as it is done and then released (the merges are exact in any order), so neither the
    client nor the workers hold more than one result per shard in flight."""
    merged: dict[str, Any] = {}
    rows = 0
    result: ShardResult
    for result in _as_they_come(client, futures, shards):
        rows += result.rows
        for check_id, summary in result.summaries.items():
            merged[check_id] = merged[check_id].merge(summary) if check_id in merged else summary
    return merged, rows


def _as_they_come(client: Client, futures: list[Any], shards: Any) -> Iterator[Any]:
    """Each shard's result as it completes, its future released; a shard that fails ends
    the run naming it, the others cancelled."""
    from distributed import as_completed

    numbers = {future.key: number for number, future in enumerate(futures)}
    for future in as_completed(futures):
        try:
            result = future.result()
        except ParitySpecError:
            _cancel(client, futures)
            raise
        except Exception as error:
            _cancel(client, futures)
            shard = shards.shards[numbers[future.key]]
            raise ShardFailed(
                f"{shards.shown_file(shard.file)} row group {shard.row_group} failed: "
                f"{type(error).__name__}: {first_line(error)}"
            ) from error
        future.release()
        yield result


def _data_classes(client: Client, shared: Any, job: Job, shards: Any) -> Any:
    """The classes of every row's ground truth, read by the workers from the target column:
    a local run falls back to them when no model names its classes, and a shard may lack
    one."""
    futures = [
        client.submit(_shard_classes, shared, n, pure=False, key=f"classes-{n}-{job.token}")
        for n in range(len(shards.shards))
    ]
    found = None
    for classes in _as_they_come(client, futures, shards):
        found = merged_classes(found, classes)
    return found


def _cancel(client: Client, futures: list[Any]) -> None:
    with contextlib.suppress(Exception):
        client.cancel(futures)


def _worker_hosts(client: Client) -> dict[str, int]:
    """Workers per host, to share each host's cores among its workers."""
    hosts: dict[str, int] = {}
    for worker in client.scheduler_info()["workers"].values():
        host = worker.get("host", "")
        hosts[host] = hosts.get(host, 0) + 1
    return hosts


def _shipped(ctx: RunContext, model: LoadedModel) -> ShippedModel:
    kind = model.kind
    contents = _folder(ctx.artifact_dir(model.backend))
    files = {}
    for role, path in model.files.items():
        name = f"{role}{Path(path).suffix}" if Path(path).name not in contents else Path(path).name
        if name not in contents:
            contents[name] = Path(path).read_bytes()
        files[role] = name
    spec = ctx.spec.backends[model.backend]
    source = BACKENDS[kind].source(spec)
    sources = {source: _folder(ctx.artifact_dir(source))} if source else {}
    shipped = ShippedModel(
        model.backend, kind, dict(model.facts), model.inert, files, contents, sources
    )
    if capabilities(BACKENDS[kind]).reopen is not None:
        return shipped
    if _rebuilt_from_spec(kind, spec) and hasattr(model.predictor, "load_state_dict"):
        shipped.state = _state_bytes(model)
    else:
        shipped.skops = _skops_bytes(model)
    return shipped


def _rebuilt_from_spec(kind: str, spec: Any) -> bool:
    """Whether the backend makes its model from the spec alone (a factory), with no source
    model and no rows: a worker can then rebuild it and load the client's weights."""
    module = BACKENDS[kind]
    return module.source(spec) is None and not module.needs_data(spec)


def _state_bytes(model: LoadedModel) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(model.predictor.state_dict(), buffer)
    return buffer.getvalue()


def _folder(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _skops_bytes(model: LoadedModel) -> bytes:
    """The predictor as skops bytes, loaded back once here: a model that does not survive the
    trip is refused before any worker tries."""
    try:
        import skops.io as sio

        data = bytes(sio.dumps(model.predictor))
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        return data
    except Exception as error:
        raise InputError(
            f"backend {model.backend!r} (kind {model.kind}) cannot be sent to workers: "
            f"{type(error).__name__}: {first_line(error)}",
            hint="run it without --workers/--scheduler",
        ) from None


# --- worker side ------------------------------------------------------------------------

_LANDED: dict[str, tuple[dict[str, LoadedModel], RunContext]] = {}
"""Per run token, on a worker: its models, opened once."""
_SHARDS: dict[str, Any] = {}


def _from_data(ctx: RunContext, models: dict[str, LoadedModel]) -> bool:
    """Whether a check may take the classes from the data: no model nor the spec names them
    (see `checks.classes.model_classes`)."""
    return ctx.spec.model.classes is None and any(
        m.facts.get("classes") is None for m in models.values()
    )


def _shard_classes(job: Job, number: int) -> Any:
    spec = job.spec
    return shard_classes(_shards(job), number, job.batch_size, spec.data, spec.model)


def _evaluate_shard(job: Job, number: int, classes: Any) -> ShardResult:
    """`classes`: those of every shard's ground truth, given to each batch as a local run
    gives its rows' (None: no check needs them)."""
    try:
        return _evaluated(job, number, classes)
    except ModuleNotFoundError as error:  # this worker's environment is not the client's
        raise InputError(
            f"Dask worker {_worker_address()} lacks the library {error.name!r}",
            hint="install on every worker what the client has (pip install parityspec with "
            "the extras its models need)",
        ) from None


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "(unknown)"


def _evaluated(job: Job, number: int, classes: Any) -> ShardResult:
    started = time.perf_counter()
    models = _landed(job)
    shards = _shards(job)
    summaries: dict[str, Any] = {}
    rows = 0
    spec = job.spec
    for first_row, batch in shard_rows(
        shards, number, job.batch_size, spec.data, spec.model, job.text_columns
    ):
        rows += len(batch)
        if classes is not None:
            batch = replace(batch, classes=classes)
        outputs = {
            name: _predicted(models[name], batch.features, spec.backends[name].serve_batch_size)
            for name in models
        }
        for check, tolerances in job.checks:
            reference, candidate = (
                Predictions(
                    b, outputs[b], inert=models[b].inert, classes=models[b].facts.get("classes")
                )
                for b in check.between
            )
            inputs = CheckInputs(spec, batch, reference, candidate, models, first_row)
            module: Any = CHECKS[check.type]  # a ShardedCheck: see `sharded`
            summary = module.summarize(check, tolerances, inputs)
            summaries[check.id] = (
                summary if check.id not in summaries else summaries[check.id].merge(summary)
            )
    return ShardResult(rows, summaries, time.perf_counter() - started)


def _predicted(model: LoadedModel, batch: Any, serve_batch_size: int | None) -> dict[str, Any]:
    import numpy as np

    parts = list(served(BACKENDS[model.kind], model, batch, serve_batch_size))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _shards(job: Job) -> Any:
    """The data's shards on this worker: their footers read once per run."""
    if job.token not in _SHARDS:
        _SHARDS.clear()
        _SHARDS[job.token] = open_data_shards(job.spec.data, Path(job.spec_dir))
    return _SHARDS[job.token]


def _landed(job: Job) -> dict[str, LoadedModel]:
    """The job's models on this worker, opened the first time a shard needs them."""
    if job.token in _LANDED:
        return _LANDED[job.token][0]
    for token in list(_LANDED):  # an earlier run's models: this worker serves one run
        _, old = _LANDED.pop(token)
        shutil.rmtree(old.work_dir, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="parityspec-worker-"))
    atexit.register(shutil.rmtree, folder, True)  # the last run's, when the worker ends
    ctx = RunContext(job.spec, Path(job.spec_dir), folder, folder / "work", job.trust_models)
    models = {name: _land(ctx, shipped, job) for name, shipped in job.models.items()}
    _LANDED[job.token] = (models, ctx)
    return models


def _land(ctx: RunContext, shipped: ShippedModel, job: Job) -> LoadedModel:
    for backend, contents in {**shipped.sources, shipped.name: shipped.contents}.items():
        folder = ctx.artifact_dir(backend)
        for name, data in contents.items():
            (folder / name).write_bytes(data)
    folder = ctx.artifact_dir(shipped.name)
    files = {role: folder / name for role, name in shipped.files.items()}
    model = LoadedModel(shipped.name, shipped.kind, None, files, shipped.facts, shipped.inert)
    if shipped.state is not None:
        import io

        import torch

        spec = job.spec.backends[shipped.name]
        rebuilt = BACKENDS[shipped.kind].make(ctx, shipped.name, spec, None, None)
        state = torch.load(io.BytesIO(shipped.state), weights_only=True)
        rebuilt.predictor.load_state_dict(state)  # the client's weights, whatever the factory drew
        return rebuilt
    if shipped.skops is not None:
        import skops.io as sio

        # The client loaded this model under the spec's trust rules: its types are trusted.
        trusted = sio.get_untrusted_types(data=shipped.skops)
        model.predictor = sio.loads(shipped.skops, trusted=trusted)
        return model
    spec = job.spec.backends[shipped.name]
    if "intra_op_threads" in type(spec).model_fields and not spec.intra_op_threads:
        # ONNX Runtime sizes its pool to the whole host otherwise: one pool per worker.
        spec = spec.model_copy(update={"intra_op_threads": job.threads})
    reopen = capabilities(BACKENDS[shipped.kind]).reopen
    assert reopen is not None
    return reopen(ctx, model, spec)


def shard_pass(client: Client, placement: Placement) -> ShardPass:
    """The executor's hook: the pass over the data, run on the cluster."""

    def run(
        plan: Plan, ctx: RunContext, state: RunState, restore: set[str]
    ) -> tuple[dict[str, StepOutcome], set[str]]:
        return evaluate_on_workers(client, plan, ctx, state, restore, placement)

    return run
