"""The command line: parse options, call the library API, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TextIO, TypedDict, TypeVar

import click

from parityspec import __version__, cli_channel
from parityspec.errors import ExitCode, ParitySpecError, first_line
from parityspec.report.messages import TERMINAL_CHARS, clip
from parityspec.run.interrupts import Interrupted, stop_handled

if TYPE_CHECKING:
    from parityspec.api import PreparedRun, RunOptions, RunOutcome
    from parityspec.plan.graph import Step
    from parityspec.results import StepOutcome

P = ParamSpec("P")
R = TypeVar("R")

EPILOG_RUN = """\b
Example:
  parityspec run specs/churn.yaml
  parityspec run specs/churn.yaml --check onnx-parity --profile strict --out /tmp/r
  parityspec run specs/ --fail-fast
  parityspec run specs/iris.yaml specs/churn.yaml --format json

\b
Exit codes: 0 all checks passed, 1 a check failed, 2 invalid spec, input or
usage, 3 a step errored while running."""


def _guarded(command: Callable[P, R]) -> Callable[P, R]:
    """User errors become one line on stderr and their exit code; `--debug` shows tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except Interrupted as interrupt:
            stop_handled()
            click.echo(f"error: {interrupt.describe()}", err=True)
            sys.exit(interrupt.exit_code)
        except ParitySpecError as error:
            if debug:
                traceback.print_exc()
            for line in error.lines():
                click.echo(f"error: {clip(line, TERMINAL_CHARS)}", err=True)
            sys.exit(int(error.exit_code))
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as error:
            if debug:
                traceback.print_exc()
            message = clip(f"{type(error).__name__}: {first_line(error)}", TERMINAL_CHARS)
            click.echo(f"error: {message} (rerun with --debug for a traceback)", err=True)
            sys.exit(int(ExitCode.STEP_ERROR))

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="parityspec")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option("-v", "--verbose", count=True, help="Log to stderr: -v info, -vv debug.")
def cli(debug: bool, verbose: int) -> None:
    """Prove that a converted model still predicts what the original predicts.

    \b
    Example:
      parityspec validate specs/*.yaml
      parityspec plan specs/churn.yaml
      parityspec run specs/churn.yaml
      parityspec -v run specs/churn.yaml
    """
    if verbose:
        _configure_logging(logging.INFO if verbose == 1 else logging.DEBUG)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _configure_logging(level: int) -> None:
    """parityspec's loggers only: libraries (torch, ONNX) stay quiet. The level is set on the
    `parityspec` logger itself because a step may raise the root logger's level."""
    logger = logging.getLogger("parityspec")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers = [h for h in logger.handlers if not isinstance(h, _StderrHandler)]
    logger.addHandler(handler)
    logger.setLevel(level)


class _Validated(TypedDict):
    """One spec in `validate --format json`."""

    file: str
    valid: bool
    problems: list[dict[str, str | int]]


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per spec, for machines.",
)
@_guarded
def validate(specs: tuple[Path, ...], fmt: str) -> None:
    """Check specs against the schema and semantic rules; loads no model.

    SPECS are spec files and folders, as for `run`.

    \b
    Example:
      parityspec validate specs/*.yaml
      parityspec validate specs/
      parityspec validate --format json specs/churn.yaml
    """
    from parityspec.errors import SpecError
    from parityspec.spec.load import load_spec

    results: list[_Validated] = []
    failed = False
    for path in spec_files(specs)[0]:
        try:
            load_spec(path)
            results.append({"file": str(path), "valid": True, "problems": []})
        except SpecError as error:
            failed = True
            results.append(
                {
                    "file": str(path),
                    "valid": False,
                    "problems": [p.as_dict() for p in error.problems],
                }
            )
            if fmt == "text":
                for line in error.lines():
                    click.echo(line, err=True)
    if fmt == "json":
        click.echo(json.dumps(results, indent=2, sort_keys=True))
    else:
        valid = sum(r["valid"] for r in results)
        click.echo(f"{valid} of {len(results)} spec(s) valid", err=failed)
    sys.exit(int(ExitCode.INVALID_INPUT if failed else ExitCode.PASSED))


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "json"]),
    default="text",
    show_default=True,
    help="json: the steps with their inputs and keys, for machines.",
)
@click.option("--check", "checks", multiple=True, metavar="ID", help="Only what these need.")
@_guarded
def plan(spec: Path, fmt: str, checks: tuple[str, ...]) -> None:
    """Show the steps a run would execute; runs nothing.

    \b
    Example:
      parityspec plan specs/churn.yaml
      parityspec plan specs/churn.yaml --format mermaid --check int8-parity
      parityspec plan specs/churn.yaml --format json
    """
    from parityspec.api import plan_for
    from parityspec.plan.render import as_mermaid, as_text
    from parityspec.spec.load import load_spec

    loaded = load_spec(spec)
    graph = plan_for(loaded, checks)
    if fmt == "json":
        from parityspec.cli_output import echo_json, plan_json

        echo_json(plan_json(graph, loaded.spec.name, spec))
        return
    click.echo(as_mermaid(graph) if fmt == "mermaid" else as_text(graph, loaded.spec.name))


