"""Observability section of the environment spec: the metrics stack (kube-prometheus-stack) and its Grafana.

The choice behind the tier defaults (in-cluster Prometheus everywhere, ephemeral in dev, encrypted persistent
volumes in staging and prod) and its cost are in docs/observability.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.orchestrator import ChartVersion, HttpsUrl
from mlstack.spec.secrets import SecretsManagerName

CpuQuantity = Annotated[str, StringConstraints(pattern=r"^(\d+m|\d+(\.\d+)?)$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^\d+(Mi|Gi)$")]

# The Service the chart renders for the Prometheus it defines, on the port of its web endpoint:
# prometheus-community/helm-charts@kube-prometheus-stack-88.5.3:charts/kube-prometheus-stack/templates/prometheus/
# service.yaml (name "<fullname>-prometheus", port `prometheus.service.port`, default 9090 in values.yaml). The
# release is named after the chart, so the fullname is "kube-prometheus-stack" (templates/_helpers.tpl).
METRICS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_SERVICE = f"{METRICS_RELEASE}-prometheus"
PROMETHEUS_PORT = 9090

# Grafana, kube-prometheus-stack's grafana subchart (charts/grafana 12.11.1, Grafana 13.2.0): its Service is the
# subchart's fullname, "<release>-grafana" (charts/grafana/templates/_helpers.tpl "grafana.fullname"), on
# `service.port` 80 (charts/grafana/values.yaml). People reach it through a kubectl port-forward to this laptop URL
# (docs/observability.md, "Grafana"), so it is also Grafana's root_url and the OAuth redirect's origin.
GRAFANA_SERVICE = f"{METRICS_RELEASE}-grafana"
GRAFANA_SERVICE_PORT = 80
# Grafana runs as a one-replica StatefulSet named like the Service (grafana/values.yaml `useStatefulSet`,
# templates/statefulset.yaml), so its pod has a stable name that RBAC can grant port-forwarding to; the container
# listens on `service.targetPort` 3000.
GRAFANA_POD = f"{GRAFANA_SERVICE}-0"
GRAFANA_CONTAINER_PORT = 3000
GRAFANA_LOCAL_PORT = 3030
GRAFANA_LOCAL_URL = f"http://localhost:{GRAFANA_LOCAL_PORT}"
# Grafana's generic OAuth callback path (grafana.com/docs/grafana/latest/setup-grafana/configure-access/
# configure-authentication/generic-oauth/: "<root_url>/login/generic_oauth").
GRAFANA_OAUTH_CALLBACK = f"{GRAFANA_LOCAL_URL}/login/generic_oauth"

# A group name as an IdP puts it in the groups claim; quoted inside a JMESPath string literal, so no quote or
# backslash.
GroupName = Annotated[str, StringConstraints(pattern=r"^[\w .@:/=+-]{1,128}$")]
ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class GrafanaSsoSpec(StrictModel):
    """Grafana's single sign-on: OAuth 2.0 authorization code with PKCE against the platform's OIDC identity
    provider (Grafana's generic OAuth). The client id and secret live in a Kubernetes Secret of the metrics
    namespace that External Secrets Operator syncs from Secrets Manager (``client_secret_id``), so they never pass
    through config or state. Register the client with the
    redirect URI http://localhost:3030/login/generic_oauth (Grafana is reached through a port-forward)."""

    auth_url: HttpsUrl = Field(description="The IdP's authorization endpoint (its OIDC discovery document's "
                               "authorization_endpoint), https only.")
    token_url: HttpsUrl = Field(description="The IdP's token endpoint (token_endpoint), https only.")
    api_url: HttpsUrl = Field(description="The IdP's UserInfo endpoint (userinfo_endpoint), https only: Grafana "
                              "reads the user's login, email and groups from it.")
    client_secret_name: DnsLabel = Field(
        default="grafana-sso",
        description="Kubernetes Secret in the metrics namespace holding keys client-id and client-secret (the "
        "shape of Argo's SSO Secret). Default: grafana-sso.",
    )
    client_secret_id: SecretsManagerName | None = Field(
        default=None,
        description="AWS Secrets Manager secret (its name) holding the client as JSON keys client-id and "
        "client-secret; External Secrets Operator copies it into client_secret_name (external_secrets). "
        "Default: mlstack/<environment>/sso/grafana.",
    )
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[\w:.-]{1,64}$")]] = Field(
        default_factory=lambda: ["openid", "email", "profile", "groups"],
        description="OIDC scopes to request. Default: openid, email, profile, groups.",
    )
    groups_claim: ClaimName = Field(
        default="groups",
        description="The UserInfo claim that lists the user's groups. Default: groups.",
    )
    admin_group: GroupName = Field(
        description="Members of this IdP group are Grafana Admins of the organisation; every other user who "
        "signs in is a Viewer. Required.",
    )

    @property
    def role_attribute_path(self) -> str:
        """The JMESPath Grafana evaluates on the UserInfo claims to pick the user's role."""
        return f"contains({self.groups_claim}[*], '{self.admin_group}') && 'Admin' || 'Viewer'"


