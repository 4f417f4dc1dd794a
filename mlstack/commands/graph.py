"""`mlstack graph ENV`: the component-level dependency graph as Mermaid and DOT, and an image when graphviz is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from mlstack.graph import GraphvizMissing, component_graph, render, to_dot, to_mermaid


def register(app: typer.Typer) -> None:
    app.command(name="graph")(graph_command)


def graph_command(
    env: Annotated[str, typer.Argument(help="Environment (stack) to draw, e.g. prod.")],
    image: Annotated[
        Literal["svg", "png", "none"],
        typer.Option(help="Image drawn with graphviz 'dot' next to the text forms."),
    ] = "svg",
    out_dir: Annotated[Path | None, typer.Option(help="Where graph-ENV.* go. Default: build/.")] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The mlstack project. Default: found from the working directory."),
    ] = None,
) -> None:
    """Write build/graph-ENV.mmd (Mermaid) and .dot, plus .svg or .png when graphviz is installed.

    The critical path of a cold deploy is drawn in red.
    """
    from mlstack.cli import _project, _stacks, console
    from mlstack.console import errors
    from mlstack.failures import fail, prepare_output_dir, write_output
    from mlstack.planning import plan_stacks
    from mlstack.spec.loader import SpecError

    project = _project(project_dir)
    stacks = _stacks(project, env, False)
    target = prepare_output_dir(out_dir or project.build_dir, "--out-dir")
    try:
        [(_, plan)] = plan_stacks(project, stacks)
    except SpecError as exc:
        raise fail(str(exc)) from None
    graph = component_graph(plan)
    mermaid, dot = target / f"graph-{env}.mmd", target / f"graph-{env}.dot"
    write_output(mermaid, to_mermaid(graph), "--out-dir")
    write_output(dot, to_dot(graph), "--out-dir")
    console.print(to_mermaid(graph), markup=False, highlight=False)
    console.print(f"critical path: {' -> '.join(graph.critical) or '(empty plan)'}", markup=False)
    console.print(f"wrote {project.relative(mermaid)} and {project.relative(dot)}", markup=False)
    if image == "none":
        return
    try:
        drawn = render(to_dot(graph), target / f"graph-{env}.{image}", image)
    except GraphvizMissing as exc:
        errors.print(f"[yellow]note:[/] {escape(str(exc))}", soft_wrap=True)
        return
    console.print(f"wrote {project.relative(drawn)}", markup=False)