@cli.command(epilog=EPILOG_RUN)
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--profile",
    help="Use this tolerance profile for every check.",
    envvar="PARITYSPEC_PROFILE",
    show_envvar=True,
)
@click.option(
    "--check",
    "checks",
    multiple=True,
    metavar="ID",
    help="Run only these checks.",
    envvar="PARITYSPEC_CHECK",
    show_envvar=True,
)
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    help="Use at most N rows of the data.",
    envvar="PARITYSPEC_ROWS",
    show_envvar=True,
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=1_000_000),
    help="Rows per batch.",
    envvar="PARITYSPEC_BATCH_SIZE",
    show_envvar=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Report directory (one spec only).",
    envvar="PARITYSPEC_OUT",
    show_envvar=True,
)
@click.option(
    "--trust-models",
    is_flag=True,
    help="Allow model files that run code when loaded (pickle, joblib).",
    envvar="PARITYSPEC_TRUST_MODELS",
    show_envvar=True,
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every step; store nothing in the cache.",
    envvar="PARITYSPEC_NO_CACHE",
    show_envvar=True,
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    help="Step cache [default: $XDG_CACHE_HOME/parityspec or ~/.cache/parityspec].",
    envvar="PARITYSPEC_CACHE_DIR",
    show_envvar=True,
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Bound the steps' total time (of each spec): on expiry the running step errors "
    "(exit 3), the rest are skipped, and the reports are written for what finished.",
    envvar="PARITYSPEC_TIMEOUT",
    show_envvar=True,
)
@click.option(
    "--rebench",
    is_flag=True,
    help="Run every check again (a benchmark measures again) instead of restoring its "
    "result cached for the same inputs.",
    envvar="PARITYSPEC_REBENCH",
    show_envvar=True,
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="After the first check that fails or errors, skip the spec's remaining steps "
    "(its reports are still written) and any specs after it.",
    envvar="PARITYSPEC_FAIL_FAST",
    show_envvar=True,
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    metavar="REPORT_JSON",
    help="One spec: compare the new report with this earlier report.json as `diff` does; "
    "the comparison goes into the reports, and a regression makes the exit code at least 1.",
    envvar="PARITYSPEC_BASELINE",
    show_envvar=True,
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="With --baseline: as for `diff`, how far a gated figure may move toward its limit.",
    envvar="PARITYSPEC_THRESHOLD",
    show_envvar=True,
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=1024),
    metavar="N",
    help="Run the pass over the data on a local Dask cluster of N worker processes (needs "
    "parityspec[dask] and Parquet data); the report is the one a local run writes.",
    envvar="PARITYSPEC_WORKERS",
    show_envvar=True,
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run the pass over the data on the Dask cluster whose scheduler is at ADDRESS "
    "(tcp://host:8786); every worker must reach the data's path and have parityspec.",
    envvar="PARITYSPEC_SCHEDULER",
    show_envvar=True,
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one document on stdout (each spec's verdict, checks and reports); the "
    "progress lines go to stderr.",
    envvar="PARITYSPEC_FORMAT",
    show_envvar=True,
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print only the verdict lines.",
    envvar="PARITYSPEC_QUIET",
    show_envvar=True,
)
@_guarded
def run(
    specs: tuple[Path, ...],
    profile: str | None,
    checks: tuple[str, ...],
    rows: int | None,
    batch_size: int | None,
    out: Path | None,
    trust_models: bool,
    no_cache: bool,
    cache_dir: Path | None,
    timeout: float | None,
    rebench: bool,
    fail_fast: bool,
    baseline: Path | None,
    threshold: float,
    workers: int | None,
    scheduler: str | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Run the checks of specs and write each spec's reports.

    SPECS are spec files and folders; a folder means every spec file under it (a YAML or
    JSON file whose top-level `parityspec` key holds the version), in sorted order. With
    several specs each writes to its own report.dir, one verdict line each and a total line
    are printed, and the exit code is the worst (2, then 3, then 1).

    On a terminal a live line shows the running step; elsewhere each step prints one line.
    With $GITHUB_STEP_SUMMARY set, the Markdown report is appended to it.
    """
    from parityspec.api import RunOptions
    from parityspec.errors import InputError

    options = RunOptions(
        profile,
        tuple(checks),
        rows,
        batch_size,
        out,
        trust_models,
        not no_cache,
        cache_dir,
        timeout,
        rebench,
        baseline,
        threshold,
        fail_fast,
        workers,
        scheduler,
    )
    if workers is not None and scheduler is not None:
        raise InputError(
            f"{_given('workers')} starts a cluster and {_given('scheduler')} names one",
            hint="give one of them",
        )
    paths, expanded = spec_files(specs)
    several = len(paths) > 1 or expanded
    if several and out is not None:
        raise InputError(
            f"{_given('out')} names one report folder, and several specs were given",
            hint=f"{_dropped('out')}: each spec writes to its own report.dir",
        )
    if several and baseline is not None:
        raise InputError(
            f"{_given('baseline')} names one spec's report.json, and several specs were given",
            hint="run each spec with its own --baseline, or `parityspec diff` the reports",
        )
    if not several and fmt == "text":
        outcome = _run_one(_prepared(paths[0], options), quiet, err=False, label="")
        sys.exit(int(outcome.exit_code))
    _run_many(paths, options, quiet, fail_fast, fmt == "json", several)


def _given(name: str) -> str:
    """How the user gave an option: `--out`, or `PARITYSPEC_OUT (--out)` from the environment."""
    context = click.get_current_context()
    flag = "--" + name.replace("_", "-")
    if context.get_parameter_source(name) is click.core.ParameterSource.ENVIRONMENT:
        return f"{_env_var(context, name)} ({flag})"
    return flag


def _dropped(name: str) -> str:
    given = _given(name)
    return f"unset {given.split()[0]}" if given.startswith("PARITYSPEC_") else f"drop {given}"


def _env_var(context: click.Context, name: str) -> str:
    option = next(p for p in context.command.params if p.name == name)
    return str(option.envvar)


def _prepared(path: Path, options: RunOptions) -> PreparedRun:
    from parityspec.api import prepare

    return prepare(path, options)


def _run_one(prepared: PreparedRun, quiet: bool, err: bool, label: str) -> RunOutcome:
    """Run one prepared spec, print its steps and verdict, append its Markdown summary.
    `label` follows each step id sent to the supervisor (which spec, when there are several)."""
    from parityspec.api import run as run_spec
    from parityspec.cli_output import append_step_summary, print_outcome, step_reporter

    timeout = prepared.options.timeout
    started: list[str] = []

    def on_start(step: Step) -> None:
        if timeout is not None and not started:  # each spec's --timeout starts anew
            cli_channel.send("deadline", str(timeout))
        started.append(step.id)
        cli_channel.send("start", step.id + label)

    planned = [step.id for step in prepared.plan.steps]  # counted as `plan` lists them
    with step_reporter(planned, quiet, err=err) as show:

        def on_step(outcome: StepOutcome) -> None:
            cli_channel.send("done", outcome.step.id + label)
            show(outcome)

        outcome = run_spec(prepared, on_step=on_step, on_start=on_start)
    print_outcome(outcome, quiet, err)
    append_step_summary(outcome)
    if click.get_current_context().find_root().params.get("debug"):
        for failed in (o for o in outcome.state.outcomes.values() if o.traceback):
            click.echo(f"traceback of {failed.step.id}:\n{failed.traceback}", err=True)
    return outcome


def _run_many(
    paths: list[Path],
    options: RunOptions,
    quiet: bool,
    fail_fast: bool,
    as_json: bool,
    several: bool,
) -> None:
    """Every spec is prepared (loaded, planned, its report folder checked) before any step
    runs, so an invalid one is known at once; then they run in order."""
    from parityspec.cli_output import (
        SpecResult,
        echo_json,
        print_spec_line,
        run_json,
        total_line,
        worst,
    )

    def refused(path: Path, error: ParitySpecError) -> SpecResult:
        lines = [clip(line, TERMINAL_CHARS) for line in error.lines()]
        for line in lines:
            click.echo(f"error: {line}", err=True)
        return SpecResult(path, error=lines, error_code=error.exit_code)

    prepared: list[PreparedRun | SpecResult] = []
    for path in paths:
        try:
            prepared.append(_prepared(path, options))
        except ParitySpecError as error:
            prepared.append(refused(path, error))
    stop = fail_fast and any(isinstance(p, SpecResult) for p in prepared)
    results: list[SpecResult] = []
    for number, (path, item) in enumerate(zip(paths, prepared, strict=True), 1):
        if isinstance(item, SpecResult) or stop:
            result = item if isinstance(item, SpecResult) else SpecResult(path)
            print_spec_line(result, err=as_json)
            results.append(result)
            continue
        if not quiet and several:
            click.echo(f"spec {number} of {len(paths)}: {path}", err=as_json)
        try:  # an error the run raises rather than reports ends this spec, not the others
            outcome = _run_one(item, quiet, err=as_json, label=f" of {path}" if several else "")
        except ParitySpecError as error:
            results.append(refused(path, error))
            print_spec_line(results[-1], err=as_json)
        else:
            results.append(SpecResult(path, outcome))
        stop = fail_fast and results[-1].exit_code != ExitCode.PASSED
    skipped = sum(1 for r in results if r.verdict == "skipped")
    if skipped:
        click.echo(f"--fail-fast: skipped {skipped} spec(s) after the first failure", err=True)
    if several:
        click.echo(total_line(results), err=as_json)
    if as_json:
        echo_json(run_json(results))
    sys.exit(int(worst([c for c in (r.exit_code for r in results) if c is not None])))


SPEC_SUFFIXES = (".yaml", ".yml", ".json")
SPEC_FILE_LIMIT = 1 << 20
"""Larger files under a folder are not read to find specs: a spec is a few KiB."""
_TOP_LEVEL_KEY = re.compile(r"""^(["']?)parityspec\1[ \t]*:[ \t]*[^\s#{\[]""", re.MULTILINE)
"""`parityspec: 1` at the start of a line: a scalar, unlike report.json's `parityspec` mapping."""


def spec_files(paths: tuple[Path, ...]) -> tuple[list[Path], bool]:
    """Files as given; a folder as every spec file under it, sorted by path (hidden folders
    and links to folders are not entered), and whether a folder held any. A folder that
    holds none stays as given, for the loader to refuse like any path that is not a file. A
    file named twice runs once."""
    found: list[Path] = []
    expanded = False
    for path in paths:
        inside = _specs_under(path) if path.is_dir() else []
        expanded = expanded or bool(inside)
        found += inside or [path]
    seen: set[str] = set()
    unique = []
    for path in found:
        real = os.path.realpath(path)  # unlike Path.resolve, never raises on a symlink loop
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique, expanded


def _specs_under(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(root, n) for n in names if Path(n).suffix in SPEC_SUFFIXES]
    return sorted((f for f in files if _is_spec(f)), key=lambda f: f.relative_to(folder).parts)


def _is_spec(path: Path) -> bool:
    """A regular file of at most SPEC_FILE_LIMIT bytes with a top-level `parityspec` key
    holding a scalar (the spec version; a report's holds a mapping): a YAML line starting
    with it, or a key of a JSON object (anywhere in JSON that does not parse: the loader
    then says why)."""
    try:
        if not path.is_file() or path.stat().st_size > SPEC_FILE_LIMIT:
            return False
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    if path.suffix != ".json":
        return _TOP_LEVEL_KEY.search(text) is not None
    try:
        document = json.loads(text)
    except ValueError:
        return re.search(r'"parityspec"\s*:\s*[^\s{\[]', text) is not None
    return isinstance(document, dict) and not isinstance(
        document.get("parityspec", {}), dict | list
    )


@cli.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown: a table for a pull-request comment; json: every check, for machines.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="A gated figure counts as worse when it moves toward its limit by more than this "
    "(absolute, in the figure's units).",
)
@_guarded
def diff(old: Path, new: Path, fmt: str, threshold: float) -> None:
    """Compare two report.json files: verdicts, figures, new and vanished checks.

    \b
    Example:
      parityspec diff main/report.json pr/report.json
      parityspec diff old.json new.json --format markdown --threshold 0.001
      parityspec diff old.json new.json --format json

    \b
    Exit codes: 0 nothing got worse, 1 a check stopped passing or a gated
    figure moved toward its limit by more than --threshold, 2 unreadable input.
    """
    from parityspec.report.diff import as_markdown, as_text, diff_reports, load_report

    result = diff_reports(load_report(old), load_report(new), threshold)
    if fmt == "json":
        from parityspec.cli_output import diff_json, echo_json

        echo_json(diff_json(result))
    else:
        click.echo(as_markdown(result) if fmt == "markdown" else as_text(result))
    sys.exit(int(ExitCode.CHECK_FAILED if result.failing else ExitCode.PASSED))


@cli.command()
@click.argument("model")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the spec to this file (paths in it are relative to its folder).",
)
@click.option(
    "--data", type=click.Path(path_type=Path), help="Rows to compare on: CSV, Parquet, NPZ."
)
@click.option("--target", metavar="COLUMN", help="The ground truth in --data; adds metric checks.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME:SHAPE",
    help="A tensor input without the batch axis, e.g. image:3,32,32 (or tokens:16:int64).",
)
@click.option(
    "--trust-models",
    is_flag=True,
    help="Allow model files that can run code when loaded (joblib, pickle, skops with unknown "
    "types); the spec then marks the model `trusted: true`.",
)
@click.option(
    "--state-dict",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A torch factory's saved weights (torch.save of its state_dict), loaded into the "
    "module the factory builds.",
)
@_guarded
def init(
    model: str,
    output: Path | None,
    data: Path | None,
    target: str | None,
    inputs: tuple[str, ...],
    trust_models: bool,
    state_dict: Path | None,
) -> None:
    """Write a first spec for a model: a scikit-learn file, an ONNX file or a torch factory.

    \b
    Example:
      parityspec init model.skops --data churn.csv --target churned -o specs/model.yaml
      parityspec init model.joblib --trust-models --data rows.parquet
      parityspec init model.onnx -o specs/model.yaml
      parityspec init nets.py:small_cnn --input image:3,32,32
      parityspec init nets.py:tabular_mlp --state-dict mlp.pt --data rows.csv --target y
    """
    from parityspec.errors import InputError
    from parityspec.scaffold import InitOptions, scaffold

    if output is not None and output.exists():
        raise InputError("will not overwrite an existing file", file=str(output))
    spec_dir = output.parent if output else Path.cwd()
    options = InitOptions(model, spec_dir, data, target, tuple(inputs), trust_models, state_dict)
    try:
        result = scaffold(options)
    except (Interrupted, Exception):
        raise
    except BaseException as error:  # SystemExit or KeyboardInterrupt from the user's factory
        from parityspec.errors import StepError

        raise StepError(
            f"{model}: loading the model raised {type(error).__name__}"
            f"({getattr(error, 'code', '')!r}); user code may not end the process"
        ) from None
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        click.echo(result.yaml(), nl=False)
        return
    from parityspec.artifacts import write_text

    write_text(output, result.yaml(_schema_from(output.parent)))
    click.echo(f"wrote {output}; check it with `parityspec validate {output}`", err=True)


