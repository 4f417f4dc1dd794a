"""Per-team cost from the cluster: OpenCost, priced from mlstack/data/prices.yaml, on the platform's Prometheus.

How the prices get in. OpenCost's "custom pricing" (chart ``opencost.customPricing``) is one rate per vCPU-hour,
GiB-hour and GPU-hour for every node, which cannot reproduce per-instance-type prices. Its **CSV pricing
provider** can: selected by the environment variables ``USE_CUSTOM_PROVIDER`` and ``USE_CSV_PROVIDER``, it reads
``CSV_PATH`` (opencost/opencost pkg/cloud/provider/provider.go ``getClusterProperties`` and ``NewProvider``,
pkg/env/costmodelenv.go). Each CSV row (columns of the ``price`` struct in pkg/cloud/provider/csvprovider.go:
EndTimestamp, InstanceID, Region, AssetClass, InstanceIDField, InstanceType, MarketPriceHourly, Version) prices
one node class:

- ``AssetClass`` ``node`` with ``InstanceIDField`` ``metadata.labels.node.kubernetes.io/instance-type`` and
  ``InstanceID`` the type: the node's key is its region label, a comma and that label's value
  (``NodeValueFromMapField``), matched against ``<Region>,<InstanceID>`` lower-cased; the row's ``Region``,
  ``InstanceType`` and ``node`` also make the class key (``csvKey.Features``: the node's region and instance-type
  labels). ``nodePricing`` returns the exact key's ``MarketPriceHourly`` as written and falls back to the class
  key, whose price it writes back with ``%f`` (six decimals; in the 2023 versions stored, e.g. 11d3017f, the class
  match ran after the exact one and overrode it). Both keys hold the same row, so a node is priced at its type's
  hourly price whatever its instance ID; prices.yaml keeps to six decimals so that either path is exact (tested).
- The first line is the column names. ``DownloadPricingData`` passes the ``price`` header to
  ``csvutil.NewDecoder``, which then reads every line as data (jszwec/csvutil decoder.go: "If header is empty
  NewDecoder will read one line and treat it as a header"), so this line becomes one unmatched row of asset
  class "AssetClass" (logged, "defaulting to node") whose ``InstanceIDField`` the node rows after it overwrite.
  It stays because upstream's fixtures and docs carry it, and a version that did read a header from the file
  would otherwise take the first node row as one.
- No ``gpu`` rows. With none, the provider leaves the node's GPU price empty; the cost model then counts the
  node's GPUs from its ``nvidia.com/gpu`` capacity and splits the node's total price among its vCPUs, GiB of
  memory and GPUs in the ratio of the custom-pricing CPU, RAM and GPU rates (pkg/costmodel/costmodel.go
  ``GetNodeCost``, the branch "GPU without cost found"). ``node_total_hourly_cost`` therefore equals the
  prices.yaml price exactly, and ``node_gpu_hourly_cost`` is the GPU share that ``container_gpu_allocation``
  attributes to the pods that request GPUs. (A ``gpu`` row would add its price on top of the node row,
  csvprovider.go ``NodePricing``, and the cost model then subtracts one GPU's price, not all of them, from the
  node before splitting it, so multi-GPU nodes would be overcounted; the ratio split has no such term.)

These were read at opencost/opencost@5f653330 (2024-10-24), the newest snapshot that could be fetched; the
chart's appVersion, v1.120.1, could not be read (see docs/logs-and-cost.md, "Cost per team, cluster side").
Issue opencost/opencost#3160 (open, 2025-05) reports the same behaviour in a 2025 release: on GPU nodes the custom
rates are not used as such but only to split a node total among CPU, RAM and GPU.

Spot: the CSV provider has no capacity-type dimension (one ``InstanceIDField`` for every node row, and the node
label it names holds one value), and prices.yaml has no Spot prices; ``mlstack cost`` prices Spot as On-Demand
less ``cost.spot_discount_percent``. OpenCost therefore prices Spot nodes at their On-Demand list price: an
upper bound, documented.

Chart values are read in opencost/opencost-helm-chart@opencost-2.5.17:charts/opencost (values.yaml and
templates/deployment.yaml, servicemonitor.yaml, configmap-custom-pricing.yaml, _helpers.tpl).
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster import system_placement
from components.environment import Environment
from components.helm import chart_source
from components.options import child
from components.registry import PullThrough
from mlstack.catalog import gpu_catalog
from mlstack.cost import PriceTable, default_prices
from mlstack.promql import metric_catalog
from mlstack.spec import PlatformSpec
from mlstack.spec.observability import PROMETHEUS_PORT, PROMETHEUS_SERVICE, MetricsSpec

OPENCOST_CHART_REPOSITORY = "https://opencost.github.io/opencost-helm-chart"
# The release is named after the chart, so its fullname (Deployment, Service, ServiceAccount) is "opencost"
# (_helpers.tpl "opencost.fullname").
OPENCOST_RELEASE = "opencost"
# values.yaml opencost.exporter.apiPort: the API and /metrics, the Service port named "http".
OPENCOST_API_PORT = 9003
# values.yaml opencost.ui.uiPort: the UI, the Service port named "http-ui".
OPENCOST_UI_PORT = 9090
GHCR = "ghcr.io"
# The exporter of OpenCost's metrics in mlstack/data/metrics.yaml, named on its ServiceMonitor.
OPENCOST_EXPORTER = "opencost"

# The exporter in mlstack/data/metrics.yaml whose kube_* series the platform's dashboards and alerts read.
KUBE_STATE_METRICS_EXPORTER = "kube-state-metrics"

# The ConfigMap holding the price list, and where the pod sees it.
PRICING_CONFIGMAP = "opencost-node-prices"
PRICING_KEY = "prices.csv"
PRICING_DIR = "/var/mlstack/pricing"
CSV_PATH = f"{PRICING_DIR}/{PRICING_KEY}"

# csvprovider.go ``price``: csvutil decodes every line in this column order.
CSV_COLUMNS = (
    "EndTimestamp",
    "InstanceID",
    "Region",
    "AssetClass",
    "InstanceIDField",
    "InstanceType",
    "MarketPriceHourly",
    "Version",
)
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NODE_ID_FIELD = f"metadata.labels.{INSTANCE_TYPE_LABEL}"

# OpenCost's shipped default rates (opencost/opencost configs/default.json, "Default prices based on GCP
# us-central1"): only their ratio matters here, as the split of a node's price between vCPUs and memory.
DEFAULT_CPU_HOURLY = 0.031611
DEFAULT_RAM_GIB_HOURLY = 0.004237
# The pricing ConfigMap's CPU, RAM, GPU and storage figures are per month: OpenCost's watcher
# (CustomProvider.UpdateConfigFromConfigMap -> ProviderConfig.UpdateFromMap, pkg/cloud/provider/providerconfig.go at
# opencost/opencost@5f653330, unchanged since the 2022 versions stored) divides each by 730 and keeps six decimals
# (``fmt.Sprintf("%f", val/730)``) before storing the hourly rate the cost model uses.
OPENCOST_HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class NodePrice:
    """One instance type's hourly On-Demand price in the environment's region, as prices.yaml lists it."""

    instance_type: str
    region: str
    usd_hourly: float


def launchable_instance_types(spec: PlatformSpec) -> list[str]:
    """Every EC2 instance type a node of the cluster can be: the system node group's types, every GPU pool's
    resolved types and every CPU pool's allow-list (the NodePool requirements components/gpu.py and
    components/compute.py write)."""
    types: set[str] = set(spec.cluster.system_nodes.instance_types)
    for pool in spec.gpu_pools:
        types.update(t.name for t in pool.resolved_types())
    for cpu_pool in spec.cpu_pools:
        types.update(cpu_pool.instance_types)
    return sorted(types)


def node_prices(spec: PlatformSpec, prices: PriceTable | None = None) -> list[NodePrice]:
    """The hourly price of every launchable type; a type prices.yaml lacks is an error naming it
    (``CostModelError``), as in ``mlstack cost``."""
    table = prices or default_prices()
    return [
        NodePrice(t, spec.region, table.hourly(f"ec2:{t}", spec.region))
        for t in launchable_instance_types(spec)
    ]


def pricing_csv(rows: list[NodePrice]) -> str:
    """OpenCost's CSV price list: the header line (as upstream's own fixtures, configs/pricing_schema_region.csv,
    carry it), then one ``node`` row per instance type keyed by the instance-type label. Prices are written
    with ``repr`` so that the parsed float equals the prices.yaml figure exactly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                "",
                row.instance_type,
                row.region,
                "node",
                NODE_ID_FIELD,
                row.instance_type,
                repr(row.usd_hourly),
                "",
            )
        )
    return out.getvalue()


