"""The environment's VPC: private and public subnets per zone, NAT, endpoints and flow logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import POLICY_VERSION, platform_role, policy_document
from components.options import child, stateful
from mlstack.spec.network import NetworkSpec

# Interface endpoints that keep image pulls, token exchange and log shipping off the NAT gateways.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "sts", "logs")


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of the Network component.

    ``cluster_name`` tags the private subnets for Karpenter discovery; ``logs_key_arn`` encrypts the flow
    log group; ``boundary_arn`` bounds the flow-log delivery role.
    """

    env: Environment
    spec: NetworkSpec
    cluster_name: str
    logs_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]


class Network(pulumi.ComponentResource):
    """The environment's VPC: private and public subnets per zone, NAT, endpoints and flow logs.

    With ``spec.existing_vpc`` nothing is created and the given ids are passed through, so that the rest of
    the platform does not care who owns the VPC.

    Outputs: ``vpc_id``, ``vpc_cidr``, ``private_subnet_ids``, ``public_subnet_ids``.
    """

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:network:Network", name, None, opts)
        self._name = name
        self._env = args.env
        spec = args.spec
        if spec.existing_vpc is not None:
            existing = spec.existing_vpc
            self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
            self.vpc_cidr = pulumi.Output.from_input(str(existing.cidr))
            self.private_subnet_ids = pulumi.Output.from_input(list(existing.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(existing.public_subnet_ids))
        else:
            self._create(args)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _create(self, args: NetworkArgs) -> None:
        name, env, spec = self._name, args.env, args.spec
        zones = spec.zones(env.region)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(spec.cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints with private DNS need it
            tags={"Name": env.resource_name("vpc")},
            opts=child(self),
        )
        # Adopting the default group strips its allow-all rules; nothing may rely on it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": env.resource_name("default-locked")},
            opts=child(self),
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": env.resource_name("igw")}, opts=child(self)
        )
        public_subnets = [
            aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(cidr),
                availability_zone=zone,
                # Load balancers get their own addresses; instances in public subnets never do.
                map_public_ip_on_launch=False,
                tags={"Name": env.resource_name("public", zone), "kubernetes.io/role/elb": "1"},
                opts=child(self),
            )
            for zone, cidr in zip(zones, spec.public_subnets(), strict=True)
        ]
        private_subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(cidr),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    "Name": env.resource_name("private", zone),
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": args.cluster_name,
                },
                opts=child(self),
            )
            for zone, cidr in zip(zones, spec.private_subnets(), strict=True)
        ]

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": env.resource_name("public")}, opts=child(self)
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child(self),
        )
        for zone, subnet in zip(zones, public_subnets, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=subnet.id,
                route_table_id=public_routes.id,
                opts=child(self),
            )

        # 'single' saves two gateways' hourly charge in dev; 'per_az' keeps egress alive when a zone fails.
        nat_zones = zones if spec.nat_gateways == "per_az" else zones[:1]
        nats = []
        for zone, subnet in zip(nat_zones, public_subnets, strict=False):
            address = aws.ec2.Eip(
                f"{name}-nat-{zone}",
                domain="vpc",
                tags={"Name": env.resource_name("nat", zone)},
                opts=child(self),
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=address.id,
                    subnet_id=subnet.id,
                    tags={"Name": env.resource_name("nat", zone)},
                    opts=child(self, depends_on=[gateway]),
                )
            )
        private_route_tables = []
        for i, (zone, subnet) in enumerate(zip(zones, private_subnets, strict=True)):
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=vpc.id,
                tags={"Name": env.resource_name("private", zone)},
                opts=child(self),
            )
            aws.ec2.Route(
                f"{name}-private-default-{zone}",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[i if i < len(nats) else 0].id,
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=table.id, opts=child(self)
            )
            private_route_tables.append(table)

        # Gateway endpoints are free, and S3 traffic is the bulk of an ML platform's egress.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{env.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in private_route_tables],
            tags={"Name": env.resource_name("s3")},
            opts=child(self),
        )
        if spec.interface_endpoints:
            self._interface_endpoints(vpc, str(spec.cidr), private_subnets)
        self._flow_logs(args, vpc)

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])

    def _interface_endpoints(self, vpc: aws.ec2.Vpc, cidr: str, subnets: list[aws.ec2.Subnet]) -> None:
        name, env = self._name, self._env
        group = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            name=env.resource_name("vpc-endpoints"),
            description="HTTPS from inside the VPC to interface endpoints",
            vpc_id=vpc.id,
            tags={"Name": env.resource_name("vpc-endpoints")},
            opts=child(self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=group.id,
            description="HTTPS from the VPC",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=cidr,
            opts=child(self),
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{env.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[group.id],
                tags={"Name": env.resource_name(service.replace(".", "-"))},
                opts=child(self),
            )

    def _flow_logs(self, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        name, env = self._name, args.env
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/mlstack/{env.name}/vpc-flow-logs",
            kms_key_id=args.logs_key_arn,
            retention_in_days=args.spec.flow_logs_retention_days,
            # Audit evidence: in hardened tiers a destroy or a replace must not take the flow records with it.
            opts=stateful(self, env),
        )
        role = platform_role(
            self,
            f"{name}-flow-logs-role",
            env=env,
            role_suffix="vpc-flow-logs",
            boundary_arn=args.boundary_arn,
            assume_role_policy=_flow_logs_trust(env),
            description="Delivers VPC flow logs to their encrypted log group",
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteFlowLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                    }
                ]
            ),
            opts=child(self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags={"Name": env.resource_name("vpc-flow-log")},
            opts=child(self),
        )


def _flow_logs_trust(env: Environment) -> str:
    """Only the flow-logs service, acting for this account, may assume the delivery role."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
                }
            ],
        },
        sort_keys=True,
    )


def https_egress_only_security_group(
    parent: pulumi.Resource,
    name: str,
    *,
    env: Environment,
    purpose: str,
    vpc_id: pulumi.Input[str],
    description: str,
    egress_description: str,
) -> aws.ec2.SecurityGroup:
    """A security group for an instance that only dials out (the access host, the deploy runner): no inbound
    rule at all, and one egress rule, TCP 443 anywhere, because everything such an instance talks to (AWS APIs,
    GitHub, the cluster API) is HTTPS. Named ``<env>-<purpose>``; logical names ``<name>-sg`` and
    ``<name>-https-out`` under ``parent``."""
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        name=env.resource_name(purpose),
        description=description,
        vpc_id=vpc_id,
        tags={"Name": env.resource_name(purpose)},
        opts=child(parent),
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-https-out",
        security_group_id=group.id,
        description=egress_description,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4="0.0.0.0/0",
        opts=child(parent),
    )
    return group
