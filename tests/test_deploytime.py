"""Deploy-time estimate and the component graph: arithmetic on a hand-computed plan, then the shipped stacks."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.deploytime import DependencyGraph, critical_path, default_durations, deploy_time, render_lines
from mlstack.graph import component_graph, to_dot, to_mermaid
from mlstack.plan.recorder import Plan
from tests.estimates import PlanBuilder, urn
from tests.plans import ROOT

RELEASE = "kubernetes:helm.sh/v3:Release"


def _hand_plan() -> tuple[Plan, dict[str, str]]:
    """network -> cluster -> system nodes -> add-on, plus a database the node group waits for for no reason.

    Durations (durations.yaml): Vpc 10, Cluster 600, NodeGroup 240, Release 120, RDS Instance 720, provider 0.
    Without the needless edge the add-on finishes at 10 + 600 + 240 + 120 = 970 s; with it the node group waits
    for the database (10 + 720 = 730 s), so 730 + 240 + 120 = 1090 s.
    """
    p = PlanBuilder()
    network = p.component("mlstack:network:Network", "t-network")
    vpc = p.add("aws:ec2/vpc:Vpc", "t-network-vpc", network)
    database = p.component("mlstack:orchestrator:Orchestrator", "t-orchestrator")
    db = p.add("aws:rds/instance:Instance", "t-orchestrator-db", database, data={"vpcId": [vpc]})
    cluster = p.component("mlstack:cluster:Cluster", "t-cluster")
    eks = p.add("aws:eks/cluster:Cluster", "t-cluster-eks", cluster, data={"vpcConfig": [vpc]})
    k8s = p.add("pulumi:providers:kubernetes", "t-cluster-k8s", cluster, data={"kubeconfig": [eks]})
    nodes = p.add(
        "aws:eks/nodeGroup:NodeGroup",
        "t-cluster-system",
        cluster,
        data={"clusterName": [eks]},
        depends_on=[db],
    )
    addons = p.component("mlstack:gpu:GpuPools", "t-gpu")
    release = p.add(RELEASE, "t-gpu-karpenter", addons, depends_on=[nodes], provider=k8s)
    # Waits for a whole component: it starts only when everything inside it has finished.
    late = p.add("aws:iam/role:Role", "t-gpu-late", addons, depends_on=[database])
    return p.plan(), {"vpc": vpc, "db": db, "eks": eks, "nodes": nodes, "release": release, "late": late}


def test_critical_path_arithmetic() -> None:
    plan, urns = _hand_plan()
    result = deploy_time(plan)
    assert result.total_seconds == 1090
    assert [step.urn for step in result.path] == [urns["vpc"], urns["db"], urns["nodes"], urns["release"]]
    assert [(step.start, step.finish) for step in result.path] == [
        (0, 10),
        (10, 730),
        (730, 970),
        (970, 1090),
    ]


def test_needless_depends_on_is_found_with_what_it_costs() -> None:
    plan, urns = _hand_plan()
    result = deploy_time(plan)
    assert result.unavoidable_seconds == 970
    assert result.overhead == pytest.approx(1090 / 970 - 1)
    assert [(e.dependent, e.dependency, e.saves_seconds) for e in result.serializing] == [
        (urns["nodes"], urns["db"], 120)
    ]
    text = "\n".join(render_lines(result))
    assert "t-cluster-system waits for t-orchestrator-db" in text and "saves 2:00" in text


def test_component_waits_for_children_and_provider_for_cluster() -> None:
    plan, urns = _hand_plan()
    graph = DependencyGraph(plan)
    _, _, finish = critical_path(graph, default_durations())
    assert (
        finish[urns["late"]] == 730 + 5
    )  # the whole orchestrator component (its database), then an IAM call
    gpu = urn("mlstack:gpu:GpuPools", "t-gpu")
    assert urns["release"] in graph.predecessors(gpu)
    assert urn("pulumi:providers:kubernetes", "t-cluster-k8s") in graph.predecessors(urns["release"])
    # A child does not wait for its parent component: that would be a cycle, and the engine does not do it.
    assert gpu not in graph.predecessors(urns["release"])


def test_component_graph_forms(tmp_path) -> None:
    plan, _ = _hand_plan()
    graph = component_graph(plan)
    assert ("t-network", "t-cluster") in graph.edges and ("t-orchestrator", "t-cluster") in graph.edges
    assert graph.critical == ["t-network", "t-orchestrator", "t-cluster", "t-gpu"]
    mermaid, dot = to_mermaid(graph), to_dot(graph)
    assert mermaid.startswith("flowchart LR") and "linkStyle" in mermaid and "class " in mermaid
    assert dot.startswith('digraph "t"') and dot.count("penwidth") == len(graph.critical) + 3


def test_every_duration_has_a_source() -> None:
    durations = default_durations()
    assert set(durations.seconds) == set(durations.sources)
    assert all(durations.sources.values()) and all(s > 0 for s in durations.seconds.values())


def test_shipped_stacks_have_an_acyclic_graph_and_a_path(stack_plan: Plan) -> None:
    result = deploy_time(stack_plan)
    assert result.total_seconds >= result.unavoidable_seconds > 0
    assert result.path and result.path[-1].finish == result.total_seconds
    for earlier, later in zip(result.path, result.path[1:], strict=False):
        assert later.start >= earlier.finish


def test_plan_prints_the_estimate(tmp_path) -> None:
    result = CliRunner().invoke(app, ["plan", "dev", "--out-dir", str(tmp_path), "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert "Deploy time of a cold `pulumi up`" in result.output


def test_graph_command_writes_text_forms(tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["graph", "prod", "--out-dir", str(tmp_path), "--project-dir", str(ROOT), "--image", "svg"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "graph-prod.mmd").read_text().startswith("flowchart LR")
    assert (tmp_path / "graph-prod.dot").read_text().startswith('digraph "prod"')
    if shutil.which("dot"):
        assert (tmp_path / "graph-prod.svg").read_text().lstrip().startswith("<?xml")
    else:
        assert "graphviz 'dot' is not on PATH" in result.output
