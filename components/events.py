"""Argo Events for Metaflow's ``@trigger`` and ``@trigger_on_finish``: the controller, and per team namespace the
event bus, the webhook Metaflow publishes to and the identity Metaflow's sensors run as.

How Metaflow uses it (Netflix/metaflow@2.19.38):

- ``ArgoEvent.publish`` (metaflow/plugins/argo/argo_events.py) POSTs ``{"name": ..., "payload": {...}}`` as JSON to
  ``METAFLOW_ARGO_EVENTS_WEBHOOK_URL``; inside a deployed flow the pods get ``ARGO_EVENTS_INTERNAL_WEBHOOK_URL``
  under that name (plugins/argo/argo_workflows.py, the container environment), so ``@trigger_on_finish`` works
  from the flow's own pods.
- ``argo-workflows create`` of a flow with a trigger registers a Sensor (``_compile_sensor``) in
  ``METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE`` (default: ``METAFLOW_KUBERNETES_NAMESPACE``, the team's namespace)
  with the user's own credentials (plugins/argo/argo_client.py ``register_sensor``: get, create, replace;
  ``delete_sensor``: delete). The sensor listens on ``eventBusName`` ``METAFLOW_ARGO_EVENTS_EVENT_BUS``
  (default ``default``) for event ``METAFLOW_ARGO_EVENTS_EVENT`` of EventSource
  ``METAFLOW_ARGO_EVENTS_EVENT_SOURCE``, runs as ``METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT`` and creates a
  ``Workflow`` from the flow's WorkflowTemplate in the team's namespace (a standard Kubernetes trigger).

An EventBus serves only its own namespace: EventSources and Sensors name it by ``eventBusName`` and the controller
looks it up in their namespace (argoproj/argo-events@v1.9.10 pkg/reconciler/sensor/controller.go and
eventsource/controller.go ``Get(... Namespace: <object's namespace>, Name: eventBusName)``). So every team gets its
own bus, webhook and sensor identity in its own namespace, and no team's events reach another team's sensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import system_placement
from components.compute import TEAM_NAMESPACE_LABEL
from components.environment import Environment
from components.helm import chart_source
from components.options import child
from components.rbac import bound_role, group_subject, service_account_subject
from components.registry import PullThrough
from components.workloads import RESTRICTED_CONTAINER, namespace, restricted_pod
from mlstack.spec.orchestrator import ArgoEventsSpec
from mlstack.spec.teams import TeamSpec

ARGO_EVENTS_CHART = "argo-events"
ARGO_EVENTS_REPOSITORY = "https://argoproj.github.io/argo-helm"
ARGO_EVENTS_RELEASE = "argo-events"
# argo-helm@argo-events-2.4.22:charts/argo-events/values.yaml `global.image.repository` (tag: the appVersion
# v1.9.10). templates/argo-events-controller/deployment.yaml hands the same image to the controller as
# ARGO_EVENTS_IMAGE, which it runs for every EventSource and Sensor pod: one value moves all three to our cache.
ARGO_EVENTS_IMAGE = "quay.io/argoproj/argo-events"
# The NATS images of the chart's JetStream version 2.10.10 (values.yaml `configs.jetstream.versions`), all on
# Docker Hub. The controller reads this list from its ConfigMap and builds the EventBus StatefulSet from the entry
# whose version the EventBus names (pkg/reconciler/eventbus/installer/jetstream.go).
JETSTREAM_VERSION = "2.10.10"
NATS_IMAGE = f"docker.io/library/nats:{JETSTREAM_VERSION}"
NATS_METRICS_IMAGE = "docker.io/natsio/prometheus-nats-exporter:0.14.0"
NATS_RELOADER_IMAGE = "docker.io/natsio/nats-server-config-reloader:0.14.0"
NATS_START_COMMAND = "/nats-server"

# What Metaflow's config names (components/orchestrator.py metaflow_config).
EVENT_BUS = (
    "default"  # Metaflow's default ARGO_EVENTS_EVENT_BUS; the only name a sensor finds without config.
)
EVENT_SOURCE = "metaflow-webhook"
EVENT_NAME = "metaflow-event"
WEBHOOK_PORT = 12000
WEBHOOK_ENDPOINT = f"/{EVENT_NAME}"
SENSOR_SERVICE_ACCOUNT = "metaflow-sensor"
# The Service the controller creates for an EventSource with `spec.service` is "<eventsource name>-eventsource-svc"
# (argoproj/argo-events@v1.9.10 pkg/reconciler/eventsource/resource.go buildService: GenerateName-free
# fmt.Sprintf("%s-eventsource-svc", eventSource.Name)).
WEBHOOK_SERVICE = f"{EVENT_SOURCE}-eventsource-svc"
# Where a laptop reaches the team's webhook: a kubectl port-forward (docs/guides/metaflow-events.md).
LOCAL_WEBHOOK_URL = f"http://localhost:{WEBHOOK_PORT}{WEBHOOK_ENDPOINT}"
TEAM_LABEL = "mlstack.dev/team"
SENSOR_POLICY = "mlstack-sensors-run-as-non-root"


def webhook_url(team: str) -> str:
    """The in-cluster URL of a team's webhook EventSource."""
    return f"http://{WEBHOOK_SERVICE}.{team}.svc.cluster.local:{WEBHOOK_PORT}{WEBHOOK_ENDPOINT}"


