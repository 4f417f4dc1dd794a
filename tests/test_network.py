"""Network secure defaults on the recorded plans of every shipped stack."""

from __future__ import annotations

from mlstack.plan.recorder import Plan
from tests.plans import PROJECT, policy_json

EXPECTED = {
    "dev": (2, 1, 0),
    "staging": (3, 3, 0),
    "prod": (3, 3, 4),
}  # zones, NAT gateways, interface endpoints


def test_zone_nat_and_endpoint_counts_per_tier(stack_plan: Plan) -> None:
    spec = PROJECT.load(stack_plan.stack)[1]
    zones = {s.inputs["availabilityZone"] for s in stack_plan.by_type("aws:ec2/subnet:Subnet")}
    nats = stack_plan.by_type("aws:ec2/natGateway:NatGateway")
    endpoints = stack_plan.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    interface = [e for e in endpoints if e.inputs["vpcEndpointType"] == "Interface"]
    assert (len(zones), len(nats), len(interface)) == EXPECTED[stack_plan.stack]
    assert len(zones) == spec.network.az_count
    assert [e.inputs["serviceName"] for e in endpoints if e.inputs["vpcEndpointType"] == "Gateway"] == [
        f"com.amazonaws.{spec.region}.s3"
    ]


def test_subnets_are_tagged_for_load_balancers_and_karpenter(stack_plan: Plan) -> None:
    cluster = stack_plan.by_type("aws:eks/cluster:Cluster")[0].inputs["name"]
    for subnet in stack_plan.by_type("aws:ec2/subnet:Subnet"):
        tags = subnet.inputs["tags"]
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        if "-private-" in subnet.name:
            assert tags["kubernetes.io/role/internal-elb"] == "1"
            assert tags["karpenter.sh/discovery"] == cluster
        else:
            assert tags["kubernetes.io/role/elb"] == "1" and "karpenter.sh/discovery" not in tags


def test_default_security_group_has_no_rules(stack_plan: Plan) -> None:
    (group,) = stack_plan.by_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert group.inputs.get("ingress", []) == [] and group.inputs.get("egress", []) == []


def test_flow_logs_are_encrypted_and_retained(stack_plan: Plan) -> None:
    spec = PROJECT.load(stack_plan.stack)[1]
    (flow_log,) = stack_plan.by_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    group = next(
        g
        for g in stack_plan.by_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].endswith("flow-logs")
    )
    assert flow_log.inputs["logDestination"] == group.outputs.get("arn", flow_log.inputs["logDestination"])
    logs_key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-logs"))
    assert group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
    assert group.inputs["retentionInDays"] == spec.network.flow_logs_retention_days


def test_flow_log_role_writes_only_its_log_group(stack_plan: Plan) -> None:
    policy = next(p for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy") if "flow-logs" in p.name)
    for statement in policy_json(policy.inputs["policy"])["Statement"]:
        assert "*" not in statement["Resource"]
        assert all(action.startswith("logs:") for action in statement["Action"])


def test_bring_your_own_vpc_creates_no_network() -> None:
    import copy
    import dataclasses

    from mlstack.plan.recorder import run_program
    from mlstack.spec.loader import SPEC_KEY, parse_spec

    config, _ = PROJECT.load("dev")
    values = copy.deepcopy(config.values)
    existing = {
        "vpc_id": "vpc-0123456789abcdef0",
        "cidr": "10.50.0.0/16",
        "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    }
    values[SPEC_KEY]["network"] = {"existing_vpc": existing}
    byo_config = dataclasses.replace(config, values=values)
    plan = run_program(PROJECT.program, byo_config, parse_spec(values[SPEC_KEY], "byo", "us-east-1"))
    for kind in ("vpc:Vpc", "subnet:Subnet", "natGateway:NatGateway", "flowLog:FlowLog"):
        assert plan.by_type(f"aws:ec2/{kind}") == []
    (cluster,) = plan.by_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == existing["private_subnet_ids"]
