"""The platform's metrics stack: kube-prometheus-stack (Prometheus Operator, one Prometheus, kube-state-metrics and
the node exporters) on the system nodes, every image through the environment's pull-through caches.

The values are a plain function of the spec (``metrics_values``) so that tests check what reaches the plan, and
the deploy simulation renders the chart from them. Every chart key below was read in
prometheus-community/helm-charts@kube-prometheus-stack-88.5.3:charts/kube-prometheus-stack/values.yaml (and the
vendored subcharts kube-state-metrics 8.4.0 and prometheus-node-exporter 4.56.1, whose values.yaml are cited as
``kube-state-metrics/values.yaml`` and ``prometheus-node-exporter/values.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.cluster import system_placement
from components.environment import Environment
from components.gpu import POOL_LABEL
from components.helm import chart_source
from components.iam import platform_role, pod_identity_trust, policy_document
from components.inference import INTERCEPTOR_METRICS_LABELS, PodIdentity, endpoint_selector
from components.keys import create_key
from components.options import child
from components.registry import PullThrough
from components.secrets import ExternalSecrets
from components.vectordb import (
    API_KEY_SECRET,
    CA_FIELD,
    QDRANT_CHART,
    QDRANT_RELEASE,
    READ_ONLY_KEY_FIELD,
    TLS_SECRET,
)
from mlstack.promql import metric_catalog, metric_names
from mlstack.spec import PlatformSpec
from mlstack.spec.observability import (
    GRAFANA_CONTAINER_PORT,
    GRAFANA_LOCAL_URL,
    GRAFANA_POD,
    GRAFANA_SERVICE,
    GRAFANA_SERVICE_PORT,
    METRICS_RELEASE,
    PROMETHEUS_PORT,
    PROMETHEUS_SERVICE,
    MetricsSpec,
)
from mlstack.yaml_loading import fast_safe_load

METRICS_CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
# Images the chart pulls, by registry (values.yaml `prometheusOperator.image.registry`,
# `prometheusOperator.prometheusConfigReloader.image.registry`, `prometheus.prometheusSpec.image.registry`: quay.io;
# kube-state-metrics/values.yaml `image.registry`: registry.k8s.io; prometheus-node-exporter/values.yaml
# `image.registry`: quay.io). Repositories and tags stay the chart's.
QUAY = "quay.io"
K8S_REGISTRY = "registry.k8s.io"


# The label that names a monitor's exporter: the key of its metrics in mlstack/data/metrics.yaml, which the deploy
# simulation (mlstack.simulate.metrics) and the tests read to prove every queried metric is scraped.
EXPORTER_LABEL = "mlstack.io/exporter"
MONITOR_API = "monitoring.coreos.com/v1"
# The alert rules, one PrometheusRule group per file.
ALERTS_DIR = Path(__file__).resolve().parent / "data" / "alerts"
# The Alertmanager's service account: values.yaml `alertmanager.serviceAccount` (create: true, name empty) and
# templates/_helpers.tpl "kube-prometheus-stack.alertmanager.serviceAccountName" ("<fullname>-alertmanager").
ALERTMANAGER_SERVICE_ACCOUNT = f"{METRICS_RELEASE}-alertmanager"


@dataclass(frozen=True)
class ScrapeTarget:
    """One thing the platform runs that Prometheus scrapes, as a PodMonitor (pods, by a declared port's name) or
    a ServiceMonitor (a Service's named port). The monitor lives in the metrics namespace and selects its targets
    in ``namespace``."""

    name: str
    exporter: str
    kind: Literal["PodMonitor", "ServiceMonitor"]
    namespace: str
    selector: dict[str, str]
    port: str
    path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    # Keep the exporter's own labels where they clash with the target's (DCGM's pod and namespace of the
    # workload using a GPU, instead of the exporter's own pod).
    honor_labels: bool = False
    # Present Prometheus' service account token and skip verifying a self-signed serving certificate
    # (controller-runtime's authenticated metrics endpoint).
    bearer_token: bool = False
    tls_insecure_skip_verify: bool = False
    # Where the monitor lives when not in the metrics namespace: a monitor's Secret references resolve in its own
    # namespace only (the CRD's `authorization.credentials`: "a key of a Secret in the namespace"), so a target
    # whose credentials are a Secret of its own namespace gets its monitor there.
    monitor_namespace: str | None = None
    # (Secret name, key) of a token sent as "Authorization: Bearer <token>" (the `authorization` of a PodMonitor's
    # or ServiceMonitor's endpoint, type Bearer by default).
    authorization_secret: tuple[str, str] | None = None
    # (Secret name, key) of the CA that signs the target's serving certificate, and the name to verify it against
    # (Prometheus scrapes the pod IP, which the certificate does not cover): `tlsConfig.ca.secret`,
    # `tlsConfig.serverName`.
    ca_secret: tuple[str, str] | None = None
    server_name: str = ""
    # Label every series with the node of the scraped pod (``node``, as kube-state-metrics names it), so that a
    # query can join it with kube_node_labels (the GPU pool of each node, per-pool GPU panels).
    node_label: bool = False
    why: str = field(default="", compare=False)


@dataclass(frozen=True)
class AlertsArgs:
    """Inputs of the Alerts component: ``emails`` are subscribed to the topic (each confirms once, by mail)."""

    env: Environment
    emails: tuple[str, ...] = ()


class Alerts(pulumi.ComponentResource):
    """The environment's alert topic: SNS encrypted with its own rotating KMS key, subscribed by the stack's
    emails, published to by Alertmanager (``grant_publish``) and by AWS Budgets (topic and key policies).

    Outputs: ``topic_arn``, ``key_arn``.
    """

    topic_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:observability:Alerts", name, None, opts)
        env = args.env
        self._name = name
        self._region = env.region
        self.key = create_key(self, f"{name}-key", env=env, purpose="alerts")
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=env.resource_name("alerts"),
            kms_master_key_id=self.key.arn,
            opts=child(self),
        )
        # AWS Budgets publishes its notifications as itself; only this account's budgets may
        # (docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html).
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "BudgetsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "budgets.amazonaws.com"},
                        "Action": "SNS:Publish",
                        "Resource": self.topic.arn,
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": env.account_id},
                            "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{env.account_id}:*"},
                        },
                    }
                ]
            ),
            opts=child(self),
        )
        for index, email in enumerate(args.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}", topic=self.topic.arn, protocol="email", endpoint=email, opts=child(self)
            )
        self.topic_arn = self.topic.arn
        self.key_arn = self.key.arn
        self.register_outputs({"topic_arn": self.topic_arn, "key_arn": self.key_arn})

    def grant_publish(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` publish to the topic: sns:Publish on it, and the data key SNS encrypts the message with
        (kms:GenerateDataKey and kms:Decrypt, through SNS only, as the key policy's UseOnlyThroughServices
        requires). The two named actions, not GenerateDataKey*, as AWS's own publisher statements for encrypted
        topics grant them (e.g. End User Messaging SMS guide, configuration-sets-sns-creating-role.html): no data
        action in an identity policy carries a wildcard (tests/test_data_policies.py)."""
        return aws.iam.RolePolicy(
            f"{self._name}-publish-{role.pulumi_resource_name}",
            role=role.name,
            name="publish-alerts",
            policy=policy_document(
                [
                    {"Effect": "Allow", "Action": "sns:Publish", "Resource": self.topic.arn},
                    {
                        "Effect": "Allow",
                        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                        "Resource": self.key.arn,
                        "Condition": {
                            "StringEquals": {"kms:ViaService": f"sns.{self._region}.amazonaws.com"}
                        },
                    },
                ]
            ),
            opts=child(self),
        )


@dataclass(frozen=True)
class MetricsArgs:
    """Inputs of the Metrics component.

    ``storage_class_name`` is the cluster's encrypted gp3 StorageClass (``Cluster.storage_class_name``), used for
    persistent Prometheus volumes. ``after`` is what the release waits for (a cluster-wide fail-closed admission
    webhook that must be serving first, ``Teams.admission_ready``).
    """

    env: Environment
    spec: MetricsSpec
    pull_through: PullThrough
    k8s_provider: kubernetes.Provider
    storage_class_name: pulumi.Input[str]
    targets: Sequence[ScrapeTarget] = ()
    """What to scrape beyond the chart's own targets (``scrape_targets``)."""
    alerts: Alerts | None = None
    """Where Alertmanager sends notifications; None runs no Alertmanager."""
    cluster: PodIdentity | None = None
    """Associates Alertmanager's role (required with ``alerts``)."""
    boundary_arn: pulumi.Input[str] | None = None
    """The permission boundary of Alertmanager's role (required with ``alerts``)."""
    after: Sequence[pulumi.Resource] = ()
    monitors_after: Sequence[pulumi.Resource] = ()
    """What monitors living outside the metrics namespace (``ScrapeTarget.monitor_namespace``, Qdrant's) wait for
    besides the release: their namespace and the Secrets they read."""
    grafana_viewer_groups: Sequence[str] = ()
    """Kubernetes groups (the teams') that may port-forward to the Grafana pod; platform admins may anyway."""
    sso_secrets: ExternalSecrets | None = None
    """The operator that syncs Grafana's OIDC client Secret from Secrets Manager (``Platform.external_secrets``,
    used only with ``grafana.sso``); None: the platform team creates the Secret by hand."""


class Metrics(pulumi.ComponentResource):
    """kube-prometheus-stack as one Helm release in its own namespace.

    Outputs: ``prometheus_url`` (the in-cluster URL KEDA's Prometheus triggers query), ``namespace`` and
    ``grafana_url`` (Grafana's in-cluster URL, empty where none runs).
    """

    prometheus_url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(self, name: str, args: MetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:observability:Metrics", name, None, opts)
        spec = args.spec
        after = list(args.after)
        if args.alerts is not None:
            after += self._alertmanager_identity(name, args, args.alerts)
        reference, repository_opts = chart_source(METRICS_CHART_REPOSITORY, METRICS_RELEASE)
        # Grafana reads its OIDC client from a Secret in the metrics namespace at start, so with a synced client the
        # namespace must exist before the release: created here (no Pod Security labels, as Helm's
        # --create-namespace makes it: node exporter uses the host's network and PIDs), and the release waits for
        # the operator to have written the Secret.
        synced: list[pulumi.Resource] = []
        create_namespace = True
        if args.sso_secrets is not None and spec.runs_grafana and spec.grafana.sso is not None:
            ns = kubernetes.core.v1.Namespace(
                f"{name}-ns",
                metadata={"name": spec.namespace, "labels": {"app.kubernetes.io/managed-by": "mlstack"}},
                opts=child(self, provider=args.k8s_provider),
            )
            synced = [ns, *args.sso_secrets.sync_client(f"{name}-grafana-sso", "grafana", after=[ns])]
            create_namespace = False
        self.release = kubernetes.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name=METRICS_RELEASE,
            chart=reference,
            version=spec.chart_version,
            namespace=spec.namespace,
            create_namespace=create_namespace,
            atomic=True,
            values=metrics_values(
                spec,
                hardened=args.env.tier.hardened,
                pull_through=args.pull_through,
                storage_class=args.storage_class_name,
                alert_topic_arn=args.alerts.topic_arn if args.alerts is not None else None,
                region=args.env.region,
            ),
            repository_opts=repository_opts,
            # A persistent Prometheus holds weeks of data: deleting the release would delete its StatefulSet,
            # and its claims are retained (persistentVolumeClaimRetentionPolicy below) but the release is
            # protected as well in staging and prod.
            opts=child(
                self,
                provider=args.k8s_provider,
                depends_on=[*after, *synced],
                protect=args.env.protect_stateful and spec.storage == "persistent",
            ),
        )
        for target in args.targets:
            manifest = monitor_manifest(target, spec.namespace)
            kubernetes.apiextensions.CustomResource(
                f"{name}-{target.name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                # The release installs the monitors' CRDs and the namespace they live in; a monitor living in
                # its target's namespace also waits for that namespace and the Secrets it reads.
                opts=child(
                    self,
                    provider=args.k8s_provider,
                    depends_on=[self.release, *(args.monitors_after if target.monitor_namespace else ())],
                ),
            )
        if spec.runs_grafana:
            if args.grafana_viewer_groups:
                self._grafana_port_forward(name, args)
            for manifest in dashboard_configmaps(spec.namespace):
                kubernetes.core.v1.ConfigMap(
                    f"{name}-{manifest['metadata']['name']}",
                    **manifest,
                    # The release creates the namespace; the sidecar picks the ConfigMaps up whenever they appear.
                    opts=child(self, provider=args.k8s_provider, depends_on=[self.release]),
                )
        for index, manifest in enumerate(network_policy_manifests(spec.namespace, grafana=spec.runs_grafana)):
            kubernetes.networking.v1.NetworkPolicy(
                f"{name}-netpol-{index}",
                **manifest,
                opts=child(self, provider=args.k8s_provider, depends_on=[self.release]),
            )
        scraped = {t.exporter for t in args.targets} | CHART_EXPORTERS
        for group in alert_groups(scraped):
            kubernetes.apiextensions.CustomResource(
                f"{name}-rules-{group['name']}",
                **prometheus_rule_manifest(group, spec.namespace),
                opts=child(self, provider=args.k8s_provider, depends_on=[self.release]),
            )
        self.prometheus_url = pulumi.Output.from_input(
            f"http://{PROMETHEUS_SERVICE}.{spec.namespace}.svc:{PROMETHEUS_PORT}"
        )
        self.namespace = self.release.namespace.apply(lambda ns: ns or spec.namespace)
        # Empty where no Grafana runs.
        self.grafana_url = pulumi.Output.from_input(
            f"http://{GRAFANA_SERVICE}.{spec.namespace}.svc:{GRAFANA_SERVICE_PORT}" if spec.runs_grafana else ""
        )
        self.register_outputs(
            {"prometheus_url": self.prometheus_url, "namespace": self.namespace, "grafana_url": self.grafana_url}
        )

    def _grafana_port_forward(self, name: str, args: MetricsArgs) -> None:
        """Let the teams' groups open ``kubectl port-forward pod/<GRAFANA_POD>``: get that one pod and create its
        portforward subresource, nothing else in the metrics namespace (Prometheus and Alertmanager stay out of
        reach). Grafana's own sign-in then decides what each person sees."""
        manifest = grafana_port_forward_role(args.spec.namespace)
        kubernetes.rbac.v1.Role(
            f"{name}-grafana-port-forward",
            **manifest,
            opts=child(self, provider=args.k8s_provider, depends_on=[self.release]),
        )
        # A RoleBinding names its Role and RBAC resolves it at request time, so the binding need not wait for
        # the Role (the deploy-time advisor flags such a wait as serializing).
        kubernetes.rbac.v1.RoleBinding(
            f"{name}-grafana-port-forward-binding",
            metadata=manifest["metadata"],
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": manifest["metadata"]["name"]},
            subjects=[
                {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
                for group in sorted(set(args.grafana_viewer_groups))
            ],
            opts=child(self, provider=args.k8s_provider, depends_on=[self.release]),
        )

    def _alertmanager_identity(self, name: str, args: MetricsArgs, alerts: Alerts) -> list[pulumi.Resource]:
        """Alertmanager's own role, publishing to the alert topic only, assumed through Pod Identity by its
        service account alone. Alertmanager v0.34.0 signs SNS calls with aws-sdk-go-v2's default credential
        chain when sigv4 names no keys (prometheus/alertmanager@v0.34.0 notify/sns/sns.go: LoadDefaultConfig),
        and that chain reads the Pod Identity agent's container credentials."""
        if args.cluster is None or args.boundary_arn is None:
            raise ValueError("Metrics with alerts needs the cluster (Pod Identity) and the permission boundary")
        env = args.env
        role = platform_role(
            self,
            f"{name}-alertmanager-role",
            env=env,
            role_suffix="alertmanager",
            boundary_arn=args.boundary_arn,
            assume_role_policy=pod_identity_trust(
                env, namespace=args.spec.namespace, service_account=ALERTMANAGER_SERVICE_ACCOUNT
            ),
            description="Alertmanager: publishes to the alert topic",
        )
        grant = alerts.grant_publish(role)
        identity = args.cluster.pod_identity(
            f"{name}-alertmanager-identity",
            namespace=args.spec.namespace,
            service_account=ALERTMANAGER_SERVICE_ACCOUNT,
            role=role,
            parent=self,
        )
        return [grant, identity]


def _resources(cpu: str, memory: str, memory_limit: str | None = None) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit or memory}}


def metrics_values(
    spec: MetricsSpec,
    *,
    hardened: bool,
    pull_through: PullThrough,
    storage_class: pulumi.Input[str],
    alert_topic_arn: pulumi.Input[str] | None = None,
    region: str = "",
) -> dict[str, Any]:
    """Helm values of kube-prometheus-stack 88.5.3 for the platform.

    Everything the pack's workload rules look at is explicit: requests and memory limits on every container,
    the chart's non-root, read-only-root security contexts kept, images through the caches. Grafana's values are
    ``grafana_values``. Left out, each for a reason given at its key: Alertmanager (where no alert topic is wired),
    the operator's admission webhook (its certificate job's image is on ghcr.io), and the
    scrapers of control-plane components EKS does not expose to pods.
    """
    quay = pull_through.registry(QUAY)
    memory_limit = _double(spec.prometheus_memory_request)
    if spec.storage == "persistent":
        storage: dict[str, Any] = {
            # values.yaml `prometheus.prometheusSpec.storageSpec.volumeClaimTemplate` (the CRD's StorageSpec):
            # one claim per replica on the cluster's encrypted gp3 StorageClass.
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{spec.storage_gb}Gi"}},
                }
            }
        }
    else:
        # `storageSpec.emptyDir` (the CRD's StorageSpec.emptyDir): bounded, so a full TSDB cannot fill the node.
        storage = {"emptyDir": {"sizeLimit": f"{spec.storage_gb}Gi"}}
    prometheus_spec: dict[str, Any] = {
        "image": {"registry": quay},
        "replicas": spec.prometheus_replicas,
        "retention": f"{spec.retention_days}d",
        "retentionSize": spec.retention_size,
        "resources": _resources(spec.prometheus_cpu_request, spec.prometheus_memory_request, memory_limit),
        "storageSpec": storage,
        # Select every ServiceMonitor, PodMonitor and PrometheusRule in every namespace, not only those labelled
        # with this release (values.yaml `*SelectorNilUsesHelmValues`, default true): the platform's monitors are
        # created outside the chart.
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        # Replicas on distinct nodes where possible (values.yaml `podAntiAffinity`, "soft" is the default; "hard"
        # would need as many system nodes as replicas).
        "podAntiAffinity": "soft",
        # On the system nodes (values.yaml `prometheus.prometheusSpec.nodeSelector`, `tolerations`: the CR's
        # fields, which the operator copies into the pod template).
        **system_placement(),
    }
    if hardened and spec.storage == "persistent":
        # values.yaml `prometheus.prometheusSpec.persistentVolumeClaimRetentionPolicy`: keep the claims when the
        # StatefulSet is deleted or scaled down; the StorageClass retains the volume when a claim goes.
        prometheus_spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Retain", "whenScaled": "Retain"}
    return {
        "crds": {"enabled": True},
        "defaultRules": {
            "create": True,
            # values.yaml `defaultRules.rules`: EKS runs etcd, the scheduler and the controller manager out of the
            # cluster's reach, and mlstack does not scrape kube-proxy or Windows nodes, so their rules could
            # only report missing targets.
            "rules": {
                "etcd": False,
                "kubeControllerManager": False,
                "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False,
                "kubeProxy": False,
                "windows": False,
                # Alertmanager's own rules only where one runs.
                "alertmanager": alert_topic_arn is not None,
            },
        },
        "alertmanager": _alertmanager_values(spec, hardened=hardened, quay=quay, topic_arn=alert_topic_arn, region=region),
        "grafana": grafana_values(spec, pull_through=pull_through),
        # kube-state-metrics/values.yaml `metricLabelsAllowlist` lives under the kube-state-metrics key below.
        # The EKS control plane's etcd, scheduler and controller manager are managed by AWS and not reachable from
        # pods (values.yaml `kubeEtcd`, `kubeScheduler`, `kubeControllerManager`); kube-proxy's metrics address
        # is not set by mlstack, so its target is left out rather than scraped and down (`kubeProxy`).
        "kubeEtcd": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "windowsMonitoring": {"enabled": False},
        "prometheusOperator": {
            "image": {"registry": quay},
            # values.yaml `prometheusOperator.admissionWebhooks`: the webhook's certificate comes from a patch Job
            # whose image is on ghcr.io (`admissionWebhooks.patch.image`), which the caches do not cover, or from
            # cert-manager, which the platform does not run. Without it, a malformed rule is refused by the
            # operator (it logs it and leaves it out) instead of the API server; mlstack's own rules are parsed
            # by the tests before they reach the plan.
            "admissionWebhooks": {"enabled": False},
            # values.yaml `prometheusOperator.tls.enabled`: the operator's TLS certificate is the webhook's Secret
            # "<fullname>-admission" (templates/prometheus-operator/deployment.yaml), which only the patch Job
            # creates; without the webhook the operator serves its metrics over plain HTTP on 8080.
            "tls": {"enabled": False},
            "resources": _resources("20m", "128Mi", "256Mi"),
            # values.yaml `prometheusOperator.nodeSelector`, `tolerations`: on the system nodes.
            **system_placement(),
            # values.yaml `prometheusOperator.prometheusConfigReloader`: the sidecar the operator adds to every
            # Prometheus pod.
            "prometheusConfigReloader": {
                "image": {"registry": quay},
                "resources": _resources("10m", "32Mi", "64Mi"),
            },
        },
        "prometheus": {"prometheusSpec": prometheus_spec},
        "kube-state-metrics": {
            # kube-state-metrics/values.yaml `image.registry`, `resources`.
            "image": {"registry": pull_through.registry(K8S_REGISTRY)},
            "resources": _resources("20m", "64Mi", "256Mi"),
            # kube-state-metrics/values.yaml `metricLabelsAllowlist` ("nodes=[k8s-label-1,...]"): kube_node_labels
            # carries the GPU pool of each node (components/gpu.py POOL_LABEL), sanitised to label_mlstack_io_pool,
            # which the per-pool GPU panels join the DCGM series with (components/data/dashboards/gpus.json).
            "metricLabelsAllowlist": [f"nodes=[{POOL_LABEL}]"],
            # kube-state-metrics/values.yaml `nodeSelector`, `tolerations`: on the system nodes.
            **system_placement(),
        },
        "prometheus-node-exporter": {
            # prometheus-node-exporter/values.yaml `image.registry`, `resources`, `containerSecurityContext`
            # (default: read-only root only). The exporter reads the host's /proc, /sys and / through read-only
            # hostPath mounts and needs no capability (only the optional time collector's SYS_TIME, commented
            # out upstream), so it cannot escalate and drops them all. It keeps the chart's hostNetwork and
            # hostPID: without them it would report the pod's own network namespace and processes, not the
            # node's (waived in policies/waivers.yaml).
            "image": {"registry": quay},
            "resources": _resources("10m", "32Mi", "64Mi"),
            "containerSecurityContext": {
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        },
    }


# Grafana, the grafana subchart of kube-prometheus-stack 88.5.3 (charts/grafana, chart 12.11.1, appVersion 13.2.0).
# Keys cited as ``grafana/values.yaml`` are that subchart's; ``values.yaml`` `grafana.*` are the parent's overrides.
DOCKER_HUB = "docker.io"
GRAFANA_REPOSITORY = "grafana/grafana"
# charts/grafana/Chart.yaml appVersion, pinned here rather than left to the chart (grafana/values.yaml `image.tag`
# "" means the appVersion), so an image bump is a reviewed change.
GRAFANA_TAG = "13.2.0"
# grafana/values.yaml `sidecar.image`: quay.io/kiwigrid/k8s-sidecar 2.10.1 (the chart's pin, repeated here).
SIDECAR_REPOSITORY = "kiwigrid/k8s-sidecar"
SIDECAR_TAG = "2.10.1"
# The label the dashboards sidecar selects ConfigMaps by (values.yaml `grafana.sidecar.dashboards.label` and
# `labelValue`, which kube-prometheus-stack sets to grafana_dashboard: "1").
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
DASHBOARDS_DIR = Path(__file__).resolve().parent / "data" / "dashboards"
# The Secret the chart generates the admin password into when no admin.existingSecret is given
# (grafana/templates/secret.yaml: name "grafana.fullname", keys admin-user and admin-password; a random 40
# characters, kept across upgrades by a lookup of the existing Secret, templates/_helpers.tpl "grafana.password").
GRAFANA_ADMIN_SECRET = f"{METRICS_RELEASE}-grafana"


def grafana_values(spec: MetricsSpec, *, pull_through: PullThrough) -> dict[str, Any]:
    """values.yaml `grafana`: the subchart, or ``{"enabled": False}`` where the environment runs no Grafana.

    Authentication (grafana.ini, rendered by grafana/templates/_config.tpl from `grafana.ini`): anonymous access off,
    basic auth (HTTP API with a password) off, no self sign-up; with ``sso``, Grafana's generic OAuth with PKCE
    against the platform's IdP, the IdP's admin group mapped to Admin and everyone else to Viewer, and the login form
    off. Setting names from grafana/grafana conf/defaults.ini ([auth] disable_login_form, [auth.anonymous] enabled,
    [auth.basic] enabled, [users] allow_sign_up, [auth.generic_oauth] enabled, name, scopes, auth_url, token_url,
    api_url, allow_sign_up, use_pkce, role_attribute_path, role_attribute_strict, groups_attribute_path,
    login_attribute_path, email_attribute_path). The client id and secret reach Grafana as the environment
    variables GF_AUTH_GENERIC_OAUTH_CLIENT_ID and ..._CLIENT_SECRET (Grafana's override of any ini key:
    "GF_" + section and key upper-cased, '.' and '-' as '_', pkg/setting/setting.go EnvKey) from the Secret
    (grafana/values.yaml `envValueFrom`), never through the values.
    """
    if not spec.runs_grafana:
        return {"enabled": False}
    grafana = spec.grafana
    image_registry = pull_through.registry(DOCKER_HUB) if grafana.image_through_cache else DOCKER_HUB
    ini: dict[str, Any] = {
        # The laptop URL of the port-forward (outputs ui_addresses): Grafana builds its links and the OAuth
        # redirect_uri from it (grafana/values.yaml `grafana.ini.server`).
        "server": {"root_url": GRAFANA_LOCAL_URL},
        # No calls home from a private cluster (conf/defaults.ini [analytics] reporting_enabled,
        # check_for_updates, check_for_plugin_updates).
        "analytics": {"reporting_enabled": False, "check_for_updates": False, "check_for_plugin_updates": False},
        "auth.anonymous": {"enabled": False},
        "auth.basic": {"enabled": False},
        "users": {"allow_sign_up": False},
        # Brute-force protection of the login form stays on (conf/defaults.ini [security]
        # disable_brute_force_login_protection = false), stated so that it cannot drift.
        "security": {"disable_brute_force_login_protection": False, "cookie_samesite": "lax"},
    }
    env_from: dict[str, Any] = {}
    if grafana.sso is not None:
        sso = grafana.sso
        ini["auth"] = {"disable_login_form": True}
        ini["auth.generic_oauth"] = {
            "enabled": True,
            "name": "SSO",
            "scopes": " ".join(sso.scopes),
            "auth_url": sso.auth_url,
            "token_url": sso.token_url,
            "api_url": sso.api_url,
            # Users come from the IdP: the first sign-in creates the Grafana user (no local sign-up exists).
            "allow_sign_up": True,
            "use_pkce": True,
            "login_attribute_path": "preferred_username",
            "email_attribute_path": "email",
            "groups_attribute_path": sso.groups_claim,
            "role_attribute_path": sso.role_attribute_path,
            # Every user gets a role from the path (Viewer at least); strict refuses a sign-in whose claims the
            # path cannot evaluate instead of falling back to the org's default role.
            "role_attribute_strict": True,
        }
        env_from = {
            "GF_AUTH_GENERIC_OAUTH_CLIENT_ID": {
                "secretKeyRef": {"name": sso.client_secret_name, "key": "client-id"}
            },
            "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {
                "secretKeyRef": {"name": sso.client_secret_name, "key": "client-secret"}
            },
        }
    quay = pull_through.registry(QUAY)
    return {
        "enabled": True,
        "image": {"registry": image_registry, "repository": GRAFANA_REPOSITORY, "tag": GRAFANA_TAG},
        # values.yaml `grafana.defaultDashboardsEnabled`: the chart's own dashboards are off; the platform's are
        # the committed ones, each query tested against what is scraped (tests/test_observability.py).
        "defaultDashboardsEnabled": False,
        # grafana/values.yaml `testFramework`: a `helm test` pod pulling docker.io/bats/bats, outside the caches.
        "testFramework": {"enabled": False},
        # grafana/values.yaml `persistence.enabled` (false by default): no volume. Dashboards and the data source
        # are provisioned from ConfigMaps and users come from the IdP, so nothing in Grafana's database needs to
        # outlive the pod (docs/observability.md, "Grafana").
        "persistence": {"enabled": False},
        # grafana/values.yaml `rbac.namespaced`: a Role in the metrics namespace instead of a ClusterRole; the
        # sidecars look for dashboards and data sources there only (`searchNamespace` below).
        "rbac": {"namespaced": True},
        # grafana/values.yaml `useStatefulSet` and `headlessService` (the StatefulSet's serviceName,
        # "<fullname>-headless"): one replica with the stable name GRAFANA_POD, which the teams' port-forward Role
        # names (Metrics._grafana_port_forward). With persistence off its volumes stay emptyDirs.
        "useStatefulSet": True,
        "headlessService": True,
        "grafana.ini": ini,
        "envValueFrom": env_from,
        # grafana/values.yaml `containerSecurityContext` (non-root 472, no privilege escalation, all capabilities
        # dropped, RuntimeDefault seccomp) with a read-only root filesystem: Grafana writes only to its storage and
        # search emptyDirs (/var/lib/grafana, /var/lib/grafana-search) and to the two emptyDirs below.
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # grafana/values.yaml `extraEmptyDirMounts`: scratch space and the logs directory (grafana.ini
        # paths.logs) on emptyDirs, since the root filesystem is read-only.
        "extraEmptyDirMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (a pod-private emptyDir)
            {"name": "logs", "mountPath": "/var/log/grafana"},
        ],
        "resources": _resources("50m", "192Mi", "384Mi"),
        **system_placement(),
        "sidecar": {
            "image": {"registry": quay, "repository": SIDECAR_REPOSITORY, "tag": SIDECAR_TAG},
            "resources": _resources("10m", "64Mi", "128Mi"),
            # grafana/values.yaml `sidecar.securityContext` plus a read-only root: the sidecar writes only to its
            # shared emptyDir (`sidecar.dashboards.folder`, /tmp/dashboards) and the data source directory.
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                "searchNamespace": spec.namespace,
                # grafana/values.yaml `sidecar.dashboards.resource`: ConfigMaps only (the dashboards are not
                # secret).
                "resource": "configmap",
                # values.yaml `grafana.sidecar.dashboards.provider.allowUiUpdates` (false): the repo is the
                # source; an edit in the UI cannot be saved over a provisioned dashboard.
                "provider": {"allowUiUpdates": False},
                # grafana/values.yaml `sidecar.dashboards.skipReload`: the sidecar would call Grafana's reload API
                # with the admin password over basic auth (REQ_USERNAME/REQ_PASSWORD), which is off; Grafana's file
                # provider rescans the folder instead (`provider.updateIntervalSeconds`, 30 s by default,
                # grafana/templates/_config.tpl).
                "skipReload": True,
            },
            # values.yaml `grafana.sidecar.datasources`: kube-prometheus-stack's own data source ConfigMap (the
            # Prometheus it runs, uid "prometheus", and Alertmanager where one runs), from this namespace only.
            # Data sources are read at start only and the reload API needs basic auth, so the sidecar runs as an
            # init container that writes them before Grafana starts (grafana/values.yaml
            # `sidecar.datasources.initDatasources`, `skipReload`).
            "datasources": {
                "enabled": True,
                "searchNamespace": spec.namespace,
                "resource": "configmap",
                "initDatasources": True,
                "skipReload": True,
                # grafana/templates/_pod.tpl renders the init container's METHOD from `watchMethod`, WATCH by
                # default; k8s-sidecar 2.10.1 (src/sidecar.py main) lists once and exits only with METHOD=LIST and
                # otherwise watches forever, which as an init container would keep Grafana from ever starting.
                "watchMethod": "LIST",
            },
        },
    }


