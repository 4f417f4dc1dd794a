"""The Session Manager access host: secure defaults, who may tunnel, and the commands the outputs give people."""

from __future__ import annotations

import pytest

from components.access import AMI_PARAMETER, LOCAL_API_PORT, PORT_FORWARD_DOCUMENT, session_statements
from components.environment import Environment
from mlstack.outputs import endpoint_host, tunnel_commands
from mlstack.plan.recorder import Plan, RecordedResource
from tests.plans import PROJECT, plan_with_sections, policy_json


def _host_group(plan: Plan) -> RecordedResource:
    return next(
        g for g in plan.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-access-sg")
    )


def _template(plan: Plan) -> RecordedResource:
    return next(
        t
        for t in plan.by_type("aws:ec2/launchTemplate:LaunchTemplate")
        if t.name.endswith("-access-template")
    )


def test_host_is_imdsv2_encrypted_private_and_keyless(stack_plan: Plan) -> None:
    template = _template(stack_plan).inputs
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpPutResponseHopLimit": 1.0,
        "httpTokens": "required",
    }
    (volume,) = template["blockDeviceMappings"]
    assert volume["ebs"]["encrypted"] == "true" and volume["ebs"]["volumeType"] == "gp3"
    (interface,) = template["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"
    assert interface["securityGroups"] == [_host_group(stack_plan).id]
    private = {s.id for s in stack_plan.by_type("aws:ec2/subnet:Subnet") if "-network-private-" in s.name}
    assert interface["subnetId"] in private
    assert "keyName" not in template
    assert template["imageId"] == f"resolve:ssm:{AMI_PARAMETER}"
    (instance,) = [
        i for i in stack_plan.by_type("aws:ec2/instance:Instance") if i.name.endswith("-access-instance")
    ]
    assert instance.inputs["launchTemplate"]["id"] == _template(stack_plan).id


def test_host_admits_nothing_and_reaches_the_api(stack_plan: Plan) -> None:
    group = _host_group(stack_plan)
    ingress = stack_plan.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r for r in ingress if r.inputs["securityGroupId"] == group.id] == []
    assert "ingress" not in group.inputs or group.inputs["ingress"] == []
    (api,) = [r for r in ingress if r.inputs.get("referencedSecurityGroupId") == group.id]
    assert (api.inputs["fromPort"], api.inputs["toPort"]) == (443.0, 443.0)


def test_host_role_is_session_manager_core_only(stack_plan: Plan) -> None:
    role = next(r for r in stack_plan.by_type("aws:iam/role:Role") if r.name.endswith("-access-role"))
    assert role.inputs["permissionsBoundary"]
    attached = [
        a.inputs["policyArn"]
        for a in stack_plan.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.inputs["name"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    assert [
        p for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id
    ] == []


def test_platform_admins_and_team_people_may_tunnel_and_nobody_else(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    (instance,) = [
        i for i in stack_plan.by_type("aws:ec2/instance:Instance") if i.name.endswith("-access-instance")
    ]
    grants = [
        p
        for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if any(
            s.get("Sid") == "PortForwardThroughTheAccessHost"
            for s in policy_json(p.inputs["policy"])["Statement"]
        )
    ]
    roles = {r.id: r.inputs["name"] for r in stack_plan.by_type("aws:iam/role:Role")}
    expected = {f"{spec.environment}-platform-admin"} | {
        f"{spec.environment}-team-{t.name}-human" for t in spec.teams if t.human_access is not None
    }
    assert {roles[g.inputs["role"]] for g in grants} == expected
    for grant in grants:
        (start,) = [
            s for s in policy_json(grant.inputs["policy"])["Statement"] if s["Action"] == "ssm:StartSession"
        ]
        assert start["Resource"] == [
            instance.outputs["arn"],
            f"arn:aws:ssm:{spec.region}::document/{PORT_FORWARD_DOCUMENT}",
        ]
        assert start["Condition"] == {"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}


def test_session_statements_never_open_a_shell() -> None:
    env = Environment(
        name="dev",
        tier=PROJECT.load("dev")[1].tier,
        account_id="111122223333",
        region="us-east-1",
        protect_stateful=False,
        tags={},
    )
    statements = session_statements(env, "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0")
    resources = [
        r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert not any("SSM-SessionManagerRunShell" in r or r == "*" for r in resources)
    assert {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    } == {
        "ssm:StartSession",
        "ssm:TerminateSession",
        "ssm:ResumeSession",
    }


def test_tunnel_commands_point_kubectl_at_localhost_with_the_endpoint_name() -> None:
    endpoint = "https://4F22FF3326CCE76DFB6A60F1F715366D.gr7.us-east-1.eks.amazonaws.com"
    commands = tunnel_commands(
        instance_id="i-0123456789abcdef0",
        endpoint=endpoint,
        cluster_arn="arn:aws:eks:us-east-1:111122223333:cluster/dev-eks",
        region="us-east-1",
        local_port=LOCAL_API_PORT,
        document=PORT_FORWARD_DOCUMENT,
    )
    host = "4F22FF3326CCE76DFB6A60F1F715366D.gr7.us-east-1.eks.amazonaws.com"
    assert commands["start"] == (
        "aws ssm start-session --region us-east-1 --target i-0123456789abcdef0 "
        "--document-name AWS-StartPortForwardingSessionToRemoteHost "
        f"--parameters host={host},portNumber=443,localPortNumber=8443"
    )
    assert commands["kubeconfig"] == (
        "kubectl config set-cluster arn:aws:eks:us-east-1:111122223333:cluster/dev-eks "
        f"--server=https://localhost:8443 --tls-server-name={host}"
    )
    with pytest.raises(ValueError, match="not an https URL"):
        endpoint_host("4F22FF.gr7.us-east-1.eks.amazonaws.com")


def test_tunnel_output_uses_the_planned_host_and_cluster(stack_plan: Plan) -> None:
    outputs = stack_plan.outputs
    assert (
        outputs["tunnel_commands"]["start"].split("--target ")[1].split()[0]
        == outputs["access_host_instance_id"]
    )
    assert endpoint_host(outputs["cluster_endpoint"]) in outputs["tunnel_commands"]["kubeconfig"]
    assert outputs["cluster_arn"] in outputs["tunnel_commands"]["kubeconfig"]


def test_access_host_opt_out() -> None:
    plan = plan_with_sections("dev", access_host={"enabled": False})
    assert [i for i in plan.by_type("aws:ec2/instance:Instance") if "access" in i.name] == []
    assert plan.outputs["access_host_instance_id"] == "" and plan.outputs["tunnel_commands"] == {}
