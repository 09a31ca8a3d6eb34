"""The command line: parse options, call the library API, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from parityspec import __version__
from parityspec.errors import ExitCode, ParitySpecError

EPILOG_RUN = """\b
Example:
  parityspec run specs/churn.yaml
  parityspec run specs/churn.yaml --check onnx-parity --profile strict --out /tmp/r

\b
Exit codes: 0 all checks passed, 1 a check failed, 2 invalid spec, input or
usage, 3 a step errored while running."""


def _guarded(command):
    """User errors become one line on stderr and their exit code; `--debug` shows tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except ParitySpecError as error:
            if debug:
                traceback.print_exc()
            for line in error.lines():
                click.echo(f"error: {line}", err=True)
            sys.exit(int(error.exit_code))
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as error:
            if debug:
                traceback.print_exc()
            click.echo(
                f"error: {type(error).__name__}: {error} (rerun with --debug for a traceback)",
                err=True,
            )
            sys.exit(int(ExitCode.STEP_ERROR))

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="parityspec")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def cli(debug: bool) -> None:
    """Prove that a converted model still predicts what the original predicts.

    \b
    Example:
      parityspec validate specs/*.yaml
      parityspec plan specs/churn.yaml
      parityspec run specs/churn.yaml
    """


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

    \b
    Example:
      parityspec validate specs/*.yaml
      parityspec validate --format json specs/churn.yaml
    """
    from parityspec.errors import SpecError
    from parityspec.spec.load import load_spec

    results, failed = [], False
    for path in specs:
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
    "--format", "fmt", type=click.Choice(["text", "mermaid"]), default="text", show_default=True
)
@click.option("--check", "checks", multiple=True, metavar="ID", help="Only what these need.")
@_guarded
def plan(spec: Path, fmt: str, checks: tuple[str, ...]) -> None:
    """Show the steps a run would execute; runs nothing.

    \b
    Example:
      parityspec plan specs/churn.yaml
      parityspec plan specs/churn.yaml --format mermaid --check int8-parity
    """
    from parityspec.api import plan_for
    from parityspec.plan.render import as_mermaid, as_text
    from parityspec.spec.load import load_spec

    loaded = load_spec(spec)
    graph = plan_for(loaded, checks)
    click.echo(as_mermaid(graph) if fmt == "mermaid" else as_text(graph, loaded.spec.name))


@cli.command(epilog=EPILOG_RUN)
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--profile", help="Use this tolerance profile for every check.")
@click.option("--check", "checks", multiple=True, metavar="ID", help="Run only these checks.")
@click.option("--rows", type=click.IntRange(min=1), help="Use at most N rows of the data.")
@click.option("--batch-size", type=click.IntRange(min=1, max=1_000_000), help="Rows per batch.")
@click.option("--out", type=click.Path(path_type=Path), help="Report directory.")
@click.option(
    "--trust-models",
    is_flag=True,
    help="Allow model files that run code when loaded (pickle, joblib).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the verdict.")
@_guarded
def run(spec: Path, profile, checks, rows, batch_size, out, trust_models, quiet) -> None:
    """Run the checks of a spec and write its reports."""
    from parityspec.api import RunOptions
    from parityspec.api import run as run_spec
    from parityspec.cli_output import print_outcome, step_printer

    options = RunOptions(profile, tuple(checks), rows, batch_size, out, trust_models)
    outcome = run_spec(spec, options, on_step=None if quiet else step_printer())
    print_outcome(outcome, quiet)
    sys.exit(int(outcome.exit_code))


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

    \b
    Example:
      parityspec schema --check
      parityspec schema --write
    """
    from parityspec.spec.schema import schema_text

    if reference:
        from parityspec.spec.reference import reference_markdown

        click.echo(reference_markdown(), nl=False)
        return
    text = schema_text()
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


def main() -> None:
    cli(prog_name="parityspec")