def metaflow_event_settings(team: str) -> dict[str, str]:
    """The ``METAFLOW_ARGO_EVENTS_*`` keys of a team's Metaflow config (Netflix/metaflow@2.19.38
    metaflow/metaflow_config.py: ARGO_EVENTS_SERVICE_ACCOUNT, _EVENT_BUS, _EVENT_SOURCE, _EVENT, _WEBHOOK_URL,
    _INTERNAL_WEBHOOK_URL, _WEBHOOK_AUTH, _SENSOR_NAMESPACE).

    The laptop publishes through a port-forward to localhost; the flow's pods get the in-cluster URL. The
    webhook takes no credentials ("none"): only pods of the team's own namespace reach it (the team's
    NetworkPolicies deny every other namespace), and a laptop reaches it only through a port-forward its team
    RBAC allows.
    """
    return {
        "METAFLOW_ARGO_EVENTS_EVENT": EVENT_NAME,
        "METAFLOW_ARGO_EVENTS_EVENT_SOURCE": EVENT_SOURCE,
        "METAFLOW_ARGO_EVENTS_EVENT_BUS": EVENT_BUS,
        "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT": SENSOR_SERVICE_ACCOUNT,
        "METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE": team,
        "METAFLOW_ARGO_EVENTS_WEBHOOK_URL": LOCAL_WEBHOOK_URL,
        "METAFLOW_ARGO_EVENTS_INTERNAL_WEBHOOK_URL": webhook_url(team),
        "METAFLOW_ARGO_EVENTS_WEBHOOK_AUTH": "none",
    }


