"""`mlstack preflight ENV`: check the account against the stack file before `pulumi up`."""

from __future__ import annotations

from typing import Annotated

import typer

from mlstack.live import cli_support
from mlstack.live.cli_support import (
    Output,
    OutputFormat,
    Profile,
    ProjectDir,
    check_format,
    check_output,
    emit,
    live_errors,
)
from mlstack.live.preflight import Preflight, default_gpu_table


def register(app: typer.Typer) -> None:
    app.command(name="preflight")(preflight_command)


def preflight_command(
    env: Annotated[str, typer.Argument(help="Environment (stack) to check, e.g. dev.")],
    profile: Profile = None,
    backend_url: Annotated[
        str | None,
        typer.Option(
            help="Pulumi backend to check. Default: PULUMI_BACKEND_URL, else the bucket `mlstack bootstrap` creates."
        ),
    ] = None,
    fmt: OutputFormat = "table",
    output: Output = None,
    project_dir: ProjectDir = None,
) -> None:
    """Check credentials, region, zones, GPU offerings and quotas, the EKS version and the state backend.

    zones: each zone exists, is available and opted in, and offers the pools' GPU types.

    quota: each EC2 vCPU quota, less its current usage (its CloudWatch usage metric), covers the pools.

    No usage data is a warning, never a pass. Details and permissions: docs/live-tooling.md.

    Exit code 1 when a check fails, 3 when nothing failed but some check could not run, 2 on bad input
    (stack file, options, credentials).
    """
    check_format(fmt)
    check_output(output)
    spec = cli_support.load_spec(env, project_dir)
    with live_errors("preflight"):
        aws = cli_support.connect(spec.region, profile)
        report = Preflight(aws, spec, default_gpu_table(), backend_url).run()
    emit(report, fmt, output)
