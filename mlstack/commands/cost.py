"""`mlstack cost ENV` and `mlstack cost --all`: the monthly estimate, idle and peak, from the recorded plan."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlstack.console import ByWidth
from mlstack.cost import CostModelError, Estimate, estimate, money
from mlstack.spec import PlatformSpec


def register(app: typer.Typer) -> None:
    app.command(name="cost")(cost_command)


def cost_command(
    env: Annotated[str | None, typer.Argument(help="Environment (stack) to estimate, e.g. dev.")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Compare every stack in stacks/.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
    by_team: Annotated[
        bool,
        typer.Option(
            "--by-team", help="Per team: idle and peak from its GPU quota and endpoints, against its budget."
        ),
    ] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
    ] = None,
) -> None:
    """Monthly cost estimate: idle (pools at minimum) and peak (pools at their limits), with every assumption."""
    from mlstack.cli import _project, _stacks, console
    from mlstack.failures import fail
    from mlstack.planning import plan_stacks
    from mlstack.simulate.framework import World
    from mlstack.spec.loader import SpecError

    if by_team and all_stacks:
        raise fail(
            "--by-team shows one environment: give ENV instead of --all (e.g. mlstack cost prod --by-team)"
        )
    project = _project(project_dir)
    stacks = _stacks(project, env, all_stacks)
    try:
        # The deploy simulation over each plan, rooted at this project, decides which CPU nodes run at idle.
        results = [
            (spec, estimate(plan, spec, world=World(plan, spec, project.root)))
            for spec, plan in plan_stacks(project, stacks)
        ]
    except SpecError as exc:
        raise fail(str(exc)) from None
    except CostModelError as exc:
        raise fail(f"cannot estimate the cost: {exc}") from None
    if as_json:
        console.print_json(json.dumps([result.to_json() for _, result in results]))
        return
    if all_stacks:
        console.print(comparison_table(results))
        console.print("Details and assumptions of one environment: mlstack cost ENV")
        return
    spec, result = results[0]
    if by_team:
        for renderable in team_report(result):
            console.print(renderable)
        return
    for renderable in estimate_report(spec, result):
        console.print(renderable)


def estimate_report(spec: PlatformSpec, result: Estimate) -> list[object]:
    """The estimate of one environment: line items, totals by component, GPU-hour prices, assumptions."""
    lines = ByWidth(partial(_wide_lines, result), partial(_narrow_lines, result))
    output: list[object] = [lines]
    if result.gpu_hours:
        gpus = Table(title="One GPU-hour per pool", title_justify="left")
        for column in ("pool", "capacity", "cheapest", "dearest"):
            gpus.add_column(column)
        for gpu in result.gpu_hours:
            gpus.add_row(
                gpu.pool,
                gpu.capacity,
                f"{money(gpu.cheapest)} ({gpu.cheapest_type})",
                f"{money(gpu.dearest)} ({gpu.dearest_type})",
            )
        output.append(gpus)
    limit = spec.budgets.monthly_limit_usd
    output.append(
        f"budget {money(limit)} a month: idle is {result.idle / limit:.0%} of it, peak {result.peak / limit:.0%}"
    )
    output.append("Assumptions:")
    output.extend(f"  - {assumption}" for assumption in result.assumptions)
    return output


def _lines_title(result: Estimate) -> str:
    return f"mlstack-{result.stack}: monthly cost estimate ({result.region}, USD)"


def _wide_lines(result: Estimate) -> Table:
    lines = Table(title=_lines_title(result), title_justify="left")
    for column in ("component", "item", "basis"):
        # Folded, never cut with an ellipsis: a resource name is how the reader finds the line in the plan.
        lines.add_column(column, overflow="fold")
    lines.add_column("idle", justify="right", no_wrap=True)
    lines.add_column("peak", justify="right", no_wrap=True)
    by_component = result.by_component()
    for component in sorted(by_component):
        for line in (line for line in result.lines if line.component == component):
            lines.add_row(component, line.item, line.basis, money(line.idle), money(line.peak))
        idle, peak = by_component[component]
        lines.add_row(
            "", f"[bold]{component} total[/]", "", f"[bold]{money(idle)}[/]", f"[bold]{money(peak)}[/]"
        )
    lines.add_section()
    lines.add_row(
        "[bold]total[/]", "", "", f"[bold]{money(result.idle)}[/]", f"[bold]{money(result.peak)}[/]"
    )
    return lines


def _narrow_lines(result: Estimate) -> Table:
    """Below NARROW_WIDTH columns: the component as a heading row and each line's basis under its item, so
    that three columns hold what five did (resource names then keep their lines)."""
    lines = Table(title=_lines_title(result), title_justify="left")
    lines.add_column("component, item and basis", overflow="fold")
    lines.add_column("idle", justify="right", no_wrap=True)
    lines.add_column("peak", justify="right", no_wrap=True)
    by_component = result.by_component()
    for component in sorted(by_component):
        idle, peak = by_component[component]
        lines.add_row(f"[bold]{component}[/]", f"[bold]{money(idle)}[/]", f"[bold]{money(peak)}[/]")
        for line in (line for line in result.lines if line.component == component):
            lines.add_row(f"  {line.item}\n  [dim]{line.basis}[/]", money(line.idle), money(line.peak))
    lines.add_section()
    lines.add_row("[bold]total[/]", f"[bold]{money(result.idle)}[/]", f"[bold]{money(result.peak)}[/]")
    return lines


def comparison_table(results: list[tuple[PlatformSpec, Estimate]]) -> Table:
    """Environments side by side: idle, peak, budget."""
    table = Table(title="Monthly cost estimate by environment (USD)", title_justify="left")
    table.add_column("environment")
    for column in ("idle", "peak", "budget", "idle / budget", "peak / budget"):
        table.add_column(column, justify="right")
    for spec, result in results:
        limit = spec.budgets.monthly_limit_usd
        table.add_row(
            result.stack,
            money(result.idle),
            money(result.peak),
            money(limit),
            f"{result.idle / limit:.0%}",
            f"{result.peak / limit:.0%}",
        )
    return table


def team_report(result: Estimate) -> list[object]:
    """What each team can cost a month, beside its budget; the rest of the environment is shared."""
    if not result.teams:
        return [f"mlstack-{result.stack} declares no teams: nothing to show per team"]
    table = Table(title=f"mlstack-{result.stack}: monthly cost per team (USD)", title_justify="left")
    for column in ("team", "cost center", "basis"):
        table.add_column(column)
    for column in ("idle", "peak", "budget", "peak / budget"):
        table.add_column(column, justify="right")
    for team in result.teams:
        table.add_row(
            team.team,
            team.cost_center,
            "; ".join(team.basis) or "no GPU quota, no endpoints",
            money(team.idle),
            money(team.peak),
            money(team.budget) if team.budget is not None else "-",
            f"{team.peak / team.budget:.0%}" if team.budget else "-",
        )
    shared_idle = result.idle - sum(team.idle for team in result.teams)
    return [
        table,
        f"shared by every team (control plane, system nodes, network, databases, logs, pools' other capacity, "
        f"platform pods' share of idle CPU nodes): "
        f"{money(shared_idle)} idle",
        "Idle: warm endpoints and the team's pods' share of idle CPU nodes (also in peak). Peak: the team's whole GPU quota (nominal per pool at the pool's dearest GPU-hour, plus "
        "its borrowing limit) and its SageMaker endpoints at their maximum; teams that borrow share the same GPUs, so "
        "team peaks do not add up. Model: docs/cost.md#per-team",
    ]