@dataclass(frozen=True)
class ArgoEventsArgs:
    """Inputs of ArgoEvents."""

    env: Environment
    spec: ArgoEventsSpec
    teams: Sequence[TeamSpec]
    k8s_provider: k8s.Provider
    pull_through: PullThrough
    team_namespaces: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team, what its namespaced objects wait for (``Teams.namespace_ready``)."""
    admission_ready: Sequence[pulumi.Resource] = ()
    """What every workload waits for (``Teams.admission_ready``: Kueue's fail-closed webhooks)."""


class ArgoEvents(pulumi.ComponentResource):
    """The Argo Events controller (pinned chart, image through the quay.io cache, restricted, on the system nodes)
    and, in each team namespace, a JetStream EventBus (NATS user/password auth and TLS, both generated by the
    controller), the webhook EventSource Metaflow publishes to, the ``metaflow-sensor`` service account with the
    one permission a Metaflow sensor uses (create Workflows in its namespace), and the team's right to register
    Sensors there.

    Outputs: ``namespace``, ``webhook_urls`` (team -> in-cluster webhook URL).
    """

    namespace: pulumi.Output[str]
    webhook_urls: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: ArgoEventsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:orchestrator:ArgoEvents", name, None, opts)
        spec = args.spec
        ns = namespace(self, f"{name}-ns", spec.namespace, args.k8s_provider, "events")
        chart, repository = chart_source(ARGO_EVENTS_REPOSITORY, ARGO_EVENTS_CHART)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=ARGO_EVENTS_RELEASE,
            chart=chart,
            version=spec.chart_version,
            repository_opts=repository,
            namespace=ns.metadata.name,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            values=argo_events_values(
                hardened=args.env.tier.hardened,
                pull_through=args.pull_through,
                nats_through_cache=spec.nats_images_through_cache,
            ),
            opts=child(self, provider=args.k8s_provider, depends_on=[ns, *args.admission_ready]),
        )
        # Metaflow's Sensors would run as root: refused in team namespaces unless the stack opts out.
        policy, binding = sensor_policy_manifests(deny=not spec.allow_root_sensors)
        guard = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-sensor-policy",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=child(self, provider=args.k8s_provider),
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-sensor-policy-binding",
            metadata=binding["metadata"],
            spec=binding["spec"],
            opts=child(self, provider=args.k8s_provider, depends_on=[guard]),
        )
        replicas = spec.eventbus_replicas or (3 if args.env.tier.hardened else 1)
        urls: dict[str, str] = {}
        for team in args.teams:
            self._team(name, team, replicas, args)
            urls[team.name] = webhook_url(team.name)

        self.namespace = pulumi.Output.from_input(spec.namespace)
        self.webhook_urls = pulumi.Output.from_input(urls)
        self.register_outputs({"namespace": self.namespace, "webhook_urls": self.webhook_urls})

    def _team(self, name: str, team: TeamSpec, replicas: int, args: ArgoEventsArgs) -> None:
        prefix = f"{name}-{team.name}"
        ready = list(args.team_namespaces.get(team.name, ()))
        in_namespace = child(self, provider=args.k8s_provider, depends_on=ready)
        # The custom objects wait for the release, which installs their CRDs, and for the admission webhooks.
        after_crds = child(
            self, provider=args.k8s_provider, depends_on=[*ready, self.release, *args.admission_ready]
        )
        bus = k8s.apiextensions.CustomResource(
            f"{prefix}-eventbus",
            api_version="argoproj.io/v1alpha1",
            kind="EventBus",
            metadata=_meta(EVENT_BUS, team.name),
            spec=event_bus_spec(replicas),
            opts=after_crds,
        )
        k8s.apiextensions.CustomResource(
            f"{prefix}-webhook",
            api_version="argoproj.io/v1alpha1",
            kind="EventSource",
            metadata=_meta(EVENT_SOURCE, team.name),
            spec=webhook_event_source_spec(),
            opts=child(self, provider=args.k8s_provider, depends_on=[*ready, self.release, bus]),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{prefix}-sensor-sa",
            metadata=_meta(SENSOR_SERVICE_ACCOUNT, team.name),
            opts=in_namespace,
        )
        bound_role(
            self,
            f"{prefix}-sensor-role",
            binding_name=f"{prefix}-sensor-binding",
            metadata=_meta(SENSOR_SERVICE_ACCOUNT, team.name),
            rules=sensor_rules(),
            subjects=[service_account_subject(SENSOR_SERVICE_ACCOUNT, team.name)],
            provider=args.k8s_provider,
            role_opts=in_namespace,
            binding_after=[*ready, account],
        )
        bound_role(
            self,
            f"{prefix}-sensor-authors",
            metadata=_meta("metaflow-sensor-authors", team.name),
            rules=sensor_author_rules(),
            subjects=[group_subject(team.group)],
            provider=args.k8s_provider,
            role_opts=in_namespace,
            binding_after=ready,
        )


