"""Governance over the recorded plans: the boundary on every role, least-privilege documents, budgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudsplaining.scan.policy_document import PolicyDocument

from components.governance import boundary_statements
from mlstack.plan.recorder import Plan
from tests.plans import PROJECT, policy_json

EXCEPTIONS = yaml.safe_load((Path(__file__).parent / "data" / "cloudsplaining_exceptions.yaml").read_text())
FINDINGS = ("PrivilegeEscalation", "DataExfiltration", "ResourceExposure", "CredentialsExposure")


def _boundary_arn(plan: Plan) -> str:
    (boundary,) = [p for p in plan.by_type("aws:iam/policy:Policy") if p.name.endswith("permission-boundary")]
    return boundary.outputs["arn"]


def test_every_role_carries_the_boundary(stack_plan: Plan) -> None:
    roles = stack_plan.by_type("aws:iam/role:Role")
    assert len(roles) >= 5
    boundary = _boundary_arn(stack_plan)
    missing = [r.name for r in roles if r.inputs.get("permissionsBoundary") != boundary]
    assert not missing, f"roles without the permission boundary: {missing}"


def _documents(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document anywhere in a resource's inputs (JSON strings with a Statement)."""
    if isinstance(value, str) and value.lstrip().startswith("{") and '"Statement"' in value:
        document = json.loads(value)
        if isinstance(document, dict) and "Statement" in document:
            yield path, document
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _documents(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _documents(item, f"{path}.{i}")


def _findings(document: dict[str, Any]) -> dict[str, list[str]]:
    scanned = PolicyDocument(document)
    return {
        "PrivilegeEscalation": sorted(e["type"] for e in scanned.allows_privilege_escalation),
        "DataExfiltration": sorted(scanned.allows_data_exfiltration_actions),
        "ResourceExposure": sorted(scanned.permissions_management_without_constraints),
        "CredentialsExposure": sorted(scanned.credentials_exposure),
    }


def _excused(resource_type: str, name: str, finding: str, action: str) -> str | None:
    for entry in EXCEPTIONS:
        if (
            entry["type"] == resource_type
            and fnmatch(name, entry["name"])
            and entry["finding"] in ("*", finding)
            and (entry["actions"] == "*" or action in entry["actions"])
        ):
            return str(entry["id"])
    return None


def test_no_policy_document_escalates_exfiltrates_exposes_or_leaks(plans: dict[str, Plan]) -> None:
    unexcused: list[str] = []
    used: set[str] = set()
    scanned = 0
    for stack, plan in plans.items():
        for resource in plan.resources:
            for path, document in _documents(resource.inputs):
                scanned += 1
                for finding, actions in _findings(document).items():
                    for action in actions:
                        excuse = _excused(resource.type, resource.name, finding, action)
                        if excuse is None:
                            unexcused.append(f"{stack} {resource.name}{path}: {finding} {action}")
                        else:
                            used.add(excuse)
    assert scanned > 50
    assert not unexcused, "\n".join(unexcused)
    stale = {entry["id"] for entry in EXCEPTIONS} - used
    assert not stale, f"exceptions that match no finding any more; remove them: {sorted(stale)}"
    assert all(entry["reason"].strip() for entry in EXCEPTIONS)


def test_the_scan_catches_a_bad_document() -> None:
    leaky = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iam:PutRolePolicy", "s3:GetObject", "s3:PutBucketPolicy"],
                "Resource": "*",
            }
        ],
    }
    findings = _findings(leaky)
    assert findings["PrivilegeEscalation"] == ["PutRolePolicy"]
    assert findings["DataExfiltration"] == ["s3:GetObject"]
    assert "s3:PutBucketPolicy" in findings["ResourceExposure"]
    assert (
        _excused(
            "aws:iam/rolePolicy:RolePolicy", "dev-teams-search-human", "DataExfiltration", "s3:GetObject"
        )
        is None
    )


