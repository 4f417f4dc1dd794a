"""Observability section of the environment spec: the metrics stack (kube-prometheus-stack).

The choice behind the tier defaults (in-cluster Prometheus everywhere, ephemeral in dev, encrypted persistent
volumes in staging and prod) and its cost are in docs/observability.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.orchestrator import ChartVersion

CpuQuantity = Annotated[str, StringConstraints(pattern=r"^(\d+m|\d+(\.\d+)?)$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^\d+(Mi|Gi)$")]

# The Service the chart renders for the Prometheus it defines, on the port of its web endpoint:
# prometheus-community/helm-charts@kube-prometheus-stack-88.5.3:charts/kube-prometheus-stack/templates/prometheus/
# service.yaml (name "<fullname>-prometheus", port `prometheus.service.port`, default 9090 in values.yaml). The
# release is named after the chart, so the fullname is "kube-prometheus-stack" (templates/_helpers.tpl).
METRICS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_SERVICE = f"{METRICS_RELEASE}-prometheus"
PROMETHEUS_PORT = 9090


class MetricsSpec(StrictModel):
    """The platform's metrics stack: the Prometheus Operator, one Prometheus, kube-state-metrics and the node
    exporters (kube-prometheus-stack). Default: on, in-cluster; ephemeral storage and 2 days of retention in
    dev, encrypted gp3 persistent volumes with 15 (staging) or 30 (prod) days in staging and prod."""

    enabled: bool = Field(
        default=True,
        description="Install the metrics stack. Off is a named opt-out: nothing stores the platform's metrics "
        "and warm endpoints need inference.prometheus_url. Default: on.",
    )
    namespace: DnsLabel = Field(default="monitoring", description="Namespace of the stack. Default: monitoring.")
    chart_version: ChartVersion = Field(
        default="88.5.3",
        description="Pinned version of the kube-prometheus-stack chart (prometheus-community/helm-charts). "
        "Default: 88.5.3.",
    )
    storage: Literal["ephemeral", "persistent"] = Field(
        default="ephemeral",
        description="Where Prometheus keeps its time series: 'ephemeral' (an emptyDir on the node, lost when "
        "the pod moves) or 'persistent' (an encrypted gp3 volume per replica on the cluster's encrypted "
        "StorageClass, retained when its claim is deleted in staging and prod). Default: ephemeral in dev, "
        "persistent in staging and prod (where ephemeral is refused).",
    )
    retention_days: int = Field(
        default=2,
        ge=1,
        le=365,
        description="Days of metrics Prometheus keeps. Default: 2 in dev, 15 in staging, 30 in prod.",
    )
    storage_gb: int = Field(
        default=20,
        ge=5,
        le=16384,
        description="Size of each Prometheus volume (persistent storage), or the emptyDir size limit "
        "(ephemeral). Prometheus deletes the oldest blocks once 85% of it is used, before retention_days if "
        "need be. Default: 5 GiB in dev, 50 GiB in staging, 100 GiB in prod.",
    )
    prometheus_replicas: int = Field(
        default=1,
        ge=1,
        le=3,
        description="Prometheus replicas, each scraping every target (a second one keeps alerting and KEDA's "
        "queries up through a node drain). Default: 1 in dev and staging, 2 in prod.",
    )
    prometheus_cpu_request: CpuQuantity = Field(
        default="100m", description="CPU request of each Prometheus replica (no CPU limit: it bursts). Default: "
        "100m in dev and staging, 500m in prod."
    )
    prometheus_memory_request: MemoryQuantity = Field(
        default="512Mi",
        description="Memory request of each Prometheus replica; its limit is twice that. Default: 512Mi in dev, "
        "1Gi in staging, 2Gi in prod.",
    )

    alerts: bool = Field(
        default=True,
        description="Run Alertmanager with the platform's alert rules (components/data/alerts) and send every "
        "alert, and the budget's notifications, to an SNS topic encrypted with its own KMS key and subscribed by "
        "budgets.notify_emails. Default: on.",
    )

    @property
    def retention_size(self) -> str:
        """Prometheus' size-based retention: 85% of the volume, so compaction and the WAL always have room."""
        return f"{int(self.storage_gb * 1024 * 0.85)}MiB"


def in_cluster_prometheus_url(spec: MetricsSpec) -> str | None:
    """The URL of the Prometheus the platform installs, or None when it installs none."""
    if not spec.enabled:
        return None
    return f"http://{PROMETHEUS_SERVICE}.{spec.namespace}.svc:{PROMETHEUS_PORT}"
