"""The environment spec: one pydantic model tree, the single source of truth for what an environment declares.

It is read from the stack config key ``mlstack:platform``. Sections live in one module each; this module
composes them and holds the rules that span sections.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.access import AccessHostSpec, DeployRunnerSpec
from mlstack.spec.base import AccountId, AwsRegion, DnsLabel, RuleViolations, StrictModel, Tier
from mlstack.spec.budgets import BudgetSpec
from mlstack.spec.cluster import PINNED_GPU_NODE_AMI, ClusterSpec
from mlstack.spec.compute import CpuPoolSpec, default_cpu_pools
from mlstack.spec.cost import CostSpec
from mlstack.spec.deployment import DeploymentSpec, deployment_problems
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.inference import InferenceSpec, endpoint_problems, prometheus_problems
from mlstack.spec.logs import LogsSpec
from mlstack.spec.network import NetworkSpec
from mlstack.spec.notebooks import NotebooksSpec, notebook_problems
from mlstack.spec.observability import MetricsSpec, in_cluster_prometheus_url
from mlstack.spec.orchestrator import OrchestratorSpec
from mlstack.spec.registry import REGISTRY_ALIASES, RegistrySpec
from mlstack.spec.secrets import ExternalSecretsSpec, secrets_problems, synced_sso_clients
from mlstack.spec.storage import S3_BUCKET_NAME_MAX, StorageSpec, generated_bucket_names
from mlstack.spec.teams import HumanAccessSpec, TeamSpec
from mlstack.spec.vectordb import QDRANT_IMAGE_REGISTRY, VectorDbSpec

__all__ = ["TIER_DEFAULTS", "PlatformSpec", "Tier"]

TagValue = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]

# Fields whose default depends on the tier: (section, field) -> {tier: value}. Applied only where the stack
# file leaves the field out, so an explicit value always wins and the policy pack still sees it.
TIER_DEFAULTS: dict[tuple[str, str], dict[Tier, Any]] = {
    ("cluster", "gpu_node_ami"): {
        Tier.DEV: "latest",
        Tier.STAGING: PINNED_GPU_NODE_AMI,
        Tier.PROD: PINNED_GPU_NODE_AMI,
    },
    # One node per replica of what spreads one per node (Karpenter 2, Qdrant 3 in staging and prod); dev keeps the
    # node group's own defaults. _system_node_rules checks an explicit block.
    ("cluster", "system_nodes"): {
        Tier.DEV: {},
        Tier.STAGING: {"min_size": 3, "desired_size": 3},
        Tier.PROD: {"min_size": 3, "desired_size": 3},
    },
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
    ("logs", "retention_days"): {Tier.DEV: 14, Tier.STAGING: 30, Tier.PROD: 90},
    # The metrics stack: dev keeps two days on the node's disk; staging and prod keep weeks on encrypted volumes
    # (the choice and its cost: docs/observability.md).
    ("metrics", "storage"): {Tier.DEV: "ephemeral", Tier.STAGING: "persistent", Tier.PROD: "persistent"},
    ("metrics", "retention_days"): {Tier.DEV: 2, Tier.STAGING: 15, Tier.PROD: 30},
    ("metrics", "storage_gb"): {Tier.DEV: 5, Tier.STAGING: 50, Tier.PROD: 100},
    ("metrics", "prometheus_replicas"): {Tier.DEV: 1, Tier.STAGING: 1, Tier.PROD: 2},
    # Staging's system nodes run at the 90% CPU ceiling of the capacity check (docs/cost.md): its Prometheus asks
    # for what dev's does and bursts above it (no CPU limit).
    ("metrics", "prometheus_cpu_request"): {Tier.DEV: "100m", Tier.STAGING: "100m", Tier.PROD: "500m"},
    ("metrics", "prometheus_memory_request"): {Tier.DEV: "512Mi", Tier.STAGING: "1Gi", Tier.PROD: "2Gi"},
}


# Network fields that only describe a VPC mlstack builds itself.
_BUILT_NETWORK_FIELDS = frozenset({"nat_gateways"})


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
    cpu_pools: list[CpuPoolSpec] = Field(
        default_factory=list,
        description="CPU node pools for workflow steps and notebooks without GPUs. Default: the tier's pools "
        "(mlstack.spec.compute.default_cpu_pools): 'cpu' (amd64, m7i.large..2xlarge) and 'cpu-arm' (arm64, "
        "m7g.large..xlarge), Spot in dev and Spot-preferred in staging and prod, at most 16/8 vCPUs in dev, "
        "64/32 in staging, 256/64 in prod. An empty list declares none.",
    )
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
    platform_admins: HumanAccessSpec | None = Field(
        default=None,
        description="Who may assume the platform-admin role, the only role with cluster-admin. Default: any "
        "principal of this account whose own IAM policy allows it, and only with an MFA sign-in under an hour old.",
    )
    budgets: BudgetSpec = Field(description="Monthly budget and its notifications. Required.")
    metrics: MetricsSpec = Field(
        default_factory=MetricsSpec,
        description="The metrics stack (Prometheus). Default: on; see MetricsSpec for the tier defaults.",
    )
    cost: CostSpec = Field(
        default_factory=CostSpec,
        description="Assumptions of the cost estimate (Spot discount, NAT data volume). Default: see CostSpec.",
    )
    deploy_runner: DeployRunnerSpec = Field(
        default_factory=DeployRunnerSpec,
        description="The in-VPC GitHub Actions runner (AWS CodeBuild) that runs `pulumi up` against the private "
        "cluster. Default: on, for the repository of deployment.github_repository.",
    )
    access_host: AccessHostSpec = Field(
        default_factory=AccessHostSpec,
        description="The Session Manager host through which people reach the private cluster API and the UIs. "
        "Default: on, t4g.nano.",
    )
    logs: LogsSpec = Field(
        default_factory=LogsSpec,
        description="Pod and node logs to CloudWatch Logs, per team. Default: on, see LogsSpec.",
    )
    deployment: DeploymentSpec | None = Field(
        default=None,
        description="The GitOps pipeline's GitHub repository, state backend and Identity Center instance, read by "
        "the account foundation stack (account/). Default: none; the platform plans without it, the "
        "foundation refuses to run without it.",
    )
    notebooks: NotebooksSpec = Field(
        default_factory=NotebooksSpec,
        description="JupyterHub for the teams, with OIDC sign-in and a profile per team and pool. Default: off.",
    )
    external_secrets: ExternalSecretsSpec = Field(
        default_factory=ExternalSecretsSpec,
        description="External Secrets Operator, syncing the SSO clients' Secrets from AWS Secrets Manager before "
        "the apps start. Default: on whenever an SSO client is configured; see ExternalSecretsSpec.",
    )

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
        data.setdefault("cpu_pools", default_cpu_pools(tier))
        for (section, field), by_tier in TIER_DEFAULTS.items():
            block = data.get(section)
            if block is None:
                block = {}
            if section == "network" and isinstance(block, dict) and block.get("existing_vpc") is not None:
                # A brought VPC already has its NAT layout; defaulting it would clash with existing_vpc.
                if field in _BUILT_NETWORK_FIELDS:
                    continue
            if isinstance(block, dict) and field not in block:
                data[section] = {**block, field: by_tier[tier]}
        return data

    def deploy_runner_repository(self) -> str | None:
        """The repository the deploy runner serves: its own setting, else the pipeline's (deployment)."""
        if self.deploy_runner.github_repository is not None:
            return self.deploy_runner.github_repository
        return self.deployment.github_repository if self.deployment is not None else None

    def replica_regions(self) -> tuple[str, ...]:
        """Regions other than the home region that hold copies of this environment's data or images."""
        regions = {self.storage.models_replication_region, self.registry.replication_region} - {
            None,
            self.region,
        }
        return tuple(sorted(r for r in regions if r))

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
        if self.tier.hardened and self.cluster.gpu_node_ami == "latest":
            problems.append(
                (
                    "cluster.gpu_node_ami",
                    f"the {self.tier} tier pins the GPU node AMI: latest replaces every GPU node on each AMI "
                    f"release; remove the field (default {PINNED_GPU_NODE_AMI}) or set an amazon-eks-ami "
                    "release tag such as v20260714",
                )
            )
        problems += _system_node_rules(self)
        if self.tier.hardened and self.cluster.system_nodes.capacity_type == "spot":
            problems.append(
                (
                    "cluster.system_nodes.capacity_type",
                    f"the {self.tier} tier runs CoreDNS and Karpenter on On-Demand nodes: remove the field "
                    "or set on-demand",
                )
            )
        zones = self.network.zones(self.region)
        foreign = [z for z in zones if not z.startswith(self.region)]
        if foreign:
            problems.append(
                ("network.availability_zones", f"zones {foreign} are not in region {self.region}")
            )
        problems += _storage_and_registry_rules(self)
        problems += _workflow_and_vector_rules(self)
        problems += _duplicates("gpu_pools", [p.name for p in self.gpu_pools])
        problems += _duplicates("cpu_pools", [p.name for p in self.cpu_pools])
        gpu_pool_names = {p.name for p in self.gpu_pools}
        problems += [
            (
                f"cpu_pools.{i}.name",
                f"'{p.name}' is also a GPU pool's name; NodePool names are shared: rename one",
            )
            for i, p in enumerate(self.cpu_pools)
            if p.name in gpu_pool_names
        ]
        problems += _duplicates("teams", [t.name for t in self.teams])
        problems += _duplicates("inference.endpoints", [e.name for e in self.inference.endpoints])
        pools = {p.name for p in self.gpu_pools}
        teams = {t.name for t in self.teams}
        for i, endpoint in enumerate(self.inference.endpoints):
            if endpoint.gpu_pool is not None and endpoint.gpu_pool not in pools:
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
        problems += endpoint_problems(
            self.inference.endpoints,
            environment=self.environment,
            account_id=self.account_id,
            region=self.region,
            buckets=self.storage.buckets,
            repositories=self.registry.repositories,
            pull_through_prefixes=[c.repository_prefix for c in self.registry.pull_through_caches],
            gpu_pools=self.gpu_pools,
            hardened=self.tier.hardened,
        )
        problems += prometheus_problems(self.inference, in_cluster_prometheus_url(self.metrics))
        if self.tier.hardened and self.metrics.enabled and self.metrics.storage == "ephemeral":
            problems.append(
                (
                    "metrics.storage",
                    f"the {self.tier} tier keeps its metrics on encrypted persistent volumes: remove the field "
                    "or set persistent",
                )
            )
        if self.tier.hardened and self.metrics.runs_grafana and self.metrics.grafana.sso is None:
            problems.append(
                (
                    "metrics.grafana.sso",
                    f"the {self.tier} tier signs people in to Grafana through the platform's OIDC identity provider "
                    "only: add sso (auth_url, token_url, api_url, admin_group; docs/observability.md, \"Grafana\") "
                    "or set metrics.grafana.enabled: false",
                )
            )
        problems += _team_rules(self)
        problems += _platform_image_rules(self)
        problems += deployment_problems(self)
        problems += notebook_problems(self)
        problems += secrets_problems(self)
        if problems:
            raise RuleViolations(problems)
        return self


