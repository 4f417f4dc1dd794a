"""Teams section of the environment spec: tenants with their namespace, quotas, GPU share and roles."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import DnsLabel, IamPrincipalArn, StrictModel

# EKS refuses access-entry groups with these prefixes: they belong to Kubernetes and AWS.
RESERVED_GROUP_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
KubernetesGroup = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$")]
# IAM Identity Center names the role of a permission set AWSReservedSSO_<permission set>_<random suffix>.
PermissionSetName = Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,32}$")]


# Metaflow's default @kubernetes disk, 10240 MB (metaflow 2.19.39 plugins/kubernetes/kubernetes_decorator.py
# defaults "disk"), rounded up to GiB: by default a team can run one default step per core of its CPU share.
DEFAULT_EPHEMERAL_GIB_PER_CORE = 10

class HumanAccessSpec(StrictModel):
    """Who may assume the team's human role, and the proof of identity each must bring.

    At least one of the two lists must be set. Either way the session lasts at most one hour.
    """

    sso_permission_sets: list[PermissionSetName] = Field(
        default_factory=list,
        description="IAM Identity Center permission sets, provisioned in this account, whose users may assume "
        "the role. Matched on aws:PrincipalArn under role/aws-reserved/sso.amazonaws.com/, so a re-provisioned "
        "permission set keeps working; Identity Center enforces MFA at sign-in. Default: none.",
    )
    mfa_principals: list[IamPrincipalArn] = Field(
        default_factory=list,
        description="IAM roles or users (for example of a federated identity account) that may assume the role "
        "only with an MFA-authenticated session no older than max_mfa_age_seconds. Account roots are refused: "
        "name the principals. Default: none.",
    )
    max_mfa_age_seconds: int = Field(
        default=3600,
        ge=900,
        le=43200,
        description="Oldest MFA sign-in (aws:MultiFactorAuthAge) accepted from mfa_principals. Default: 3600 "
        "(one hour).",
    )

    @field_validator("mfa_principals")
    @classmethod
    def _named_principals(cls, value: list[str]) -> list[str]:
        roots = [arn for arn in value if arn.endswith(":root")]
        if roots:
            raise ValueError(
                f"{roots} would trust every identity of an account; list the roles or users instead"
            )
        if len(set(value)) != len(value):
            raise ValueError("each principal may be listed once")
        return value

    @model_validator(mode="after")
    def _someone_can_sign_in(self) -> HumanAccessSpec:
        if not self.sso_permission_sets and not self.mfa_principals:
            raise ValueError(
                "a human role nobody may assume is useless: set sso_permission_sets or mfa_principals, "
                "or remove human_access"
            )
        return self


class TeamSpec(StrictModel):
    """A tenant of the platform: one namespace, one GPU share, its own data prefixes and roles."""

    name: DnsLabel = Field(description="Team name; becomes its namespace and its prefix in every bucket.")
    cost_center: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = Field(
        description="The team's cost center: tag team-cost-center on the team's AWS resources and label on its "
        "Metaflow pods, namespace label cost-center, and filter of its budget. Required."
    )
    gpu_quota: int = Field(
        ge=0,
        le=4096,
        description="Nominal GPUs the team may use at once: its guaranteed share in Kueue. Required.",
    )
    gpu_borrowing_limit: int = Field(
        default=0,
        ge=0,
        le=4096,
        description="Extra GPUs the team may borrow from idle quota of other teams in the cohort, on top of "
        "gpu_quota. The namespace ResourceQuota caps GPU requests at gpu_quota + gpu_borrowing_limit. "
        "Default: 0, the team never exceeds its nominal share.",
    )
    gpu_quota_by_pool: dict[DnsLabel, Annotated[int, Field(ge=0, le=4096)]] | None = Field(
        default=None,
        description="How gpu_quota splits over the GPU pools (Kueue flavors); values must add up to gpu_quota. "
        "Default: split over every pool in proportion to its max_gpus, largest remainders first.",
    )
    cpu_quota: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="CPU cores the namespace may request in total (ResourceQuota requests.cpu, Kueue). "
        "Default: 64.",
    )
    memory_quota_gib: int = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="Memory in GiB the namespace may request and be limited to in total (ResourceQuota "
        "requests.memory and limits.memory, Kueue). Default: 256.",
    )
    ephemeral_storage_quota_gib: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Node-local scratch disk in GiB the team's queued workloads may request in total (Kueue "
        "ephemeral-storage). Kueue refuses a workload that requests a resource its ClusterQueue does not cover, "
        "and every Metaflow step requests some (@kubernetes disk). Default: 10 GiB per core of cpu_quota, "
        "Metaflow's default step disk (10240 MB) for every core.",
    )
    pvc_count: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description="Number of PersistentVolumeClaims the namespace may hold. Default: 20.",
    )
    storage_quota_gib: int = Field(
        default=2000,
        ge=0,
        le=1_000_000,
        description="Total GiB all the namespace's PersistentVolumeClaims may request. Default: 2000.",
    )
    max_pvc_gib: int = Field(
        default=500,
        ge=1,
        le=64_000,
        description="Largest single PersistentVolumeClaim (LimitRange). Default: 500 GiB.",
    )
    kubernetes_group: KubernetesGroup | None = Field(
        default=None,
        description="Kubernetes group the team's human role maps to (EKS access entry) and that the team's "
        "Role is bound to. Default: team-<name>.",
    )
    allow_https_egress: bool = Field(
        default=True,
        description="Let the team's pods open HTTPS (TCP 443) connections to any address, which S3, ECR, STS "
        "and package mirrors need. Other teams' namespaces still refuse the traffic on ingress. Turn it off for "
        "teams whose data must not leave the cluster. Default: on.",
    )
    human_access: HumanAccessSpec | None = Field(
        default=None,
        description="Who may assume the team's human role (with MFA or through IAM Identity Center). "
        "Default: no human role; people reach the namespace only through the platform admins.",
    )

    @field_validator("kubernetes_group")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.lower().startswith(RESERVED_GROUP_PREFIXES):
            raise ValueError(
                f"'{value}' starts with a prefix EKS reserves ({', '.join(RESERVED_GROUP_PREFIXES)}); "
                "choose another name"
            )
        return value

    @model_validator(mode="after")
    def _split_matches_quota(self) -> TeamSpec:
        split = self.gpu_quota_by_pool
        if split is not None and sum(split.values()) != self.gpu_quota:
            raise ValueError(
                f"gpu_quota_by_pool adds up to {sum(split.values())} but gpu_quota is {self.gpu_quota}; "
                "make them equal"
            )
        return self

    @property
    def group(self) -> str:
        """The team's Kubernetes group: declared or ``team-<name>``."""
        return self.kubernetes_group or f"team-{self.name}"

    @property
    def resolved_ephemeral_storage_quota_gib(self) -> int:
        """The declared scratch-disk share, or 10 GiB per core of cpu_quota (see ephemeral_storage_quota_gib)."""
        if self.ephemeral_storage_quota_gib is not None:
            return self.ephemeral_storage_quota_gib
        return self.cpu_quota * DEFAULT_EPHEMERAL_GIB_PER_CORE

    def pool_quotas(self, pool_sizes: dict[str, int]) -> dict[str, int]:
        """Nominal GPUs per pool: the declared split, or gpu_quota spread in proportion to pool sizes.

        Largest-remainder rounding keeps the total equal to gpu_quota and the result deterministic.
        """
        if self.gpu_quota_by_pool is not None:
            return {pool: self.gpu_quota_by_pool.get(pool, 0) for pool in pool_sizes}
        total = sum(pool_sizes.values())
        if total == 0:
            return dict.fromkeys(pool_sizes, 0)
        exact = {pool: self.gpu_quota * size / total for pool, size in pool_sizes.items()}
        shares = {pool: int(value) for pool, value in exact.items()}
        leftover = self.gpu_quota - sum(shares.values())
        by_remainder = sorted(pool_sizes, key=lambda pool: (-(exact[pool] - shares[pool]), pool))
        for pool in by_remainder[:leftover]:
            shares[pool] += 1
        return shares
