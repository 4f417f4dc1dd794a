"""IAM rules: every role under the environment's boundary, and no policy that grants everything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    as_list,
    plain,
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
    mlstack_only=True,
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
    mlstack_only=True,
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
    mlstack_only=True,
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
    controls={"aws-fsbp": ["IAM.1"]},
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
    controls={"aws-fsbp": ["KMS.1", "KMS.2"]},
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


def _allow_on_everything(document: Any) -> list[Mapping[str, Any]]:
    """The Allow statements that leave their resource open ('*' or NotResource): the only ones cloudsplaining
    reads as unconstrained, so the only ones worth handing to it."""
    return [
        s
        for s in statements(document)
        if s.get("Effect") == "Allow" and ("NotResource" in s or "*" in as_list(s.get("Resource")))
    ]


def _unconstrained(args: ResourceValidationArgs) -> Any:
    """The policy as a cloudsplaining PolicyDocument, or None when no statement leaves its resource open.

    cloudsplaining (and the policy_sentry action database under it) is imported on first use: most policies
    of a stack name their resources and never pay for the import.
    """
    if _is_boundary(args):
        return None  # a ceiling, not a grant: checked by MLS-IAM-003/004
    open_statements = _allow_on_everything(args.props.get("policy"))
    if not open_statements:
        return None
    from cloudsplaining.scan.policy_document import PolicyDocument

    return PolicyDocument({"Version": "2012-10-17", "Statement": [plain(s) for s in open_statements]})


@resource_rule(
    "MLS-IAM-007",
    types=POLICY_DOCUMENT_TYPES,
    title="No policy opens a known privilege-escalation path",
    why="Combinations such as iam:PassRole with ec2:RunInstances or lambda:CreateFunction, or "
    "iam:CreatePolicyVersion alone, on every resource let a workload become any role of the account; the "
    "combinations are the ones Rhino Security Labs published, as cloudsplaining detects them.",
    severity=Severity.CRITICAL,
    remediation="Scope the actions of the reported combination to the exact ARNs the workload needs "
    "(iam:PassRole to named roles, with an iam:PassedToService condition).",
)
def no_privilege_escalation(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    document = _unconstrained(args)
    if document is None:
        return
    for escalation in document.allows_privilege_escalation:
        yield f"allows {escalation['type']} on every resource: {sorted(escalation['actions'])}"


@resource_rule(
    "MLS-IAM-008",
    types=POLICY_DOCUMENT_TYPES,
    title="Permissions management (iam:PassRole, role and policy changes) is never granted on every resource",
    why="An unscoped iam:PassRole hands any role to a service the workload controls, and an unscoped "
    "iam:CreateRole, iam:PutRolePolicy or iam:AttachRolePolicy lets it mint its own; policy_sentry's access "
    "levels name these actions, so the rule does not depend on a hand-kept list.",
    severity=Severity.CRITICAL,
    remediation="Name the roles or policies in Resource (and add iam:PassedToService for iam:PassRole).",
)
def permissions_management_scoped(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    document = _unconstrained(args)
    if document is None:
        return
    actions = sorted(set(document.permissions_management_without_constraints))
    if actions:
        yield f"grants permissions-management actions on every resource: {actions}"


ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
# The AWS managed policies the platform's EKS roles attach (components/cluster.py): cluster, node, CNI,
# EBS CSI, SSM and registry pull. Anything broader must be reviewed and added to the config.
DEFAULT_MANAGED_POLICIES = [
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKSClusterPolicy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
    "service-role/AmazonEBSCSIDriverPolicy",
]


@resource_rule(
    "MLS-IAM-009",
    types=[ROLE_POLICY_ATTACHMENT],
    title="Roles attach only reviewed AWS managed policies",
    why="An AWS managed policy is a grant nobody in the stack wrote and that AWS widens over time; "
    "AdministratorAccess or PowerUserAccess on one role undoes every least-privilege rule of the pack.",
    severity=Severity.HIGH,
    remediation="Write the statements the role needs as a role policy, or add the managed policy to "
    "allowedManagedPolicies after review.",
    config={
        "allowedManagedPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_MANAGED_POLICIES,
            "description": "AWS managed policies (path/name after arn:aws:iam::aws:policy/) a role may attach.",
        }
    },
)
def managed_policies_reviewed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    arn = str(args.props.get("policyArn") or "")
    if ":iam::aws:policy/" not in arn:
        return  # a customer managed policy: its document is checked by the other IAM rules
    name = arn.split(":policy/", 1)[1]
    if name not in set(config.get("allowedManagedPolicies") or []):
        yield f"attaches the AWS managed policy {name}, which is not in allowedManagedPolicies"