def grafana_port_forward_role(namespace: str) -> dict[str, Any]:
    """The Role that lets its subjects port-forward to the Grafana pod alone (``kubectl port-forward pod/...``
    gets the pod, then opens pods/portforward on it). kubectl 1.31 and later open the stream as a WebSocket, an
    HTTP GET the API server (up to 1.34) authorizes as ``get``; the SPDY fallback is a POST, ``create``; from
    Kubernetes 1.35 the WebSocket path needs ``create`` as well (kubernetes/kubernetes#134577, KEP-4006,
    feature gate AuthorizePodWebsocketUpgradeCreatePermission). Both verbs, as for JupyterHub's proxy
    (components/notebooks.py port_forward_rules)."""
    return {
        "metadata": {
            "name": "grafana-port-forward",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlstack"},
        },
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "resourceNames": [GRAFANA_POD], "verbs": ["get"]},
            {
                "apiGroups": [""],
                "resources": ["pods/portforward"],
                "resourceNames": [GRAFANA_POD],
                "verbs": ["get", "create"],
            },
        ],
    }


def dashboard_configmaps(namespace: str) -> list[dict[str, Any]]:
    """One ConfigMap per committed dashboard (components/data/dashboards/*.json), labelled for the dashboards
    sidecar, which writes it into Grafana's provisioned dashboards: the committed JSON is what Grafana shows."""
    return [
        {
            "metadata": {
                "name": f"mlstack-dashboard-{path.stem}",
                "namespace": namespace,
                "labels": {DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE, "app.kubernetes.io/managed-by": "mlstack"},
            },
            "data": {f"mlstack-{path.stem}.json": path.read_text(encoding="utf-8")},
        }
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    ]