def test_boundary_denies_what_the_issue_names(stack_plan: Plan) -> None:
    (boundary,) = [
        p for p in stack_plan.by_type("aws:iam/policy:Policy") if p.name.endswith("permission-boundary")
    ]
    statements = {s["Sid"]: s for s in policy_json(boundary.inputs["policy"])["Statement"]}
    denied = {
        action
        for s in statements.values()
        if s["Effect"] == "Deny" and "Action" in s
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {
        "iam:CreateUser",
        "iam:CreateAccessKey",
        "kms:ScheduleKeyDeletion",
        "cloudtrail:StopLogging",
    } <= denied
    assert {"s3:PutAccountPublicAccessBlock", "s3:PutBucketPublicAccessBlock", "iam:DeletePolicy"} <= denied
    assert statements["BoundaryIsImmutable"]["Resource"] == _boundary_arn(stack_plan)
    env = stack_plan.stack
    assert statements["PassOnlyPlatformRoles"]["NotResource"].endswith(f":role/{env}-*")
    _, spec = PROJECT.load(env)
    fence = statements["OnlyTheEnvironmentRegion"]["Condition"]["StringNotEquals"]["aws:RequestedRegion"]
    assert set(fence) == {spec.region, *spec.replica_regions()}
    ceiling = statements["ServiceCeiling"]["Action"]
    assert "*" not in ceiling and "cloudtrail:*" not in ceiling


def test_boundary_statements_are_built_from_the_environment() -> None:
    from components.environment import Environment

    _, spec = PROJECT.load("dev")
    env = Environment.from_spec(spec)
    statements = boundary_statements(env, "arn:aws:iam::111122223333:policy/dev-permission-boundary")
    new_roles = next(s for s in statements if s["Sid"] == "NewRolesCarryTheBoundary")
    assert new_roles["Condition"]["StringNotEquals"]["iam:PermissionsBoundary"].endswith(
        "dev-permission-boundary"
    )


def test_budgets_notify_at_thresholds_and_forecast(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    budgets = {b.inputs["name"]: b for b in stack_plan.by_type("aws:budgets/budget:Budget")}
    environment = budgets.pop(f"{spec.environment}-monthly")
    assert float(environment.inputs["limitAmount"]) == spec.budgets.monthly_limit_usd
    for budget in [environment, *budgets.values()]:
        kinds = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
        assert kinds == {("ACTUAL", t) for t in spec.budgets.thresholds_percent} | {("FORECASTED", 100.0)}
        for notification in budget.inputs["notifications"]:
            assert notification.get("subscriberEmailAddresses") or notification.get("subscriberSnsTopicArns")
    teams = {t.name: t for t in spec.teams}
    assert set(budgets) == {
        f"{spec.environment}-team-{name}-monthly" for name in spec.budgets.team_limits_usd
    }
    for name, limit in spec.budgets.team_limits_usd.items():
        budget = budgets[f"{spec.environment}-team-{name}-monthly"]
        assert float(budget.inputs["limitAmount"]) == limit
        assert budget.inputs["costFilters"] == [
            {"name": "TagKeyValue", "values": [f"user:team-cost-center${teams[name].cost_center}"]}
        ]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_hardened_stacks_have_team_budgets(plans: dict[str, Plan], stack: str) -> None:
    names = [b.inputs["name"] for b in plans[stack].by_type("aws:budgets/budget:Budget")]
    assert any("-team-" in n for n in names)


def _boundary_allows(plan: Plan) -> list[str]:
    (boundary,) = [p for p in plan.by_type("aws:iam/policy:Policy") if p.name.endswith("permission-boundary")]
    return [
        pattern
        for s in policy_json(boundary.inputs["policy"])["Statement"]
        if s["Effect"] == "Allow"
        for pattern in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


# What node agents call with the node role (EKS Pod Identity agent; SSM Agent for Session Manager, which
# AmazonSSMManagedInstanceCore grants): Systems Manager docs "Reference: ec2messages, ssmmessages, and other API
# operations" and EKS docs pod-id-agent-setup.
NODE_AGENT_ACTIONS = (
    "eks-auth:AssumeRoleForPodIdentity",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)


def test_boundary_admits_what_node_agents_call(stack_plan: Plan) -> None:
    """Without eks-auth no pod gets Pod Identity credentials; without the message channels no Session Manager."""
    allows = _boundary_allows(stack_plan)
    missing = [a for a in NODE_AGENT_ACTIONS if not any(fnmatch(a, p) for p in allows)]
    assert not missing, f"the boundary on node roles voids: {missing}"
    assert "ssmmessages:*" not in allows and "ec2messages:*" not in allows  # single actions, not services


def test_boundary_admits_every_action_a_role_policy_grants(stack_plan: Plan) -> None:
    """An action a role's own policy allows but its boundary does not is silently void (rt-data R5: acm)."""
    allows = _boundary_allows(stack_plan)
    void: list[str] = []
    for policy in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_json(policy.inputs["policy"])["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            void += [f"{policy.name}: {a}" for a in actions if not any(fnmatch(a, p) for p in allows)]
    assert not void, void


def _boundary_denies(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an unconditional Deny of the boundary matches the action on the resource (IAM wildcards)."""
    for s in statements:
        if s["Effect"] != "Deny" or "Condition" in s:
            continue
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        if not any(fnmatch(action, a) for a in actions):
            continue
        if "NotResource" in s:
            if not fnmatch(resource, s["NotResource"]):
                return True
        elif any(
            fnmatch(resource, r)
            for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        ):
            return True
    return False


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:UpdateAssumeRolePolicy", "role/ci-deployer"),
        ("iam:AttachRolePolicy", "role/ci-deployer"),
        ("iam:PutRolePolicy", "role/ci-deployer"),
        ("iam:CreatePolicyVersion", "policy/shared-readonly"),
        ("iam:SetDefaultPolicyVersion", "policy/shared-readonly"),
        ("iam:AttachUserPolicy", "user/alice"),
        ("iam:PutUserPolicy", "user/alice"),
        ("iam:UpdateLoginProfile", "user/alice"),
        ("iam:PutGroupPolicy", "group/admins"),
        ("iam:AttachGroupPolicy", "group/admins"),
        ("iam:AddUserToGroup", "group/admins"),
    ],
)
def test_boundary_refuses_escalation_through_existing_principals(action: str, resource: str) -> None:
    """A bounded role with IAM write must not change a principal outside the boundary and then use it
    (review rt-data S4): every such write is denied on every principal, not only on role/<env>-*."""
    from components.environment import Environment

    _, spec = PROJECT.load("prod")
    env = Environment.from_spec(spec)
    statements = boundary_statements(env, f"arn:aws:iam::{spec.account_id}:policy/prod-permission-boundary")
    assert _boundary_denies(statements, action, f"arn:aws:iam::{spec.account_id}:{resource}")


def test_pod_identity_roles_trust_only_this_cluster_and_their_association(stack_plan: Plan) -> None:
    """Pod Identity trust conditioned only on the account let any cluster of the account use the role
    (rt-data M3): every trust names the environment's cluster through the session tag EKS adds, and the
    workload roles also name their one namespace and service account."""
    from components.cluster import eks_cluster_name
    from components.environment import Environment

    _, spec = PROJECT.load(stack_plan.stack)
    cluster = eks_cluster_name(Environment.from_spec(spec))
    roles = {r.urn: r for r in stack_plan.by_type("aws:iam/role:Role")}
    associations = stack_plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert associations
    for association in associations:
        (role_urn,) = association.property_dependencies["roleArn"]
        trust = policy_json(roles[role_urn].inputs["assumeRolePolicy"])
        (statement,) = trust["Statement"]
        equals = statement["Condition"]["StringEquals"]
        assert equals["aws:RequestTag/eks-cluster-name"] == cluster, role_urn
        assert equals["aws:SourceAccount"] == spec.account_id
        if "aws:RequestTag/kubernetes-namespace" in equals:
            assert equals["aws:RequestTag/kubernetes-namespace"] == association.inputs["namespace"]
            assert equals["aws:RequestTag/kubernetes-service-account"] == association.inputs["serviceAccount"]


def test_team_owned_roles_carry_the_teams_cost_center(stack_plan: Plan) -> None:
    """Every AWS resource carried the environment's cost-center from the provider's default tags, so a team
    budget filtering on the team's cost-center always read $0 (rt-data F3). Team-owned roles now carry the
    team's cost center under team-cost-center (the required cost-center tag stays the environment's), and the
    team budget filters on it."""
    _, spec = PROJECT.load(stack_plan.stack)
    roles = {r.inputs["name"]: r for r in stack_plan.by_type("aws:iam/role:Role")}
    budgets = {b.inputs["name"]: b for b in stack_plan.by_type("aws:budgets/budget:Budget")}
    for team in spec.teams:
        owned = [f"{spec.environment}-team-{team.name}-workload", f"{spec.environment}-{team.name}-workflows"]
        if spec.orchestrator.metaflow:
            owned.append(f"{spec.environment}-metaflow-{team.name}")
        if team.human_access is not None:
            owned.append(f"{spec.environment}-team-{team.name}-human")
        for name in owned:
            assert roles[name].inputs["tags"] == {"team-cost-center": team.cost_center, "team": team.name}, (
                name
            )
        budget = budgets.get(f"{spec.environment}-team-{team.name}-monthly")
        if budget is not None:
            assert budget.inputs["costFilters"] == [
                {"name": "TagKeyValue", "values": [f"user:team-cost-center${team.cost_center}"]}
            ]
