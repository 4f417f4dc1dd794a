"""AWS side of per-team cost: what one team owns carries its team-cost-center, which its budget filters on."""

from __future__ import annotations

import pytest

from tests.plans import PROJECT, plan_of

TEAM_TAG = "team-cost-center"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_team_owned_resource_carries_its_teams_cost_center(stack: str) -> None:
    """Team roles, team log groups, and each endpoint's role and SageMaker resources."""
    _, spec = PROJECT.load(stack)
    centers = {team.name: team.cost_center for team in spec.teams}
    plan = plan_of(stack)
    expected: dict[str, str] = {}
    for team in spec.teams:
        expected[f"{stack}-teams-{team.name}-workload"] = team.name
        if team.human_access is not None:
            expected[f"{stack}-teams-{team.name}-human"] = team.name
        expected[f"{stack}-logs-team-{team.name}"] = team.name
    for endpoint in spec.inference.endpoints:
        expected[f"{stack}-inference-{endpoint.name}-role"] = endpoint.team
        if endpoint.backend == "sagemaker":
            for part in ("model", "config", "endpoint"):
                expected[f"{stack}-inference-{endpoint.name}-{part}"] = endpoint.team
    by_name = {r.name: r for r in plan.resources}
    for name, team in expected.items():
        tags = by_name[name].inputs.get("tags") or {}
        assert tags.get(TEAM_TAG) == centers[team], name
        assert tags.get("team") == team, name


def test_team_budgets_filter_on_the_team_tag_in_budgets_syntax() -> None:
    """AWS Budgets CostFilters TagKeyValue values are ``user:<key>$<value>``."""
    _, spec = PROJECT.load("prod")
    budgets = {r.name: r for r in plan_of("prod").by_type("aws:budgets/budget:Budget")}
    centers = {team.name: team.cost_center for team in spec.teams}
    assert spec.budgets.team_limits_usd
    for team in spec.budgets.team_limits_usd:
        (cost_filter,) = budgets[f"prod-guardrails-budget-{team}"].inputs["costFilters"]
        assert cost_filter == {"name": "TagKeyValue", "values": [f"user:{TEAM_TAG}${centers[team]}"]}


def test_kubernetes_endpoint_pods_carry_the_team_cost_center_label() -> None:
    """Split cost allocation data imports pod labels (not namespace labels) as cost allocation tags."""
    _, spec = PROJECT.load("prod")
    centers = {team.name: team.cost_center for team in spec.teams}
    on_kubernetes = [e for e in spec.inference.endpoints if e.backend == "kubernetes"]
    assert on_kubernetes
    deployments = {r.name: r for r in plan_of("prod").by_type("kubernetes:apps/v1:Deployment")}
    for endpoint in on_kubernetes:
        deployment = deployments[f"prod-inference-{endpoint.name}-deployment"]
        labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
        assert labels[TEAM_TAG] == centers[endpoint.team]
        # The selector is unchanged: the label only attributes cost.
        assert TEAM_TAG not in deployment.inputs["spec"]["selector"]["matchLabels"]
