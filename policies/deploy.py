"""Rules for what reaches the private cluster from outside it: the CodeBuild deploy runner, the access host, and
the security group rules they go out through."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationArgs

from policies.framework import Severity, as_list, resource_rule, resources_of, stack_context, stack_rule

CODEBUILD_PROJECT = "aws:codebuild/project:Project"
CODEBUILD_WEBHOOK = "aws:codebuild/webhook:Webhook"
EC2_INSTANCE = "aws:ec2/instance:Instance"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
# The environment variables AWS Config's codebuild-project-envvar-awscred-check looks for (Security Hub
# CodeBuild.2).
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Pull-request webhook events (CodeBuild user guide, github-webhook.html, event types).
PULL_REQUEST_EVENTS = (
    "PULL_REQUEST_CREATED",
    "PULL_REQUEST_UPDATED",
    "PULL_REQUEST_REOPENED",
    "PULL_REQUEST_MERGED",
    "PULL_REQUEST_CLOSED",
)


@resource_rule(
    "MLS-CB-001",
    types=[CODEBUILD_PROJECT],
    title="CodeBuild projects run unprivileged, in the VPC, and log to CloudWatch",
    why="A deploy job holds the deploy role: privileged mode gives it the build host's devices and Docker, a "
    "build outside the VPC cannot reach the private cluster, and without logs there is no record of what a "
    "deploy did.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["CodeBuild.4", "CodeBuild.5"]},
    remediation="Set environment.privileged_mode false, vpc_config with the private subnets and the runner's "
    "security group, and logs_config.cloudwatch_logs status ENABLED (components/deployer.py does all three).",
)
def codebuild_project_hardened(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    environment = args.props.get("environment") or {}
    if environment.get("privilegedMode") is True:
        yield "environment.privilegedMode is true"
    vpc = args.props.get("vpcConfig") or {}
    if not as_list(vpc.get("subnets")) or not as_list(vpc.get("securityGroupIds")):
        yield "no vpcConfig with subnets and security groups: the build runs outside the VPC"
    cloudwatch = (args.props.get("logsConfig") or {}).get("cloudwatchLogs") or {}
    # CodeBuild's default for cloudwatch_logs.status is ENABLED (pulumi-aws codebuild ProjectLogsConfigCloudwatchLogs).
    if cloudwatch.get("status") == "DISABLED":
        yield "CloudWatch logs are disabled"


@resource_rule(
    "MLS-CB-002",
    types=[CODEBUILD_PROJECT],
    title="CodeBuild projects use our KMS key and hold no AWS credentials in clear text",
    why="Build output under the AWS-managed key escapes the environment's key policies; access keys in "
    "plain environment variables are long-lived credentials readable by anyone who can read the project.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["CodeBuild.2"]},
    remediation="Set encryption_key to a customer managed key of the environment; take AWS credentials from the "
    "service role or GitHub OIDC, never from environment variables.",
)
def codebuild_project_keys(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    key = str(args.props.get("encryptionKey") or "")
    if not key or key.endswith("alias/aws/s3"):
        yield "encryptionKey is not a customer managed key"
    environment = args.props.get("environment") or {}
    for variable in as_list(environment.get("environmentVariables")):
        if variable.get("name") in CREDENTIAL_VARIABLES and variable.get("type", "PLAINTEXT") == "PLAINTEXT":
            yield f"environment variable {variable.get('name')} holds a credential in clear text"


@resource_rule(
    "MLS-CB-003",
    types=[CODEBUILD_WEBHOOK],
    title="CodeBuild webhooks never build pull requests",
    why="A pull request, from a fork too, would run its own code with the project's service role and inside the "
    "VPC; the deploy runner takes only GitHub Actions jobs (WORKFLOW_JOB_QUEUED), whose workflows decide what "
    "runs where.",
    severity=Severity.HIGH,
    remediation="Give the webhook one filter group with an EVENT filter WORKFLOW_JOB_QUEUED; run pull-request "
    "checks on GitHub-hosted runners.",
)
def webhook_no_pull_requests(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    groups = as_list(args.props.get("filterGroups"))
    if not groups:
        yield "no filter groups: every event of the repository starts a build"
    for index, group in enumerate(groups):
        events = [
            pattern.strip()
            for item in as_list(group.get("filters"))
            if item.get("type") == "EVENT"
            for pattern in str(item.get("pattern", "")).split(",")
        ]
        if not events:
            yield f"filter group {index} names no EVENT filter"
        for event in events:
            if event in PULL_REQUEST_EVENTS:
                yield f"filter group {index} builds {event}"


@resource_rule(
    "MLS-EC2-003",
    types=[EC2_INSTANCE],
    title="Instances have no public address and take IMDSv2 settings from a launch template",
    why="The only stand-alone instance is the access host: a public address would make it reachable from the "
    "internet, and outside a launch template nothing checks its metadata options (MLS-EC2-001 checks templates).",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.8"]},
    remediation="Launch it from a launch template with associate_public_ip_address 'false' and IMDSv2 (see "
    "components/access.py), or set metadata_options http_tokens required on the instance.",
)
def instance_private_imdsv2(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("associatePublicIpAddress") is True:
        yield "associatePublicIpAddress is true"
    template = args.props.get("launchTemplate") or {}
    options = args.props.get("metadataOptions") or {}
    if not (template.get("id") or template.get("name")) and options.get("httpTokens") != "required":
        yield "neither a launch template nor metadataOptions.httpTokens required"


@resource_rule(
    "MLS-NET-007",
    types=[EGRESS_RULE],
    title="Security group egress rules name a protocol and a port range",
    why="An all-traffic egress rule lets a compromised runner or host reach anything on any port (SSH, "
    "databases in peered networks); what reaches the private cluster and AWS needs HTTPS only.",
    severity=Severity.MEDIUM,
    level=EnforcementLevel.ADVISORY,
    remediation="Set ip_protocol 'tcp' (or 'udp') with from_port and to_port, for example 443.",
)
def egress_scoped(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if str(args.props.get("ipProtocol")) in {"-1", "all"}:
        yield "ipProtocol is -1 (all traffic)"
    elif args.props.get("fromPort") is None or args.props.get("toPort") is None:
        yield "no port range"


@stack_rule(
    "MLS-CB-004",
    subjects=[EKS_CLUSTER, CODEBUILD_PROJECT],
    title="A private cluster has a deploy runner inside its VPC, or names the one it brings",
    why="`pulumi up` installs Karpenter and every chart through the cluster API; with a private endpoint only "
    "a runner inside the VPC reaches it, so a stack without one cannot finish its own deployment.",
    severity=Severity.MEDIUM,
    level=EnforcementLevel.ADVISORY,
    mlstack_only=True,
    remediation="Name the repository in deployment.github_repository (or deploy_runner.github_repository): the "
    "CodeBuild runner is then created. Or set deploy_runner.enabled false once deploys run on another runner "
    "inside the VPC (docs/components/deployer.md).",
)
def private_cluster_has_runner(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    runner = stack_context().platform.get("deploy_runner") or {}
    if isinstance(runner, Mapping) and runner.get("enabled") is False:
        return  # the named opt-out: deploys run on a runner this stack does not own
    in_vpc = [
        p
        for p in resources_of(args, CODEBUILD_PROJECT)
        if as_list((p.props.get("vpcConfig") or {}).get("subnets"))
    ]
    for cluster in resources_of(args, EKS_CLUSTER):
        if (cluster.props.get("vpcConfig") or {}).get("endpointPublicAccess") is True:
            continue
        if not in_vpc:
            yield "the cluster endpoint is private and no CodeBuild runner runs in the VPC", cluster.urn
