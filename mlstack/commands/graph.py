"""`mlstack graph ENV`: the component-level dependency graph as Mermaid and DOT, and an image when graphviz is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

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
    from mlstack.cli import _fail, _project, _stacks, console, errors
    from mlstack.planning import plan_stacks
    from mlstack.spec.loader import SpecError

    project = _project(project_dir)
    stacks = _stacks(project, env, False)
    try:
        [(_, plan)] = plan_stacks(project, stacks)
    except SpecError as exc:
        raise _fail(str(exc)) from None
    graph = component_graph(plan)
    target = out_dir or project.build_dir
    target.mkdir(parents=True, exist_ok=True)
    mermaid, dot = target / f"graph-{env}.mmd", target / f"graph-{env}.dot"
    mermaid.write_text(to_mermaid(graph), encoding="utf-8")
    dot.write_text(to_dot(graph), encoding="utf-8")
    console.print(to_mermaid(graph), markup=False, highlight=False)
    console.print(f"critical path: {' -> '.join(graph.critical) or '(empty plan)'}")
    console.print(f"wrote {project.relative(mermaid)} and {project.relative(dot)}")
    if image == "none":
        return
    try:
        drawn = render(to_dot(graph), target / f"graph-{env}.{image}", image)
    except GraphvizMissing as exc:
        errors.print(f"[yellow]note:[/] {exc}", soft_wrap=True)
        return
    console.print(f"wrote {project.relative(drawn)}")
