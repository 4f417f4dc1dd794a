"""What in-cluster controllers build from the plan's custom objects: the pods and Services that the deploy creates
without naming them, so that capacity, admission, pod security, the pack's workload rules and network flows see
them like a chart's.

Argo Events v1.9.10 (argoproj/argo-events@v1.9.10), the controller of ``components/events.py``:

- An ``EventBus`` with ``spec.jetstream`` becomes StatefulSet ``eventbus-<name>-js`` and Service
  ``eventbus-<name>-js-svc`` (pkg/reconciler/eventbus/installer/jetstream.go ``buildStatefulSetSpec``,
  ``buildJetStreamServiceSpec``, ``generateJetStream*Name``): containers ``main`` (the version's NATS image,
  ports 4222/6222/8222), ``reloader`` and ``metrics`` (port 7777), with the images of the version the bus names
  in the controller's ConfigMap (``controller-config.yaml``: ``eventBus.jetstream.versions``); the bus's pod
  security context, node selector and tolerations; each container's security context and resources from
  ``containerTemplate``, ``reloaderContainerTemplate``, ``metricsContainerTemplate``; replicas default 3; the
  store on an emptyDir unless ``persistence`` is set; pod labels ``controller: eventbus-controller``,
  ``eventbus-name``, ``owner-name``.
- An ``EventSource`` becomes a Deployment ``<name>-eventsource-<random>`` (pkg/reconciler/eventsource/resource.go
  ``buildDeployment``, ``buildDeploymentSpec``): one container ``main`` running the controller's own image
  (``ARGO_EVENTS_IMAGE`` of the controller Deployment) with ``template.container`` applied, the template's pod
  fields, replicas default 1, labels ``controller: eventsource-controller``, ``eventsource-name``,
  ``owner-name``; and with ``spec.service.ports`` a ClusterIP Service ``<name>-eventsource-svc`` selecting them.

Sensors are created by users (Metaflow's ``argo-workflows create``), never by the plan, so none is built here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from mlstack.simulate.helm import KubeObject

EVENTS_GROUP = "argoproj.io/"
CONTROLLER_CONFIG_KEY = "controller-config.yaml"
EVENTS_IMAGE_ENV = "ARGO_EVENTS_IMAGE"
JETSTREAM_PORTS = {"client": 4222, "cluster": 6222, "monitor": 8222, "metrics": 7777}
EVENTSOURCE_METRICS_PORT = 7777  # pkg/apis/events/v1alpha1/const.go EventSourceMetricsPort


def _controller_settings(objects: Iterable[KubeObject]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The Argo Events controller's own image and its JetStream versions (version -> images), read from the
    rendered controller Deployment and ConfigMap; empty when no Argo Events controller is deployed."""
    image = ""
    versions: dict[str, dict[str, Any]] = {}
    for item in objects:
        if item.kind == "Deployment":
            for container in ((item.obj.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers"
            ) or []:
                for env in container.get("env") or []:
                    if env.get("name") == EVENTS_IMAGE_ENV and env.get("value"):
                        image = str(env["value"])
        if item.kind == "ConfigMap" and CONTROLLER_CONFIG_KEY in (item.obj.get("data") or {}):
            try:
                config = yaml.safe_load(item.obj["data"][CONTROLLER_CONFIG_KEY]) or {}
            except yaml.YAMLError:
                continue
            jetstream = ((config.get("eventBus") or {}).get("jetstream")) or {}
            for entry in jetstream.get("versions") or []:
                if isinstance(entry, dict) and entry.get("version") is not None:
                    versions[str(entry["version"])] = entry
    return image, versions


def _meta(item: KubeObject, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": item.namespace, "labels": dict(labels)}


def _derived(item: KubeObject, obj: dict[str, Any]) -> KubeObject:
    """An object the controller creates for ``item``, blamed on the plan resource that creates ``item``."""
    origin = f"{item.kind} {item.namespace}/{item.name}"
    return KubeObject(obj, item.urn, release="argo-events controller", template=origin)


def _container(base: dict[str, Any], template: dict[str, Any] | None) -> dict[str, Any]:
    template = template or {}
    if template.get("resources"):
        base["resources"] = copy.deepcopy(template["resources"])
    if template.get("securityContext"):
        base["securityContext"] = copy.deepcopy(template["securityContext"])
    return base


def _event_bus(item: KubeObject, versions: dict[str, dict[str, Any]]) -> Iterator[KubeObject]:
    js = (item.obj.get("spec") or {}).get("jetstream")
    if not isinstance(js, dict):
        return
    version = versions.get(str(js.get("version", "")), {})
    labels = {"controller": "eventbus-controller", "eventbus-name": item.name, "owner-name": item.name}
    pod_labels = {**((js.get("metadata") or {}).get("labels") or {}), **labels}
    config = f"eventbus-{item.name}-js-config"
    volumes: list[dict[str, Any]] = [
        {"name": "pid", "emptyDir": {}},
        {"name": "config-volume", "projected": {"sources": [{"configMap": {"name": config}}]}},
    ]
    if not js.get("persistence"):
        volumes.append({"name": "js-data", "emptyDir": {}})
    mounts = [
        {"name": "config-volume", "mountPath": "/etc/nats-config"},
        {"name": "pid", "mountPath": "/var/run/nats"},
    ]
    main = _container(
        {
            "name": "main",
            "image": str(version.get("natsImage", "")),
            "ports": [{"name": n, "containerPort": p} for n, p in JETSTREAM_PORTS.items() if n != "metrics"],
            "volumeMounts": [*mounts, {"name": "js-data", "mountPath": "/data/jetstream"}],
        },
        js.get("containerTemplate"),
    )
    reloader = _container(
        {"name": "reloader", "image": str(version.get("configReloaderImage", "")), "volumeMounts": mounts},
        js.get("reloaderContainerTemplate"),
    )
    metrics = _container(
        {
            "name": "metrics",
            "image": str(version.get("metricsExporterImage", "")),
            "ports": [{"name": "metrics", "containerPort": JETSTREAM_PORTS["metrics"]}],
        },
        js.get("metricsContainerTemplate"),
    )
    pod: dict[str, Any] = {
        "shareProcessNamespace": True,
        "containers": [main, reloader, metrics],
        "volumes": volumes,
    }
    for field in ("securityContext", "nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if js.get(field):
            pod[field] = copy.deepcopy(js[field])
    name = f"eventbus-{item.name}-js"
    yield _derived(
        item,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(item, name, labels),
            "spec": {
                "replicas": int(js.get("replicas") or 3),
                "serviceName": f"{name}-svc",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": pod_labels}, "spec": pod},
            },
        },
    )
    yield _derived(
        item,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(item, f"{name}-svc", labels),
            "spec": {
                "clusterIP": "None",
                "selector": labels,
                "ports": [{"name": n, "port": p} for n, p in JETSTREAM_PORTS.items()],
            },
        },
    )


def _event_source(item: KubeObject, image: str) -> Iterator[KubeObject]:
    spec = item.obj.get("spec") or {}
    template = spec.get("template") or {}
    labels = {"controller": "eventsource-controller", "eventsource-name": item.name, "owner-name": item.name}
    pod_labels = {**((template.get("metadata") or {}).get("labels") or {}), **labels}
    container = _container(
        {
            "name": "main",
            "image": image,
            "args": ["eventsource-service"],
            "ports": [{"name": "metrics", "containerPort": EVENTSOURCE_METRICS_PORT}],
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - the pod's emptyDir
        },
        template.get("container"),
    )
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [*(template.get("volumes") or []), {"name": "tmp", "emptyDir": {}}],
    }
    for field in (
        "serviceAccountName",
        "securityContext",
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
    ):
        if template.get(field):
            pod[field] = copy.deepcopy(template[field])
    yield _derived(
        item,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(
                item,
                f"{item.name}-eventsource",
                {**(item.obj.get("metadata") or {}).get("labels", {}), **labels},
            ),
            "spec": {
                "replicas": int(spec.get("replicas") or 1),
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": pod_labels}, "spec": pod},
            },
        },
    )
    ports = (spec.get("service") or {}).get("ports") or []
    if ports:
        yield _derived(
            item,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(item, f"{item.name}-eventsource-svc", labels),
                "spec": {"type": "ClusterIP", "selector": labels, "ports": copy.deepcopy(ports)},
            },
        )


def argo_events_objects(ours: Iterable[KubeObject], charts: Iterable[KubeObject]) -> list[KubeObject]:
    """The StatefulSets, Deployments and Services the Argo Events controller builds from the plan's EventBus and
    EventSource objects; none when the plan deploys no Argo Events controller."""
    charts = list(charts)
    image, versions = _controller_settings(charts)
    if not image:
        return []
    built: list[KubeObject] = []
    for item in [*ours, *charts]:
        if not item.api_version.startswith(EVENTS_GROUP) or not item.namespace:
            continue
        if item.kind == "EventBus":
            built += _event_bus(item, versions)
        elif item.kind == "EventSource":
            built += _event_source(item, image)
    return built
