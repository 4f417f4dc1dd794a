"""`mlstack audit ENV`: report drift of the live account from the guardrails."""

from __future__ import annotations

from typing import Annotated

import typer

from mlstack.live import cli_support
from mlstack.live.audit import Audit
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


def register(app: typer.Typer) -> None:
    app.command(name="audit")(audit_command)


def audit_command(
    env: Annotated[str, typer.Argument(help="Environment (stack) to audit, e.g. prod.")],
    profile: Profile = None,
    fmt: OutputFormat = "table",
    output: Output = None,
    show_passed: Annotated[
        bool, typer.Option("--show-passed", help="List compliant resources in the table too.")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Report drift from the guardrails of the live resources tagged environment=ENV.

    Buckets, repositories, roles, clusters and keys are read; nothing is changed.

    Exit code 1 on drift, 3 when nothing drifted but some read was denied (the audit is incomplete), 2 on bad
    input (stack file, options, credentials).
    """
    check_format(fmt)
    check_output(output)
    spec = cli_support.load_spec(env, project_dir)
    with live_errors("audit"):
        aws = cli_support.connect(spec.region, profile)
        report = Audit(aws, spec).run()
    emit(report, fmt, output, passed=show_passed)
