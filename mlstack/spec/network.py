"""Network section of the environment spec: the VPC, its subnets, NAT and endpoints."""

from __future__ import annotations

import math
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import StrictModel

VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]

# CloudWatch Logs accepts only these retention values.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def allowed_log_retention(days: int) -> int:
    """The retention unchanged, or a clear error when CloudWatch Logs would refuse it."""
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"CloudWatch Logs does not accept {days} days; use one of {list(LOG_RETENTION_DAYS)}"
        )
    return days


class ExistingVpc(StrictModel):
    """A VPC the platform team already owns. mlstack then creates no VPC, subnets or NAT."""

    vpc_id: VpcId = Field(description="Id of the existing VPC, for example vpc-0abc12345def67890.")
    cidr: IPv4Network = Field(
        description="Primary IPv4 CIDR of the existing VPC; security groups admit in-VPC traffic from it. "
        "Stated here so that the plan needs no lookup."
    )
    private_subnet_ids: list[SubnetId] = Field(
        min_length=2,
        description="Private subnets (one per zone) for nodes, databases and endpoints. At least 2.",
    )
    public_subnet_ids: list[SubnetId] = Field(
        default_factory=list,
        description="Public subnets for internet-facing load balancers. Default: none, so nothing can be public.",
    )

    @model_validator(mode="after")
    def _no_shared_subnets(self) -> ExistingVpc:
        shared = set(self.private_subnet_ids) & set(self.public_subnet_ids)
        if shared:
            raise ValueError(
                f"subnets {sorted(shared)} are listed as both private and public; list each once"
            )
        return self


class NetworkSpec(StrictModel):
    """The environment's VPC. Default: a new VPC with private and public subnets in every zone."""

    cidr: IPv4Network = Field(
        default=IPv4Network("10.0.0.0/16"),
        description="IPv4 CIDR of the new VPC, from /16 to /24. Default: 10.0.0.0/16.",
    )
    az_count: int = Field(
        default=2,
        ge=1,
        le=6,
        description="Number of availability zones to spread subnets over. Default: 2 in dev, 3 in staging and prod.",
    )
    availability_zones: list[str] | None = Field(
        default=None,
        description="Zone names to use, one per az_count. Default: the region's first az_count zones (a, b, c...).",
    )
    private_subnet_cidrs: list[IPv4Network] | None = Field(
        default=None,
        description="One private subnet CIDR per zone. Default: the VPC CIDR split into equal blocks, one per zone.",
    )
    public_subnet_cidrs: list[IPv4Network] | None = Field(
        default=None,
        description="One public subnet CIDR per zone. Default: small blocks carved from the end of the VPC CIDR.",
    )
    nat_gateways: Literal["single", "per_az"] = Field(
        default="single",
        description="NAT layout. 'single' is cheap but one zone's outage cuts egress; 'per_az' survives it. "
        "Default: single in dev, per_az in staging and prod.",
    )
    interface_endpoints: bool = Field(
        default=False,
        description="Create interface endpoints for ECR (api, dkr), STS and CloudWatch Logs so that image pulls and "
        "token calls stay off NAT. Default: off in dev and staging, on in prod.",
    )
    flow_logs_retention_days: int = Field(
        default=30,
        description="Retention of VPC flow logs in their KMS-encrypted log group. Default: 30 days in dev, "
        "90 in staging, 365 in prod.",
    )
    existing_vpc: ExistingVpc | None = Field(
        default=None,
        description="Bring your own VPC instead of creating one. Mutually exclusive with cidr and subnet CIDRs. "
        "Default: mlstack creates the VPC.",
    )

    @field_validator("cidr")
    @classmethod
    def _cidr_size(cls, value: IPv4Network) -> IPv4Network:
        if not 16 <= value.prefixlen <= 24:
            raise ValueError(f"VPC CIDR must be between /16 and /24, got /{value.prefixlen}; try 10.0.0.0/16")
        return value

    @field_validator("flow_logs_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        return allowed_log_retention(value)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkSpec:
        if self.existing_vpc is not None:
            clashing = {
                "cidr",
                "private_subnet_cidrs",
                "public_subnet_cidrs",
                "nat_gateways",
            } & self.model_fields_set
            if clashing:
                raise ValueError(
                    f"existing_vpc and {sorted(clashing)} are mutually exclusive: either bring a VPC or let mlstack "
                    "create one; remove one of them"
                )
            return self
        if self.availability_zones is not None and len(self.availability_zones) != self.az_count:
            raise ValueError(
                f"availability_zones lists {len(self.availability_zones)} zones but az_count is {self.az_count}"
            )
        private, public = self.private_subnets(), self.public_subnets()
        for label, subnets in (("private_subnet_cidrs", private), ("public_subnet_cidrs", public)):
            if len(subnets) != self.az_count:
                raise ValueError(
                    f"{label} has {len(subnets)} entries but az_count is {self.az_count}; give one per zone"
                )
            for subnet in subnets:
                if not subnet.subnet_of(self.cidr):
                    raise ValueError(f"{label}: {subnet} does not fit inside the VPC CIDR {self.cidr}")
                if subnet.prefixlen > 28:
                    raise ValueError(f"{label}: {subnet} is smaller than /28, the smallest subnet AWS allows")
        every = private + public
        for i, a in enumerate(every):
            for b in every[i + 1 :]:
                if a.overlaps(b):
                    raise ValueError(f"subnets {a} and {b} overlap; give each zone its own block")
        return self

    def zones(self, region: str) -> list[str]:
        """The zone names in use: the declared ones or the region's first az_count."""
        if self.availability_zones is not None:
            return list(self.availability_zones)
        return [f"{region}{chr(ord('a') + i)}" for i in range(self.az_count)]

    def private_subnets(self) -> list[IPv4Network]:
        """Private subnet CIDRs: declared, or the largest equal blocks that leave one block for public subnets."""
        if self.private_subnet_cidrs is not None:
            return list(self.private_subnet_cidrs)
        bits = math.ceil(math.log2(self.az_count + 1))
        return list(self.cidr.subnets(prefixlen_diff=bits))[: self.az_count]

    def public_subnets(self) -> list[IPv4Network]:
        """Public subnet CIDRs: declared, or the last private-sized block split into one piece per zone."""
        if self.public_subnet_cidrs is not None:
            return list(self.public_subnet_cidrs)
        bits = math.ceil(math.log2(self.az_count + 1))
        spare = list(self.cidr.subnets(prefixlen_diff=bits))[-1]
        return list(spare.subnets(prefixlen_diff=max(1, math.ceil(math.log2(self.az_count)))))[
            : self.az_count
        ]
