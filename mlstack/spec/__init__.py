"""The environment spec: one pydantic model tree, the single source of truth for what an environment declares.

It is read from the stack config key ``mlstack:platform``. Sections live in one module each; this module
composes them and holds the rules that span sections.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import AccountId, AwsRegion, DnsLabel, RuleViolations, StrictModel, Tier
from mlstack.spec.budgets import BudgetSpec
from mlstack.spec.cluster import ClusterSpec
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.inference import InferenceSpec
from mlstack.spec.network import NetworkSpec
from mlstack.spec.orchestrator import OrchestratorSpec
from mlstack.spec.registry import RegistrySpec
from mlstack.spec.storage import StorageSpec
from mlstack.spec.teams import TeamSpec
from mlstack.spec.vectordb import VectorDbSpec

__all__ = ["TIER_DEFAULTS", "PlatformSpec", "Tier"]

TagValue = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]

# Fields whose default depends on the tier: (section, field) -> {tier: value}. Applied only where the stack
# file leaves the field out, so an explicit value always wins and the policy pack still sees it.
TIER_DEFAULTS: dict[tuple[str, str], dict[Tier, Any]] = {
    ("network", "az_count"): {Tier.DEV: 2, Tier.STAGING: 3, Tier.PROD: 3},
    ("network", "nat_gateways"): {Tier.DEV: "single", Tier.STAGING: "per_az", Tier.PROD: "per_az"},
    ("network", "interface_endpoints"): {Tier.DEV: False, Tier.STAGING: False, Tier.PROD: True},
    ("network", "flow_logs_retention_days"): {Tier.DEV: 30, Tier.STAGING: 90, Tier.PROD: 365},
    ("registry", "enhanced_scanning"): {Tier.DEV: False, Tier.STAGING: False, Tier.PROD: True},
    ("orchestrator", "backup_retention_days"): {Tier.DEV: 1, Tier.STAGING: 7, Tier.PROD: 14},
    ("orchestrator", "metadata_service_replicas"): {Tier.DEV: 1, Tier.STAGING: 2, Tier.PROD: 2},
    ("orchestrator", "db_instance_class"): {
        Tier.DEV: "db.t4g.micro",
        Tier.STAGING: "db.t4g.small",
        Tier.PROD: "db.m7g.large",
    },
    ("orchestrator", "db_multi_az"): {Tier.DEV: False, Tier.STAGING: True, Tier.PROD: True},
    ("vector_db", "replicas"): {Tier.DEV: 1, Tier.STAGING: 3, Tier.PROD: 3},
    ("vector_db", "aurora_min_acu"): {Tier.DEV: 0.0, Tier.STAGING: 0.5, Tier.PROD: 2.0},
    ("vector_db", "aurora_max_acu"): {Tier.DEV: 2.0, Tier.STAGING: 4.0, Tier.PROD: 16.0},
    ("vector_db", "aurora_instances"): {Tier.DEV: 1, Tier.STAGING: 2, Tier.PROD: 2},
    ("vector_db", "backup_retention_days"): {Tier.DEV: 1, Tier.STAGING: 7, Tier.PROD: 14},
}


class PlatformSpec(StrictModel):
    """Everything one environment (dev, staging or prod) declares."""

    environment: DnsLabel = Field(
        description="Environment name; prefixes every resource name. Usually the stack name."
    )
    tier: Tier = Field(
        description="Hardening tier: dev, staging or prod. Staging and prod protect stateful data."
    )
    account_id: AccountId = Field(description="The 12-digit AWS account the environment lives in.")
    region: AwsRegion = Field(description="AWS region; must equal the stack's aws:region.")
    owner: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Owning team or email, written to the 'owner' tag of every resource."
    )
    cost_center: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = Field(
        description="Cost center, written to the 'cost-center' tag of every resource."
    )
    tags: dict[Annotated[str, StringConstraints(pattern=r"^[\w.:/=+\-@]{1,128}$")], TagValue] = Field(
        default_factory=dict,
        description="Extra tags for every resource; keys may not start with 'aws:'. Default: none beyond the "
        "required four (environment, owner, cost-center, managed-by).",
    )
    protect_stateful: bool = Field(
        default=False,
        description="Mark buckets, keys, repositories and databases protect and retain-on-delete. "
        "Default: off in dev, on in staging and prod (where turning it off is refused).",
    )
    network: NetworkSpec = Field(
        default_factory=NetworkSpec, description="VPC and subnets. Default: see NetworkSpec."
    )
    cluster: ClusterSpec = Field(
        default_factory=ClusterSpec, description="EKS cluster. Default: see ClusterSpec."
    )
    gpu_pools: list[GpuPoolSpec] = Field(default_factory=list, description="GPU node pools. Default: none.")
    storage: StorageSpec = Field(
        default_factory=StorageSpec, description="S3 buckets. Default: see StorageSpec."
    )
    registry: RegistrySpec = Field(
        default_factory=RegistrySpec, description="ECR repositories. Default: see RegistrySpec."
    )
    orchestrator: OrchestratorSpec = Field(
        default_factory=OrchestratorSpec,
        description="Argo Workflows and Metaflow. Default: see OrchestratorSpec.",
    )
    vector_db: VectorDbSpec = Field(
        default_factory=VectorDbSpec, description="Vector database. Default: Qdrant."
    )
    inference: InferenceSpec = Field(
        default_factory=InferenceSpec, description="Model serving. Default: no endpoints."
    )
    teams: list[TeamSpec] = Field(default_factory=list, description="Tenants of the platform. Default: none.")
    budgets: BudgetSpec = Field(description="Monthly budget and its notifications. Required.")

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"tag keys {reserved} use the reserved 'aws:' prefix; rename them")
        return value

    @model_validator(mode="before")
    @classmethod
    def _apply_tier_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            tier = Tier(str(data.get("tier")))
        except ValueError:
            return data  # the tier field reports its own error
        data = dict(data)
        data.setdefault("protect_stateful", tier.hardened)
        for (section, field), by_tier in TIER_DEFAULTS.items():
            block = data.get(section)
            if block is None:
                block = {}
            if isinstance(block, dict) and field not in block:
                data[section] = {**block, field: by_tier[tier]}
        return data

    @model_validator(mode="after")
    def _cross_section_rules(self) -> PlatformSpec:
        problems: list[tuple[str, str]] = []
        if self.tier.hardened and not self.protect_stateful:
            problems.append(
                ("protect_stateful", f"cannot be turned off in the {self.tier} tier; remove the field")
            )
        if self.tier.hardened and self.network.existing_vpc is None and self.network.az_count < 2:
            problems.append(
                ("network.az_count", f"the {self.tier} tier requires multi-AZ: set it to 2 or more")
            )
        if self.tier.hardened and self.network.existing_vpc is None and self.network.nat_gateways == "single":
            problems.append(
                (
                    "network.nat_gateways",
                    f"the {self.tier} tier requires one NAT gateway per zone: set per_az",
                )
            )
        if self.tier is Tier.PROD and self.cluster.endpoint_public_access:
            problems.append(
                ("cluster.endpoint_public_access", "prod keeps the cluster endpoint private: set it to false")
            )
        zones = self.network.zones(self.region)
        foreign = [z for z in zones if not z.startswith(self.region)]
        if foreign:
            problems.append(
                ("network.availability_zones", f"zones {foreign} are not in region {self.region}")
            )
        problems += self._workflow_and_vector_rules()
        problems += _duplicates("gpu_pools", [p.name for p in self.gpu_pools])
        problems += _duplicates("teams", [t.name for t in self.teams])
        problems += _duplicates("inference.endpoints", [e.name for e in self.inference.endpoints])
        pools = {p.name for p in self.gpu_pools}
        teams = {t.name for t in self.teams}
        for i, endpoint in enumerate(self.inference.endpoints):
            if endpoint.gpu_pool not in pools:
                problems.append(
                    (
                        f"inference.endpoints.{i}.gpu_pool",
                        f"'{endpoint.gpu_pool}' is not a declared pool; declared: {sorted(pools) or 'none'}",
                    )
                )
            if endpoint.team not in teams:
                problems.append(
                    (
                        f"inference.endpoints.{i}.team",
                        f"'{endpoint.team}' is not a declared team; declared: {sorted(teams) or 'none'}",
                    )
                )
        if problems:
            raise RuleViolations(problems)
        return self

    def _workflow_and_vector_rules(self) -> list[tuple[str, str]]:
        """Durability floors of the databases in prod, and the snapshot prefix staying out of team prefixes."""
        problems: list[tuple[str, str]] = []
        orchestrator, vector_db = self.orchestrator, self.vector_db
        if self.tier is Tier.PROD and orchestrator.metaflow and not orchestrator.db_multi_az:
            problems.append(
                ("orchestrator.db_multi_az", "prod keeps the metadata database multi-AZ: remove the field")
            )
        if self.tier.hardened and orchestrator.metaflow and orchestrator.backup_retention_days < 7:
            problems.append(
                (
                    "orchestrator.backup_retention_days",
                    f"the {self.tier} tier keeps at least 7 days of backups: set 7 or more",
                )
            )
        if self.tier.hardened and vector_db.enabled and vector_db.engine == "aurora-pgvector":
            if vector_db.backup_retention_days < 7:
                problems.append(
                    (
                        "vector_db.backup_retention_days",
                        f"the {self.tier} tier keeps at least 7 days of backups: set 7 or more",
                    )
                )
        if (
            self.tier is Tier.PROD
            and vector_db.enabled
            and vector_db.engine == "qdrant"
            and vector_db.replicas < 3
        ):
            problems.append(
                ("vector_db.replicas", "prod runs Qdrant with 3 replicas or more: remove the field")
            )
        owner = vector_db.snapshot_prefix.split("/", 1)[0]
        if owner in {t.name for t in self.teams}:
            problems.append(
                (
                    "vector_db.snapshot_prefix",
                    f"'{owner}/' is team {owner}'s prefix, so the team could read and overwrite snapshots; "
                    "pick a prefix no team owns, such as platform/vectordb",
                )
            )
        return problems


def _duplicates(section: str, names: list[str]) -> list[tuple[str, str]]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    return [(section, f"'{name}' is declared more than once; names must be unique") for name in repeated]