# Whether a Sensor's pod runs as a non-root user, as the argo-events v1.9.10 controller builds it
# (pkg/reconciler/sensor/resource.go buildDeploymentSpec): the pod's securityContext is spec.template.securityContext
# and the container's is spec.template.container.securityContext (pkg/apis/events/v1alpha1/template.go
# Container.ApplyToContainer); the container's runAsNonRoot and runAsUser override the pod's (core/v1
# SecurityContext). The image (FROM scratch, no USER: Dockerfile at v1.9.10) runs as UID 0 unless runAsUser is set,
# and with runAsNonRoot alone the kubelet refuses to start it, so both are required. The admission plugin hands CEL
# the object as unstructured JSON (k8s.io/apiserver admission/plugin/cel filter.go objectToResolveVal), and Metaflow
# sends JSON nulls for unset fields (kubernetes client V1Container.to_dict) into a spec the CRD does not prune
# (x-kubernetes-preserve-unknown-fields): every step checks the value's type before it reads a field.
SENSOR_POLICY_VARIABLES = (
    (
        "template",
        "has(object.spec.template) && type(object.spec.template) == map ? object.spec.template : {}",
    ),
    (
        "pod",
        "has(variables.template.securityContext) && type(variables.template.securityContext) == map"
        " ? variables.template.securityContext : {}",
    ),
    (
        "main",
        "has(variables.template.container) && type(variables.template.container) == map"
        " ? variables.template.container : {}",
    ),
    (
        "container",
        "has(variables.main.securityContext) && type(variables.main.securityContext) == map"
        " ? variables.main.securityContext : {}",
    ),
    (
        "runAsNonRoot",
        "has(variables.container.runAsNonRoot) && type(variables.container.runAsNonRoot) == bool"
        " ? variables.container.runAsNonRoot"
        " : has(variables.pod.runAsNonRoot) && type(variables.pod.runAsNonRoot) == bool"
        " && variables.pod.runAsNonRoot",
    ),
    (
        "runAsUser",
        "has(variables.container.runAsUser) && type(variables.container.runAsUser) == int"
        " ? variables.container.runAsUser"
        " : has(variables.pod.runAsUser) && type(variables.pod.runAsUser) == int ? variables.pod.runAsUser : 0",
    ),
)
SENSOR_POLICY_EXPRESSION = "variables.runAsNonRoot && variables.runAsUser != 0"
# A Sensor being deleted is left alone: the argo-events v1.9.10 controller puts its finalizer on every Sensor and
# removes it with an UPDATE once the Sensor is deleted (pkg/reconciler/sensor/controller.go reconcile,
# RemoveFinalizer, then client.Update). Refusing that UPDATE would leave a root Sensor admitted before the policy
# (or under the Warn opt-out, later switched to Deny) Terminating forever. Its pod spec no longer matters then.
# admissionregistration.k8s.io/v1 ValidatingAdmissionPolicySpec.matchConditions: any false one skips the policy.
SENSOR_POLICY_MATCH_CONDITIONS = (("not-being-deleted", "!has(object.metadata.deletionTimestamp)"),)


