"""The in-VPC GitHub Actions runner that runs ``pulumi up`` against the private cluster: an AWS CodeBuild project.

The cluster endpoint is private, so a GitHub-hosted runner cannot reach the API that the same ``up`` uses to
install Karpenter and every chart. CodeBuild hosts the runner instead: a webhook on GitHub's
``workflow_job`` "queued" event starts a build in the private subnets for every job whose ``runs-on`` names
this project, and the build registers itself as an ephemeral self-hosted runner for that one job
(CodeBuild user guide, "Self-hosted GitHub Actions runners in AWS CodeBuild", action-runner.html).

The component depends only on the network, the keys and the guardrails, never on the cluster, so that a first
targeted ``pulumi up`` can create it before anything else (``mlstack first-deploy-targets``). The rule that lets
it reach the API belongs to the cluster (``Cluster.allow_api_from``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import platform_role, policy_document, service_trust
from components.network import https_egress_only_security_group
from components.options import child, stateful
from mlstack.pipeline_roles import deploy_runner_project_name
from mlstack.spec.access import DeployRunnerSpec

# Amazon Linux 2023 standard image, x86_64: AWS CLI, Python and git preinstalled; the workflow installs the
# Pulumi CLI (pulumi/actions). CodeBuild user guide, "Compute images supported with the CodeBuild-hosted GitHub
# Actions runner" (linux 5.0 -> aws/codebuild/amazonlinux-x86_64-standard:5.0).
RUNNER_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
# The only webhook event a runner project needs (CodeBuild user guide, github-webhook.html: event types;
# action-runner.html: "WORKFLOW_JOB_QUEUED").
RUNNER_WEBHOOK_EVENT = "WORKFLOW_JOB_QUEUED"
# CodeBuild user guide, "Allow CodeBuild access to AWS services required to create a VPC network interface"
# (auth-and-access-control-iam-identity-based-access-control.html#customer-managed-policies-example-create-vpc-
# network-interface): a VPC build creates, describes and deletes an ENI in the project's subnets.
VPC_DESCRIBE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
# CodeBuild user guide, connections-github-app.html, "Step 2: Grant CodeBuild project IAM role access to use the
# connection".
CONNECTION_ACTIONS = ("codeconnections:GetConnection", "codeconnections:GetConnectionToken")


def runner_label(project_name: str) -> str:
    """The ``runs-on`` label a workflow job uses to run on this project (CodeBuild user guide,
    sample-github-action-runners-update-labels.html: required, ``codebuild-<project-name>-${{ github.run_id }}-
    ${{ github.run_attempt }}``)."""
    return f"codebuild-{project_name}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"


@dataclass(frozen=True)
class DeployRunnerArgs:
    """Inputs of the DeployRunner component: the network it runs in, the keys it encrypts with, the boundary."""

    env: Environment
    spec: DeployRunnerSpec
    github_repository: str  # owner/name: PlatformSpec.deploy_runner_repository()
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    logs_key_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]


class DeployRunner(pulumi.ComponentResource):
    """A CodeBuild-hosted GitHub Actions runner in the private subnets.

    Outputs: ``project_name``, ``project_arn``, ``security_group_id``, ``role_arn``, ``connection_arn``,
    ``log_group_name``, ``runs_on`` (the label workflows use).
    """

    project_name: pulumi.Output[str]
    project_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    connection_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    runs_on: pulumi.Output[str]

    def __init__(self, name: str, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:deployer:DeployRunner", name, None, opts)
        env, spec = args.env, args.spec
        project_name = deploy_runner_project_name(env.name)

        if spec.connection_arn is not None:
            connection_arn: pulumi.Output[str] = pulumi.Output.from_input(spec.connection_arn)
        else:
            # Created PENDING: someone with console access authorises the GitHub App once (CodeBuild user guide,
            # connections-github-app.html, step 1; Developer Tools console, "Update pending connection").
            connection = aws.codeconnections.Connection(
                f"{name}-github",
                name=env.resource_name("github")[:32],
                provider_type="GitHub",
                opts=child(self),
            )
            connection_arn = connection.arn

        # Outbound only: GitHub (runner registration, actions), AWS APIs, the cluster API, package registries.
        # Everything the runner does is HTTPS.
        self.security_group = https_egress_only_security_group(
            self,
            name,
            env=env,
            purpose="deploy-runner",
            vpc_id=args.vpc_id,
            description="mlstack deploy runner (CodeBuild): no inbound, HTTPS out to GitHub, AWS and the cluster",
            egress_description="HTTPS to GitHub, AWS APIs and the cluster API",
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/mlstack/{env.name}/deploy-runner",
            kms_key_id=args.logs_key_arn,
            retention_in_days=spec.log_retention_days,
            # Deploy logs are audit evidence in hardened tiers.
            opts=stateful(self, env),
        )

        role = platform_role(
            self,
            f"{name}-role",
            env=env,
            role_suffix="deploy-runner",
            boundary_arn=args.boundary_arn,
            # Plain service trust, like the cluster role: whether CodeBuild sets aws:SourceArn/SourceAccount when
            # it assumes a service role is not documented in the pages read, and a condition it does not meet
            # would make every build fail. Only CodeBuild projects this account creates can pass the role
            # (the boundary's PassOnlyPlatformRoles), and only this project is given it.
            assume_role_policy=service_trust("codebuild.amazonaws.com"),
            description="CodeBuild deploy runner: logs, its network interfaces, the GitHub connection. Nothing "
            "else: the job assumes the deploy role through GitHub OIDC.",
        )
        subnet_arns = pulumi.Output.from_input(args.private_subnet_ids).apply(
            lambda ids: [env.arn("ec2", f"subnet/{subnet}") for subnet in ids]
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteBuildLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                    },
                    {
                        # Describe calls support no resource-level permissions; Create/DeleteNetworkInterface are
                        # scoped by the service to the project's own subnets and security group.
                        "Sid": "VpcNetworkInterfaces",
                        "Effect": "Allow",
                        "Action": list(VPC_DESCRIBE_ACTIONS),
                        "Resource": "*",
                    },
                    {
                        "Sid": "NetworkInterfacesOnlyInPrivateSubnets",
                        "Effect": "Allow",
                        "Action": "ec2:CreateNetworkInterfacePermission",
                        "Resource": env.arn("ec2", "network-interface/*"),
                        "Condition": {
                            "StringEquals": {
                                "ec2:Subnet": subnet_arns,
                                "ec2:AuthorizedService": "codebuild.amazonaws.com",
                            }
                        },
                    },
                    {
                        "Sid": "UseTheGitHubConnection",
                        "Effect": "Allow",
                        "Action": list(CONNECTION_ACTIONS),
                        "Resource": connection_arn,
                    },
                ]
            ),
            opts=child(self),
        )

        self.project = aws.codebuild.Project(
            f"{name}-project",
            name=project_name,
            description=f"GitHub Actions runner for {args.github_repository} inside the {env.name} VPC",
            service_role=role.arn,
            # The runner build clones nothing itself (the job's actions/checkout does) and writes no artifact.
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB",
                location=f"https://github.com/{args.github_repository}.git",
                auth=aws.codebuild.ProjectSourceAuthArgs(type="CODECONNECTIONS", resource=connection_arn),
                git_clone_depth=1,
            ),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                compute_type=spec.compute_type,
                image=RUNNER_IMAGE,
                image_pull_credentials_type="CODEBUILD",
                # No Docker daemon: deploys run Pulumi and Helm, never docker build.
                privileged_mode=False,
            ),
            # Nothing is written with it (no artifacts, no cache, no S3 logs); it keeps anything added later off
            # the AWS-managed key.
            encryption_key=args.data_key_arn,
            build_timeout=spec.build_timeout_minutes,
            queued_timeout=60,
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id,
                subnets=args.private_subnet_ids,
                security_group_ids=[self.security_group.id],
            ),
            # CodeBuild checks the role's EC2 permissions when the project is created with a VPC config.
            opts=child(self, depends_on=[policy]),
        )
        aws.codebuild.Webhook(
            f"{name}-webhook",
            project_name=self.project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern=RUNNER_WEBHOOK_EVENT)
                    ]
                )
            ],
            opts=child(self),
        )

        self.project_name = self.project.name
        self.project_arn = self.project.arn
        self.security_group_id = self.security_group.id
        self.role_arn = role.arn
        self.connection_arn = connection_arn
        self.log_group_name = log_group.name
        self.runs_on = pulumi.Output.from_input(runner_label(project_name))
        self.register_outputs(
            {
                "project_name": self.project_name,
                "project_arn": self.project_arn,
                "security_group_id": self.security_group_id,
                "role_arn": self.role_arn,
                "connection_arn": self.connection_arn,
                "log_group_name": self.log_group_name,
                "runs_on": self.runs_on,
            }
        )
