"""Network rules: flow logs, locked default security group, no open ingress, no public IPs, multi-AZ."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    as_list,
    depends_on,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
)

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ANYWHERE = ("0.0.0.0/0", "::/0")
PUBLIC_SUBNET_TAG = "kubernetes.io/role/elb"


@stack_rule(
    "MLS-NET-001",
    subjects=[VPC, FLOW_LOG],
    title="Every VPC records all its traffic in flow logs",
    why="Flow logs are the only record of which pod or node talked to which address; incident response needs "
    "ACCEPT and REJECT both.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["EC2.6"]},
    remediation="Attach an ec2.FlowLog with traffic_type ALL to the VPC (the network component does).",
)
def vpc_flow_logs(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    logs = resources_of(args, FLOW_LOG)
    for vpc in resources_of(args, VPC):
        attached = [f for f in logs if depends_on(f, "vpcId", vpc)]
        if not any(f.props.get("trafficType") == "ALL" for f in attached):
            yield f"VPC {vpc.name} has no flow log of ALL traffic", vpc.urn


@stack_rule(
    "MLS-NET-002",
    subjects=[VPC, DEFAULT_SG],
    title="Every VPC's default security group allows nothing",
    why="Anything launched without an explicit security group lands in the default one; if it allows traffic, "
    "forgotten instances are reachable.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["EC2.2"]},
    remediation="Manage the VPC's DefaultSecurityGroup with empty ingress and egress.",
)
def default_sg_locked(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    groups = resources_of(args, DEFAULT_SG)
    for vpc in resources_of(args, VPC):
        attached = [g for g in groups if depends_on(g, "vpcId", vpc)]
        if not attached:
            yield f"VPC {vpc.name} leaves its default security group unmanaged", vpc.urn
        for group in attached:
            if as_list(group.props.get("ingress")) or as_list(group.props.get("egress")):
                yield f"default security group {group.name} allows traffic", group.urn


@resource_rule(
    "MLS-NET-003",
    types=[SECURITY_GROUP, INGRESS_RULE],
    title="No security group accepts traffic from anywhere",
    why="The platform has no public entry point of its own; ingress from 0.0.0.0/0 or ::/0 exposes nodes, "
    "endpoints or databases to the internet.",
    severity=Severity.CRITICAL,
    controls={"aws-fsbp": ["EC2.18"]},
    remediation="Allow ingress from the VPC CIDR or from other security groups only.",
)
def no_ingress_from_anywhere(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.resource_type == INGRESS_RULE:
        sources = [args.props.get("cidrIpv4"), args.props.get("cidrIpv6")]
    else:
        sources = [
            cidr
            for rule in as_list(args.props.get("ingress"))
            for cidr in [*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks"))]
        ]
    opened = sorted({str(s) for s in sources if s in ANYWHERE})
    if opened:
        yield f"ingress is open to {opened}"


@resource_rule(
    "MLS-NET-004",
    types=[SUBNET],
    title="Subnets do not hand out public IPs",
    why="Nodes run in private subnets behind NAT; a subnet that auto-assigns public IPs makes every instance "
    "launched in it internet-facing.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.15"], "cis-eks": ["5.4.3"]},
    remediation="Set map_public_ip_on_launch false (NAT gateways use Elastic IPs, not auto-assigned ones).",
)
def subnet_no_public_ip(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("mapPublicIpOnLaunch") is True:
        yield "mapPublicIpOnLaunch is true"


@stack_rule(
    "MLS-NET-005",
    subjects=[SUBNET, NAT_GATEWAY],
    title="Staging and prod span several zones with a NAT gateway in each",
    why="One zone's outage must not take the platform down: private subnets in two or more zones, and a NAT "
    "gateway per zone so egress does not depend on a single zone.",
    severity=Severity.HIGH,
    remediation="Set network.az_count to 2 or more and nat_gateways per_az (the staging and prod defaults).",
)
def multi_az(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    if not stack_context().hardened:
        return
    subnets = resources_of(args, SUBNET)
    private_zones = {
        s.props.get("availabilityZone")
        for s in subnets
        if PUBLIC_SUBNET_TAG not in (s.props.get("tags") or {})
    }
    public = [s for s in subnets if PUBLIC_SUBNET_TAG in (s.props.get("tags") or {})]
    if len(private_zones) < 2:
        yield f"private subnets span {len(private_zones)} zone(s): {sorted(map(str, private_zones))}", None
    nat_zones = {
        s.props.get("availabilityZone")
        for nat in resources_of(args, NAT_GATEWAY)
        for s in public
        if depends_on(nat, "subnetId", s)
    }
    if private_zones - nat_zones:
        yield f"zones {sorted(map(str, private_zones - nat_zones))} have no NAT gateway of their own", None


@resource_rule(
    "MLS-NET-006",
    types=[LOG_GROUP],
    title="Log groups are encrypted and expire",
    why="Flow and control-plane logs hold addresses and API calls: they belong under the logs key, and a "
    "retention keeps them from growing (and costing) forever.",
    severity=Severity.MEDIUM,
    remediation="Set kms_key_id to the logs key and retention_in_days (the tier's flow_logs_retention_days).",
)
def log_group_encrypted_and_expiring(
    args: ResourceValidationArgs, config: Mapping[str, Any]
) -> Iterator[str]:
    if not args.props.get("kmsKeyId"):
        yield "kmsKeyId is not set"
    if not args.props.get("retentionInDays"):
        yield "retentionInDays is not set (logs are kept forever)"