def _schema_from(spec_dir: Path) -> str | None:
    """The project's committed schema (`parityspec schema --write`), relative to `spec_dir`."""
    schema = Path("schemas/parityspec.schema.json").resolve()
    if not schema.is_file():
        return None
    return os.path.relpath(schema, spec_dir.resolve())


@cli.command()
@click.option(
    "--check",
    "check_file",
    is_flag=True,
    help="Exit 1 when the committed schema differs from the models.",
)
@click.option("--write", is_flag=True, help="Write the schema file.")
@click.option("--reference", is_flag=True, help="Print the spec reference in Markdown instead.")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    default=Path("schemas/parityspec.schema.json"),
    show_default=True,
    help="The committed schema file.",
)
@_guarded
def schema(check_file: bool, write: bool, reference: bool, path: Path) -> None:
    """Print the JSON Schema of specs, generated from the models.

    Printed, it covers installed plugins too (named on stderr); the committed file, written
    with --write and compared with --check, covers the built-in backends and checks only.

    \b
    Example:
      parityspec schema --check
      parityspec schema --write
    """
    from parityspec.spec.composition import registries
    from parityspec.spec.schema import schema_text

    printing = not (check_file or write)
    for plugin in registries(plugins=True).plugins if printing else ():
        click.echo(f"includes plugin {plugin}", err=True)
    if reference:
        from parityspec.spec.reference import reference_markdown

        click.echo(reference_markdown(plugins=printing), nl=False)
        return
    text = schema_text(plugins=printing)
    if check_file:
        current = path.read_text() if path.is_file() else None
        if current != text:
            click.echo(f"{path} is stale: run `parityspec schema --write`", err=True)
            sys.exit(1)
        click.echo(f"{path} is up to date")
    elif write:
        from parityspec.artifacts import write_text

        write_text(path, text)
        click.echo(f"wrote {path}")
    else:
        click.echo(text, nl=False)


