"""The account foundation of one environment: what must exist before the platform's first ``pulumi up``.

Deployed as its own small Pulumi project (``account/``), once per environment, by a human with administrator
credentials (docs/runbooks/first-deploy.md). It holds:

- the IAM OIDC provider for GitHub Actions (one per account; bring your own with
  ``deployment.github_oidc_provider_arn`` when two environments share an account);
- the pipeline's deploy, preview and audit roles (names from :mod:`mlstack.pipeline_roles`), each trusted only by
  the repository's jobs in one GitHub environment, under a boundary of their own;
- when an Identity Center instance is given, the permission sets the stack file names, each allowed only to
  assume the human roles that trust it.

The platform's own boundary (``<env>-permission-boundary``) is created by the platform stack, that is by the
deploy role itself, so it cannot cap the deploy role. The pipeline roles get ``<env>-mlstack-pipeline-
permission-boundary`` instead, and the deploy role may create IAM roles only with the platform boundary attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.boundary_guards import BoundaryGuards
from components.environment import Environment
from components.iam import policy_document
from components.options import child
from mlstack.pipeline_roles import PIPELINE_ROLES, PipelineRole, pipeline_boundary_name, pipeline_role_name
from mlstack.spec import PlatformSpec
from mlstack.spec.deployment import DeploymentSpec, sso_permission_set_names

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The audience aws-actions/configure-aws-credentials requests (its README, "OIDC": audience defaults to
# sts.amazonaws.com; input `audience` in action.yml @ v6.2.3).
STS_AUDIENCE = "sts.amazonaws.com"
# GitHub environment each role's jobs run in (the `sub` claim of a job with `environment:` is
# repo:<owner>/<repo>:environment:<name>, docs.github.com/en/actions/reference/security/oidc, "Example subject
# claims"). Deploys run in <env>, pull-request previews and the state-drift preview in <env>-preview, the
# guardrail audit in <env>-audit (.github/workflows/).
ROLE_ENVIRONMENT_SUFFIX: dict[PipelineRole, str] = {"deploy": "", "preview": "-preview", "audit": "-audit"}

# IAM service prefix of every pulumi-aws module the platform program creates resources of; the deploy role is
# granted these services (tests/test_account.py proves every type in the shipped plans is covered).
SERVICE_OF_MODULE = {
    "appautoscaling": "application-autoscaling",
    "budgets": "budgets",
    "cloudwatch": ("cloudwatch", "events", "logs"),
    "codebuild": "codebuild",
    # The deploy runner's GitHub connection (components/deployer.py); older connection ARNs are codestar-connections.
    "codeconnections": ("codeconnections", "codestar-connections"),
    "ec2": "ec2",
    "vpc": "ec2",
    "ecr": "ecr",
    "eks": "eks",
    "iam": "iam",
    "kms": "kms",
    "rds": "rds",
    "s3": "s3",
    "sagemaker": "sagemaker",
    "secretsmanager": "secretsmanager",
    "sns": "sns",
    "sqs": "sqs",
    "ssm": "ssm",
}
# Services whose resources the deploy role manages wholesale, in the environment's region only. S3, IAM, KMS,
# SQS and Secrets Manager are left out: their statements below are scoped by name (their data actions never go
# to "*", policy MLS-IAM-005).
DEPLOY_SERVICES = (
    "application-autoscaling",
    "cloudwatch",
    "codebuild",
    "codeconnections",
    "codestar-connections",
    "ec2",
    "ecr",
    "eks",
    "events",
    "logs",
    "rds",
    "sagemaker",
    "sns",
    "ssm",
)
# Services whose Get* returns secret material (parameter values, connection tokens): the preview role reads only
# their metadata.
SECRET_BEARING_SERVICES = ("ssm", "codeconnections", "codestar-connections")
# Every service the deploy role reaches, wholesale or scoped (what the pipeline boundary admits).
PIPELINE_SERVICES = (
    *DEPLOY_SERVICES,
    "budgets",
    "iam",
    "kms",
    "s3",
    "secretsmanager",
    "servicequotas",
    "sqs",
    "sts",
    "tag",
    # Preflight's cost-allocation-tags rule reads ce:ListCostAllocationTags (PREFLIGHT_ACTIONS); nothing writes.
    "ce",
)
# IAM writes the deploy role needs on the environment's own roles, policies and instance profiles
# (pulumi-aws iam.Role / RolePolicy / RolePolicyAttachment / Policy / InstanceProfile). Action names as in the
# Service Authorization Reference, "Actions defined by AWS Identity and Access Management".
IAM_ROLE_WRITES = (
    "iam:DeleteRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PassRole",
)
IAM_POLICY_WRITES = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
IAM_INSTANCE_PROFILE_WRITES = (
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:UntagInstanceProfile",
)
# Reads every IAM resource the program manages (refresh and diff), and the service-linked roles EKS, RDS,
# autoscaling and ELB create on first use in an account.
IAM_READS = ("iam:Get*", "iam:List*")
SERVICE_LINKED_ROLE_SERVICES = (
    "eks.amazonaws.com",
    "eks-nodegroup.amazonaws.com",
    "rds.amazonaws.com",
    "autoscaling.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "spot.amazonaws.com",
)
# What `mlstack audit` calls (docs/live-tooling.md, "mlstack audit ENV", minimal permissions).
AUDIT_ACTIONS = (
    "sts:GetCallerIdentity",
    "tag:GetResources",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketVersioning",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketPolicy",
    "s3:GetBucketLogging",
    "ecr:DescribeRepositories",
    "ecr:ListTagsForResource",
    "ecr:GetRegistryScanningConfiguration",
    "ecr:DescribePullThroughCacheRules",
    "iam:ListRoles",
    "iam:GetRole",
    "eks:ListClusters",
    "eks:DescribeCluster",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "budgets:ViewBudget",
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
)
# What `mlstack preflight` calls (docs/live-tooling.md, "mlstack preflight ENV", minimal permissions); the deploy
# stage runs it, and the audit, before and after `pulumi up` (.github/workflows/deploy-stack.yml).
# Every action mlstack/live/preflight.py names in an aws_call but s3:ListBucket (the state statements grant it on
# the state bucket): a denied call makes its row "not checked" and preflight exit 3, which fails the deploy job.
PREFLIGHT_ACTIONS = (
    "sts:GetCallerIdentity",
    "ec2:DescribeRegions",
    "ec2:DescribeSubnets",
    "ec2:DescribeInstanceTypeOfferings",
    "servicequotas:GetServiceQuota",
    "servicequotas:GetAWSDefaultServiceQuota",
    "eks:DescribeClusterVersions",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "cloudwatch:GetMetricStatistics",
    "eks:DescribeAddonConfiguration",
    "ce:ListCostAllocationTags",
    # The sso-secrets rule: metadata only, never the value (GetSecretValue is not granted here).
    "secretsmanager:DescribeSecret",
)
# S3 reads of bucket configuration (no object data) a refresh of the platform's buckets makes: the Get
# actions behind pulumi-aws's s3 Bucket* resources.
S3_CONFIG_READS = (
    "s3:GetBucket*",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:GetAccelerateConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:ListBucket",
)


@dataclass(frozen=True)
class AccountFoundationArgs:
    """``env`` and ``deployment`` come from the same stack file as the platform; ``permission_sets`` maps each
    Identity Center permission set name to the human role names that trust it."""

    env: Environment
    deployment: DeploymentSpec
    permission_sets: dict[str, list[str]]
    # The home region and the regions holding replicas (PlatformSpec.replica_regions): where the deploy acts.
    regions: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: PlatformSpec) -> AccountFoundationArgs:
        if spec.deployment is None:
            raise ValueError("the stack file has no `deployment` section")
        env = Environment.from_spec(spec)
        sets: dict[str, list[str]] = {name: [] for name in sso_permission_set_names(spec)}
        if spec.platform_admins is not None:
            for name in spec.platform_admins.sso_permission_sets:
                sets[name].append(env.resource_name("platform-admin"))
        for team in spec.teams:
            for name in team.human_access.sso_permission_sets if team.human_access else []:
                sets[name].append(env.resource_name(f"team-{team.name}-human"))
        return cls(
            env=env,
            deployment=spec.deployment,
            permission_sets=sets,
            regions=(spec.region, *spec.replica_regions()),
        )


class AccountFoundation(pulumi.ComponentResource):
    """GitHub OIDC provider, pipeline roles and Identity Center permission sets of one environment.

    Outputs: ``oidc_provider_arn``, ``deploy_role_arn``, ``preview_role_arn``, ``audit_role_arn``,
    ``boundary_arn``, ``permission_set_arns`` (name -> ARN).
    """

    oidc_provider_arn: pulumi.Output[str]
    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    audit_role_arn: pulumi.Output[str]
    boundary_arn: pulumi.Output[str]
    permission_set_arns: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: AccountFoundationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:account:AccountFoundation", name, None, opts)
        env, deployment = args.env, args.deployment
        provider = aws.Provider(
            f"{name}-aws",
            region=env.region,
            allowed_account_ids=[env.account_id],
            default_tags=aws.ProviderDefaultTagsArgs(tags=env.tags),
            opts=child(self),
        )
        aws_only = pulumi.ResourceOptions(parent=self, provider=provider)

        if deployment.github_oidc_provider_arn is None:
            # No thumbprint: IAM validates GitHub's OIDC endpoint against its own library of trusted root CAs and
            # ignores configured thumbprints for it (IAM API reference, CreateOpenIDConnectProvider, note on
            # GitHub; pulumi-aws 7.51.1 iam.OpenIdConnectProvider: thumbprint_lists is optional).
            oidc = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=aws_only,
            )
            self.oidc_provider_arn = oidc.arn
        else:
            self.oidc_provider_arn = pulumi.Output.from_input(deployment.github_oidc_provider_arn)

        platform_boundary = f"arn:aws:iam::{env.account_id}:policy/{env.resource_name('permission-boundary')}"
        boundary_name = pipeline_boundary_name(env.name)
        boundary_arn = f"arn:aws:iam::{env.account_id}:policy/{boundary_name}"
        boundary = aws.iam.Policy(
            f"{name}-pipeline-boundary",
            name=boundary_name,
            description=f"mlstack {env.name}: ceiling of the deploy, preview and audit roles",
            policy=policy_document(pipeline_boundary_statements(env, boundary_arn, platform_boundary)),
            opts=aws_only,
        )
        self.boundary_arn = boundary.arn

        bucket = deployment.state_bucket or default_state_bucket(env)
        roles: dict[PipelineRole, aws.iam.Role] = {}
        statements: dict[PipelineRole, list[dict[str, Any]]] = {
            "deploy": deploy_statements(
                env, bucket, deployment.secrets_key_alias, platform_boundary, args.regions or (env.region,)
            ),
            "preview": preview_statements(env, bucket, deployment.secrets_key_alias),
            "audit": audit_statements(env),
        }
        descriptions: dict[PipelineRole, str] = {
            "deploy": "runs pulumi up (cluster admin through an EKS access entry)",
            "preview": "runs pulumi preview on pull requests and the nightly state drift; cannot write",
            "audit": "runs mlstack audit, the nightly guardrail drift; read-only",
        }
        role_names = {role: pipeline_role_name(env.name, role) for role in statements}
        for role, role_statements in statements.items():
            github_environment = env.name + ROLE_ENVIRONMENT_SUFFIX[role]
            roles[role] = aws.iam.Role(
                f"{name}-{role}",
                name=role_names[role],
                description=f"mlstack {env.name} pipeline: {descriptions[role]}",
                assume_role_policy=github_trust(
                    self.oidc_provider_arn, deployment.github_repository, github_environment
                ),
                permissions_boundary=boundary.arn,
                max_session_duration=3600,
                opts=aws_only,
            )
            aws.iam.RolePolicy(
                f"{name}-{role}-policy",
                name=f"mlstack-{role}",
                role=roles[role].name,
                policy=policy_document(role_statements),
                opts=aws_only,
            )
        self.deploy_role_arn = roles["deploy"].arn
        self.preview_role_arn = roles["preview"].arn
        self.audit_role_arn = roles["audit"].arn

        permission_set_arns: dict[str, pulumi.Output[str]] = {}
        centre = deployment.identity_center
        if centre is not None and args.permission_sets:
            sso_opts = aws_only
            if centre.admin_role_arn is not None:
                sso_provider = aws.Provider(
                    f"{name}-identity-center",
                    region=env.region,
                    # Pinned to the account that holds the instance, the one the role belongs to (MLS-ENV-003).
                    allowed_account_ids=[centre.admin_role_arn.split(":")[4]],
                    assume_roles=[
                        aws.ProviderAssumeRoleArgs(
                            role_arn=centre.admin_role_arn, session_name=f"mlstack-{env.name}-account"
                        )
                    ],
                    default_tags=aws.ProviderDefaultTagsArgs(tags=env.tags),
                    opts=child(self),
                )
                sso_opts = pulumi.ResourceOptions(parent=self, provider=sso_provider)
            for set_name, role_names_trusting in args.permission_sets.items():
                permission_set = aws.ssoadmin.PermissionSet(
                    f"{name}-sso-{set_name}",
                    name=set_name,
                    instance_arn=centre.instance_arn,
                    description=f"mlstack {env.name}: assume {', '.join(role_names_trusting)}",
                    session_duration=centre.session_duration,
                    opts=sso_opts,
                )
                aws.ssoadmin.PermissionSetInlinePolicy(
                    f"{name}-sso-{set_name}-policy",
                    instance_arn=centre.instance_arn,
                    permission_set_arn=permission_set.arn,
                    inline_policy=policy_document(
                        [
                            {
                                "Sid": "AssumeTheEnvironmentsHumanRoles",
                                "Effect": "Allow",
                                "Action": "sts:AssumeRole",
                                "Resource": [
                                    f"arn:aws:iam::{env.account_id}:role/{role}"
                                    for role in role_names_trusting
                                ],
                            }
                        ]
                    ),
                    opts=sso_opts,
                )
                for index, group in enumerate(centre.group_assignments.get(set_name, [])):
                    aws.ssoadmin.AccountAssignment(
                        f"{name}-sso-{set_name}-group-{index}",
                        instance_arn=centre.instance_arn,
                        permission_set_arn=permission_set.arn,
                        principal_id=group,
                        principal_type="GROUP",
                        target_id=env.account_id,
                        target_type="AWS_ACCOUNT",
                        opts=sso_opts,
                    )
                permission_set_arns[set_name] = permission_set.arn
        self.permission_set_arns = (
            pulumi.Output.all(**permission_set_arns)
            if permission_set_arns
            else (pulumi.Output.from_input({}))
        )
        self.register_outputs(
            {
                "oidc_provider_arn": self.oidc_provider_arn,
                "deploy_role_arn": self.deploy_role_arn,
                "preview_role_arn": self.preview_role_arn,
                "audit_role_arn": self.audit_role_arn,
                "boundary_arn": self.boundary_arn,
                "permission_set_arns": self.permission_set_arns,
            }
        )


def default_state_bucket(env: Environment) -> str:
    """``mlstack bootstrap``'s default state bucket, ``mlstack-pulumi-state-<account>-<region>``
    (mlstack.live.bootstrap.state_bucket_name, which this must equal: tests/test_account.py). Not imported from
    there: the program runs offline and should not load the AWS SDK the live commands use."""
    return f"mlstack-pulumi-state-{env.account_id}-{env.region}"


def github_trust(provider_arn: pulumi.Input[str], repository: str, environment: str) -> pulumi.Output[str]:
    """Trust of a pipeline role: GitHub's OIDC tokens for ``sts.amazonaws.com``, from jobs of ``repository``
    that run in the GitHub environment ``environment``, and nothing else (no branch, pull request or other
    environment's job has that ``sub``)."""
    return policy_document(
        [
            {
                "Sid": "GitHubActionsEnvironment",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": f"repo:{repository}:environment:{environment}",
                    }
                },
            }
        ]
    )


