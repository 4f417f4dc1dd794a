"""The component-level dependency graph of a plan, as Mermaid and DOT, with the critical path highlighted."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlstack.deploytime import DependencyGraph, DeployTime, deploy_time
from mlstack.plan.recorder import Plan

CRITICAL_COLOUR = "#d62728"


@dataclass(frozen=True)
class ComponentGraph:
    """Top-level components (children of the Platform) and which must finish parts before others start."""

    stack: str
    components: list[str]
    types: dict[str, str]
    edges: list[tuple[str, str]]
    critical: list[str]

    @property
    def critical_edges(self) -> set[tuple[str, str]]:
        return set(zip(self.critical, self.critical[1:], strict=False))


def component_graph(plan: Plan, timing: DeployTime | None = None) -> ComponentGraph:
    """Collapse the resource graph to top-level components; an edge A -> B means something in B waits for A."""
    graph = DependencyGraph(plan)
    timing = timing or deploy_time(plan)
    tops = {urn: graph.component_of(urn) for urn in graph.by_urn}
    types = {}
    for resource in plan.resources:
        if tops[resource.urn] == resource.name:
            types[resource.name] = resource.type
    edges: set[tuple[str, str]] = set()
    for urn in graph.by_urn:
        for before in graph.data[urn] | graph.explicit[urn]:
            source, target = tops[before], tops[urn]
            if source != target:
                edges.add((source, target))
    critical: list[str] = []
    for step in timing.path:
        if not critical or critical[-1] != step.component:
            critical.append(step.component)
    # Only components that hold something, or take part in an edge, are worth drawing.
    # Providers at the top level feed everything and would only add noise; they take no time either.
    providers = {
        r.name for r in plan.resources if r.type.startswith("pulumi:providers:") and tops[r.urn] == r.name
    }
    edges = {(a, b) for a, b in edges if a not in providers and b not in providers}
    used = {c for edge in edges for c in edge} | {tops[r.urn] for r in plan.resources if r.custom}
    used -= providers
    return ComponentGraph(plan.stack, sorted(used), types, sorted(edges), critical)


def _ids(graph: ComponentGraph) -> dict[str, str]:
    return {name: f"c{i}" for i, name in enumerate(graph.components)}


def to_mermaid(graph: ComponentGraph) -> str:
    """A Mermaid flowchart; critical-path components and edges in red."""
    ids = _ids(graph)
    lines = ["flowchart LR"]
    for name in graph.components:
        lines.append(f'  {ids[name]}["{name}"]')
    critical_links = []
    for index, (source, target) in enumerate(graph.edges):
        lines.append(f"  {ids[source]} --> {ids[target]}")
        if (source, target) in graph.critical_edges:
            critical_links.append(str(index))
    lines.append(f"  classDef critical stroke:{CRITICAL_COLOUR},stroke-width:3px")
    if graph.critical:
        lines.append(f"  class {','.join(ids[c] for c in graph.critical if c in ids)} critical")
    if critical_links:
        lines.append(f"  linkStyle {','.join(critical_links)} stroke:{CRITICAL_COLOUR},stroke-width:3px")
    return "\n".join(lines) + "\n"


def to_dot(graph: ComponentGraph) -> str:
    """A Graphviz digraph; critical-path components and edges in red and bold."""
    ids = _ids(graph)
    lines = [
        f'digraph "{graph.stack}" {{',
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
    ]
    critical = set(graph.critical)
    for name in graph.components:
        style = f', color="{CRITICAL_COLOUR}", penwidth=2.5' if name in critical else ""
        lines.append(f'  {ids[name]} [label="{name}"{style}];')
    for source, target in graph.edges:
        style = (
            f' [color="{CRITICAL_COLOUR}", penwidth=2.5]' if (source, target) in graph.critical_edges else ""
        )
        lines.append(f"  {ids[source]} -> {ids[target]}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    """The graphviz ``dot`` program is not on PATH."""


def render(dot_source: str, out: Path, fmt: str) -> Path:
    """Render DOT to SVG or PNG with graphviz ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "graphviz 'dot' is not on PATH, so no image was drawn; install graphviz (apt-get install graphviz, "
            "brew install graphviz) or paste the Mermaid or DOT text into a renderer"
        )
    subprocess.run([dot, f"-T{fmt}", "-o", str(out)], input=dot_source.encode(), check=True)
    return out
