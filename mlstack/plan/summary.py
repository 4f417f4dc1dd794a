"""A readable summary of a plan: the component tree with resource counts by type, and totals."""

from __future__ import annotations

from collections import Counter

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from mlstack.plan.recorder import Plan


def summary_tree(plan: Plan) -> Group:
    components = [r for r in plan.resources if not r.custom]
    by_parent: dict[str, list] = {}
    for resource in plan.resources:
        by_parent.setdefault(resource.parent, []).append(resource)
    root = Tree(Text(f"{plan.project}-{plan.stack}  ({plan.source})", style="bold"))

    def add(node: Tree, urn: str) -> None:
        children = by_parent.get(urn, [])
        for component in (c for c in children if not c.custom):
            total = _count_below(component.urn, by_parent)
            branch = node.add(
                Text.assemble((component.name, "cyan"), f"  {component.type}  ", (f"{total}", "bold"))
            )
            add(branch, component.urn)
        counts = Counter(c.type for c in children if c.custom)
        for type_, count in sorted(counts.items()):
            node.add(Text(f"{count:>3} x {type_}", style="dim"))

    top_level = {r.parent for r in plan.resources} - {r.urn for r in plan.resources}
    for parent in sorted(top_level):
        add(root, parent)
    custom = sum(1 for r in plan.resources if r.custom)
    footer = Text(
        f"{len(plan.resources)} resources: {custom} cloud and Kubernetes resources in {len(components)} components, "
        f"{len({r.type for r in plan.resources if r.custom})} types",
        style="bold",
    )
    return Group(root, footer)


def _count_below(urn: str, by_parent: dict[str, list]) -> int:
    total = 0
    for child in by_parent.get(urn, []):
        total += (1 if child.custom else 0) + _count_below(child.urn, by_parent)
    return total