def _state_statements(bucket: str, key_alias: str, *, write: bool) -> list[dict[str, Any]]:
    """The Pulumi state backend: list and read (and, to deploy, write) the bucket's objects, and use the secrets
    key, found by its alias (kms:ResourceAliases, AWS KMS developer guide, "Use aliases to control access")."""
    object_actions = ["s3:GetObject"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
    key_actions = ["kms:Decrypt", "kms:DescribeKey"] + (
        ["kms:Encrypt", "kms:GenerateDataKey"] if write else []
    )
    return [
        {
            "Sid": "StateBucketList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": f"arn:aws:s3:::{bucket}",
        },
        {
            "Sid": "StateObjects",
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
        {
            "Sid": "SecretsKey",
            "Effect": "Allow",
            "Action": key_actions,
            "Resource": "arn:aws:kms:*:*:key/*",
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [key_alias]}},
        },
    ]


def deploy_statements(
    env: Environment,
    bucket: str,
    key_alias: str,
    platform_boundary: str,
    regions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The deploy role: the platform's services in this account, in the environment's regions (home and
    replicas); IAM only on the environment's own roles and policies, and role creation only with the platform's
    boundary attached; S3 only on the environment's buckets; budgets named after the environment; KMS keys of
    its regions and the state backend."""
    account = env.account_id
    regions = regions or (env.region,)
    prefix = env.name
    return [
        {
            "Sid": "PlatformServicesInItsRegions",
            "Effect": "Allow",
            "Action": [f"{service}:*" for service in DEPLOY_SERVICES],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": list(regions)}},
        },
        {
            # AWS Budgets is global (its endpoint is us-east-1): scoped by name instead of region.
            "Sid": "TheEnvironmentsBudgets",
            "Effect": "Allow",
            "Action": "budgets:*",
            "Resource": f"arn:aws:budgets::{account}:budget/{prefix}-*",
        },
        {
            "Sid": "TheEnvironmentsQueues",
            "Effect": "Allow",
            "Action": "sqs:*",
            "Resource": [f"arn:aws:sqs:{region}:{account}:{prefix}-*" for region in regions],
        },
        {
            "Sid": "SecretsOfTheAccountInItsRegions",
            "Effect": "Allow",
            "Action": "secretsmanager:*",
            "Resource": [f"arn:aws:secretsmanager:{region}:{account}:secret:*" for region in regions],
        },
        {
            "Sid": "CreateRolesOnlyUnderThePlatformBoundary",
            "Effect": "Allow",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": f"arn:aws:iam::{account}:role/{prefix}-*",
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": platform_boundary}},
        },
        {
            "Sid": "ManageTheEnvironmentsRoles",
            "Effect": "Allow",
            "Action": list(IAM_ROLE_WRITES),
            "Resource": f"arn:aws:iam::{account}:role/{prefix}-*",
        },
        {
            "Sid": "ManageTheEnvironmentsPolicies",
            "Effect": "Allow",
            "Action": list(IAM_POLICY_WRITES),
            "Resource": f"arn:aws:iam::{account}:policy/{prefix}-*",
        },
        {
            "Sid": "ManageTheEnvironmentsInstanceProfiles",
            "Effect": "Allow",
            "Action": list(IAM_INSTANCE_PROFILE_WRITES),
            "Resource": f"arn:aws:iam::{account}:instance-profile/{prefix}-*",
        },
        {
            "Sid": "ReadIam",
            "Effect": "Allow",
            "Action": list(IAM_READS),
            "Resource": f"arn:aws:iam::{account}:*",
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"arn:aws:iam::{account}:role/aws-service-role/*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
        },
        {
            "Sid": "TheEnvironmentsBuckets",
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{prefix}-*", f"arn:aws:s3:::{prefix}-*/*"],
        },
        {
            "Sid": "KeysInItsRegions",
            "Effect": "Allow",
            "Action": "kms:*",
            "Resource": [
                arn
                for region in regions
                for arn in (
                    f"arn:aws:kms:{region}:{account}:key/*",
                    f"arn:aws:kms:{region}:{account}:alias/*",
                )
            ],
        },
        {
            "Sid": "CreateKeysAndReadAliases",
            "Effect": "Allow",
            "Action": ["kms:CreateKey", "kms:ListAliases", "kms:ListKeys"],
            "Resource": "*",
        },
        {
            # The deploy stage's preflight and audit: read-only calls, some global (IAM, STS, tags).
            "Sid": "PreflightAndAudit",
            "Effect": "Allow",
            "Action": sorted({*PREFLIGHT_ACTIONS, *AUDIT_ACTIONS}),
            "Resource": "*",
        },
        *_state_statements(bucket, key_alias, write=True),
    ]


def preview_statements(env: Environment, bucket: str, key_alias: str) -> list[dict[str, Any]]:
    """The preview role: describe, get and list the platform's services (what a preview with --refresh reads),
    bucket configuration but no object data, the state read-only, and decrypt with the secrets key. No write."""
    reads = [
        f"{service}:{verb}*"
        for service in (*DEPLOY_SERVICES, "sqs")
        # Their Get* return parameter values and connection tokens: their metadata reads are listed below.
        if service not in SECRET_BEARING_SERVICES
        for verb in ("Describe", "Get", "List")
    ]
    return [
        {"Sid": "ReadThePlatformsServices", "Effect": "Allow", "Action": reads, "Resource": "*"},
        {
            "Sid": "ReadSecretMetadata",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:ListSecrets",
                "ssm:DescribeParameters",
                "ssm:ListTagsForResource",
                "codeconnections:GetConnection",
                "codeconnections:ListConnections",
                "codeconnections:ListTagsForResource",
                "codestar-connections:GetConnection",
                "codestar-connections:ListConnections",
                "codestar-connections:ListTagsForResource",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadIamAndKeys",
            "Effect": "Allow",
            "Action": [
                *IAM_READS,
                "kms:Describe*",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:List*",
                "sts:GetCallerIdentity",
                "budgets:ViewBudget",
                "budgets:ListTagsForResource",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadBucketConfiguration",
            "Effect": "Allow",
            "Action": list(S3_CONFIG_READS),
            "Resource": f"arn:aws:s3:::{env.name}-*",
        },
        *_state_statements(bucket, key_alias, write=False),
    ]


def audit_statements(env: Environment) -> list[dict[str, Any]]:
    """The audit role: exactly what ``mlstack audit`` calls (docs/live-tooling.md)."""
    return [{"Sid": "AuditReads", "Effect": "Allow", "Action": list(AUDIT_ACTIONS), "Resource": "*"}]


def pipeline_boundary_statements(
    env: Environment, boundary_arn: str, platform_boundary: str
) -> list[dict[str, Any]]:
    """The pipeline roles' ceiling: the platform's services and the state backend, then denies no identity
    policy can lift: no IAM users or access keys, nothing done to the pipeline's own roles, provider or
    boundary, and no role created or re-bounded without the platform boundary."""
    account = env.account_id
    pipeline_roles = [
        f"arn:aws:iam::{account}:role/{pipeline_role_name(env.name, role)}" for role in PIPELINE_ROLES
    ]
    guards = BoundaryGuards(boundary_arn=boundary_arn, required_boundary=platform_boundary)
    return [
        {
            "Sid": "Ceiling",
            "Effect": "Allow",
            "Action": sorted(f"{service}:*" for service in PIPELINE_SERVICES),
            "Resource": "*",
        },
        guards.boundary_is_immutable(),
        {
            "Sid": "PipelineRolesAreImmutable",
            "Effect": "Deny",
            "Action": [
                *IAM_ROLE_WRITES,
                "iam:CreateRole",
                "iam:DeleteRolePermissionsBoundary",
                "iam:PutRolePermissionsBoundary",
            ],
            "Resource": pipeline_roles,
        },
        guards.boundary_stays_attached(),
        guards.new_roles_carry_the_boundary(),
        # The pipeline boundary has no broad escalation deny (the platform's NoEscalationThroughOtherPrincipals
        # holds these two), so it names them here.
        guards.no_long_lived_credentials(more=("iam:UpdateLoginProfile", "iam:CreateServiceSpecificCredential")),
        {
            "Sid": "OidcProviderIsImmutable",
            "Effect": "Deny",
            "Action": [
                "iam:CreateOpenIDConnectProvider",
                "iam:DeleteOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider",
            ],
            "Resource": "*",
        },
    ]