def _system_node_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Pods with required hostname anti-affinity need that many system nodes, or one replica stays Pending and
    its atomic Helm release times out (nothing adds system capacity: docs/cost.md, "System node capacity")."""
    nodes = spec.cluster.system_nodes.min_size
    spread = {
        # Karpenter's chart requires one controller per node (aws/karpenter-provider-aws@v1.14.1
        # charts/karpenter/values.yaml affinity.podAntiAffinity); the platform runs 2 in staging and prod.
        "Karpenter": 2 if spec.tier.hardened else 1,
        # Distributed Qdrant spreads its replicas one per node (components/vectordb.py, required anti-affinity).
        "Qdrant": spec.vector_db.replicas
        if spec.vector_db.enabled and spec.vector_db.engine == "qdrant" and spec.vector_db.replicas > 1
        else 1,
    }
    return [
        (
            "cluster.system_nodes.min_size",
            f"{name} runs {replicas} replicas, one per node, but the system node group may shrink to {nodes} "
            f"node(s): set min_size (and desired_size) to {replicas} or more",
        )
        for name, replicas in spread.items()
        if replicas > nodes
    ]


def _storage_and_registry_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = _bucket_rules(spec)
    replica = spec.storage.models_replication_region
    if replica is not None:
        if replica == spec.region:
            problems.append(
                ("storage.models_replication_region", f"must be another region than {spec.region}")
            )
        if "models" not in spec.storage.buckets:
            problems.append(
                (
                    "storage.models_replication_region",
                    "needs a models bucket: add 'models' to storage.buckets",
                )
            )
    if spec.registry.replication_region == spec.region:
        problems.append(("registry.replication_region", f"must be another region than {spec.region}"))
    home = f":secretsmanager:{spec.region}:{spec.account_id}:"
    for i, cache in enumerate(spec.registry.pull_through_caches):
        if cache.credential_arn is not None and home not in cache.credential_arn:
            problems.append(
                (
                    f"registry.pull_through_caches.{i}.credential_arn",
                    f"the secret must live in account {spec.account_id} and region {spec.region}",
                )
            )
        if cache.repository_prefix == spec.environment:
            problems.append(
                (
                    f"registry.pull_through_caches.{i}.prefix",
                    f"'{spec.environment}' is where the environment's own repositories live; choose another",
                )
            )
    return problems


def _bucket_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    """The buckets other sections write to must be declared, and every generated name must fit S3's limit."""
    problems: list[tuple[str, str]] = []
    if "artifacts" not in spec.storage.buckets:
        users = []
        if spec.orchestrator.argo_workflows or spec.orchestrator.metaflow:
            users.append("the orchestrator (workflow artifacts, Metaflow datastore)")
        if spec.vector_db.enabled:
            users.append("the vector database (snapshots)")
        users += [
            f"inference endpoint '{e.name}' (data capture)"
            for e in spec.inference.endpoints
            if e.data_capture_percent
        ]
        if users:
            problems.append(
                (
                    "storage.buckets",
                    f"has no 'artifacts' bucket, which {', '.join(users)} write to; add 'artifacts' to the "
                    "list, or turn those off",
                )
            )
    names = generated_bucket_names(spec.storage, spec.environment, spec.account_id, spec.region)
    longest = max(names, key=len)
    if len(longest) > S3_BUCKET_NAME_MAX:
        excess = len(longest) - S3_BUCKET_NAME_MAX
        problems.append(
            (
                "environment",
                f"bucket name '{longest}' would be {len(longest)} characters, more than S3's "
                f"{S3_BUCKET_NAME_MAX}; shorten the environment name by {excess} or more",
            )
        )
    return problems