def sensor_policy_manifests(deny: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA since Kubernetes 1.30; ``variables`` are
    part of v1) that refuses Sensors whose pods would run as root in team namespaces, and its binding: ``Deny``, or
    with the ``allow_root_sensors`` opt-out ``Warn`` and ``Audit`` (a warning to the client and an annotation in the
    API audit log, which the cluster ships to CloudWatch).

    Why a guardrail and not a fix (docs/components/orchestrator.md, "Argo Events"): Metaflow 2.19.39 compiles every
    Sensor with only a container name and resources and a service account (plugins/argo/argo_workflows.py
    ``_compile_sensor``) and has no config key for more; the argo-events v1.9.10 controller copies the Sensor's
    template as it is and sets no default; a MutatingAdmissionPolicy is beta and off by default in Kubernetes 1.34
    (feature gate MutatingAdmissionPolicy, admissionregistration.k8s.io/v1beta1) and EKS 1.34 does not list it
    among what it enables."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": SENSOR_POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["argoproj.io"],
                        "apiVersions": ["v1alpha1"],
                        # Metaflow replaces a flow's Sensor on every deploy (argo_client.py register_sensor).
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["sensors"],
                    }
                ],
                "namespaceSelector": {
                    "matchExpressions": [{"key": TEAM_NAMESPACE_LABEL, "operator": "Exists"}]
                },
            },
            "matchConditions": [{"name": n, "expression": e} for n, e in SENSOR_POLICY_MATCH_CONDITIONS],
            "variables": [{"name": n, "expression": e} for n, e in SENSOR_POLICY_VARIABLES],
            "validations": [
                {
                    "expression": SENSOR_POLICY_EXPRESSION,
                    "message": "Sensor pods must run as a non-root user: set spec.template.securityContext (or "
                    "spec.template.container.securityContext) runAsNonRoot: true and a non-zero runAsUser. "
                    "Metaflow 2.19.39 sets neither on the Sensors of @trigger and @trigger_on_finish flows, so "
                    "this platform refuses them; a stack that accepts root sensors sets "
                    "orchestrator.argo_events.allow_root_sensors: true (docs/components/orchestrator.md).",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": SENSOR_POLICY},
        "spec": {
            "policyName": SENSOR_POLICY,
            # Deny and Warn may not be combined; Warn with Audit is the opt-out's loud-but-admitted mode.
            "validationActions": ["Deny"] if deny else ["Warn", "Audit"],
            "matchResources": {
                "namespaceSelector": {
                    "matchExpressions": [{"key": TEAM_NAMESPACE_LABEL, "operator": "Exists"}]
                }
            },
        },
    }
    return policy, binding


def _meta(name: str, ns: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ns,
        "labels": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": "argo-events",
            "app.kubernetes.io/managed-by": "mlstack",
            TEAM_LABEL: ns,
        },
    }


