"""`mlstack first-deploy-targets ENV`: the targeted `pulumi up` that creates the in-VPC deploy runner first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer


def register(app: typer.Typer) -> None:
    app.command(name="first-deploy-targets")(first_deploy_targets_command)


def first_deploy_targets_command(
    env: Annotated[str, typer.Argument(help="Environment (stack), e.g. dev.")],
    step: Annotated[
        Literal["connection", "runner"],
        typer.Option(
            help="connection: only the GitHub connection (authorise it in the console next); runner: the whole "
            "deploy runner and what it needs."
        ),
    ] = "runner",
    output_format: Annotated[
        Literal["command", "urns"],
        typer.Option("--format", help="command: a pulumi up line to paste; urns: one URN per line."),
    ] = "command",
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
    ] = None,
) -> None:
    """Print the `pulumi up --target ...` of a fresh environment's first deploy: the deploy runner (AWS CodeBuild
    in the VPC) and its dependencies, computed from the offline plan. Run it with the deploy role's credentials;
    every later `up` runs on the runner. See docs/components/deployer.md.
    """
    from mlstack.cli import _project, _stacks, console
    from mlstack.failures import fail
    from mlstack.first_deploy import NoDeployRunner, first_deploy_targets, up_command
    from mlstack.planning import plan_stacks
    from mlstack.spec.loader import SpecError

    project = _project(project_dir)
    stacks = _stacks(project, env, False)
    try:
        [(_, plan)] = plan_stacks(project, stacks)
        targets = first_deploy_targets(plan, step)
    except (SpecError, NoDeployRunner) as exc:
        raise fail(str(exc)) from None
    text = up_command(env, targets) if output_format == "command" else "\n".join(targets)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
