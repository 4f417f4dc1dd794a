"""Cluster section of the environment spec: the EKS control plane and its system node group."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.catalog import ADDONS_PATH, EKS_ADDONS, eks_addon_versions
from mlstack.spec.base import IamPrincipalArn, StrictModel
from mlstack.spec.network import allowed_log_retention

KubernetesVersion = Annotated[str, StringConstraints(pattern=r"^1\.\d{2}$")]
MINIMUM_KUBERNETES_VERSION = (1, 33)
# An amazon-eks-ami release tag (vYYYYMMDD) or latest; Karpenter's alias format is family@version
# (aws/karpenter-provider-aws@v1.14.1:pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml, amiSelectorTerms.alias).
GpuNodeAmiVersion = Annotated[str, StringConstraints(pattern=r"^(latest|v\d{8})$")]
# Verified: awslabs/amazon-eks-ami CHANGELOG.md, "AMI Release v20260714", lists
# amazon-eks-node-al2023-x86_64-nvidia-1.34-v20260714 (and 1.33, 1.35). Bump with docs/runbooks/upgrade-eks.md.
PINNED_GPU_NODE_AMI = "v20260714"


class SystemNodeGroupSpec(StrictModel):
    """Nodes for cluster-critical pods (CoreDNS, Karpenter, controllers), On-Demand by default. No GPUs here."""

    instance_types: list[str] = Field(
        default_factory=lambda: ["t3.large"],
        min_length=1,
        description="Instance types of the managed node group, cheapest first. Default: t3.large.",
    )
    min_size: int = Field(default=1, ge=1, le=10, description="Minimum nodes. Default: 1.")
    desired_size: int = Field(default=2, ge=1, le=10, description="Nodes at creation. Default: 2.")
    max_size: int = Field(default=3, ge=1, le=20, description="Maximum nodes. Default: 3.")
    root_volume_gb: int = Field(
        default=50,
        ge=20,
        le=500,
        description="Encrypted gp3 root volume size; the AL2023 EKS AMI needs at least 20 GiB. Default: 50 GiB.",
    )
    capacity_type: Literal["on-demand", "spot"] = Field(
        default="on-demand",
        description="Capacity the node group buys. spot is a dev-only opt-out: cheaper (the estimate takes "
        "cost.spot_discount_percent off), but a reclaimed node takes CoreDNS and Karpenter with it until its "
        "replacement joins. It needs at least two instance_types and is refused in staging and prod. "
        "Default: on-demand.",
    )

    @model_validator(mode="after")
    def _sizes_ordered(self) -> SystemNodeGroupSpec:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"node group sizes must satisfy min_size <= desired_size <= max_size, got "
                f"{self.min_size} <= {self.desired_size} <= {self.max_size}"
            )
        return self

    @model_validator(mode="after")
    def _spot_is_diversified(self) -> SystemNodeGroupSpec:
        # One Spot pool can run dry in every zone at once; a second type gives the node group somewhere to go.
        if self.capacity_type == "spot" and len(set(self.instance_types)) < 2:
            raise ValueError(
                f"capacity_type spot needs at least two instance types, got {self.instance_types}; add a similar "
                "type (for example t3.medium with t3a.medium), or set capacity_type on-demand"
            )
        return self


class ClusterSpec(StrictModel):
    """The EKS cluster. Default: private endpoint, KMS-encrypted secrets, API authentication mode."""

    kubernetes_version: KubernetesVersion = Field(
        default="1.34",
        description="Kubernetes minor version, pinned per environment. 1.33 or newer. Default: 1.34.",
    )
    endpoint_public_access: bool = Field(
        default=False,
        description="Also expose the API server endpoint publicly, restricted to public_access_cidrs. "
        "Default: off, the endpoint is private to the VPC.",
    )
    public_access_cidrs: list[IPv4Network] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public endpoint. Required when endpoint_public_access is on; "
        "0.0.0.0/0 is refused. Default: none.",
    )
    control_plane_log_retention_days: int = Field(
        default=90,
        ge=1,
        le=3653,
        description="Retention of control-plane logs (api, audit, authenticator). Default: 90.",
    )
    admin_principal_arns: list[IamPrincipalArn] = Field(
        default_factory=list,
        description="Extra IAM principals granted cluster-admin through access entries, for break-glass. "
        "Default: none; the platform-admin role is the only admin.",
    )
    gpu_node_ami: GpuNodeAmiVersion = Field(
        default="latest",
        description="EKS-optimized AL2023 AMI release the GPU NodePools run (Karpenter alias al2023@<this>), "
        "an awslabs/amazon-eks-ami release tag such as v20260714. latest follows every AMI release, and "
        "Karpenter then replaces every GPU node, busy or not: dev only, staging and prod must pin a release. "
        "Default: latest in dev, v20260714 in staging and prod.",
    )
    system_nodes: SystemNodeGroupSpec = Field(
        default_factory=SystemNodeGroupSpec,
        description="The system node group. Default: On-Demand; see its fields.",
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        major, minor = (int(part) for part in value.split("."))
        if (major, minor) < MINIMUM_KUBERNETES_VERSION:
            raise ValueError(
                f"Kubernetes {value} is older than the supported minimum 1.33; pin 1.33 or newer"
            )
        pinned = eks_addon_versions().get(value, {})
        missing = [addon for addon in EKS_ADDONS if addon not in pinned]
        if missing:
            raise ValueError(
                f"no pinned add-on versions for Kubernetes {value} ({', '.join(missing)}); add a row to "
                f"components/data/{ADDONS_PATH.name} or pin one of {sorted(eks_addon_versions())}"
            )
        return value

    @field_validator("control_plane_log_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        return allowed_log_retention(value)

    @model_validator(mode="after")
    def _public_endpoint_is_fenced(self) -> ClusterSpec:
        open_to_world = [str(c) for c in self.public_access_cidrs if c.prefixlen == 0]
        if open_to_world:
            raise ValueError(
                "public_access_cidrs must not contain 0.0.0.0/0; list your office or VPN egress CIDRs instead"
            )
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError(
                "endpoint_public_access is on but public_access_cidrs is empty; list the CIDRs allowed to reach "
                "the API server, or turn endpoint_public_access off"
            )
        if not self.endpoint_public_access and self.public_access_cidrs:
            raise ValueError(
                "public_access_cidrs is set but endpoint_public_access is off; remove the CIDRs or turn it on"
            )
        return self
