"""Monthly cost estimate of an environment, computed from its recorded plan and priced from a table kept as data.

The plan says what is deployed (how many NAT gateways, endpoints, keys, node groups, NodePools, databases);
the spec adds what the plan cannot know (declared storage volume, endpoint replicas, Spot discount). Two
columns: *idle* has every autoscaled pool at its minimum and endpoints at ``min_replicas``; *peak* has every
pool at its limit and endpoints at ``max_replicas``. A price the table lacks is an error naming the item.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlstack.catalog import GpuCatalog, GpuInstanceType, gpu_catalog
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.spec import PlatformSpec
from mlstack.spec.compute import cpu_instance_table

if TYPE_CHECKING:
    from mlstack.simulate.capacity import Node
    from mlstack.simulate.framework import World

PRICES_FILE = Path(__file__).resolve().parent / "data" / "prices.yaml"

EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ELASTIC_IP = "aws:ec2/eip:Eip"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
KMS_KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
RDS_INSTANCE = "aws:rds/instance:Instance"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
SAGEMAKER_ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CODEBUILD_PROJECT = "aws:codebuild/project:Project"

GPU_LIMIT = "nvidia.com/gpu"
CPU_LIMIT = "cpu"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
INSTANCE_FAMILY_LABEL = "karpenter.k8s.aws/instance-family"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"


class CostModelError(Exception):
    """The estimate cannot be made: a price is missing or a recorded resource lacks what pricing needs."""


@dataclass(frozen=True)
class Price:
    """One price: what is billed, per which unit, where, and where and when the figure was read."""

    item: str
    unit: str
    usd: float
    region: str
    source: str
    date: str


@dataclass(frozen=True)
class PriceTable:
    """Prices keyed by (item, region), the hours of a billing month, and the types billed by usage only."""

    prices: dict[tuple[str, str], Price]
    hours_per_month: float
    usage_based: dict[str, str]
    source: str

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        prices: dict[tuple[str, str], Price] = {}
        for entry in document["entries"]:
            price = Price(
                item=str(entry["item"]),
                unit=str(entry["unit"]),
                usd=float(entry["usd"]),
                region=str(entry["region"]),
                source=str(entry["source"]),
                date=str(entry["date"]),
            )
            if (price.item, price.region) in prices:
                raise CostModelError(f"{path.name}: {price.item} in {price.region} is listed twice")
            prices[(price.item, price.region)] = price
        return cls(
            prices=prices,
            hours_per_month=float(document["hours_per_month"]),
            usage_based=dict(document.get("usage_based") or {}),
            source=path.name,
        )

    def get(self, item: str, region: str) -> Price:
        """The price of ``item`` in ``region``; a missing one is an error that names it."""
        try:
            return self.prices[(item, region)]
        except KeyError:
            raise CostModelError(
                f"no price for '{item}' in {region} in {self.source}; add an entry with its region, source and date"
            ) from None

    def hourly(self, item: str, region: str) -> float:
        price = self.get(item, region)
        if price.unit != "hour":
            raise CostModelError(f"{self.source}: '{item}' is priced per {price.unit}, expected per hour")
        return price.usd

    def monthly(self, item: str, region: str) -> float:
        """The price of one unit for a month: hourly prices times the hours of a month, others as they are."""
        price = self.get(item, region)
        return price.usd * self.hours_per_month if price.unit == "hour" else price.usd


@cache
def default_prices() -> PriceTable:
    return PriceTable.load()


@dataclass(frozen=True)
class LineItem:
    """One priced thing in one component, with its idle and peak monthly cost and how it was counted."""

    component: str
    item: str
    basis: str
    idle: float
    peak: float


@dataclass(frozen=True)
class GpuHour:
    """What one GPU-hour costs in a pool: the range over the instance types the pool may launch."""

    pool: str
    capacity: str
    cheapest_type: str
    cheapest: float
    dearest_type: str
    dearest: float


@dataclass(frozen=True)
class TeamCost:
    """What one team can cost a month (docs/cost.md, "Per team"): idle is its warm endpoints, peak its whole GPU
    quota busy plus its SageMaker endpoints at their maximum. The shared platform is not split among teams."""

    team: str
    cost_center: str
    idle: float
    peak: float
    basis: tuple[str, ...]
    budget: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "costCenter": self.cost_center,
            "idle": round(self.idle, 2),
            "peak": round(self.peak, 2),
            "basis": list(self.basis),
            "budget": self.budget,
        }


@dataclass
class Estimate:
    """The monthly estimate of one environment."""

    stack: str
    region: str
    lines: list[LineItem]
    gpu_hours: list[GpuHour]
    assumptions: list[str]
    not_priced: dict[str, int] = field(default_factory=dict)
    teams: list[TeamCost] = field(default_factory=list)

    @property
    def idle(self) -> float:
        return sum(line.idle for line in self.lines)

    @property
    def peak(self) -> float:
        return sum(line.peak for line in self.lines)

    def by_component(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, tuple[float, float]] = {}
        for line in self.lines:
            idle, peak = totals.get(line.component, (0.0, 0.0))
            totals[line.component] = (idle + line.idle, peak + line.peak)
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "idle": round(self.idle, 2),
            "peak": round(self.peak, 2),
            "lines": [line.__dict__ for line in self.lines],
            "gpuHours": [gpu.__dict__ for gpu in self.gpu_hours],
            "assumptions": self.assumptions,
            "notPriced": self.not_priced,
            "teams": [team.to_json() for team in self.teams],
        }


# The project this package belongs to: where the deploy simulation finds the charts when no world is given.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def estimate(
    plan: Plan,
    spec: PlatformSpec,
    prices: PriceTable | None = None,
    gpu_table: GpuCatalog | None = None,
    world: World | None = None,
) -> Estimate:
    """Price every billable resource of ``plan``. Raises CostModelError naming any missing price.

    The Karpenter CPU nodes that run at idle are the ones the deploy simulation's capacity model launches for the
    plan (:func:`mlstack.simulate.capacity.idle`), over ``world`` (the simulation of this same plan and spec) or,
    when none is given, over a new one rooted at this project."""
    if world is None:
        from mlstack.simulate.framework import World

        world = World(plan, spec, PROJECT_ROOT)
    elif world.plan is not plan:
        raise ValueError("estimate: the simulated world is of another plan")
    return _Estimator(plan, spec, prices or default_prices(), gpu_table or gpu_catalog(), world).run()


class _Estimator:
    def __init__(
        self, plan: Plan, spec: PlatformSpec, prices: PriceTable, gpu_table: GpuCatalog, world: World
    ):
        self.plan = plan
        self.world = world
        # Per team: (idle month, basis) of its share of the CPU pools' idle nodes (docs/cost.md, "Per team").
        self.team_cpu_idle: dict[str, list[tuple[float, str]]] = {}
        self.gpu_table = gpu_table
        self.spec = spec
        self.prices = prices
        self.region = spec.region
        self.hours = prices.hours_per_month
        self.spot_factor = 1 - spec.cost.spot_discount_percent / 100
        self.by_urn = {r.urn: r for r in plan.resources}
        self.lines: list[LineItem] = []
        # Per GPU pool: (capacity, [(node month, type)] cheapest first, dearest GPU-hour), for the per-team view.
        self.pool_prices: dict[str, tuple[str, list[tuple[float, str]], float]] = {}
        # Per SageMaker endpoint: (idle, peak) month, for the per-team view.
        self.sagemaker_months: dict[str, tuple[float, float]] = {}
        # Usage-based resources priced from a stated volume (never listed as "not priced").
        self.priced: set[str] = set()
        self.gpu_hours: list[GpuHour] = []
        self._cpu_assumed = False
        self._simulation_stated = False
        self.assumptions: list[str] = [
            f"prices: {prices.source}, On-Demand list prices in {self.region}, {self.hours:g} hours a month",
            f"Spot capacity is priced at a {spec.cost.spot_discount_percent:g}% discount on On-Demand "
            "(stack file: cost.spot_discount_percent)",
            "not included: data transfer out, request charges, support plans, taxes, Savings Plans and other discounts",
        ]

    def run(self) -> Estimate:
        self._fixed()
        self._nat()
        self._interface_endpoints()
        self._node_groups()
        self._node_pools()
        self._rds_instances()
        self._aurora()
        self._sagemaker()
        self._s3()
        self._instances()
        self._codebuild()
        self._prometheus_volumes()
        self._pod_logs()
        self._argo_events()
        self._notebooks()
        self._grafana()
        self._opencost()
        teams = self._teams()
        usage_types = Counter(
            r.type
            for r in self.plan.resources
            if r.type in self.prices.usage_based and r.urn not in self.priced
        )
        for type_, count in sorted(usage_types.items()):
            self.assumptions.append(
                f"not priced, usage-based: {count} x {type_} ({self.prices.usage_based[type_]})"
            )
        return Estimate(
            stack=self.plan.stack,
            region=self.region,
            lines=self.lines,
            gpu_hours=self.gpu_hours,
            assumptions=self.assumptions,
            not_priced=dict(sorted(usage_types.items())),
            teams=teams,
        )

    def _argo_events(self) -> None:
        """Argo Events creates no AWS resource: its pods run on nodes already priced (the controller on the system
        nodes, each team's bus and webhook in the team's CPU pool). Say what they request, so the pools' share of
        it is visible."""
        from fractions import Fraction

        from mlstack.simulate import quantity

        buses = [r for r in self.plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:EventBus"]
        sources = [r for r in self.plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:EventSource"]
        if not buses and not sources:
            return
        cpu = memory = Fraction(0)
        for bus in buses:
            js = (bus.inputs.get("spec") or {}).get("jetstream") or {}
            # argo-events v1.9.10 JetStreamBus.GetReplicas: 3 when unset.
            replicas = int(js.get("replicas") or 3)
            for part in ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate"):
                requests = ((js.get(part) or {}).get("resources") or {}).get("requests") or {}
                cpu += replicas * quantity.parse(requests.get("cpu", 0))
                memory += replicas * quantity.parse(requests.get("memory", 0))
        for source in sources:
            spec = source.inputs.get("spec") or {}
            requests = (((spec.get("template") or {}).get("container") or {}).get("resources") or {}).get(
                "requests"
            ) or {}
            cpu += int(spec.get("replicas") or 1) * quantity.parse(requests.get("cpu", 0))
            memory += int(spec.get("replicas") or 1) * quantity.parse(requests.get("memory", 0))
        self.assumptions.append(
            f"Argo Events: no AWS resource; {len(buses)} team event buses and {len(sources)} webhooks request "
            f"{float(cpu):g} vCPU and {float(memory) / 2**20:g} MiB in the team CPU pools (priced as the idle nodes "
            "the deploy simulation launches for them), "
            "the controller runs on the system nodes; Metaflow's sensors add 100m CPU and 250Mi each per "
            "triggered flow"
        )

    def _notebooks(self) -> None:
        """JupyterHub (components.notebooks): the hub database's gp3 volume, held at idle and peak; the hub and the
        proxy run on the system nodes (priced with them); notebook servers are team usage on the pools (priced with
        the pools' peak); each user's home volume is stated per user, as the number of users is not in the plan."""
        for release in self.plan.by_type(HELM_RELEASE):
            if release.inputs.get("chart") != "jupyterhub":
                continue
            values = release.inputs.get("values") or {}
            hub = values.get("hub") or {}
            size = str(((hub.get("db") or {}).get("pvc") or {}).get("storage") or "1Gi")
            if not size.endswith("Gi"):
                raise CostModelError(f"release {release.name}: hub database volume size {size!r} is not in Gi")
            gp3 = self.prices.monthly("ebs.gp3", self.region)
            monthly = float(size[:-2]) * gp3
            self.add(release, "JupyterHub database volume", f"1 x {size[:-2]} GiB ebs.gp3", monthly, monthly)
            home = str(((values.get("singleuser") or {}).get("storage") or {}).get("capacity") or "")
            per_user = f"${float(home[:-2]) * gp3:.2f} a month per user and team ({home} ebs.gp3)" if home.endswith(
                "Gi"
            ) else "not priced"
            self.assumptions.append(
                "JupyterHub: the hub and the proxy run on the system nodes (priced with them); notebook servers "
                "run on the CPU and GPU pools as team usage (priced with the pools) and stop when idle; home "
                f"volumes: {per_user}, kept while the user exists"
            )

    def _grafana(self) -> None:
        """Grafana (the metrics release's subchart) creates no AWS resource and keeps no volume: its pod runs on the
        system nodes, already priced. Say what it requests there (Grafana and its dashboards sidecar; the data
        source init container runs before them)."""
        from fractions import Fraction

        from mlstack.simulate import quantity

        for release in self.plan.resources:
            if release.type != "kubernetes:helm.sh/v3:Release":
                continue
            if str(release.inputs.get("chart", "")).rsplit("/", 1)[-1] != "kube-prometheus-stack":
                continue
            grafana = (release.inputs.get("values") or {}).get("grafana") or {}
            if not grafana.get("enabled"):
                continue
            cpu = memory = Fraction(0)
            for part in (grafana, grafana.get("sidecar") or {}):
                requests = (part.get("resources") or {}).get("requests") or {}
                cpu += quantity.parse(requests.get("cpu", 0))
                memory += quantity.parse(requests.get("memory", 0))
            self.assumptions.append(
                f"Grafana: no AWS resource and no volume; its pod requests {float(cpu):g} vCPU and "
                f"{float(memory) / 2**20:g} MiB on the system nodes (priced with them)"
            )

    def _opencost(self) -> None:
        """OpenCost creates no AWS resource and keeps nothing on a volume: its pod runs on the system nodes,
        which are priced (and counted by the capacity simulation) with the system node group. Say what it
        requests, read from its release's recorded values (opencost chart 2.5.17 values.yaml
        ``opencost.exporter.resources``, ``opencost.ui``)."""
        from fractions import Fraction

        from mlstack.simulate import quantity

        for release in self.plan.by_type(HELM_RELEASE):
            if release.inputs.get("chart") != "opencost":
                continue
            opencost = (release.inputs.get("values") or {}).get("opencost") or {}
            parts = [opencost.get("exporter") or {}]
            if (opencost.get("ui") or {}).get("enabled"):
                parts.append(opencost["ui"])
            cpu = memory = Fraction(0)
            for part in parts:
                requests = (part.get("resources") or {}).get("requests") or {}
                cpu += quantity.parse(requests.get("cpu", 0))
                memory += quantity.parse(requests.get("memory", 0))
            self.assumptions.append(
                f"OpenCost: no AWS resource; requests {float(cpu):g} vCPU and {float(memory) / 2**20:g} MiB on the "
                "system nodes (priced with the system node group); its spend figures are On-Demand list prices "
                "from prices.yaml, Spot nodes included"
            )

    # --- helpers ---------------------------------------------------------------------------------------------
    def component_of(self, resource: RecordedResource) -> str:
        """The top-level component (a child of the Platform) that holds ``resource``."""
        current = resource
        while current.parent in self.by_urn and self.by_urn[current.parent].parent in self.by_urn:
            current = self.by_urn[current.parent]
        return current.name

    def add(self, resource: RecordedResource, item: str, basis: str, idle: float, peak: float) -> None:
        self.lines.append(LineItem(self.component_of(resource), item, basis, idle, peak))

    def grouped(self, resources: Iterable[RecordedResource]) -> dict[str, list[RecordedResource]]:
        groups: dict[str, list[RecordedResource]] = {}
        for resource in resources:
            groups.setdefault(self.component_of(resource), []).append(resource)
        return groups

    def instance_month(self, item: str, spot: bool) -> float:
        return self.prices.monthly(item, self.region) * (self.spot_factor if spot else 1.0)

    # --- resource families -----------------------------------------------------------------------------------
    def _fixed(self) -> None:
        """Resources billed per hour or month whatever the load: control planes, public IPs, keys."""
        for type_, item, label in (
            (EKS_CLUSTER, "eks.cluster", "EKS control plane"),
            (ELASTIC_IP, "ipv4.public", "public IPv4 address"),
            *((key_type, "kms.key", "KMS key") for key_type in KMS_KEYS),
        ):
            for component, members in self.grouped(self.plan.by_type(type_)).items():
                monthly = self.prices.monthly(item, self.region) * len(members)
                self.lines.append(LineItem(component, label, f"{len(members)} x {item}", monthly, monthly))

    def _nat(self) -> None:
        gateways = self.plan.by_type(NAT_GATEWAY)
        for component, members in self.grouped(gateways).items():
            monthly = self.prices.monthly("nat.gateway", self.region) * len(members)
            self.lines.append(
                LineItem(component, "NAT gateway", f"{len(members)} x nat.gateway", monthly, monthly)
            )
        if gateways:
            volume = self.spec.cost.nat_processed_gb_per_month
            monthly = volume * self.prices.get("nat.data", self.region).usd
            self.add(gateways[0], "NAT data processing", f"{volume:g} GB x nat.data", monthly, monthly)
            self.assumptions.append(
                f"NAT gateways process {volume:g} GB a month in total (stack file: cost.nat_processed_gb_per_month)"
            )

    def _pod_logs(self) -> None:
        """Pod and node logs (components.logs): ingestion of the stated monthly volume, and its storage over the
        retention period at steady state (a month's volume times the months kept). Stored bytes are billed
        compressed, so storage is an upper bound."""
        groups = [
            r
            for r in self.plan.by_type(LOG_GROUP)
            if str(r.inputs.get("name", "")).startswith(f"/mlstack/{self.spec.environment}/pods/")
            or r.inputs.get("name") == f"/mlstack/{self.spec.environment}/nodes"
        ]
        if not groups:
            return
        self.priced.update(r.urn for r in groups)
        volume = self.spec.cost.logs_ingested_gb_per_month
        months_kept = self.spec.logs.retention_days * 24 / self.hours
        ingest = volume * self.prices.get("logs.ingest", self.region).usd
        stored = volume * months_kept
        storage = stored * self.prices.get("logs.storage", self.region).usd
        self.add(groups[0], "log ingestion", f"{volume:g} GB x logs.ingest", ingest, ingest)
        self.add(
            groups[0],
            "log storage",
            f"{stored:.1f} GB (retention {self.spec.logs.retention_days} d) x logs.storage",
            storage,
            storage,
        )
        self.assumptions.append(
            f"pods and nodes log {volume:g} GB a month into CloudWatch Logs (stack file: cost.logs_ingested_gb_per_month), "
            f"kept {self.spec.logs.retention_days} days; Logs Insights queries are not included"
        )

    def _teams(self) -> list[TeamCost]:
        """Per team, from its quota and endpoints (docs/cost.md, "Per team").

        Idle: each warm Kubernetes endpoint's min_replicas on the cheapest node type of its pool that holds a
        replica (as the pool's own idle line counts them), plus its SageMaker endpoints at their minimum, plus its
        pods' share of the CPU pools' idle nodes (``_share_node``), which also counts at peak.
        Peak: the team's whole GPU quota busy, i.e. its nominal GPUs per pool at that pool's dearest GPU-hour plus
        its borrowing limit at the dearest pool it has quota in (Kubernetes endpoints run inside the quota: its
        ResourceQuota caps the namespace at gpu_quota + gpu_borrowing_limit), plus its SageMaker endpoints at
        their maximum. Nothing shared (control plane, system nodes, NAT, databases, logs) is split among teams.
        """
        pool_sizes = {pool.name: pool.max_gpus for pool in self.spec.gpu_pools}
        budgets = self.spec.budgets.team_limits_usd
        teams: list[TeamCost] = []
        for team in self.spec.teams:
            basis: list[str] = []
            idle = peak = 0.0
            endpoints = [e for e in self.spec.inference.endpoints if e.team == team.name]
            for endpoint in endpoints:
                if endpoint.backend == "sagemaker":
                    low, high = self.sagemaker_months.get(endpoint.name, (0.0, 0.0))
                    idle, peak = idle + low, peak + high
                    basis.append(f"SageMaker {endpoint.name}")
                elif endpoint.min_replicas and endpoint.gpu_pool in self.pool_prices:
                    _, per_node, _ = self.pool_prices[endpoint.gpu_pool]
                    fitting = [
                        (price, type_)
                        for price, type_ in per_node
                        if self.gpu_table.types[type_].gpu_count >= endpoint.gpus_per_replica
                    ]
                    if fitting:
                        idle += endpoint.min_replicas * fitting[0][0]
                        basis.append(f"warm {endpoint.name}: {endpoint.min_replicas} x {fitting[0][1]}")
            dearest_in_quota = 0.0
            for pool, gpus in team.pool_quotas(pool_sizes).items():
                if pool not in self.pool_prices:
                    continue
                capacity, _, dearest = self.pool_prices[pool]
                if gpus:
                    peak += gpus * dearest * self.hours
                    dearest_in_quota = max(dearest_in_quota, dearest)
                    basis.append(f"{gpus} GPUs in {pool} ({capacity})")
            if team.gpu_borrowing_limit and dearest_in_quota:
                peak += team.gpu_borrowing_limit * dearest_in_quota * self.hours
                basis.append(f"{team.gpu_borrowing_limit} borrowed GPUs")
            # Its pods on the CPU pools' idle nodes (event bus, webhook) run whatever the load: idle and peak.
            for share, what in self.team_cpu_idle.get(team.name, []):
                idle, peak = idle + share, peak + share
                basis.append(what)
            teams.append(
                TeamCost(team.name, team.cost_center, idle, peak, tuple(basis), budgets.get(team.name))
            )
        return teams

    def _interface_endpoints(self) -> None:
        endpoints = [
            r for r in self.plan.by_type(VPC_ENDPOINT) if r.inputs.get("vpcEndpointType") == "Interface"
        ]
        for component, members in self.grouped(endpoints).items():
            enis = sum(len(r.inputs.get("subnetIds") or []) or self.spec.network.az_count for r in members)
            monthly = self.prices.monthly("vpce.interface", self.region) * enis
            basis = f"{len(members)} endpoints, {enis} endpoint-AZs x vpce.interface"
            self.lines.append(LineItem(component, "interface endpoints", basis, monthly, monthly))
        if endpoints:
            self.assumptions.append(
                "interface endpoints: hourly charge per zone only; their per-GB charge is not included"
            )

    def _node_groups(self) -> None:
        volume_gb = self.spec.cluster.system_nodes.root_volume_gb
        for group in self.plan.by_type(NODE_GROUP):
            scaling = group.inputs.get("scalingConfig") or {}
            types = group.inputs.get("instanceTypes") or []
            if not types or "minSize" not in scaling or "maxSize" not in scaling:
                raise CostModelError(
                    f"node group {group.name} records no instanceTypes or scalingConfig to price"
                )
            low, high = int(scaling["minSize"]), int(scaling["maxSize"])
            spot = group.inputs.get("capacityType") == "SPOT"
            if spot:
                # Spot allocation weighs spare capacity, not the order of the list, so the node may be any
                # of the listed types: price the dearest.
                node, priced = max((self.instance_month(f"ec2:{t}", spot=True), str(t)) for t in types)
            else:
                # On-Demand managed node groups launch the listed types in priority order.
                node, priced = self.instance_month(f"ec2:{types[0]}", spot=False), str(types[0])
            disk = float(group.inputs.get("diskSize") or volume_gb) * self.prices.monthly(
                "ebs.gp3", self.region
            )
            capacity = f"Spot ({self.spec.cost.spot_discount_percent:g}% off)" if spot else "On-Demand"
            self.add(
                group,
                f"node group {group.name}",
                f"{low}..{high} x {priced} {capacity}",
                low * node,
                high * node,
            )
            self.add(
                group,
                f"node group {group.name} volumes",
                f"{low}..{high} x {disk / self.prices.monthly('ebs.gp3', self.region):g} GB ebs.gp3",
                low * disk,
                high * disk,
            )
        groups = self.plan.by_type(NODE_GROUP)
        if groups:
            self.assumptions.append(
                "node groups idle at min size and peak at max size; On-Demand ones run their first (cheapest) "
                "instance type"
            )
        if any(group.inputs.get("capacityType") == "SPOT" for group in groups):
            self.assumptions.append(
                "Spot node groups run the dearest of their instance types at the Spot discount, since Spot "
                "allocation weighs spare capacity, not the order of the list"
            )

    def _node_pools(self) -> None:
        pools_by_name = {pool.name: pool for pool in self.spec.gpu_pools}
        for node_pool in self.plan.by_type(NODE_POOL):
            spec = node_pool.inputs.get("spec") or {}
            name = str((node_pool.inputs.get("metadata") or {}).get("name") or node_pool.name)
            limits = spec.get("limits") or {}
            if GPU_LIMIT not in limits:
                self._cpu_pool(node_pool, name, limits)
                continue
            gpu_limit = int(float(limits[GPU_LIMIT]))
            candidates, capacity = self._pool_choices(node_pool, name, pools_by_name)
            spot = capacity != "on-demand"
            per_gpu = sorted(
                (
                    (self.instance_month(f"ec2:{t.name}", spot) / self.hours / t.gpu_count, t)
                    for t in candidates
                ),
                key=lambda pair: (pair[0], pair[1].name),
            )
            per_node = sorted((self.instance_month(f"ec2:{t.name}", spot), t.name) for t in candidates)
            cheapest_gpu, cheapest_type = per_gpu[0]
            dearest_gpu, dearest_type = per_gpu[-1]
            self.pool_prices[name] = (capacity, per_node, dearest_gpu)
            self.gpu_hours.append(
                GpuHour(name, capacity, cheapest_type.name, cheapest_gpu, dearest_type.name, dearest_gpu)
            )
            idle, warm = 0.0, []
            for endpoint in (
                e for e in self.spec.inference.endpoints if e.gpu_pool == name and e.min_replicas
            ):
                # Each warm replica holds one node of the cheapest type with enough GPUs for it.
                needed = endpoint.gpus_per_replica
                fitting = [
                    (price, type_)
                    for price, type_ in per_node
                    if self.gpu_table.types[type_].gpu_count >= needed
                ]
                if not fitting:
                    raise CostModelError(
                        f"NodePool {name} has no instance type with {needed} GPUs for {endpoint.name}"
                    )
                idle += endpoint.min_replicas * fitting[0][0]
                warm.append(f"{endpoint.min_replicas} x {fitting[0][1]}")
            peak = gpu_limit * dearest_gpu * self.hours
            basis = f"idle {' + '.join(warm) or '0 nodes'}; peak {gpu_limit} GPUs x {dearest_type.name}"
            self.add(node_pool, f"GPU pool {name} ({capacity})", basis, idle, peak)
        if self.gpu_hours:
            self.assumptions.append(
                "GPU pools: idle runs, per endpoint min_replicas, one node of the cheapest type with gpus_per_replica GPUs; other GPU "
                "nodes are scaled to zero; peak fills the GPU limit with the type dearest per GPU-hour (an upper bound)"
            )
            self.assumptions.append(
                "spot-preferred pools are priced as Spot, the capacity Karpenter tries first"
            )

    def _cpu_pool(self, node_pool: RecordedResource, name: str, limits: dict[str, Any]) -> None:
        """A CPU NodePool: its vCPU limit filled with its type dearest per vCPU-hour at peak, and at idle the
        nodes the deploy simulation launches in it (their own line). A pool without a cpu limit or an
        instance-type allow-list cannot be bounded."""
        allowed = _requirement_values(node_pool)
        types = allowed.get(INSTANCE_TYPE_LABEL)
        if CPU_LIMIT not in limits or not types:
            raise CostModelError(
                f"NodePool {name} has no {CPU_LIMIT} limit or no {INSTANCE_TYPE_LABEL} allow-list, so its "
                "peak cannot be priced: set cpu_pools[].max_vcpu and instance_types"
            )
        table = cpu_instance_table()
        unknown = sorted(t for t in types if t not in table)
        if unknown:
            raise CostModelError(
                f"NodePool {name}: instance types {unknown} are not in the CPU instance table"
            )
        capacity_values = set(allowed.get(CAPACITY_TYPE_LABEL, []))
        capacity = (
            "on-demand"
            if capacity_values == {"on-demand"}
            else "spot"
            if capacity_values == {"spot"}
            else "spot-preferred"
        )
        spot = capacity != "on-demand"
        per_vcpu, dearest = max(
            (self.instance_month(f"ec2:{t}", spot) / float(table[t]["vcpu"]), t) for t in types
        )
        vcpus = float(limits[CPU_LIMIT])
        nodes = self._idle_nodes(node_pool)
        self.add(
            node_pool,
            f"CPU pool {name} ({capacity})",
            f"idle {'0 nodes' if not nodes else 'on the idle nodes line'}; peak {vcpus:g} vCPUs x {dearest}",
            0.0,
            vcpus * per_vcpu,
        )
        if nodes:
            self._cpu_idle_nodes(node_pool, name, capacity, nodes)
        if not self._cpu_assumed:
            self._cpu_assumed = True
            self.assumptions.append(
                "CPU pools: idle runs the nodes the deploy simulation's capacity model launches at idle "
                "(mlstack.simulate.capacity: the smallest allowed type that holds the pods no other node takes), "
                "each with its root volume; peak fills the vCPU limit with the type dearest per vCPU-hour, node "
                "volumes not included"
            )

    def _idle_nodes(self, node_pool: RecordedResource) -> list[Node]:
        """The nodes the capacity simulation launches in ``node_pool`` at idle (one source of truth with
        ``mlstack check``'s MLS-SIM-CAP-001); pods it leaves Pending are stated, not priced."""
        from mlstack.simulate import capacity, objects

        outcome = capacity.idle(self.world)
        if not self._simulation_stated:
            self._simulation_stated = True
            failed = [r for r in objects.renders(self.world) if r.error]
            if failed:
                first = (failed[0].error.splitlines() or [""])[0]
                self.assumptions.append(
                    f"the capacity simulation could not render {len(failed)} Helm releases ({failed[0].release.name}: "
                    f"{first}): their pods are not placed, so the idle CPU nodes priced may be too few"
                )
            if outcome.pending:
                count = sum(len(reasons) for reasons in outcome.pending.values())
                self.assumptions.append(
                    f"the capacity simulation leaves {count} pods Pending at idle (mlstack check "
                    f"{self.spec.environment} reports them, MLS-SIM-CAP-001): the nodes they would need are not priced"
                )
        return [node for node in outcome.nodes if node.source.karpenter and node.source.urn == node_pool.urn]

    def _cpu_idle_nodes(self, node_pool: RecordedResource, name: str, capacity: str, nodes: list[Node]) -> None:
        """One line for the CPU nodes the simulation keeps up at idle: each node at its pool's capacity type plus
        its root volume. At peak they are part of the pool's vCPU limit (the pool's line), so 0 here. Each node is
        shared among its pods by requests; a team's pods make that share the team's."""
        spot = capacity != "on-demand"
        gib, volume_type = self._root_volume(node_pool, nodes[0])
        disk = gib * self.prices.monthly(f"ebs.{volume_type}", self.region)
        idle = 0.0
        shapes: Counter[str] = Counter()
        pods = 0
        namespaces: set[str] = set()
        for node in nodes:
            month = self.instance_month(f"ec2:{node.type.name}", spot) + disk
            idle += month
            shapes[node.type.name] += 1
            self._share_node(node, name, month)
            held = [pod for pod, _ in node.pods if pod.kind != "DaemonSet"]
            pods += len(held)
            namespaces.update(pod.namespace for pod in held)
        priced = " + ".join(f"{count} x {shape}" for shape, count in sorted(shapes.items()))
        kind = f"Spot ({self.spec.cost.spot_discount_percent:g}% off)" if spot else "On-Demand"
        self.add(
            node_pool,
            f"CPU pool {name} idle nodes",
            f"{priced} {kind} + {gib:g} GiB ebs.{volume_type} each: the deploy simulation places {pods} pods there "
            f"at idle (namespaces {', '.join(sorted(namespaces))}); at peak within the pool's vCPU limit",
            idle,
            0.0,
        )
        soft = sorted(
            {
                f"{pod.namespace}/{pod.item.name}"
                for node in nodes
                for pod, _ in node.pods
                if pod.kind != "DaemonSet" and _has_preferences(pod.spec)
            }
        )
        if soft:
            # Karpenter's default preferencePolicy Respect (karpenter chart 1.14.1 values.yaml settings) first treats
            # preferred affinities and ScheduleAnyway spreads as required; the simulation does not model them.
            self.assumptions.append(
                f"CPU pool {name}: {', '.join(soft)} carry scheduling preferences the simulation ignores; Karpenter "
                "(preferencePolicy Respect) may launch more idle nodes for them than priced"
            )

    def _root_volume(self, node_pool: RecordedResource, node: Node) -> tuple[float, str]:
        """The root EBS volume of the pool's nodes: its size as the simulation reads it from the EC2NodeClass (billed
        whether or not RAID0 instance store serves ephemeral-storage) and its type from the same mapping, gp3 when
        unset (karpenter-provider-aws@v1.14.1 pkg/providers/amifamily/resolver.go ``DefaultEBS``)."""
        storage = node.source.storage
        reference = (
            ((node_pool.inputs.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeClassRef") or {}
        )
        node_class = next(
            (
                r
                for r in self.plan.by_type(EC2_NODE_CLASS)
                if (r.inputs.get("metadata") or {}).get("name") == reference.get("name")
            ),
            None,
        )
        mappings = ((node_class.inputs.get("spec") or {}) if node_class else {}).get("blockDeviceMappings") or []
        root = next((m for m in mappings if m.get("rootVolume")), None) or next(
            (m for m in mappings if m.get("deviceName") == "/dev/xvda"), None
        )
        volume_type = str(((root or {}).get("ebs") or {}).get("volumeType") or "gp3")
        return float(storage.volume) / 2**30, volume_type

    def _share_node(self, node: Node, pool: str, month: float) -> None:
        """Split one idle node's month among its pods by requests (the mean of their CPU and memory shares of the
        node's allocatable; equal shares when none requests anything). DaemonSets are the node's overhead and take
        no share; shares of pods in team namespaces are the team's, the rest stays shared."""
        from fractions import Fraction

        allocatable = node.type.allocatable()
        pods = [pod for pod, _ in node.pods if pod.kind != "DaemonSet"]
        weights = [
            sum(
                (pod.requests().get(r, Fraction(0)) / allocatable[r] for r in ("cpu", "memory") if allocatable.get(r)),
                Fraction(0),
            )
            for pod in pods
        ]
        total = sum(weights, Fraction(0))
        if not total:
            weights, total = [Fraction(1)] * len(pods), Fraction(len(pods))
        teams = {team.name for team in self.spec.teams}
        shares: dict[str, float] = {}
        for pod, weight in zip(pods, weights, strict=True):
            if pod.namespace in teams:
                shares[pod.namespace] = shares.get(pod.namespace, 0.0) + month * float(weight / total)
        for team, share in shares.items():
            self.team_cpu_idle.setdefault(team, []).append(
                (share, f"{float(share / month):.0%} of a {pool} idle node ({node.type.name})")
            )

    def _pool_choices(
        self, node_pool: RecordedResource, name: str, pools_by_name: dict[str, Any]
    ) -> tuple[list[GpuInstanceType], str]:
        """The GPU instance types a NodePool may launch and its capacity type, read from its requirements."""
        requirements = (
            ((node_pool.inputs.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements")
        )
        allowed: dict[str, list[str]] = {}
        for requirement in requirements or []:
            if requirement.get("operator") == "In":
                allowed[str(requirement.get("key"))] = [str(v) for v in requirement.get("values") or []]
        table = self.gpu_table.types
        declared = pools_by_name.get(name)
        if INSTANCE_TYPE_LABEL in allowed:
            wanted = set(allowed[INSTANCE_TYPE_LABEL])
            candidates = [t for t in table.values() if t.name in wanted]
        elif INSTANCE_FAMILY_LABEL in allowed:
            families = set(allowed[INSTANCE_FAMILY_LABEL])
            candidates = [t for t in table.values() if t.family in families]
        elif declared is not None:
            selectors = set(declared.instance_types)
            candidates = [t for t in table.values() if t.name in selectors or t.family in selectors]
        else:
            candidates = []
        if not candidates:
            raise CostModelError(
                f"NodePool {name} names no instance types or families of the GPU instance table, so it cannot be priced"
            )
        capacity_values = set(allowed.get(CAPACITY_TYPE_LABEL, []))
        if capacity_values == {"spot"}:
            capacity = "spot"
        elif capacity_values == {"on-demand"}:
            capacity = "on-demand"
        elif capacity_values:
            capacity = "spot-preferred"
        else:
            capacity = declared.capacity_type if declared is not None else "on-demand"
        return sorted(candidates, key=lambda t: t.name), capacity

    def _rds_instances(self) -> None:
        for instance in self.plan.by_type(RDS_INSTANCE):
            klass = instance.inputs.get("instanceClass")
            if not klass:
                raise CostModelError(f"RDS instance {instance.name} records no instanceClass to price")
            copies = 2 if instance.inputs.get("multiAz") else 1
            monthly = copies * self.prices.monthly(f"rds:{klass}", self.region)
            az = "Multi-AZ" if copies == 2 else "Single-AZ"
            self.add(instance, f"RDS {instance.name}", f"{klass} {az}", monthly, monthly)
            storage_gb = float(instance.inputs.get("allocatedStorage") or 0)
            storage = copies * storage_gb * self.prices.monthly("rds.gp3", self.region)
            self.add(
                instance, f"RDS {instance.name} storage", f"{storage_gb:g} GB rds.gp3 {az}", storage, storage
            )

    def _aurora(self) -> None:
        clusters = self.plan.by_type(RDS_CLUSTER)
        instances = self.plan.by_type(RDS_CLUSTER_INSTANCE)
        for cluster in clusters:
            members = [i for i in instances if _belongs_to(i, cluster)]
            scaling = cluster.inputs.get("serverlessv2ScalingConfiguration") or {}
            serverless = [i for i in members if i.inputs.get("instanceClass") == "db.serverless"]
            provisioned = [i for i in members if i.inputs.get("instanceClass") != "db.serverless"]
            if serverless:
                if "minCapacity" not in scaling or "maxCapacity" not in scaling:
                    raise CostModelError(
                        f"Aurora cluster {cluster.name} has db.serverless instances but no serverlessv2ScalingConfiguration"
                    )
                low, high = float(scaling["minCapacity"]), float(scaling["maxCapacity"])
                acu = self.prices.monthly("aurora.acu", self.region)
                basis = f"{len(serverless)} instances x {low:g}..{high:g} ACU"
                self.add(
                    cluster,
                    f"Aurora {cluster.name}",
                    basis,
                    len(serverless) * low * acu,
                    len(serverless) * high * acu,
                )
            for instance in provisioned:
                monthly = self.prices.monthly(f"aurora:{instance.inputs.get('instanceClass')}", self.region)
                self.add(
                    instance,
                    f"Aurora {instance.name}",
                    str(instance.inputs.get("instanceClass")),
                    monthly,
                    monthly,
                )
        if clusters:
            self.assumptions.append("Aurora storage and I/O are billed by use and not included")

    def _sagemaker(self) -> None:
        replicas = {e.name: e for e in self.spec.inference.endpoints}
        for config in self.plan.by_type(SAGEMAKER_ENDPOINT_CONFIG):
            for variant in config.inputs.get("productionVariants") or []:
                if variant.get("serverlessConfig"):
                    self.assumptions.append(
                        f"SageMaker {config.name}: serverless variant, billed per request"
                    )
                    continue
                instance_type = variant.get("instanceType")
                if not instance_type:
                    raise CostModelError(
                        f"SageMaker endpoint configuration {config.name} has a variant without instanceType"
                    )
                initial = int(float(variant.get("initialInstanceCount") or 1))
                declared = next((e for n, e in replicas.items() if n in config.name), None)
                # A real-time SageMaker variant never runs fewer than one instance.
                low = max(1, declared.min_replicas) if declared else initial
                high = max(low, declared.max_replicas) if declared else initial
                monthly = self.prices.monthly(f"sagemaker:{instance_type}", self.region)
                if declared is not None:
                    self.sagemaker_months[declared.name] = (low * monthly, high * monthly)
                self.add(
                    config,
                    f"SageMaker {config.name}",
                    f"{low}..{high} x {instance_type}",
                    low * monthly,
                    high * monthly,
                )

    def _s3(self) -> None:
        buckets = [r for type_ in S3_BUCKETS for r in self.plan.by_type(type_)]
        rate = self.prices.monthly("s3.standard", self.region)
        for purpose in self.spec.storage.buckets:
            volume = self.spec.storage.expected_gb.get(purpose, 0.0)
            bucket = next((b for b in buckets if _names_purpose(b, purpose)), None)
            if bucket is None:
                if volume:
                    self.assumptions.append(
                        f"no {purpose} bucket in the plan, so its {volume:g} GB are not priced"
                    )
                continue
            self.add(bucket, f"S3 {purpose}", f"{volume:g} GB s3.standard", volume * rate, volume * rate)
        if buckets:
            self.assumptions.append(
                "S3 holds storage.expected_gb per bucket (0 when unset) in S3 Standard; versions and replicas not included"
            )

    def _instances(self) -> None:
        """Stand-alone EC2 instances (the access host): their launch template's type and root volume, always on."""
        templates = {r.id: r for r in self.plan.by_type(LAUNCH_TEMPLATE)}
        for instance in self.plan.by_type(EC2_INSTANCE):
            template = templates.get(str((instance.inputs.get("launchTemplate") or {}).get("id")))
            source = template.inputs if template is not None else instance.inputs
            instance_type = source.get("instanceType")
            if not instance_type:
                raise CostModelError(f"instance {instance.name} records no instanceType to price")
            hours = self.instance_month(f"ec2:{instance_type}", spot=False)
            self.add(instance, f"instance {instance.name}", f"1 x {instance_type} On-Demand", hours, hours)
            volumes = [
                float((m.get("ebs") or {}).get("volumeSize") or 0)
                for m in source.get("blockDeviceMappings") or []
            ]
            if sum(volumes):
                disk = sum(volumes) * self.prices.monthly("ebs.gp3", self.region)
                self.add(
                    instance, f"instance {instance.name} volume", f"{sum(volumes):g} GB ebs.gp3", disk, disk
                )

    def _codebuild(self) -> None:
        """CodeBuild bills build minutes only; the stack file states how many the runner uses a month."""
        minutes = self.spec.cost.deploy_runner_minutes_per_month
        for project in self.plan.by_type(CODEBUILD_PROJECT):
            compute = (project.inputs.get("environment") or {}).get("computeType")
            rate = self.prices.get(f"codebuild:{compute}", self.region).usd
            self.add(
                project,
                f"CodeBuild {project.inputs.get('name', project.name)}",
                f"{minutes:g} min x codebuild:{compute}",
                minutes * rate,
                minutes * rate,
            )
            self.assumptions.append(
                f"the deploy runner builds {minutes:g} minutes a month (stack file: "
                "cost.deploy_runner_minutes_per_month); no charge between builds"
            )


    def _prometheus_volumes(self) -> None:
        """Prometheus' gp3 volumes, one per replica, from the kube-prometheus-stack release's recorded values
        (``prometheus.prometheusSpec``: ``replicas`` and ``storageSpec.volumeClaimTemplate``); an emptyDir costs
        nothing beyond the node. Held at idle and at peak alike."""
        for release in self.plan.by_type(HELM_RELEASE):
            if release.inputs.get("chart") != "kube-prometheus-stack":
                continue
            values = release.inputs.get("values") or {}
            prometheus = (values.get("prometheus") or {}).get("prometheusSpec") or {}
            claim = ((prometheus.get("storageSpec") or {}).get("volumeClaimTemplate") or {}).get("spec") or {}
            size = str(((claim.get("resources") or {}).get("requests") or {}).get("storage") or "")
            if not size:
                continue
            if not size.endswith("Gi"):
                raise CostModelError(f"release {release.name}: Prometheus volume size {size!r} is not in Gi")
            replicas = int(prometheus.get("replicas") or 1)
            monthly = replicas * float(size[:-2]) * self.prices.monthly("ebs.gp3", self.region)
            self.add(
                release,
                "Prometheus volumes",
                f"{replicas} x {size[:-2]} GiB ebs.gp3",
                monthly,
                monthly,
            )


def _requirement_values(node_pool: RecordedResource) -> dict[str, list[str]]:
    """The values of a NodePool's ``In`` requirements, by key."""
    template = ((node_pool.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {
        str(r.get("key")): [str(v) for v in r.get("values") or []]
        for r in template.get("requirements") or []
        if r.get("operator") == "In"
    }


def _has_preferences(spec: dict[str, Any]) -> bool:
    """Whether a pod asks for soft placement: preferred node or pod (anti-)affinity, or a ScheduleAnyway spread."""
    affinity = spec.get("affinity") or {}
    preferred = any(
        (affinity.get(kind) or {}).get("preferredDuringSchedulingIgnoredDuringExecution")
        for kind in ("nodeAffinity", "podAffinity", "podAntiAffinity")
    )
    return preferred or any(
        c.get("whenUnsatisfiable") == "ScheduleAnyway" for c in spec.get("topologySpreadConstraints") or []
    )


def _belongs_to(instance: RecordedResource, cluster: RecordedResource) -> bool:
    if cluster.urn in instance.property_dependencies.get("clusterIdentifier", []):
        return True
    identifier = cluster.inputs.get("clusterIdentifier")
    return identifier is not None and instance.inputs.get("clusterIdentifier") == identifier


def _names_purpose(bucket: RecordedResource, purpose: str) -> bool:
    physical = str(bucket.inputs.get("bucket") or bucket.inputs.get("bucketPrefix") or "")
    return bucket.name.endswith(f"-{purpose}") or f"-{purpose}" in physical


def money(value: float) -> str:
    """Dollars with cents below $1,000 and whole dollars above."""
    if not math.isfinite(value):
        return "n/a"
    return f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"
