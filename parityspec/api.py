"""The library API behind the command line: validate, plan, prepare, run.

Every function raises a `ParitySpecError` (`SpecError`, `InputError`, ...) for bad input, as
the CLI's exit code 2; a run's own verdict, errors of its steps included, is in its
`RunOutcome`. In the main thread, SIGINT and SIGTERM during `run` raise `Interrupted`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parityspec.backends.context import RunContext
from parityspec.data.sources import open_data_shards, require_data_fits, streams
from parityspec.errors import ExitCode, InputError
from parityspec.loading import file_sha256
from parityspec.plan.compile import compile_plan
from parityspec.plan.graph import Plan, Step
from parityspec.report.build import build_report, now
from parityspec.report.diff import ReportDiff, baseline_section, diff_reports, load_baseline
from parityspec.report.render import compile_templates, write_reports
from parityspec.results import RunState, StepOutcome, exit_code
from parityspec.run.cache import StepCache, default_cache_dir
from parityspec.run.distributed import Placement, cluster, shard_pass, unshardable_checks
from parityspec.run.executor import execute
from parityspec.run.interrupts import stop_signals_raise
from parityspec.run.steps import HANDLERS
from parityspec.spec.load import LoadedSpec, load_spec
from parityspec.spec.locate import did_you_mean
from parityspec.spec.matrix import sweep_of
from parityspec.spec.profiles import BUILTIN_PROFILES


@dataclass(frozen=True)
class RunOptions:
    profile: str | None = None
    checks: tuple[str, ...] = ()
    rows: int | None = None
    batch_size: int | None = None
    out: Path | None = None
    trust_models: bool = False
    use_cache: bool = True
    cache_dir: Path | None = None
    timeout: float | None = None
    """Seconds the steps may take in all; on expiry the running step errors, the rest are
    skipped, and the reports are written for what finished."""
    rebench: bool = False
    """Run the checks again (a benchmark measures again) rather than restore their results
    cached for the same inputs."""
    baseline: Path | None = None
    """A report.json of an earlier run: the new report is compared with it as `diff` does,
    the comparison goes into the reports, and a regression makes the exit code at least 1."""
    threshold: float = 0.0
    """`diff`'s --threshold for the baseline: how far a gated figure may move toward its
    limit (absolute, in the figure's units) before it counts as worse."""
    fail_fast: bool = False
    """After the first check that fails or errors (or any step that errors), skip the
    remaining steps with the reason "--fail-fast"; the reports are still written."""
    workers: int | None = None
    """Run the pass over the data on a local Dask cluster of this many worker processes."""
    scheduler: str | None = None
    """Run the pass over the data on the Dask cluster whose scheduler is at this address."""

    @property
    def placement(self) -> Placement | None:
        """Where the pass over the data runs; None: here."""
        if self.workers is None and self.scheduler is None:
            return None
        return Placement(self.workers, self.scheduler)


@dataclass
class RunOutcome:
    report: dict[str, Any]
    state: RunState
    """Every step's outcome. Predictions in it were read from the run's scratch folder,
    which is gone once `run` returns: the report holds what the checks made of them."""
    exit_code: ExitCode
    """The run's, or 1 when it passed and the comparison with the baseline failed."""
    out_dir: Path
    written: list[Path]
    baseline: ReportDiff | None = None


def validate(spec_path: str | Path) -> LoadedSpec:
    """The spec checked against the schema and the semantic rules; loads no model."""
    return load_spec(spec_path)


def plan(spec_path: str | Path, checks: tuple[str, ...] = ()) -> Plan:
    """The steps a run would execute (only what `checks` need, if given); runs nothing."""
    return plan_for(validate(spec_path), checks)


def plan_for(loaded: LoadedSpec, checks: tuple[str, ...] = ()) -> Plan:
    checks = _with_combinations(loaded, checks)
    _require_known_checks(loaded, checks)
    return compile_plan(loaded.spec, list(checks) or None, loaded.directory)


def _with_combinations(loaded: LoadedSpec, checks: tuple[str, ...]) -> tuple[str, ...]:
    """A swept check's own id (`--check int8-parity`) selects every combination of it."""
    sweep = sweep_of(loaded.spec)
    rows = {c.origin: [i for i, _ in c.rows] for c in sweep.checks} if sweep else {}
    return tuple(expanded for c in checks for expanded in rows.get(c, [c]))


@dataclass(frozen=True)
class Baseline:
    """The report a run is compared with, read (and hashed) before any step runs."""

    file: str
    sha256: str
    report: dict[str, Any]


@dataclass(frozen=True)
class PreparedRun:
    """A spec loaded, checked against memory and planned, once: what `run` executes."""

    loaded: LoadedSpec
    plan: Plan
    options: RunOptions
    out_dir: Path
    templates: Path | None
    baseline: Baseline | None = None

    @property
    def step_ids(self) -> list[str]:
        """The steps the executor will run and report, in order (not the final report)."""
        return [s.id for s in self.plan.steps if s.action in HANDLERS]


def prepare(spec_path: str | Path, options: RunOptions = RunOptions()) -> PreparedRun:
    """Load, guard memory, plan, and check the report folder and templates; runs no step."""
    loaded = _with_options(load_spec(spec_path), options)
    if not streams(loaded.spec, loaded.directory):
        # Before planning: the plan hashes the data file, which a file larger than memory
        # would make slow for nothing.
        require_data_fits(loaded.spec.data, loaded.spec.model, loaded.directory)
    plan = plan_for(loaded, options.checks)
    out_dir = (options.out or loaded.directory / loaded.spec.report.dir).resolve()
    _require_writable_folder(out_dir, "--out" if options.out else "report.dir")
    templates = (
        loaded.directory / loaded.spec.report.templates if loaded.spec.report.templates else None
    )
    compile_templates(loaded.spec.report.formats, templates)
    if options.placement is not None:
        _require_shardable(loaded, plan, options.placement)
    baseline = None
    if options.baseline is not None:
        report = load_baseline(options.baseline)
        baseline = Baseline(str(options.baseline), file_sha256(options.baseline), report)
    return PreparedRun(loaded, plan, options, out_dir, templates, baseline)


def run(
    spec: str | Path | PreparedRun,
    options: RunOptions = RunOptions(),
    on_step: Callable[[StepOutcome], None] | None = None,
    on_start: Callable[[Step], None] | None = None,
) -> RunOutcome:
    """Run a spec (a path, with `options`, or what `prepare` made of one). In the main
    thread, SIGINT and SIGTERM raise `Interrupted` (a KeyboardInterrupt naming the running
    step) and write no report."""
    with stop_signals_raise():
        prepared = spec if isinstance(spec, PreparedRun) else prepare(spec, options)
        return _execute(prepared, on_step, on_start)


def _execute(
    prepared: PreparedRun,
    on_step: Callable[[StepOutcome], None] | None,
    on_start: Callable[[Step], None] | None,
) -> RunOutcome:
    loaded, options = prepared.loaded, prepared.options
    root = options.cache_dir or default_cache_dir()
    cache = StepCache(root, prepared.plan) if options.use_cache else None
    with contextlib.ExitStack() as stack:
        work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="parityspec-run-"))
        ctx = RunContext(
            loaded.spec,
            loaded.directory,
            prepared.out_dir,
            Path(work_dir),
            options.trust_models,
            root,
        )
        elsewhere = None
        if (placement := options.placement) is not None:
            client = stack.enter_context(cluster(placement))
            elsewhere = shard_pass(client, placement)
        started = now()
        state = execute(
            prepared.plan,
            ctx,
            on_step,
            cache,
            on_start=on_start,
            timeout=options.timeout,
            rebench=options.rebench,
            stop_after=_first_failure if options.fail_fast else None,
            shard_pass=elsewhere,
        )
        report = build_report(loaded, state, ctx, started, now())
    code, compared = exit_code(state), None
    if prepared.baseline is not None:
        compared = diff_reports(prepared.baseline.report, report, options.threshold)
        report["baseline"] = baseline_section(
            compared, prepared.baseline.file, prepared.baseline.sha256
        )
        if compared.failing and code == ExitCode.PASSED:  # 1 is worse than 0 only
            code = ExitCode.CHECK_FAILED
    formats = list(loaded.spec.report.formats)
    written = write_reports(report, ctx.out_dir, formats, prepared.templates)
    return RunOutcome(report, state, code, ctx.out_dir, written, compared)


