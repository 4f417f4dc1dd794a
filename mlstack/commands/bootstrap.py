"""`mlstack bootstrap`: create the account's Pulumi state bucket and secrets key, idempotently."""

from __future__ import annotations

from typing import Annotated

import typer

from mlstack.failures import FINDINGS
from mlstack.live import cli_support
from mlstack.live.bootstrap import DEFAULT_ALIAS, DEFAULT_NONCURRENT_DAYS, bootstrap
from mlstack.live.cli_support import Profile, Region, console, errors, live_errors


def register(app: typer.Typer) -> None:
    app.command(name="bootstrap")(bootstrap_command)


def bootstrap_command(
    region: Region = None,
    profile: Profile = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="State bucket name. Default: mlstack-pulumi-state-<account>-<region>."),
    ] = None,
    alias: Annotated[str, typer.Option(help="KMS alias of the secrets key.")] = DEFAULT_ALIAS,
    noncurrent_days: Annotated[
        int, typer.Option(min=1, help="Days before old state versions expire.")
    ] = DEFAULT_NONCURRENT_DAYS,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Repair an existing bucket or key that is weaker than required."),
    ] = False,
) -> None:
    """Create the S3 state backend and the KMS secrets key for Pulumi; a second run changes nothing.

    An existing bucket or key weaker than required is reported and left alone unless --fix is given.
    """
    with live_errors("bootstrap"):
        aws = cli_support.connect(region, profile)
        result = bootstrap(aws, fix=fix, bucket=bucket, alias=alias, noncurrent_days=noncurrent_days)
    where = f"account {result.account_id}, {result.region}"
    if result.repairs and not result.applied:
        errors.print(f"[bold red]refused:[/] the existing backend in {where} is weaker than required:")
        for change in result.repairs:
            errors.print(f"  - {change.describe()}", soft_wrap=True, markup=False)
        errors.print("Nothing was changed. Review the differences, then run again with --fix to repair them.")
        raise typer.Exit(FINDINGS)
    if not result.changes:
        console.print(
            f"[green]no changes:[/] bucket {result.bucket} and key {result.alias} already compliant ({where})"
        )
    else:
        for change in result.changes:
            verb = "repaired" if change.repair else "set"
            console.print(f"[green]{verb}[/] {change.resource}: {change.setting} -> {change.desired}")
    console.print("\nUse this backend and secrets provider:")
    console.print(f"  {result.login_command}", soft_wrap=True)
    console.print(
        f"  pulumi stack init <stack> --secrets-provider='{result.secrets_provider}'", soft_wrap=True
    )