def _alertmanager_values(
    spec: MetricsSpec, *, hardened: bool, quay: str, topic_arn: pulumi.Input[str] | None, region: str
) -> dict[str, Any]:
    """values.yaml `alertmanager`: every alert to the SNS topic, signed with SigV4 by the pod's own role.

    Receiver fields from prometheus/alertmanager@v0.34.0 config/notifiers.go ``SNSConfig`` (``topic_arn``,
    ``sigv4``; subject and message keep DefaultSNSConfig's templates; ``send_resolved`` from the embedded
    config/common/notifierconfig.go) and
    prometheus/sigv4@v0.4.1 sigv4_config.go (``region``; no keys, so the default credential chain).
    The chart's ``config.global`` and ``inhibit_rules`` are kept; ``route`` and ``receivers`` replace its
    defaults (whose only receiver, 'null', drops everything)."""
    if topic_arn is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "config": {
            "route": {
                "group_by": ["alertname", "namespace"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "12h",
                "receiver": "sns",
                "routes": [
                    # Watchdog fires always (a dead-man's switch) and InfoInhibitor only mutes info alerts.
                    {"receiver": "null", "matchers": ['alertname =~ "Watchdog|InfoInhibitor"']},
                    {"receiver": "null", "matchers": ['severity = "none"']},
                ],
            },
            "receivers": [
                {"name": "null"},
                {
                    "name": "sns",
                    "sns_configs": [
                        {
                            "topic_arn": topic_arn,
                            "sigv4": {"region": region},
                            "send_resolved": True,
                        }
                    ],
                },
            ],
        },
        "alertmanagerSpec": {
            "image": {"registry": quay},
            "replicas": 2 if hardened else 1,
            "retention": "120h",
            "resources": _resources("10m", "64Mi", "128Mi"),
            # values.yaml `alertmanager.alertmanagerSpec.nodeSelector`, `tolerations`: on the system nodes.
            **system_placement(),
        },
    }


