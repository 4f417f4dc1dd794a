"""How long a cold ``pulumi up`` of a plan takes: the longest path through its recorded dependency graph.

Each custom resource takes the typical creation time of its type (mlstack/data/durations.yaml). A resource
starts when everything it depends on has finished: its ``dependencies`` and ``propertyDependencies``, its
provider (the Kubernetes provider waits for the cluster), and, for a dependency on a component, every
resource inside that component. Components and providers take no time of their own; the engine creates
everything else in parallel, so the critical path is the deploy time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from mlstack.plan.recorder import Plan, RecordedResource

DURATIONS_FILE = Path(__file__).resolve().parent / "data" / "durations.yaml"


@dataclass(frozen=True)
class Durations:
    """Typical creation seconds per resource type, with the source of each figure."""

    seconds: dict[str, float]
    sources: dict[str, str]
    default_seconds: float
    zero_prefixes: tuple[str, ...]
    ordering_needed: frozenset[str]

    @classmethod
    def load(cls, path: Path = DURATIONS_FILE) -> Durations:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        types = document["types"]
        return cls(
            seconds={type_: float(row["seconds"]) for type_, row in types.items()},
            sources={type_: str(row["source"]) for type_, row in types.items()},
            default_seconds=float(document["default_seconds"]),
            zero_prefixes=tuple(document.get("zero_seconds_prefixes") or ()),
            ordering_needed=frozenset(document.get("ordering_needed") or ()),
        )

    def of(self, resource: RecordedResource) -> float:
        if not resource.custom or resource.type.startswith(self.zero_prefixes):
            return 0.0
        return self.seconds.get(resource.type, self.default_seconds)


@cache
def default_durations() -> Durations:
    return Durations.load()


@dataclass(frozen=True)
class Step:
    """One resource on the critical path: when it starts and finishes, in seconds from the start."""

    urn: str
    type: str
    name: str
    component: str
    start: float
    finish: float


@dataclass(frozen=True)
class SerializingEdge:
    """An explicit depends_on (not a data dependency) on the critical path, and what dropping it would save."""

    dependent: str
    dependency: str
    saves_seconds: float


@dataclass
class DeployTime:
    """The deploy-time estimate of one plan."""

    stack: str
    total_seconds: float
    path: list[Step]
    unavoidable_seconds: float
    serializing: list[SerializingEdge]

    @property
    def overhead(self) -> float:
        """How much longer than the unavoidable chain the critical path is, as a fraction (0.1 = 10%)."""
        if self.unavoidable_seconds == 0:
            return 0.0
        return self.total_seconds / self.unavoidable_seconds - 1


class DependencyGraph:
    """The recorded plan as a graph: for each resource, the resources that must finish before it starts."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.by_urn = {r.urn: r for r in plan.resources}
        self.children: dict[str, list[str]] = {}
        for resource in plan.resources:
            self.children.setdefault(resource.parent, []).append(resource.urn)
        # data[v]: dependencies through inputs; explicit[v]: depends_on that carries no data.
        self.data: dict[str, set[str]] = {}
        self.explicit: dict[str, set[str]] = {}
        for resource in plan.resources:
            through_inputs = {urn for urns in resource.property_dependencies.values() for urn in urns}
            provider = resource.provider.rsplit("::", 1)[0]  # a provider reference is "URN::ID"
            if provider in self.by_urn:
                through_inputs.add(provider)
            self.data[resource.urn] = {u for u in through_inputs if u in self.by_urn and u != resource.urn}
            self.explicit[resource.urn] = {
                u
                for u in resource.dependencies
                if u in self.by_urn and u not in through_inputs and u != resource.urn
            }

    def component_of(self, urn: str) -> str:
        """The top-level component (a child of the Platform) holding ``urn``, by logical name."""
        current = self.by_urn[urn]
        while current.parent in self.by_urn and self.by_urn[current.parent].parent in self.by_urn:
            current = self.by_urn[current.parent]
        return current.name

    def predecessors(self, urn: str, keep_explicit: Iterable[tuple[str, str]] | None = None) -> set[str]:
        """What must finish before ``urn`` starts: its dependencies, and a component's children.

        With ``keep_explicit`` only the listed explicit edges (dependent, dependency) count.
        """
        explicit = self.explicit[urn]
        if keep_explicit is not None:
            kept = set(keep_explicit)
            explicit = {u for u in explicit if (urn, u) in kept}
        before = self.data[urn] | explicit
        if not self.by_urn[urn].custom:
            # A component completes when all of its children do.
            before |= set(self.children.get(urn, []))
        return before