def sensor_rules() -> list[dict[str, Any]]:
    """What a Metaflow sensor's service account may do: create the Workflow its trigger describes (Metaflow's
    sensor has one standard Kubernetes trigger, operation unset, i.e. create: argoproj/argo-events@v1.9.10
    pkg/sensors/triggers/standard-k8s/standard-k8s.go ``Execute``, default ``Create``). The Workflow runs as the
    WorkflowTemplate's service account, so the sensor gains nothing beyond starting the team's own flows."""
    return [{"api_groups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}]


def sensor_author_rules() -> list[dict[str, Any]]:
    """What the team's members need for Metaflow to register, replace and delete their flows' Sensors
    (Netflix/metaflow@2.19.38 plugins/argo/argo_client.py: get/create/replace_namespaced_custom_object on
    sensors, delete_namespaced_custom_object), and to see the bus and webhook they use."""
    return [
        {
            "api_groups": ["argoproj.io"],
            "resources": ["sensors"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "api_groups": ["argoproj.io"],
            "resources": ["eventbus", "eventsources"],
            "verbs": ["get", "list", "watch"],
        },
    ]


def _small(cpu: str, memory: str, limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}}


def event_bus_spec(replicas: int) -> dict[str, Any]:
    """A JetStream EventBus (argoproj/argo-events@v1.9.10 pkg/apis/events/v1alpha1/jetstream_eventbus.go).

    Security needs no field: for a native JetStream bus the controller generates a user and password (account
    ``js``) and self-signed TLS certificates for client and cluster connections, keeps them in Secrets owned by
    the bus, mounts the client credentials into the EventSource and Sensor pods, and sets a JetStream
    encryption key (``key: "$JS_KEY"``) for the stored messages (pkg/reconciler/eventbus/installer/jetstream.go
    ``createSecrets``, assets/jetstream/server-auth.conf and nats.conf). Without ``persistence`` the store is an
    emptyDir (same file): events in flight survive a pod restart only through the other replicas.
    """
    container = {"securityContext": dict(RESTRICTED_CONTAINER)}
    return {
        "jetstream": {
            "version": JETSTREAM_VERSION,
            "replicas": replicas,
            # One stream replica per server at most (the chart's global streamConfig asks for 3, which a
            # one-server bus cannot place); merged over the global config (jetstream.go, viper MergeConfig).
            "streamConfig": f"replicas: {replicas}\n",
            "securityContext": restricted_pod(),
            "containerTemplate": {**container, "resources": _small("50m", "128Mi", "512Mi")},
            "reloaderContainerTemplate": {**container, "resources": _small("10m", "32Mi", "64Mi")},
            "metricsContainerTemplate": {**container, "resources": _small("10m", "32Mi", "64Mi")},
        }
    }


def webhook_event_source_spec() -> dict[str, Any]:
    """The webhook EventSource Metaflow publishes to (pkg/apis/events/v1alpha1/eventsource_types.go
    ``webhook``, webhook_context.go; ``service.ports`` makes the controller create the Service)."""
    return {
        "eventBusName": EVENT_BUS,
        "replicas": 1,
        "template": {
            "securityContext": restricted_pod(),
            "container": {
                "securityContext": dict(RESTRICTED_CONTAINER),
                "resources": _small("50m", "64Mi", "256Mi"),
            },
        },
        "service": {"ports": [{"name": "http", "port": WEBHOOK_PORT, "targetPort": WEBHOOK_PORT}]},
        "webhook": {
            EVENT_NAME: {
                "endpoint": WEBHOOK_ENDPOINT,
                "method": "POST",
                "port": str(WEBHOOK_PORT),
                "url": "",
            }
        },
    }


def argo_events_values(
    *, hardened: bool, pull_through: PullThrough, nats_through_cache: bool
) -> dict[str, Any]:
    """Helm values of argo-events 2.4.22 (argoproj/argo-helm@argo-events-2.4.22:charts/argo-events/values.yaml)."""

    def nats(image: str) -> str:
        return pull_through.image(image) if nats_through_cache else image

    return {
        # templates/crds/*.yml (`crds.install`, `crds.keep`): the release installs the three CRDs and Helm keeps
        # them on uninstall, so deleting the release never deletes every team's buses and sensors with them.
        "crds": {"install": True, "keep": True},
        "global": {
            "image": {"repository": pull_through.image(ARGO_EVENTS_IMAGE)},
            # The controller pod's securityContext (templates/argo-events-controller/deployment.yaml); the image
            # is FROM scratch with a static binary (argoproj/argo-events@v1.9.10 Dockerfile), so any user runs it.
            "securityContext": restricted_pod(),
        },
        "configs": {
            "jetstream": {
                # Only the version our buses name, with its images through the cache (values.yaml lists the
                # upstream versions; the controller accepts an EventBus only for a version in this list).
                "versions": [
                    {
                        "version": JETSTREAM_VERSION,
                        "natsImage": nats(NATS_IMAGE),
                        "metricsExporterImage": nats(NATS_METRICS_IMAGE),
                        "configReloaderImage": nats(NATS_RELOADER_IMAGE),
                        "startCommand": NATS_START_COMMAND,
                    }
                ]
            }
        },
        "controller": {
            # Cluster-wide (rbac.namespaced false): it reconciles the buses, sources and sensors of every team.
            "replicas": 2 if hardened else 1,
            "containerSecurityContext": dict(RESTRICTED_CONTAINER),
            "resources": _small("50m", "128Mi", "512Mi"),
            # values.yaml `controller.nodeSelector`, `controller.tolerations`: a platform pod, on the system nodes.
            **system_placement(),
        },
        # The validating admission webhook stays off (values.yaml `webhook.enabled`, the default): the controller
        # validates every object before it acts on it and reports errors in the object's status.
        "webhook": {"enabled": False},
    }