def _workflow_and_vector_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Durability floors of the databases in prod, and the snapshot prefix staying out of team prefixes."""
    problems: list[tuple[str, str]] = []
    orchestrator, vector_db = spec.orchestrator, spec.vector_db
    if spec.tier is Tier.PROD and orchestrator.metaflow and not orchestrator.db_multi_az:
        problems.append(
            ("orchestrator.db_multi_az", "prod keeps the metadata database multi-AZ: remove the field")
        )
    if spec.tier.hardened and orchestrator.metaflow and orchestrator.backup_retention_days < 7:
        problems.append(
            (
                "orchestrator.backup_retention_days",
                f"the {spec.tier} tier keeps at least 7 days of backups: set 7 or more",
            )
        )
    if spec.tier.hardened and vector_db.enabled and vector_db.engine == "aurora-pgvector":
        if vector_db.backup_retention_days < 7:
            problems.append(
                (
                    "vector_db.backup_retention_days",
                    f"the {spec.tier} tier keeps at least 7 days of backups: set 7 or more",
                )
            )
    if (
        spec.tier is Tier.PROD
        and vector_db.enabled
        and vector_db.engine == "qdrant"
        and vector_db.replicas < 3
    ):
        problems.append(("vector_db.replicas", "prod runs Qdrant with 3 replicas or more: remove the field"))
    teams = {t.name for t in spec.teams}
    for i, writer in enumerate(vector_db.writer_teams):
        if writer not in teams:
            problems.append(
                (
                    f"vector_db.writer_teams.{i}",
                    f"'{writer}' is not a team of this stack; name a team from teams[].name or remove it",
                )
            )
    owner = vector_db.snapshot_prefix.split("/", 1)[0]
    if owner in {t.name for t in spec.teams}:
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


def _team_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Teams must fit the GPU pools they share, and budgets and groups must name teams unambiguously."""
    problems: list[tuple[str, str]] = []
    pool_sizes = {p.name: p.max_gpus for p in spec.gpu_pools}
    teams = {t.name for t in spec.teams}
    problems += _duplicates("teams (kubernetes_group)", [t.group for t in spec.teams])
    for i, team in enumerate(spec.teams):
        # IAM role names stop at 64 characters; the longest team role is <env>-team-<name>-workload.
        role_name = f"{spec.environment}-team-{team.name}-workload"
        if len(role_name) > 64:
            problems.append(
                (f"teams.{i}.name", f"role name '{role_name}' would exceed IAM's 64 characters; shorten it")
            )
    nominal = dict.fromkeys(pool_sizes, 0)
    for i, team in enumerate(spec.teams):
        if team.gpu_quota > 0 and not pool_sizes:
            problems.append((f"teams.{i}.gpu_quota", "no gpu_pools are declared; set it to 0 or add a pool"))
        unknown = sorted(set(team.gpu_quota_by_pool or {}) - set(pool_sizes))
        if unknown:
            problems.append(
                (
                    f"teams.{i}.gpu_quota_by_pool",
                    f"{unknown} are not declared pools; declared: {sorted(pool_sizes) or 'none'}",
                )
            )
            continue
        for pool, share in team.pool_quotas(pool_sizes).items():
            nominal[pool] += share
    for pool, total in sorted(nominal.items()):
        # Kueue would admit work that Karpenter can never find nodes for: it would sit pending forever.
        if total > pool_sizes[pool]:
            problems.append(
                (
                    "teams",
                    f"the teams' nominal GPU quotas on pool '{pool}' add up to {total}, more than its max_gpus "
                    f"{pool_sizes[pool]}; lower gpu_quota(_by_pool) or raise the pool's max_gpus",
                )
            )
    for name in sorted(set(spec.budgets.team_limits_usd) - teams):
        problems.append(
            (
                f"budgets.team_limits_usd.{name}",
                f"'{name}' is not a declared team; declared: {sorted(teams) or 'none'}",
            )
        )
    return problems