def critical_path(
    graph: DependencyGraph, durations: Durations, keep_explicit: Iterable[tuple[str, str]] | None = None
) -> tuple[float, list[str], dict[str, float]]:
    """Longest path through the graph: its length in seconds, its URNs in order, and every finish time."""
    kept = None if keep_explicit is None else set(keep_explicit)
    preds = {urn: graph.predecessors(urn, kept) for urn in graph.by_urn}
    finish: dict[str, float] = {}
    gate: dict[str, str | None] = {}
    # Iterative depth-first order: plans with thousands of resources must not hit the recursion limit.
    for root in graph.by_urn:
        if root in finish:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        on_stack: set[str] = set()
        while stack:
            urn, expanded = stack.pop()
            if urn in finish:
                continue
            if expanded:
                on_stack.discard(urn)
                latest = max(preds[urn], key=lambda u: (finish[u], u), default=None)
                start = finish[latest] if latest is not None else 0.0
                finish[urn] = start + durations.of(graph.by_urn[urn])
                gate[urn] = latest
                continue
            if urn in on_stack:
                raise ValueError(f"dependency cycle through {urn}")
            on_stack.add(urn)
            stack.append((urn, True))
            stack.extend((p, False) for p in preds[urn] if p not in finish)
    if not finish:
        return 0.0, [], finish
    end = max(finish, key=lambda u: (finish[u], u))
    path: list[str] = []
    current: str | None = end
    while current is not None:
        path.append(current)
        current = gate[current]
    path.reverse()
    return finish[end], path, finish


def deploy_time(plan: Plan, durations: Durations | None = None) -> DeployTime:
    """The critical-path estimate of a cold deploy of ``plan``, with the serializing edges that lengthen it."""
    durations = durations or default_durations()
    graph = DependencyGraph(plan)
    total, path, finish = critical_path(graph, durations)
    steps = [
        Step(
            urn=urn,
            type=graph.by_urn[urn].type,
            name=graph.by_urn[urn].name,
            component=graph.component_of(urn),
            start=finish[urn] - durations.of(graph.by_urn[urn]),
            finish=finish[urn],
        )
        for urn in path
        if durations.of(graph.by_urn[urn]) > 0
    ]
    needed = [
        (dependent, dependency)
        for dependent, dependencies in graph.explicit.items()
        for dependency in dependencies
        if graph.by_urn[dependency].type in durations.ordering_needed
        or _inside_needed(graph, dependency, durations.ordering_needed)
    ]
    unavoidable, _, _ = critical_path(graph, durations, keep_explicit=needed)
    serializing: list[SerializingEdge] = []
    every_explicit = [(v, u) for v, us in graph.explicit.items() for u in us]
    on_path = set(path)
    needed_edges = set(needed)
    for dependent, dependency in every_explicit:
        if dependent not in on_path or dependency not in on_path or (dependent, dependency) in needed_edges:
            continue
        without = [edge for edge in every_explicit if edge != (dependent, dependency)]
        shorter, _, _ = critical_path(graph, durations, keep_explicit=without)
        if shorter < total:
            serializing.append(SerializingEdge(dependent, dependency, total - shorter))
    return DeployTime(plan.stack, total, steps, unavoidable, serializing)


def _inside_needed(graph: DependencyGraph, urn: str, needed_types: frozenset[str]) -> bool:
    """A dependency on a component counts as needed ordering when the component holds a needed type."""
    if graph.by_urn[urn].custom:
        return False
    pending = list(graph.children.get(urn, []))
    while pending:
        child = pending.pop()
        if graph.by_urn[child].type in needed_types:
            return True
        pending.extend(graph.children.get(child, []))
    return False


def minutes(seconds: float) -> str:
    """Seconds as m:ss."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def render_lines(result: DeployTime, graph_label: str = "") -> list[str]:
    """The estimate as plain lines: total, the critical path, and the serializing edges found."""
    lines = [
        f"Deploy time of a cold `pulumi up` (estimate): {minutes(result.total_seconds)} min on the critical path"
        + (f" {graph_label}" if graph_label else ""),
    ]
    for step in result.path:
        lines.append(
            f"  {minutes(step.start):>6} -> {minutes(step.finish):>6}  {step.type}  {step.name}  [{step.component}]"
        )
    if result.unavoidable_seconds:
        lines.append(
            f"  unavoidable chain {minutes(result.unavoidable_seconds)} min; critical path is "
            f"{result.overhead:+.0%} over it"
        )
    for edge in result.serializing:
        dependent, dependency = edge.dependent.rsplit("::", 1)[-1], edge.dependency.rsplit("::", 1)[-1]
        lines.append(
            f"  serializing depends_on: {dependent} waits for {dependency} without using its outputs; "
            f"dropping it saves {minutes(edge.saves_seconds)} min"
        )
    return lines


def deploy_time_summary(plan: Plan) -> str:
    """What ``mlstack plan`` prints after its summary: the deploy-time estimate and its critical path."""
    return "\n".join(render_lines(deploy_time(plan)))
