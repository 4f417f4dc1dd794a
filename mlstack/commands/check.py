"""`mlstack check ENV|--all`: the policy pack over freshly recorded plans, offline, with waivers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

FORMAT_HELP = "table (default), json, sarif, junit or markdown."


def register(app: typer.Typer) -> None:
    app.command()(check)


def check(
    env: Annotated[str | None, typer.Argument(help="Environment (stack) to check, e.g. dev.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Check every stack in stacks/.")] = False,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help=f"Report format: {FORMAT_HELP}")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here instead of the terminal.")
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Policy config (JSON or YAML, Pulumi's --policy-pack-config shape) laid over the pack's defaults.",
        ),
    ] = None,
    framework: Annotated[
        str | None,
        typer.Option(
            "--framework",
            help="Run only the rules mapped to one framework (aws-fsbp, cis-aws, cis-eks, nist-800-53) and list "
            "which of its controls they cover.",
        ),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
    ] = None,
) -> None:
    """Run every policy of policies/ over the stack's plan, as `pulumi preview --policy-pack` would.

    Exit code 1 when a mandatory violation is not waived (policies/waivers.yaml), 0 otherwise; advisory
    violations and waived ones are always shown.
    """
    from mlstack.check.formats import TEXT_RENDERERS, render_table
    from mlstack.check.run import PolicyConfigError, check_stacks, load_policy_config
    from mlstack.check.waivers import WaiverError
    from mlstack.cli import _project, _stacks, console
    from mlstack.failures import FINDINGS, OK, fail, open_output, prepare_output_file, write_output
    from mlstack.report_formats import FORMATS
    from mlstack.spec.loader import SpecError
    from policies.controls import FRAMEWORKS

    if output_format not in FORMATS:
        raise fail(f"unknown --format '{output_format}'; use one of: {', '.join(FORMATS)}")
    if framework is not None and framework not in FRAMEWORKS:
        raise fail(f"unknown --framework '{framework}'; use one of: {', '.join(FRAMEWORKS)}")
    project = _project(project_dir)
    stacks = _stacks(project, env, all_stacks)
    if output is not None:
        prepare_output_file(output, "--output")
    config = {}
    if config_file is not None:
        try:
            config = load_policy_config(config_file)
        except PolicyConfigError as exc:
            raise fail(str(exc)) from None
    try:
        result = check_stacks(project, stacks, config, today=dt.date.today(), framework=framework)
    except (SpecError, WaiverError) as exc:
        raise fail(str(exc)) from None

    # On stderr in every format: a warning, not a finding, and never mixed into JSON, SARIF or JUnit output.
    from mlstack.console import errors

    for notice in result.waiver_notices:
        errors.print(f"[yellow]warning:[/] {escape(notice)}", highlight=False)
    if output_format == "table":
        if output is None:
            render_table(result, console)
        else:
            from mlstack.console import file_console

            with open_output(output, "--output") as handle:
                render_table(result, file_console(handle))
    else:
        text = TEXT_RENDERERS[output_format](result)
        if output is None:
            typer.echo(text, nl=False)
        else:
            write_output(output, text, "--output")
    if output is not None:
        console.print(f"wrote {escape(str(output))} ({output_format})", highlight=False)
    if framework is not None and output_format == "table":
        _print_framework_coverage(framework)
    raise typer.Exit(FINDINGS if result.failed else OK)


def _print_framework_coverage(framework: str) -> None:
    """Which controls of ``framework`` the pack's rules cover, and by which rules (the rest are listed too)."""
    from mlstack.cli import console
    from policies.catalog import ALL_RULES
    from policies.controls import FRAMEWORKS

    known = FRAMEWORKS[framework]
    covered: dict[str, list[str]] = {}
    for rule in ALL_RULES:
        for control in rule.controls.get(framework, ()):
            covered.setdefault(control, []).append(rule.id)
    console.print(
        f"{escape(known.name)}: {len(covered)} of {len(known.controls)} catalogued controls covered "
        f"({escape(known.source)})",
        highlight=False,
    )
    for control in known.controls:
        title = known.controls[control]
        rules = ", ".join(covered.get(control, [])) or "not covered"
        console.print(f"  {control:<10} {escape(title)[:70]:<70} {rules}", highlight=False)
