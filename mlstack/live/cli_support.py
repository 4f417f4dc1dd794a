"""What the live commands share on the command line: options, consoles and the no-traceback error handling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape

from mlstack.console import console, errors, file_console
from mlstack.failures import BAD_INPUT, INCOMPLETE, fail, open_output, prepare_output_file, write_output
from mlstack.live.aws import Aws, Denied, LiveError, describe_unexpected
from mlstack.live.report import Report, render, table
from mlstack.project import ProjectNotFound, find_project, unknown_stack
from mlstack.report_formats import FORMATS
from mlstack.spec import PlatformSpec
from mlstack.spec.loader import SpecError

# Tests replace this to hand commands clients backed by moto or a Stubber.
connect: Callable[[str | None, str | None], Aws] = Aws.connect

Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        # Only bootstrap takes --region (preflight and audit use the stack's region), so there is no stack default.
        help="AWS region. Default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region.",
    ),
]
Profile = Annotated[str | None, typer.Option("--profile", help="AWS profile. Default: the credential chain.")]
ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
]
OutputFormat = Annotated[
    str,
    typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}. Default: table."),
]

Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report to this file. Default: print it.")
]


@contextmanager
def live_errors(command: str) -> Iterator[None]:
    """Turn a command-stopping AWS problem into one clear line, never a traceback.

    No credentials, the wrong account, an unreachable endpoint or an AWS error the command cannot read stop it
    with exit code 2; a denied call that stops it leaves the work incomplete (exit code 3). A crash is never
    exit code 1, which means findings.
    """
    try:
        yield
    except LiveError as exc:
        raise fail(str(exc), INCOMPLETE if exc.incomplete else BAD_INPUT) from None
    except Denied as exc:
        raise fail(
            f"{exc.permission} denied; {command} needs it (see docs/live-tooling.md)", INCOMPLETE
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise fail(f"{command}: {describe_unexpected(exc)}") from None


def load_spec(env: str, project_dir: Path | None) -> PlatformSpec:
    """The validated spec of stack ``env``, or a clear exit."""
    try:
        project = find_project(project_dir)
    except ProjectNotFound as exc:
        raise fail(str(exc)) from None
    known = project.stack_names()
    if env not in known:
        raise fail(unknown_stack(project, env))
    try:
        return project.load(env)[1]
    except SpecError as exc:
        raise fail(str(exc)) from None


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise fail(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt


def check_output(output: Path | None) -> None:
    """Stop before any AWS call when ``--output`` cannot be written."""
    if output is not None:
        prepare_output_file(output, "--output")


def emit(report: Report, fmt: str, output: Path | None = None, *, passed: bool = True) -> None:
    """Print the report in ``fmt`` (or write it to ``output``, checked beforehand with
    :func:`check_output`) and exit with its code (:meth:`Report.exit_code`)."""
    if output is not None:
        if fmt == "table":
            with open_output(output, "--output") as handle:
                file_console(handle).print(table(report, passed=passed))
        else:
            write_output(output, render(report, fmt), "--output")
        console.print(f"wrote {escape(str(output))} ({report.summary()})")
    elif fmt == "table":
        console.print(table(report, passed=passed))
    else:
        typer.echo(render(report, fmt), nl=False)
    code = report.exit_code()
    if code == INCOMPLETE and fmt == "table":
        errors.print("[magenta]some checks could not run (see 'not checked'); the result is incomplete[/]")
    if code:
        raise typer.Exit(code)
