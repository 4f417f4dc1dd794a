"""What waits for what: Kubernetes work waits for nodes, workloads wait for their own team and pool only.

A dependency on a whole component expands to every resource inside it, so one such edge per team would make
every dependency list grow with the number of teams and plans quadratic in size and time.
"""

from __future__ import annotations

import pytest

from benchmarks.bench import synthetic_config
from mlstack.plan.recorder import Plan, RecordedResource, run_program
from tests.plans import PROJECT

PROVIDER = "pulumi:providers:kubernetes"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _one(plan: Plan, type_: str, name: str) -> RecordedResource:
    matches = [r for r in plan.resources if r.type == type_ and r.name == name]
    assert len(matches) == 1, f"{type_} {name}: {len(matches)} found"
    return matches[0]


def _urn_names(urns: list[str]) -> set[str]:
    return {urn.rsplit("::", 1)[1] for urn in urns}


def test_kubernetes_provider_waits_for_system_nodes_and_cluster_dns(stack_plan: Plan) -> None:
    provider = _one(stack_plan, PROVIDER, f"{stack_plan.stack}-cluster-k8s")
    assert {f"{stack_plan.stack}-cluster-system", f"{stack_plan.stack}-cluster-coredns"} <= _urn_names(
        provider.dependencies
    )


def test_every_kubernetes_resource_uses_the_provider_that_waits_for_nodes(stack_plan: Plan) -> None:
    provider = _one(stack_plan, PROVIDER, f"{stack_plan.stack}-cluster-k8s")
    strays = [
        r.name
        for r in stack_plan.resources
        if r.custom and r.type.startswith("kubernetes:") and not r.provider.startswith(provider.urn)
    ]
    assert not strays


def test_endpoint_waits_for_its_team_namespace_and_pool_and_nothing_of_other_teams(stack_plan: Plan) -> None:
    spec = PROJECT.load(stack_plan.stack)[1]
    on_kubernetes = [e for e in spec.inference.endpoints if e.backend == "kubernetes"]
    if not on_kubernetes:
        pytest.skip(f"{stack_plan.stack} serves no endpoint on Kubernetes")
    for endpoint in on_kubernetes:
        deployment = _one(stack_plan, DEPLOYMENT, f"{stack_plan.stack}-inference-{endpoint.name}-deployment")
        waits_for = _urn_names(deployment.dependencies)
        teams = f"{stack_plan.stack}-teams"
        assert {
            f"{teams}-{endpoint.team}-namespace",
            f"{teams}-{endpoint.team}-quota",
            f"{teams}-{endpoint.team}-limits",
            f"{teams}-{endpoint.team}-netpol-default-deny",
            f"{stack_plan.stack}-gpu-{endpoint.gpu_pool}-nodepool",
        } <= waits_for, endpoint.name
        others = {t.name for t in spec.teams} - {endpoint.team}
        assert not [name for name in waits_for for team in others if name.startswith(f"{teams}-{team}-")]


def test_no_dependency_list_grows_with_the_number_of_teams() -> None:
    def longest(teams: int) -> int:
        config, spec = synthetic_config(PROJECT, teams)
        plan = run_program(PROJECT.program, config, spec)
        return max(
            len(r.dependencies) + sum(map(len, r.property_dependencies.values())) for r in plan.resources
        )

    assert longest(2) == longest(6)