# KEDA's operator queries Prometheus for the warm endpoints' triggers (components/inference.py KEDA_NAMESPACE).
KEDA_NAMESPACE = "keda"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


# The Grafana pod's labels (grafana/templates/_helpers.tpl "grafana.selectorLabels": app.kubernetes.io/name is the
# chart name, grafana); its container port is GRAFANA_CONTAINER_PORT (`service.targetPort`, port name "grafana").
GRAFANA_POD_NAME = "grafana"


def network_policy_manifests(namespace: str, *, grafana: bool = False) -> list[dict[str, Any]]:
    """Ingress to the metrics namespace: its own pods (Prometheus scraping the operator, kube-state-metrics,
    Alertmanager and itself; Prometheus sending to Alertmanager; Alertmanager's mesh) and the KEDA operator to
    Prometheus' web port. Egress stays open: Prometheus scrapes every namespace and the nodes' kubelets and
    exporters, Alertmanager calls SNS, Grafana queries Prometheus and calls the IdP. The node exporters use the host
    network, which policies do not cover.

    With ``grafana``, the Grafana pod is left out of the own-namespace rule and admits Prometheus alone, on its
    web port (the scrape of its /metrics): nothing else reaches it over the network. People reach it through a
    kubectl port-forward, which the kubelet delivers inside the pod's network namespace, where no NetworkPolicy
    applies (docs/observability.md, "Grafana")."""
    own = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
    own_selector: dict[str, Any] = {}
    if grafana:
        own_selector = {
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": [GRAFANA_POD_NAME]}
            ]
        }
    policies = [
        {
            "metadata": {"name": "allow-from-own-namespace", "namespace": namespace},
            "spec": {"podSelector": own_selector, "policyTypes": ["Ingress"], "ingress": [{"from": [own]}]},
        },
        {
            "metadata": {"name": "allow-keda-to-prometheus", "namespace": namespace},
            "spec": {
                # The Prometheus pods the operator creates (mlstack.simulate.operator_made, makeSelectorLabels).
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: KEDA_NAMESPACE}}}],
                        "ports": [{"protocol": "TCP", "port": PROMETHEUS_PORT}],
                    }
                ],
            },
        },
    ]
    if grafana:
        policies.append(
            {
                "metadata": {"name": "allow-prometheus-to-grafana", "namespace": namespace},
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": GRAFANA_POD_NAME}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    **own,
                                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": GRAFANA_CONTAINER_PORT}],
                        }
                    ],
                },
            }
        )
    return policies


