"""The in-VPC deploy runner (CodeBuild-hosted GitHub Actions runner), the deploy role's cluster access and the
first targeted deploy, on the recorded plans of every shipped stack."""

from __future__ import annotations

import json

import pytest

from components.cluster import CLUSTER_ADMIN_POLICY
from components.deployer import RUNNER_IMAGE, runner_label
from mlstack.first_deploy import NoDeployRunner, first_deploy_targets, up_command
from mlstack.pipeline_roles import deploy_runner_project_name, pipeline_role_arn
from mlstack.plan.recorder import Plan, RecordedResource
from tests.plans import PROJECT, ROOT, plan_of, plan_with_sections, policy_json

PROJECT_TYPE = "aws:codebuild/project:Project"


def _one(plan: Plan, type_: str, name_part: str = "") -> RecordedResource:
    (resource,) = [r for r in plan.by_type(type_) if name_part in r.name]
    return resource


def _runner_group(plan: Plan) -> RecordedResource:
    return next(
        g for g in plan.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-deployer-sg")
    )


def test_runner_project_is_the_pipeline_contract(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    project = _one(stack_plan, PROJECT_TYPE).inputs
    assert project["name"] == deploy_runner_project_name(spec.environment)
    assert project["source"]["type"] == "GITHUB"
    assert project["source"]["location"] == f"https://github.com/{spec.deploy_runner_repository()}.git"
    assert project["source"]["auth"]["type"] == "CODECONNECTIONS"
    connection = _one(stack_plan, "aws:codeconnections/connection:Connection")
    assert connection.inputs["providerType"] == "GitHub"
    assert project["source"]["auth"]["resource"] == connection.outputs["arn"]
    assert project["environment"] == {
        "computeType": spec.deploy_runner.compute_type,
        "image": RUNNER_IMAGE,
        "imagePullCredentialsType": "CODEBUILD",
        "privilegedMode": False,
        "type": "LINUX_CONTAINER",
    }
    assert project["artifacts"] == {"type": "NO_ARTIFACTS"}
    webhook = _one(stack_plan, "aws:codebuild/webhook:Webhook").inputs
    assert webhook["filterGroups"] == [{"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}]
    assert webhook["buildType"] == "BUILD"
    assert stack_plan.outputs["deploy_runner_label"] == (
        f"codebuild-{deploy_runner_project_name(spec.environment)}-${{{{ github.run_id }}}}-"
        "${{ github.run_attempt }}"
    )


def test_runner_label_format() -> None:
    # CodeBuild user guide, sample-github-action-runners-update-labels.html (required label).
    assert runner_label("dev-mlstack-deploy-runner") == (
        "codebuild-dev-mlstack-deploy-runner-${{ github.run_id }}-${{ github.run_attempt }}"
    )


def test_runner_runs_in_the_private_subnets_with_its_own_group(stack_plan: Plan) -> None:
    project = _one(stack_plan, PROJECT_TYPE)
    private = sorted(
        s.id for s in stack_plan.by_type("aws:ec2/subnet:Subnet") if "-network-private-" in s.name
    )
    vpc_config = project.inputs["vpcConfig"]
    assert sorted(vpc_config["subnets"]) == private
    group = _runner_group(stack_plan)
    assert vpc_config["securityGroupIds"] == [group.id]
    ingress = [
        r
        for r in stack_plan.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    assert ingress == []
    (egress,) = [
        r
        for r in stack_plan.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    assert (egress.inputs["fromPort"], egress.inputs["toPort"], egress.inputs["ipProtocol"]) == (
        443.0,
        443.0,
        "tcp",
    )


def test_cluster_admits_the_runner_on_443_before_any_chart(stack_plan: Plan) -> None:
    group = _runner_group(stack_plan)
    (rule,) = [
        r
        for r in stack_plan.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("referencedSecurityGroupId") == group.id
    ]
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (443.0, 443.0)
    cluster = _one(stack_plan, "aws:eks/cluster:Cluster")
    assert cluster.urn in rule.dependencies
    (provider,) = stack_plan.by_type("pulumi:providers:kubernetes")
    assert rule.urn in provider.dependencies


def test_runner_logs_are_encrypted_and_retained(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    project = _one(stack_plan, PROJECT_TYPE).inputs
    group = next(
        g for g in stack_plan.by_type("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("deployer-logs")
    )
    logs_key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-logs"))
    data_key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-data"))
    assert group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
    assert group.inputs["retentionInDays"] == float(spec.deploy_runner.log_retention_days)
    assert project["logsConfig"]["cloudwatchLogs"] == {"groupName": group.inputs["name"], "status": "ENABLED"}
    assert project["logsConfig"]["s3Logs"]["status"] == "DISABLED"
    assert project["encryptionKey"] == data_key.outputs["arn"]
    assert group.protect is spec.protect_stateful


def test_runner_role_is_minimal_and_bounded(stack_plan: Plan) -> None:
    project = _one(stack_plan, PROJECT_TYPE)
    role = next(
        r
        for r in stack_plan.by_type("aws:iam/role:Role")
        if r.outputs["arn"] == project.inputs["serviceRole"]
    )
    boundary = _one(stack_plan, "aws:iam/policy:Policy", "permission-boundary")
    assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    trust = policy_json(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": ["codebuild.amazonaws.com"]}]
    attached = [
        a
        for a in stack_plan.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.inputs["name"]
    ]
    assert attached == []
    (policy,) = [
        p for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id
    ]
    actions = sorted(
        a
        for statement in policy_json(policy.inputs["policy"])["Statement"]
        for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    )
    # No sts:AssumeRole, no iam:*, no eks:*: the job assumes the deploy role through GitHub OIDC.
    assert all(a.split(":")[0] in {"logs", "ec2", "codeconnections"} for a in actions)
    statements = {s["Sid"]: s for s in policy_json(policy.inputs["policy"])["Statement"]}
    eni = statements["NetworkInterfacesOnlyInPrivateSubnets"]["Condition"]["StringEquals"]
    assert eni["ec2:AuthorizedService"] == "codebuild.amazonaws.com"
    assert len(eni["ec2:Subnet"]) == len(project.inputs["vpcConfig"]["subnets"])
    assert "*" not in statements["WriteBuildLogs"]["Resource"]


def test_deploy_role_is_cluster_admin_through_an_explicit_entry(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    cluster = _one(stack_plan, "aws:eks/cluster:Cluster").inputs
    # No implicit creator admin: the first `up` works the same whoever runs it.
    assert cluster["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is False
    deploy_role = pipeline_role_arn(spec.account_id, spec.environment, "deploy")
    (entry,) = [
        e
        for e in stack_plan.by_type("aws:eks/accessEntry:AccessEntry")
        if e.inputs["principalArn"] == deploy_role
    ]
    (association,) = [
        a
        for a in stack_plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] == deploy_role
    ]
    assert association.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
    assert association.inputs["accessScope"] == {"type": "cluster"}
    assert entry.urn in association.dependencies
    (provider,) = stack_plan.by_type("pulumi:providers:kubernetes")
    assert association.urn in provider.dependencies


def test_preview_role_reads_the_whole_cluster_and_changes_nothing(stack_plan: Plan) -> None:
    """PR previews and the nightly `pulumi preview --refresh` run as the preview role (drift.yml): it reads every
    object, Helm release Secrets included (AmazonEKSAdminViewPolicy: get, list, watch), and is never admin."""
    from components.cluster import ADMIN_VIEW_POLICY

    _, spec = PROJECT.load(stack_plan.stack)
    preview_role = pipeline_role_arn(spec.account_id, spec.environment, "preview")
    associations = [
        a
        for a in stack_plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] == preview_role
    ]
    assert [(a.inputs["policyArn"], a.inputs["accessScope"]) for a in associations] == [
        (ADMIN_VIEW_POLICY, {"type": "cluster"})
    ]


def test_first_deploy_targets_are_the_runner_and_its_closure(stack_plan: Plan) -> None:
    targets = first_deploy_targets(stack_plan)
    types = {stack_plan.get(urn).type for urn in targets}
    assert "aws:codebuild/project:Project" in types and "aws:codebuild/webhook:Webhook" in types
    # What its subnets route through comes along, though no edge of the runner names it.
    assert {
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
    } <= types
    assert not any(t.startswith(("aws:eks/", "kubernetes:")) for t in types)
    assert "aws:kms/key:Key" in types and "aws:iam/policy:Policy" in types
    # Closed under dependencies, parents and providers: the engine has everything each target needs.
    wanted = set(targets)
    for urn in targets:
        resource = stack_plan.get(urn)
        needed = {*resource.dependencies, *(u for us in resource.property_dependencies.values() for u in us)}
        needed |= {resource.parent} | ({resource.provider.rsplit("::", 1)[0]} if resource.provider else set())
        assert {u for u in needed if u and "::pulumi:pulumi:Stack::" not in u} <= wanted, urn


def test_first_deploy_connection_step_and_command() -> None:
    plan = plan_with_sections("dev")
    connection = first_deploy_targets(plan, "connection")
    assert [plan.get(u).type for u in connection].count("aws:codeconnections/connection:Connection") == 1
    assert not any(plan.get(u).type == "aws:codebuild/project:Project" for u in connection)
    command = up_command("dev", connection)
    assert command.startswith("pulumi up --stack dev \\\n  --target ")
    # URNs carry '$' between parent types: quoted so the shell does not expand them.
    assert all(f"'{u}'" in command for u in connection if "$" in u)


def test_runner_opt_out() -> None:
    plan = plan_with_sections("dev", deploy_runner={"enabled": False})
    assert plan.by_type(PROJECT_TYPE) == []
    assert plan.outputs["deploy_runner_project"] == "" and plan.outputs["deploy_runner_label"] == ""
    with pytest.raises(NoDeployRunner, match=r"deploy_runner\.enabled is false"):
        first_deploy_targets(plan)


def test_brought_connection_is_used_and_not_created() -> None:
    arn = "arn:aws:codeconnections:us-east-1:111122223333:connection/0a1b2c3d-0000-4000-8000-0123456789ab"
    plan = plan_with_sections(
        "dev", deploy_runner={"github_repository": "example-org/mlstack", "connection_arn": arn}
    )
    assert plan.by_type("aws:codeconnections/connection:Connection") == []
    assert _one(plan, PROJECT_TYPE).inputs["source"]["auth"]["resource"] == arn
    with pytest.raises(NoDeployRunner, match="brings its own connection"):
        first_deploy_targets(plan, "connection")


def test_runner_policy_accepts_the_named_opt_out_only() -> None:
    from mlstack.check.engine import evaluate
    from policies.catalog import RULES_BY_ID

    rule = RULES_BY_ID["MLS-CB-004"]
    config, _ = PROJECT.load("dev")
    without = plan_with_sections("dev", deploy_runner={"enabled": False})
    platform = {**config.values["mlstack:platform"], "deploy_runner": {"enabled": False}}
    opted_out = {**config.wire_config(), "mlstack:platform": json.dumps(platform)}
    assert [v for v in evaluate(without.resources, opted_out, [rule], {}) if v.policy_id == rule.id] == []
    # The same plan without the opt-out in the config (a runner merely forgotten) is reported.
    silent = {**config.values["mlstack:platform"], "deploy_runner": {}}
    forgotten = {**config.wire_config(), "mlstack:platform": json.dumps(silent)}
    assert [v.policy_id for v in evaluate(without.resources, forgotten, [rule], {})] == [rule.id]


def test_first_deploy_targets_command() -> None:
    from typer.testing import CliRunner

    from mlstack.cli import app
    from mlstack.failures import BAD_INPUT
    from tests.cli import assert_clean_failure

    runner = CliRunner()
    urns = runner.invoke(app, ["first-deploy-targets", "dev", "--format", "urns", "--project-dir", str(ROOT)])
    assert urns.exit_code == 0, urns.output
    assert urns.output.split() == first_deploy_targets(plan_of("dev"))
    command = runner.invoke(
        app, ["first-deploy-targets", "dev", "--step", "connection", "--project-dir", str(ROOT)]
    )
    assert command.exit_code == 0 and command.output.startswith("pulumi up --stack dev \\\n")
    unknown = runner.invoke(app, ["first-deploy-targets", "prd", "--project-dir", str(ROOT)])
    assert_clean_failure(unknown, BAD_INPUT, "no stack file")
