"""IAM rules: every role under the environment's boundary, and no policy that grants everything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    as_list,
    principals,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
    statements,
)

IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_DOCUMENT_TYPES = (IAM_POLICY, ROLE_POLICY)
BOUNDARY_SUFFIX = "-permission-boundary"
# Statements a boundary needs so that nobody under it can take it off or bypass it.
BOUNDARY_SELF_PROTECTION = ("iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:CreateRole")
# Data-plane actions: allowed only on named resources, never on "*".
DATA_ACTION_PREFIXES = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:*",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:*",
    "secretsmanager:GetSecretValue",
    "secretsmanager:*",
    "sqs:*",
    "rds-db:connect",
)


def _boundaries(args: StackValidationArgs) -> list[PolicyResource]:
    return [
        p for p in resources_of(args, IAM_POLICY) if str(p.props.get("name", "")).endswith(BOUNDARY_SUFFIX)
    ]


def _is_boundary(args: ResourceValidationArgs) -> bool:
    return str(args.props.get("name", "")).endswith(BOUNDARY_SUFFIX)


@resource_rule(
    "MLS-IAM-001",
    types=[IAM_ROLE],
    title="Every IAM role has a permissions boundary",
    why="The boundary caps what any role can ever do (services, region, no long-lived credentials, keys never "
    "deleted), whatever policy a later change attaches to it.",
    severity=Severity.CRITICAL,
    remediation="Create roles only with components.iam.platform_role(...), which sets permissions_boundary to "
    "Guardrails.permission_boundary_arn.",
)
def role_has_boundary(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not args.props.get("permissionsBoundary"):
        yield "permissionsBoundary is not set"


@stack_rule(
    "MLS-IAM-002",
    subjects=[IAM_ROLE, IAM_POLICY],
    title="Every role's boundary is the environment's own boundary policy",
    why="A boundary from another environment, or a hand-made one, does not carry this environment's region "
    "fence and denies; only the policy the Guardrails component creates does.",
    severity=Severity.CRITICAL,
    remediation="Pass Guardrails.permission_boundary_arn to platform_role; do not build boundary ARNs by hand.",
)
def role_boundary_is_environments(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    boundaries = _boundaries(args)
    if not boundaries:
        yield f"the stack has no permission boundary policy (a Policy named <env>{BOUNDARY_SUFFIX})", None
        return
    arns = {str(b.props.get("arn")) for b in boundaries if b.props.get("arn")}
    for role in resources_of(args, IAM_ROLE):
        boundary = role.props.get("permissionsBoundary")
        if boundary and boundary not in arns:
            yield f"role {role.name} uses boundary {boundary}, not the environment's {sorted(arns)}", role.urn


@resource_rule(
    "MLS-IAM-003",
    types=[IAM_POLICY],
    title="The permission boundary protects itself",
    why="A boundary that a role can detach, rewrite, or sidestep by creating an unbounded role is no boundary.",
    severity=Severity.CRITICAL,
    remediation="Keep the BoundaryIsImmutable, BoundaryStaysAttached and NewRolesCarryTheBoundary deny "
    "statements of components/governance.py.",
)
def boundary_protects_itself(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not _is_boundary(args):
        return
    denied = {
        str(action)
        for statement in statements(args.props.get("policy"))
        if statement.get("Effect") == "Deny"
        for action in as_list(statement.get("Action"))
    }
    missing = [action for action in BOUNDARY_SELF_PROTECTION if action not in denied]
    if missing:
        yield f"the boundary does not deny {missing}"


@resource_rule(
    "MLS-IAM-004",
    types=POLICY_DOCUMENT_TYPES,
    title="No IAM policy allows every action",
    why="'Action: *' (or NotAction in an Allow) is administrator access; a platform role never needs it and a "
    "boundary that allows it caps nothing.",
    severity=Severity.CRITICAL,
    remediation="List the services (boundary) or the exact actions (role policies) the statement needs.",
)
def no_allow_all_actions(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for index, statement in enumerate(statements(args.props.get("policy"))):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", f"#{index}")
        if "*" in as_list(statement.get("Action")):
            yield f"statement {sid} allows Action '*'"
        if "NotAction" in statement:
            yield f"statement {sid} allows everything except NotAction"


@resource_rule(
    "MLS-IAM-005",
    types=POLICY_DOCUMENT_TYPES,
    title="Role policies grant data actions only on named resources",
    why="Least privilege: a workload reads its own prefixes and keys, never every bucket, key or secret in the "
    "account. (The boundary is exempt: it is a ceiling, not a grant.)",
    severity=Severity.HIGH,
    remediation="Scope s3/kms/secretsmanager/sqs data actions to the ARNs the workload uses (use grant_* methods "
    "of the owning component).",
)
def data_actions_scoped(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if _is_boundary(args):
        return
    for index, statement in enumerate(statements(args.props.get("policy"))):
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource")):
            continue
        data = [
            str(action)
            for action in as_list(statement.get("Action"))
            if any(str(action).startswith(prefix) for prefix in DATA_ACTION_PREFIXES)
        ]
        if data:
            yield f"statement {statement.get('Sid', f'#{index}')} allows {data} on Resource '*'"


@resource_rule(
    "MLS-IAM-006",
    types=[IAM_ROLE],
    title="Role trust policies name their principals and stay in the account",
    why="A trust policy with a '*' principal, or a service principal without a source-account condition for "
    "Pod Identity, lets identities outside the platform assume the role.",
    severity=Severity.CRITICAL,
    remediation="Use components.iam.service_trust(...) or pod_identity_trust(env); never '*' principals.",
)
def role_trust_is_scoped(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    account = stack_context().account_id
    for index, statement in enumerate(statements(args.props.get("assumeRolePolicy"))):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", f"#{index}")
        principal = statement.get("Principal")
        values = principals(statement)
        if "*" in values:
            yield f"statement {sid} trusts principal '*'"
        aws = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
        foreign = [p for p in aws if account and f":{account}:" not in str(p)]
        if foreign:
            yield f"statement {sid} trusts principals of another account: {foreign}"
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if "pods.eks.amazonaws.com" in services and "aws:SourceAccount" not in str(
            statement.get("Condition")
        ):
            yield f"statement {sid} trusts EKS Pod Identity without an aws:SourceAccount condition"