class GrafanaSpec(StrictModel):
    """Grafana, kube-prometheus-stack's grafana subchart: the committed dashboards (components/data/dashboards)
    over the in-cluster Prometheus, private (a port-forward, no Ingress), signed in to through the platform's
    OIDC IdP. Default: off, since in staging and prod it needs the IdP's endpoints, which no default can name; the
    shipped stacks turn it on."""

    enabled: bool = Field(
        default=False,
        description="Run Grafana with the platform's dashboards (only where metrics.enabled is on); in staging and "
        "prod it needs sso. Off leaves the dashboards' JSON in the repo for another Grafana. Default: off (the "
        "shipped stacks turn it on).",
    )
    sso: GrafanaSsoSpec | None = Field(
        default=None,
        description="Sign-in through the platform's OIDC IdP; the login form and basic auth are then off. "
        "Required in staging and prod. Default: none, and in dev the chart's admin user signs in with the "
        "password the chart generates into the Secret kube-prometheus-stack-grafana.",
    )
    image_through_cache: bool = Field(
        default=True,
        description="Pull Grafana's image (docker.io/grafana/grafana) through the registry's docker-hub "
        "pull-through cache, which then must exist (it needs Docker Hub credentials). Off is a named opt-out that "
        "pulls it from Docker Hub directly. Default: on.",
    )


class OpenCostSpec(StrictModel):
    """Per-namespace and per-team cost from the cluster: OpenCost (chart opencost 2.5.17, app 1.120.1) in the
    metrics namespace, priced from mlstack/data/prices.yaml through OpenCost's CSV pricing provider, querying and
    scraped by the platform's Prometheus. Default: on wherever the metrics stack is on, UI off, images through
    the github pull-through cache."""

    enabled: bool = Field(
        default=True,
        description="Install OpenCost (needs the metrics stack). Off is a named opt-out: spend per team is then "
        "only the estimate of `mlstack cost --by-team`. Default: on.",
    )
    chart_version: ChartVersion = Field(
        default="2.5.17",
        description="Pinned version of the opencost chart (opencost/opencost-helm-chart), app 1.120.1. "
        "Default: 2.5.17.",
    )
    images_through_cache: bool = Field(
        default=True,
        description="Pull OpenCost's images (ghcr.io/opencost/opencost and opencost-ui, the chart's pinned tags "
        "and digests) through the registry's github pull-through cache, which then must exist (ECR needs GitHub "
        "credentials for ghcr.io). Off is a named opt-out: the pod pulls from ghcr.io directly, unscanned. "
        "Default: on.",
    )
    ui: bool = Field(
        default=False,
        description="Run OpenCost's web UI beside the exporter, reachable only through `kubectl port-forward` "
        "over the access host's tunnel (no Ingress is ever created). Default: off; the API and the Grafana "
        "spend dashboard answer the same questions.",
    )
    cpu_request: CpuQuantity = Field(default="50m", description="CPU request of the exporter. Default: 50m.")
    memory_request: MemoryQuantity = Field(
        default="256Mi",
        description="Memory request of the exporter; its limit is twice that. Default: 256Mi.",
    )


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

    grafana: GrafanaSpec = Field(
        default_factory=GrafanaSpec,
        description="Grafana with the platform's dashboards. Default: off; single sign-on required in staging and "
        "prod where it is on; see GrafanaSpec.",
    )

    opencost: OpenCostSpec = Field(
        default_factory=OpenCostSpec,
        description="OpenCost: spend per namespace and team from the cluster, priced from prices.yaml. "
        "Default: on, UI off, images through the github cache.",
    )

    @property
    def runs_grafana(self) -> bool:
        """Whether the environment runs Grafana: it is a subchart of the metrics stack."""
        return self.enabled and self.grafana.enabled

    @property
    def retention_size(self) -> str:
        """Prometheus' size-based retention: 85% of the volume, so compaction and the WAL always have room."""
        return f"{int(self.storage_gb * 1024 * 0.85)}MiB"


def in_cluster_prometheus_url(spec: MetricsSpec) -> str | None:
    """The URL of the Prometheus the platform installs, or None when it installs none."""
    if not spec.enabled:
        return None
    return f"http://{PROMETHEUS_SERVICE}.{spec.namespace}.svc:{PROMETHEUS_PORT}"