def _platform_image_rules(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Platform workloads pull public images through the registry's cache, so their upstreams need a rule."""
    cached = {cache.upstream_url for cache in spec.registry.pull_through_caches}
    # Kueue's controller image (components/teams.py KUEUE_IMAGE); Kueue is always installed.
    needed: dict[str, str] = {"registry.k8s.io": "the Kueue controller image"}
    if spec.orchestrator.metaflow or (spec.vector_db.enabled and spec.vector_db.engine == "qdrant"):
        needed["public.ecr.aws"] = "the AWS CLI image of the platform's jobs"
    if spec.orchestrator.metaflow:
        registry = spec.orchestrator.metadata_service_image.split("/", 1)[0]
        needed[REGISTRY_ALIASES.get(registry, registry)] = "orchestrator.metadata_service_image"
        step_registry = spec.orchestrator.metaflow_step_image.split("/", 1)[0]
        needed.setdefault(
            REGISTRY_ALIASES.get(step_registry, step_registry), "orchestrator.metaflow_step_image"
        )
    if spec.orchestrator.argo_workflows:
        # components/orchestrator.py ARGO_IMAGE_REGISTRY and ARGO_CRD_JOB_IMAGE.
        needed.setdefault("quay.io", "Argo Workflows' images")
        needed.setdefault("registry.k8s.io", "the kubectl image of Argo Workflows' CRD job")
    if spec.orchestrator.metaflow and spec.orchestrator.metaflow_ui:
        ui_registry = spec.orchestrator.metaflow_ui_image.split("/", 1)[0]
        needed.setdefault(REGISTRY_ALIASES.get(ui_registry, ui_registry), "orchestrator.metaflow_ui_image")
    events = spec.orchestrator.argo_events
    if events.enabled:
        # components/events.py: the controller's image on quay.io, the EventBus's NATS images on Docker Hub.
        needed.setdefault("quay.io", "Argo Events' controller image")
        if events.nats_images_through_cache:
            needed.setdefault(
                REGISTRY_ALIASES["docker.io"],
                "the NATS images of Argo Events' EventBus (or set orchestrator.argo_events."
                "nats_images_through_cache: false to pull them from Docker Hub)",
            )
    vector_db = spec.vector_db
    if vector_db.enabled and vector_db.engine == "qdrant" and vector_db.qdrant_image_through_cache:
        needed.setdefault(
            REGISTRY_ALIASES[QDRANT_IMAGE_REGISTRY],
            "Qdrant's image (or set vector_db.qdrant_image_through_cache: false to pull it from Docker Hub)",
        )
    if spec.metrics.runs_grafana:
        # components/observability.py grafana_values: the dashboards sidecar from quay.io, Grafana from Docker Hub.
        needed.setdefault("quay.io", "the Grafana dashboards sidecar image")
        if spec.metrics.grafana.image_through_cache:
            needed.setdefault(
                REGISTRY_ALIASES["docker.io"],
                "Grafana's image (or set metrics.grafana.image_through_cache: false to pull it from Docker Hub)",
            )
    inference = spec.inference
    if inference.keda_images_through_cache and any(e.backend == "kubernetes" for e in inference.endpoints):
        # components/inference.py KEDA_IMAGE_REGISTRY: KEDA serves every Kubernetes endpoint.
        needed.setdefault(
            "ghcr.io",
            "KEDA's images (or set inference.keda_images_through_cache: false to pull them from ghcr.io)",
        )
    opencost = spec.metrics.opencost
    if spec.metrics.enabled and opencost.enabled and opencost.images_through_cache:
        # components/cost_allocation.py: the chart's images are on ghcr.io (values.yaml opencost.exporter.image,
        # opencost.ui.image).
        needed.setdefault(
            "ghcr.io",
            "OpenCost's images (or set metrics.opencost.images_through_cache: false to pull them from ghcr.io)",
        )
    if spec.external_secrets.image_through_cache and synced_sso_clients(spec):
        # components/secrets.py OPERATOR_IMAGE: External Secrets Operator runs whenever an SSO client is synced.
        needed.setdefault(
            "ghcr.io",
            "External Secrets Operator's image (or set external_secrets.image_through_cache: false to pull it "
            "from ghcr.io)",
        )
    return [
        (
            "registry.pull_through_caches",
            f"no cache rule for {upstream}, which {what} is pulled from; add that upstream to the list",
        )
        for upstream, what in sorted(needed.items())
        if upstream not in cached
    ]
