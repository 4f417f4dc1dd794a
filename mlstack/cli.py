"""The mlstack command line: plan stacks offline, write the stack-file schema, validate stack files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mlstack.commands import register_all
from mlstack.console import console
from mlstack.failures import (
    BAD_INPUT,
    fail,
    prepare_output_dir,
    prepare_output_file,
    report_error,
    write_output,
)
from mlstack.gc_thresholds import raise_thresholds, skip_final_collection
from mlstack.project import Project, ProjectNotFound, find_project, unknown_stack
from mlstack.spec.loader import SpecError

app = typer.Typer(
    name="mlstack",
    help="mlstack: an ML platform on AWS and EKS. Plan, check and estimate environments offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
]


def _version() -> str:
    """The installed distribution's version; the package's own when it runs from a checkout without install."""
    from importlib.metadata import PackageNotFoundError, version

    import mlstack

    try:
        return version("mlstack")
    except PackageNotFoundError:
        return mlstack.__version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mlstack {_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the mlstack version and exit."
        ),
    ] = False,
) -> None:
    # The group's help is the Typer(help=...) text above; this callback only adds the global --version.
    pass


def _project(project_dir: Path | None) -> Project:
    try:
        return find_project(project_dir)
    except ProjectNotFound as exc:
        raise fail(str(exc)) from None


def _stacks(project: Project, env: str | None, all_stacks: bool) -> list[str]:
    known = project.stack_names()
    if all_stacks and env:
        raise fail("give either an environment or --all, not both")
    if all_stacks:
        return known
    if not env:
        raise fail(f"name an environment ({', '.join(known)}) or pass --all")
    if env not in known:
        raise fail(unknown_stack(project, env))
    return [env]


@app.command()
def plan(
    env: Annotated[str | None, typer.Argument(help="Environment (stack) to plan, e.g. dev.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Plan every stack in stacks/.")] = False,
    out_dir: Annotated[Path | None, typer.Option(help="Where plan-ENV.json goes. Default: build/.")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Write the plan without printing the summary.")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run the real Pulumi program offline under a recording mock monitor and write build/plan-ENV.json (and
    build/plan-ENV-account.json, the account foundation's plan, when the stack file has a deployment section)."""
    from mlstack.deploytime import deploy_time_summary
    from mlstack.plan.summary import summary_tree
    from mlstack.planning import plan_foundation, plan_stacks

    project = _project(project_dir)
    stacks = _stacks(project, env, all_stacks)
    target = prepare_output_dir(out_dir or project.build_dir, "--out-dir")
    # Every stack is validated and planned before the first file is written: one bad stack writes nothing.
    try:
        planned = plan_stacks(project, stacks)
        # The account foundation (account/) of each stack that has a `deployment` section, from the same file.
        foundations = [plan_foundation(project, *project.load(stack)) for stack in stacks]
    except SpecError as exc:
        raise fail(str(exc)) from None
    written = []
    for _, result in planned:
        path = target / f"plan-{result.stack}.json"
        write_output(path, result.dumps(), "--out-dir")
        written.append(path)
    for foundation in foundations:
        if foundation is not None:
            path = target / f"plan-{foundation.stack}-account.json"
            write_output(path, foundation.dumps(), "--out-dir")
            console.print(
                f"wrote {escape(str(project.relative(path)))} ({len(foundation.resources)} resources, account "
                "foundation)"
            )
    for (_, result), path in zip(planned, written, strict=True):
        if not quiet:
            console.print(summary_tree(result))
            console.print(deploy_time_summary(result), markup=False, soft_wrap=True)
        console.print(f"wrote {escape(str(project.relative(path)))} ({len(result.resources)} resources)")


@app.command()
def validate(
    env: Annotated[str | None, typer.Argument(help="Environment (stack) to validate.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Validate every stack in stacks/.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Validate stack files against the environment spec and report every problem at once."""
    project = _project(project_dir)
    failed = False
    for stack in _stacks(project, env, all_stacks):
        try:
            _, spec = project.load(stack)
            console.print(
                f"[green]ok[/] {escape(str(project.relative(project.stack_file(stack))))} ({spec.tier} tier)"
            )
        except SpecError as exc:
            report_error(str(exc))
            failed = True
    if failed:
        raise typer.Exit(BAD_INPUT)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write the schema here. Default: print it.")] = None,
) -> None:
    """Write the JSON Schema of stack files, for editors and docs."""
    from mlstack.schema import render_schema

    if out is not None:
        prepare_output_file(out, "--out")
    text = render_schema()
    if out is None:
        sys.stdout.write(text)
        return
    write_output(out, text, "--out")
    console.print(f"wrote {escape(str(out))}")


register_all(app)


def main() -> None:
    # A short-lived process whose work is mostly the program run and the policy pack: see gc_thresholds.
    raise_thresholds()
    skip_final_collection()
    app()