@cli.group()
def cache() -> None:
    """Manage the step cache.

    Its folder carries a CACHEDIR.TAG written by parityspec (backup tools skip such
    folders); commands that delete act only inside a folder that has it.

    \b
    Example:
      parityspec cache verify
      parityspec cache clear
    """


@cache.command("clear")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="The cache to clear.")
@_guarded
def cache_clear(cache_dir: Path | None) -> None:
    """Delete every cached step output.

    Only parityspec's entries go: a folder without parityspec's CACHEDIR.TAG is refused
    (exit 2) and nothing in it is touched, unless it holds nothing but parityspec's
    entries (a cache written before the tag existed; a run that stores a step tags it).

    \b
    Example:
      parityspec cache clear
      PARITYSPEC_CACHE_DIR=/tmp/c parityspec cache clear
    """
    from parityspec.run.cache import StepCache, default_cache_dir

    root = cache_dir or default_cache_dir()
    removed = StepCache(root).clear()
    click.echo(f"removed {removed} cached step(s) from {root}")


@cache.command("verify")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="The cache to check.")
@click.option("--repair", is_flag=True, help="Remove the damaged entries.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: counts and each damaged entry, for machines.",
)
@_guarded
def cache_verify(cache_dir: Path | None, repair: bool, fmt: str) -> None:
    """Check every cached step output against the sizes and hashes stored with it.

    A run checks each entry it restores anyway, and recomputes a damaged one; this
    finds them all at once. A removed entry is recomputed by the next run that needs it.

    \b
    Example:
      parityspec cache verify
      parityspec cache verify --repair --cache-dir /tmp/c
      parityspec cache verify --format json

    \b
    Exit codes: 0 no damaged entry (or all removed with --repair), 1 damaged
    entries left, 2 the folder is not a parityspec cache.
    """
    from parityspec.run.cache import StepCache, default_cache_dir

    root = cache_dir or default_cache_dir()
    result = StepCache(root).verify(repair)
    left = sum(1 for *_, removed in result.damaged if not removed)
    if fmt == "json":
        from parityspec.cli_output import echo_json, verify_json

        echo_json(verify_json(root, result, repair, 1 if left else 0))
        sys.exit(1 if left else 0)
    for entry, reason, removed in result.damaged:
        click.echo(f"{'removed' if removed else 'damaged'} {entry.relative_to(root)}: {reason}")
    summary = f"checked {result.checked} cached step(s) in {root}: {len(result.damaged)} damaged"
    if result.damaged:
        summary += f", {len(result.damaged) - left} removed" if repair else " (--repair removes)"
    click.echo(summary)
    if result.older:
        click.echo(f"{result.older} entries of an older layout are never read (cache clear)")
    sys.exit(1 if left else 0)


def main() -> None:
    """The command in this process; the console script reaches it through
    `cli_supervisor.main`, in a watched child."""
    cli(prog_name="parityspec")
