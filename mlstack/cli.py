"""The mlstack command line: plan stacks offline, write the stack-file schema, validate stack files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlstack.commands import register_all
from mlstack.console import console, errors
from mlstack.gc_thresholds import raise_thresholds, skip_final_collection
from mlstack.project import Project, ProjectNotFound, find_project
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


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def _project(project_dir: Path | None) -> Project:
    try:
        return find_project(project_dir)
    except ProjectNotFound as exc:
        raise _fail(str(exc)) from None


def _stacks(project: Project, env: str | None, all_stacks: bool) -> list[str]:
    known = project.stack_names()
    if all_stacks and env:
        raise _fail("give either an environment or --all, not both")
    if all_stacks:
        return known
    if not env:
        raise _fail(f"name an environment ({', '.join(known)}) or pass --all")
    if env not in known:
        raise _fail(
            f"no stack file {project.relative(project.stack_file(env))}; known environments: {', '.join(known)}"
        )
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
    """Run the real Pulumi program offline under a recording mock monitor and write build/plan-ENV.json."""
    from mlstack.deploytime import deploy_time_summary
    from mlstack.plan.recorder import run_program
    from mlstack.plan.summary import summary_tree

    project = _project(project_dir)
    stacks = _stacks(project, env, all_stacks)
    loaded = []
    for stack in stacks:  # validate every stack first, so nothing is written when one is bad
        try:
            loaded.append(project.load(stack))
        except SpecError as exc:
            raise _fail(str(exc)) from None
    target = out_dir or project.build_dir
    target.mkdir(parents=True, exist_ok=True)
    for config, spec in loaded:
        try:
            result = run_program(project.program, config, spec)
        except SpecError as exc:  # a ProgramError: the program failed on a stack file that validated
            raise _fail(str(exc)) from None
        path = target / f"plan-{config.stack}.json"
        path.write_text(result.dumps(), encoding="utf-8")
        if not quiet:
            console.print(summary_tree(result))
            console.print(deploy_time_summary(result), markup=False)
        console.print(f"wrote {project.relative(path)} ({len(result.resources)} resources)")


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
            console.print(f"[green]ok[/] {project.relative(project.stack_file(stack))} ({spec.tier} tier)")
        except SpecError as exc:
            errors.print(str(exc), soft_wrap=True)
            failed = True
    if failed:
        raise typer.Exit(1)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write the schema here. Default: print it.")] = None,
) -> None:
    """Write the JSON Schema of stack files, for editors and docs."""
    from mlstack.schema import render_schema

    text = render_schema()
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")


register_all(app)


def main() -> None:
    # A short-lived process whose work is mostly the program run and the policy pack: see gc_thresholds.
    raise_thresholds()
    skip_final_collection()
    app()