def alert_groups(exporters: set[str] | None = None) -> list[dict[str, Any]]:
    """The committed alert rule groups (components/data/alerts/*.yaml), one PrometheusRule each.

    With ``exporters`` (what the environment scrapes), only the rules whose every metric one of them produces
    (mlstack/data/metrics.yaml) are kept, and groups left empty are dropped: a Triton error-rate rule in an
    environment that serves no Triton endpoint would watch nothing.
    """
    groups = [fast_safe_load(path.read_text(encoding="utf-8")) for path in sorted(ALERTS_DIR.glob("*.yaml"))]
    if exporters is None:
        return groups
    catalog, _ = metric_catalog()
    produced = set().union(*(catalog.get(e, frozenset()) for e in exporters))
    kept = []
    for group in groups:
        rules = [r for r in group["rules"] if metric_names(str(r["expr"])) <= produced]
        if rules:
            kept.append({**group, "rules": rules})
    return kept


# Exporters the chart scrapes itself (its ServiceMonitors; mlstack/data/metrics.yaml chart_monitors).
CHART_EXPORTERS = frozenset({"kube-state-metrics"})


def prometheus_rule_manifest(group: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A PrometheusRule holding one group (kube-prometheus-stack 88.5.3 charts/crds/crds/crd-prometheusrules.yaml:
    ``spec.groups[].name``, ``rules[].alert``, ``expr``, ``for``, ``labels``, ``annotations``). The Prometheus
    selects every rule (ruleSelectorNilUsesHelmValues false)."""
    return {
        "api_version": MONITOR_API,
        "kind": "PrometheusRule",
        "metadata": {
            "name": group["name"],
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlstack"},
        },
        "spec": {"groups": [group]},
    }


def _double(memory: str) -> str:
    number, unit = memory[:-2], memory[-2:]
    return f"{int(number) * 2}{unit}"


# Where the platform's scraped components run and how their charts label them, at the pinned chart versions.
# NVIDIA/dcgm-exporter@4.2.3-4.1.1 (the 4.1.1 chart): deployment/templates/service.yaml (port "metrics", 9400) and
# _helpers.tpl "dcgm-exporter.selectorLabels"; the namespace is components/gpu.py's.
DCGM_NAMESPACE = "nvidia-dcgm-exporter"
# aws/karpenter-provider-aws@v1.14.1:charts/karpenter/templates/service.yaml (port "http-metrics", 8080) and
# _helpers.tpl "karpenter.selectorLabels"; components/gpu.py installs it in kube-system.
KARPENTER_NAMESPACE = "kube-system"
# kubernetes-sigs/kueue@v0.19.2:charts/kueue/templates/manager/auth_proxy_service.yaml (port "https", 8443,
# labels "kueue.metricsService.labels": app.kubernetes.io/component metrics-service); components/teams.py's
# namespace. The endpoint is controller-runtime's authenticated one: a bearer token that may get /metrics (the
# chart's Prometheus ClusterRole grants that nonResourceURL) and a self-signed certificate, which the chart's own
# ServiceMonitor also skips verifying (values.yaml metrics.serviceMonitor.tlsConfig.insecureSkipVerify: true).
KUEUE_NAMESPACE = "kueue-system"


def scrape_targets(spec: PlatformSpec) -> list[ScrapeTarget]:
    """What Prometheus scrapes beyond the chart's own targets (kube-state-metrics, node exporters, kubelet and
    cAdvisor, CoreDNS, the API server, the operator and Prometheus itself), derived from the spec."""
    targets = [
        ScrapeTarget(
            "karpenter",
            "karpenter",
            "ServiceMonitor",
            KARPENTER_NAMESPACE,
            {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"},
            "http-metrics",
            why="node launches, disruptions and Spot interruptions",
        ),
        ScrapeTarget(
            "kueue",
            "kueue",
            "ServiceMonitor",
            KUEUE_NAMESPACE,
            {"app.kubernetes.io/name": "kueue", "app.kubernetes.io/component": "metrics-service"},
            "https",
            scheme="https",
            bearer_token=True,
            tls_insecure_skip_verify=True,
            why="queue depth, admission waits and admitted quota per team",
        ),
    ]
    if any(pool.dcgm_exporter for pool in spec.gpu_pools):
        targets.append(
            ScrapeTarget(
                "dcgm-exporter",
                "dcgm",
                "ServiceMonitor",
                DCGM_NAMESPACE,
                {"app.kubernetes.io/name": "dcgm-exporter"},
                "metrics",
                honor_labels=True,
                node_label=True,
                why="GPU utilisation and memory, labelled with the pod and namespace using each GPU and the node",
            )
        )
    if any(e.backend == "kubernetes" for e in spec.inference.endpoints):
        # kedacore/charts@v2.20.2:keda/templates/manager/service.yaml: the operator's Service (label
        # app.kubernetes.io/name: keda-operator) gets a "metrics" port once prometheus.operator.enabled is on
        # (components/inference.py _keda_values); KEDA runs in the keda namespace.
        targets.append(
            ScrapeTarget(
                "keda-operator",
                "keda",
                "ServiceMonitor",
                "keda",
                {"app.kubernetes.io/name": "keda-operator"},
                "metrics",
                why="trigger errors and scaler values of every ScaledObject",
            )
        )
    if any(e.backend == "kubernetes" and e.scales_to_zero for e in spec.inference.endpoints):
        targets += http_addon_targets()
    if spec.orchestrator.argo_workflows:
        # argo-helm@argo-workflows-1.0.18: templates/controller/workflow-controller-service.yaml renders the
        # controller's Service once `controller.metricsConfig.enabled` (components/orchestrator.py argo_values),
        # port "metrics" (`servicePortName`) 8080 -> the container's 9090 (`metricsConfig.port`), plain HTTP
        # (`metricsConfig.secure: false`, the chart's default). Its labels are "argo-workflows.labels" with the
        # component "workflow-controller" (`controller.name`). The chart's own ServiceMonitor
        # (`controller.serviceMonitor.enabled`) is not used: it would be part of the Argo release, installed before
        # the metrics stack that brings the ServiceMonitor CRD.
        targets.append(
            ScrapeTarget(
                "argo-workflows-controller",
                "argo-workflows",
                "ServiceMonitor",
                spec.orchestrator.argo_namespace,
                {"app.kubernetes.io/component": "workflow-controller", "app.kubernetes.io/part-of": "argo-workflows"},
                "metrics",
                # argo_workflows_total_count carries the workflow's own `namespace` label (the team's); without
                # honorLabels Prometheus would rename it exported_namespace and put the controller's namespace in
                # its place (Prometheus scrape_config honor_labels).
                honor_labels=True,
                why="workflows by phase, failed workflows and controller errors",
            )
        )
    vdb = spec.vector_db
    if vdb.enabled and vdb.engine == "qdrant":
        targets.append(qdrant_target(vdb.namespace))
    for endpoint in spec.inference.endpoints:
        if endpoint.backend != "kubernetes":
            continue
        triton = endpoint.runtime == "triton"
        targets.append(
            ScrapeTarget(
                f"endpoint-{endpoint.team}-{endpoint.name}",
                endpoint.runtime,
                "PodMonitor",
                endpoint.team,
                endpoint_selector(endpoint),
                # vLLM serves /metrics on its API port; Triton on its own metrics port, declared as "metrics"
                # (components/inference.py TRITON_METRICS_PORT).
                "metrics" if triton else "http",
                why=f"endpoint {endpoint.name}: requests, latency and queue depth",
            )
        )
    return targets


def monitor_manifest(target: ScrapeTarget, monitoring_namespace: str) -> dict[str, Any]:
    """The PodMonitor or ServiceMonitor of a target. Fields from the CRDs of kube-prometheus-stack 88.5.3
    (charts/crds/crds/crd-podmonitors.yaml, crd-servicemonitors.yaml: ``selector``, ``namespaceSelector.matchNames``,
    ``podMetricsEndpoints``/``endpoints`` with ``port``, ``path``, ``scheme``, ``honorLabels``,
    ``bearerTokenFile``, ``tlsConfig.insecureSkipVerify``, and on both kinds ``authorization.type``/``credentials``,
    ``tlsConfig.ca.secret``, ``tlsConfig.serverName``, ``relabelings``). The monitor lives in ``monitoring_namespace``
    unless the target names its own (``monitor_namespace``)."""
    endpoint: dict[str, Any] = {"port": target.port, "path": target.path, "scheme": target.scheme}
    if target.honor_labels:
        endpoint["honorLabels"] = True
    if target.bearer_token:
        # ServiceMonitor only (PodMonitor has no bearerTokenFile): Prometheus' own service account token.
        endpoint["bearerTokenFile"] = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    if target.tls_insecure_skip_verify:
        endpoint["tlsConfig"] = {"insecureSkipVerify": True}
    if target.authorization_secret is not None:
        name, key = target.authorization_secret
        endpoint["authorization"] = {"type": "Bearer", "credentials": {"name": name, "key": key}}
    if target.ca_secret is not None:
        name, key = target.ca_secret
        endpoint["tlsConfig"] = {"ca": {"secret": {"name": name, "key": key}}, "serverName": target.server_name}
    if target.node_label:
        # The CRDs' RelabelConfig (``sourceLabels``, ``targetLabel``, ``action`` replace), applied before the
        # scrape: Prometheus' kubernetes_sd endpoints and pod roles set __meta_kubernetes_pod_node_name for targets
        # backed by a pod (prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config).
        endpoint["relabelings"] = [
            {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}
        ]
    endpoints_key = "podMetricsEndpoints" if target.kind == "PodMonitor" else "endpoints"
    return {
        "apiVersion": MONITOR_API,
        "kind": target.kind,
        "metadata": {
            "name": target.name,
            "namespace": target.monitor_namespace or monitoring_namespace,
            "labels": {EXPORTER_LABEL: target.exporter, "app.kubernetes.io/managed-by": "mlstack"},
        },
        "spec": {
            "selector": {"matchLabels": dict(target.selector)},
            "namespaceSelector": {"matchNames": [target.namespace]},
            endpoints_key: [endpoint],
        },
    }


def http_addon_targets() -> list[ScrapeTarget]:
    """The HTTP add-on's three components: the interceptor (requests held while an endpoint scales from zero,
    per route), the external scaler (its polls of the interceptors) and the operator (controller-runtime)."""
    return [
        ScrapeTarget(
            "keda-http-interceptor",
            "keda-http-interceptor",
            "ServiceMonitor",
            KEDA_NAMESPACE,
            dict(INTERCEPTOR_METRICS_LABELS),
            "metrics",
            why="requests per route, their latency and the requests held while an endpoint starts",
        ),
        # templates/scaler/service.yaml: "keda-add-ons-http-external-scaler", port "metrics" =
        # `scaler.metrics.prometheus.port` (2223, enabled by default), labels component scaler, name http-add-on.
        ScrapeTarget(
            "keda-http-scaler",
            "keda-http-scaler",
            "ServiceMonitor",
            KEDA_NAMESPACE,
            {"app.kubernetes.io/component": "scaler", "app.kubernetes.io/name": "http-add-on"},
            "metrics",
            why="the scaler's polls of the interceptors: errors and unreachable interceptor pods",
        ),
        # templates/operator/service.yaml: "keda-add-ons-http-controller-manager-metrics-service", port "metrics"
        # (`operator.port` 8443). The chart's defaults `operator.metrics.secure` and `.auth` (both true) make it
        # controller-runtime's authenticated endpoint with a self-signed certificate, as Kueue's: Prometheus'
        # token, which kube-prometheus-stack's ClusterRole lets get /metrics, and no certificate verification.
        ScrapeTarget(
            "keda-http-operator",
            "keda-http-operator",
            "ServiceMonitor",
            KEDA_NAMESPACE,
            {"app.kubernetes.io/component": "operator", "app.kubernetes.io/name": "http-add-on"},
            "metrics",
            scheme="https",
            bearer_token=True,
            tls_insecure_skip_verify=True,
            why="reconcile errors of HTTPScaledObjects",
        ),
    ]


def qdrant_target(namespace: str) -> ScrapeTarget:
    """Qdrant's /metrics on its REST port. At v1.19.0 it needs an API key (qdrant/qdrant@v1.19.0
    src/actix/api/service_api.rs `metrics` checks global access; src/actix/mod.rs whitelists only /, /healthz,
    /readyz and /livez), which the read-only key satisfies (AccessRequirements::new() asks for no write), sent as
    "Authorization: Bearer" (src/common/auth/mod.rs accepts it as well as the api-key header). The port serves
    TLS with the platform's Qdrant CA. The monitor lives in Qdrant's namespace beside the key and the CA Secrets,
    which the Prometheus Operator reads (kube-prometheus-stack 88.5.3 templates/prometheus-operator/
    clusterrole.yaml: secrets, every verb, cluster-wide) and Prometheus selects monitors in every namespace
    (values.yaml `podMonitorNamespaceSelector: {}`). A PodMonitor, not a ServiceMonitor: Qdrant's client and
    headless Services select the same pods, so a ServiceMonitor matching both would scrape each twice. The chart's
    own ServiceMonitor (values.yaml `metrics.serviceMonitor`) is not used: its template fixes `scheme: http`."""
    return ScrapeTarget(
        "qdrant",
        "qdrant",
        "PodMonitor",
        namespace,
        {"app.kubernetes.io/name": QDRANT_CHART, "app.kubernetes.io/instance": QDRANT_RELEASE},
        # qdrant-helm qdrant-1.19.0 values.yaml `service.ports`: "http" is 6333, rendered as the container's port
        # names (templates/statefulset.yaml).
        "http",
        scheme="https",
        monitor_namespace=namespace,
        authorization_secret=(API_KEY_SECRET, READ_ONLY_KEY_FIELD),
        ca_secret=(TLS_SECRET, CA_FIELD),
        # A name the server certificate covers (components/vectordb.py qdrant_dns_names).
        server_name=f"{QDRANT_RELEASE}.{namespace}.svc",
        why="collections, points and shard replicas that are not active",
    )