def _first_failure(outcome: StepOutcome) -> bool:
    """--fail-fast: a step that errored, or a check that ran and did not pass."""
    if outcome.status == "error":
        return True
    return outcome.step.action == "check" and outcome.value.status in ("failed", "error")


def _with_options(loaded: LoadedSpec, options: RunOptions) -> LoadedSpec:
    spec = loaded.spec
    if options.profile:
        known = set(BUILTIN_PROFILES) | set(spec.profiles)
        if options.profile not in known:
            raise InputError(
                f"--profile: no profile named {options.profile!r}",
                hint=did_you_mean(options.profile, known) or f"known: {', '.join(sorted(known))}",
            )
        spec = spec.model_copy(
            update={
                "checks": [c.model_copy(update={"profile": options.profile}) for c in spec.checks]
            }
        )
    data_updates = {
        k: v
        for k, v in (("rows", options.rows), ("batch_size", options.batch_size))
        if v is not None
    }
    if data_updates:
        spec = spec.model_copy(update={"data": spec.data.model_copy(update=data_updates)})
    return LoadedSpec(spec, loaded.path, loaded.shown, loaded.source)


def _require_shardable(loaded: LoadedSpec, plan: Plan, placement: Placement) -> None:
    """Before anything runs: the checks a run on workers cannot compute, and data it
    cannot read shard by shard."""
    planned = {s.subject for s in plan.steps if s.action == "check"}
    refused = unshardable_checks([c for c in loaded.spec.checks if c.id in planned])
    if refused:
        listed = ", ".join(f"{c.id} ({c.type})" for c in refused)
        raise InputError(
            f"{placement.describe()} cannot compute {listed}: these checks do not merge "
            "across shards yet",
            hint="run without --workers/--scheduler, or choose the other checks with --check",
        )
    if not streams(loaded.spec, loaded.directory):
        raise InputError(
            "a run on workers reads the data shard by shard: it cannot split the rows or "
            "train a backend on them",
            hint="drop data.split and train beforehand, or run without --workers/--scheduler",
        )
    open_data_shards(loaded.spec.data, loaded.directory)  # CSV and NPZ are refused here


def _require_known_checks(loaded: LoadedSpec, checks: tuple[str, ...]) -> None:
    known = {c.id for c in loaded.spec.checks}
    for check in checks:
        if check not in known:
            raise InputError(
                f"--check: no check with id {check!r} in {loaded.shown}",
                hint=did_you_mean(check, known) or f"known: {', '.join(sorted(known))}",
            )


def _require_writable_folder(folder: Path, option: str) -> None:
    """Before any step runs: a report folder that cannot be written would waste the run."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "the report folder" if existing == folder else f"its parent {existing}"
        raise InputError(
            f"{option}: {folder} cannot be a folder: {what} is a file",
            hint="point it at a folder, or remove the file",
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(
            f"{option}: cannot write reports under {folder} ({error.strerror or error})",
            hint="choose a folder you can write to",
        ) from None