def gpu_hourly_rate(spec: PlatformSpec, prices: PriceTable | None = None) -> float:
    """The GPU rate whose ratio to the RAM rate splits a GPU node's price: the median, over the GPU types the
    pools can launch, of what one GPU costs once the node's vCPUs and memory are priced at OpenCost's default
    rates. Without GPU pools, OpenCost's own default GPU rate (configs/default.json, 0.95)."""
    table = prices or default_prices()
    catalog = gpu_catalog().types
    residuals = []
    for name in launchable_instance_types(spec):
        if name not in catalog:
            continue
        gpu_type = catalog[name]
        host = DEFAULT_CPU_HOURLY * gpu_type.vcpus + DEFAULT_RAM_GIB_HOURLY * gpu_type.memory_gib
        residuals.append(max(table.hourly(f"ec2:{name}", spec.region) - host, 0.0) / gpu_type.gpu_count)
    return round(statistics.median(residuals), 6) if residuals else 0.95


def monthly_figure(hourly: float) -> str:
    """An hourly rate as the pricing ConfigMap must carry it: per month, so that OpenCost's division by 730 gives
    the rate back (to its six decimals)."""
    return f"{hourly * OPENCOST_HOURS_PER_MONTH}"


def storage_gib_monthly_rate(spec: PlatformSpec, prices: PriceTable | None = None) -> float:
    """What OpenCost charges per GiB-month of a persistent volume: prices.yaml's ``ebs.gp3`` (the cluster's
    StorageClass is encrypted gp3, components/cluster.py). The CSV list has no
    ``pv`` rows, so the CSV provider's ``PVPricing`` returns no cost and the cost model falls back to the custom
    pricing ``storage`` rate (opencost/opencost@5f653330 pkg/costmodel/costmodel.go ``GetPVCost``:
    ``pv.Cost = cfg.Storage``; metrics.go names the metric ``pv_hourly_cost``, "Cost per GB per hour"; the
    image's configs/default.json sets it to 0.00005479452, $0.04 a GB-month over 730 hours). The ConfigMap
    carries it per month, like the other rates (``OPENCOST_HOURS_PER_MONTH``)."""
    table = prices or default_prices()
    return table.monthly("ebs.gp3", spec.region)


def kube_state_metrics_duplicates() -> list[str]:
    """The kube-state-metrics series the platform reads (mlstack/data/metrics.yaml) that OpenCost's scrape must
    not add to. By default OpenCost also serves kube-state-metrics' series under the same names for clusters
    without it (``EMIT_KSM_V1_METRICS``, default true; opencost/opencost@5f653330 pkg/metrics/kubemetrics.go
    ``InitKubeMetrics``: ``kube_node_labels`` with every node label, ``kube_pod_container_resource_requests``,
    ``kube_pod_labels``, ...). Scraped with ``honorLabels`` they keep the workload's labels, so each has two
    series per node or container: sums count twice and ``group_left`` joins on ``kube_node_labels`` fail
    ("many-to-many matching not allowed"). OpenCost's own queries then read kube-state-metrics' series, which is
    how upstream expects it to run beside kube-state-metrics v2 (opencost/opencost#1509)."""
    exporters, _ = metric_catalog()
    return sorted(name for name in exporters[KUBE_STATE_METRICS_EXPORTER] if name.startswith("kube_"))


def opencost_values(
    metrics: MetricsSpec,
    *,
    env_name: str,
    pull_through: PullThrough,
    gpu_rate: float,
    storage_rate: float,
) -> dict[str, Any]:
    """Helm values of the opencost 2.5.17 chart for the platform (every key read in its values.yaml)."""
    spec = metrics.opencost
    registry = pull_through.registry(GHCR) if spec.images_through_cache else GHCR
    hardened_container = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    memory_limit = f"{int(spec.memory_request[:-2]) * 2}{spec.memory_request[-2:]}"
    return {
        # The image runs as user 1001 (opencost/opencost Dockerfile `USER 1001`, read at 5f653330); the pod
        # insists on non-root.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # values.yaml `networkPolicies.enabled` stays off: the chart's policy allows only Prometheus in and
        # Prometheus out, which would cut OpenCost from the Kubernetes API it lists nodes and pods from. The
        # metrics namespace's own policies (components/observability.py) admit only that namespace's pods.
        "networkPolicies": {"enabled": False},
        "extraVolumes": [
            {"name": "node-prices", "configMap": {"name": PRICING_CONFIGMAP}},
            # OpenCost's default config directory (pkg/env DefaultConfigMountPath, /var/configs) for what it
            # writes outside CONFIG_PATH: a writable emptyDir under the read-only root.
            {"name": "var-configs", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
        "opencost": {
            "exporter": {
                "image": {"registry": registry},
                "defaultClusterId": env_name,
                "replicas": 1,
                "resources": {
                    "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
                    "limits": {"memory": memory_limit},
                },
                "securityContext": hardened_container,
                "extraVolumeMounts": [
                    {"name": "node-prices", "mountPath": PRICING_DIR, "readOnly": True},
                    {"name": "var-configs", "mountPath": "/var/configs"},
                ],
                # templates/deployment.yaml renders `extraEnv` as name/value pairs. pkg/env/costmodelenv.go:
                # USE_CUSTOM_PROVIDER and USE_CSV_PROVIDER select the CSV provider whatever the node's
                # provider ID says; CSV_PATH is the file it reads (and re-reads every hour).
                "extraEnv": {
                    "USE_CUSTOM_PROVIDER": "true",
                    "USE_CSV_PROVIDER": "true",
                    "CSV_PATH": CSV_PATH,
                },
            },
            # values.yaml `opencost.customPricing`: the chart's ConfigMap of default rates, which OpenCost
            # watches (PRICING_CONFIGMAP_NAME) and stores under configPath (an emptyDir). For nodes only their
            # ratios count: CPU to RAM splits every node, GPU to RAM splits GPU nodes (see the module docstring);
            # as such they also price a node whose type the list lacks. Figures are per month (see
            # OPENCOST_HOURS_PER_MONTH): the hourly rates times 730.
            "customPricing": {
                "enabled": True,
                "provider": "custom",
                "costModel": {
                    "description": "mlstack: node totals come from the CSV price list (prices.yaml); these rates "
                    "only set the CPU:RAM:GPU split of each node's price",
                    "CPU": monthly_figure(DEFAULT_CPU_HOURLY),
                    "RAM": monthly_figure(DEFAULT_RAM_GIB_HOURLY),
                    "GPU": monthly_figure(gpu_rate),
                    # Helm merges this map with the chart's own costModel, whose `storage: 0.25` ($ per GiB-month)
                    # would otherwise price every persistent volume at three times gp3: set it.
                    "storage": f"{storage_rate}",
                },
            },
            "prometheus": {
                "internal": {
                    "enabled": True,
                    "serviceName": PROMETHEUS_SERVICE,
                    "namespaceName": metrics.namespace,
                    "port": PROMETHEUS_PORT,
                    "scheme": "http",
                },
            },
            "metrics": {
                "serviceMonitor": {
                    # templates/servicemonitor.yaml: port "http", path /metrics, honorLabels true (the chart's
                    # default), so that the namespace, pod and container labels of container_*_allocation stay
                    # the workload's, not OpenCost's own. The label names the exporter for the deploy simulation.
                    "enabled": True,
                    "additionalLabels": {"mlstack.io/exporter": OPENCOST_EXPORTER},
                    "honorLabels": True,
                    # templates/servicemonitor.yaml renders it as the endpoint's metricRelabelings (Prometheus
                    # Operator RelabelConfig: sourceLabels, regex, action drop). See kube_state_metrics_duplicates.
                    "metricRelabelings": [
                        {
                            "sourceLabels": ["__name__"],
                            "regex": "|".join(kube_state_metrics_duplicates()),
                            "action": "drop",
                        }
                    ],
                },
            },
            # The MCP server for AI agents (values.yaml `opencost.mcp.enabled`, default on) is a second API on
            # 8081 that nothing of the platform uses.
            "mcp": {"enabled": False},
            "ui": {
                "enabled": spec.ui,
                "image": {"registry": registry},
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                # The UI image is nginx running as user 1001 (opencost/opencost-ui Dockerfile `USER 1001`, read at
                # 04eed3e8, not at the 1.120.1 tag; the pod's runAsUser) whose entrypoint renders its config into
                # /etc/nginx at start, so its root file system stays writable; no escalation, no capability.
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "ingress": {"enabled": False},
            },
            **system_placement(),
        },
    }


def ui_addresses(metrics: MetricsSpec) -> dict[str, dict[str, str]]:
    """OpenCost's entries in the ``ui_addresses`` stack output: its API (``opencost``; /allocation/compute answers
    spend per namespace) and, when on, its UI (``opencost-ui``), each with its in-cluster URL, the laptop URL and
    the ``kubectl port-forward`` that serves it there through the access host's tunnel. Ports: the chart's Service
    (templates/service.yaml: ``http`` on opencost.exporter.apiPort, ``http-ui`` on opencost.ui.uiPort)."""
    namespace = metrics.namespace
    ports = {"opencost": OPENCOST_API_PORT}
    if metrics.opencost.ui:
        ports["opencost-ui"] = OPENCOST_UI_PORT
    return {
        name: {
            "in_cluster": f"http://{OPENCOST_RELEASE}.{namespace}.svc:{port}",
            "laptop": f"http://localhost:{port}",
            "port_forward": f"kubectl -n {namespace} port-forward svc/{OPENCOST_RELEASE} {port}:{port}",
        }
        for name, port in ports.items()
    }


@dataclass(frozen=True)
class CostAllocationArgs:
    """Inputs of the OpenCost component. ``metrics_release`` is the kube-prometheus-stack release: its CRDs
    (ServiceMonitor) and namespace must exist first."""

    env: Environment
    spec: PlatformSpec
    pull_through: PullThrough
    k8s_provider: kubernetes.Provider
    metrics_release: pulumi.Resource


class CostAllocation(pulumi.ComponentResource):
    """OpenCost in the metrics namespace, priced from prices.yaml (a ConfigMap of CSV rows), querying the
    platform's Prometheus and scraped by it.

    Outputs: ``api_url`` (the in-cluster URL of OpenCost's API) and ``namespace``.
    """

    api_url: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: CostAllocationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:observability:OpenCost", name, None, opts)
        spec = args.spec
        namespace = spec.metrics.namespace
        prices = pricing_csv(node_prices(spec))
        k8s = child(self, provider=args.k8s_provider, depends_on=[args.metrics_release])
        self.prices = kubernetes.core.v1.ConfigMap(
            f"{name}-node-prices",
            metadata={
                "name": PRICING_CONFIGMAP,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "mlstack"},
            },
            data={PRICING_KEY: prices},
            opts=k8s,
        )
        reference, repository_opts = chart_source(OPENCOST_CHART_REPOSITORY, OPENCOST_RELEASE)
        self.release = kubernetes.helm.v3.Release(
            f"{name}-opencost",
            name=OPENCOST_RELEASE,
            chart=reference,
            version=spec.metrics.opencost.chart_version,
            namespace=namespace,
            create_namespace=False,
            atomic=True,
            values=opencost_values(
                spec.metrics,
                env_name=args.env.name,
                pull_through=args.pull_through,
                gpu_rate=gpu_hourly_rate(spec),
                storage_rate=storage_gib_monthly_rate(spec),
            ),
            repository_opts=repository_opts,
            opts=child(self, provider=args.k8s_provider, depends_on=[args.metrics_release, self.prices]),
        )
        self.api_url = pulumi.Output.from_input(
            f"http://{OPENCOST_RELEASE}.{namespace}.svc:{OPENCOST_API_PORT}"
        )
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs({"api_url": self.api_url, "namespace": self.namespace})
