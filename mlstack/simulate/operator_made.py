"""Workloads an operator creates from a custom resource: the Prometheus Operator's StatefulSet per Prometheus.

A chart that ships a ``Prometheus`` object (kube-prometheus-stack) renders no Prometheus pods: the operator
builds their StatefulSet at run time. The capacity, network and workload checks must still see those pods, so
this module builds the StatefulSet the operator would, from the rendered ``Prometheus`` and the operator's own
Deployment (its ``--prometheus-config-reloader`` and ``--config-reloader-*`` arguments).

Source: prometheus-operator/prometheus-operator@v0.93.0 (the chart's operator is v0.93.1; the snapshot holds no
v0.93.1 tag, and none of the 24 commits after v0.93.0 touches these files):

- ``pkg/prometheus/operator.go`` ``statefulSetNameFromPrometheusName``: "prometheus-<name>" for shard 0.
- ``pkg/prometheus/server/operator.go`` ``makeSelectorLabels`` and ``pkg/prometheus/common.go``
  ``ShardLabelName``: the pod labels.
- ``pkg/prometheus/server/statefulset.go`` ``makeStatefulSetSpec``: containers ``prometheus`` (the CR's
  ``resources``, read-only root, no escalation, all capabilities dropped) and ``config-reloader``, init container
  ``init-config-reloader``, the CR's pod ``securityContext`` and ``serviceAccountName``, ``replicas``.
- ``pkg/operator/config_reloader.go`` ``CreateConfigReloader``: the reloader's resources from the operator's
  flags, the same restricted security context.
- ``pkg/prometheus/statefulset.go``/``MakeContainerPorts``: the web port 9090 (``portName``, default "web").

Only what the checks read is built (names, labels, containers with images, resources, security contexts and
ports, the pod security context, service account, volumes' claims and replicas).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlstack.simulate.helm import KubeObject

_RESTRICTED = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
_RELOADER_PORT = 8080  # pkg/operator/config_reloader.go: the reloader's web port ("reloader-web")
_PROMETHEUS_PORT = 9090


def operator_made(objects: Iterable[KubeObject]) -> list[KubeObject]:
    """The StatefulSets the Prometheus Operator would create for the ``Prometheus`` objects among ``objects``,
    attributed to the same release (so findings are blamed on it)."""
    items = list(objects)
    reloader = _reloader_settings(items)
    made = []
    builders = {"Prometheus": _prometheus_statefulset, "Alertmanager": _alertmanager_statefulset}
    for item in items:
        build = builders.get(item.kind)
        if build is not None and item.api_version == "monitoring.coreos.com/v1":
            made.append(
                KubeObject(
                    build(item, reloader),
                    item.urn,
                    item.release,
                    f"{item.template} (StatefulSet the Prometheus Operator creates)",
                    item.default_namespace,
                )
            )
    return made


def _reloader_settings(items: list[KubeObject]) -> dict[str, Any]:
    """The config reloader's image and resources from the operator Deployment's arguments (a "0" is unset)."""
    for item in items:
        if item.kind != "Deployment":
            continue
        for container in ((item.obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
            args = [str(a) for a in container.get("args") or []]
            flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
            if "prometheus-config-reloader" not in flags:
                continue
            requests = {
                k: v
                for k, v in (
                    ("cpu", flags.get("config-reloader-cpu-request", "0")),
                    ("memory", flags.get("config-reloader-memory-request", "0")),
                )
                if v != "0"
            }
            limits = {
                k: v
                for k, v in (
                    ("cpu", flags.get("config-reloader-cpu-limit", "0")),
                    ("memory", flags.get("config-reloader-memory-limit", "0")),
                )
                if v != "0"
            }
            return {"image": flags["prometheus-config-reloader"], "resources": {"requests": requests, "limits": limits}}
    return {"image": "", "resources": {}}


def _prometheus_statefulset(item: KubeObject, reloader: dict[str, Any]) -> dict[str, Any]:
    spec = item.obj.get("spec") or {}
    name = item.name
    selector = {
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/instance": name,
        "operator.prometheus.io/name": name,
        "prometheus": name,
        "operator.prometheus.io/shard": "0",
    }
    labels = {**((spec.get("podMetadata") or {}).get("labels") or {}), **selector}
    reloader_container = {
        "image": reloader["image"],
        "resources": reloader["resources"],
        "securityContext": dict(_RESTRICTED),
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.get("serviceAccountName", ""),
        "automountServiceAccountToken": spec.get("automountServiceAccountToken", True),
        "securityContext": spec.get("securityContext") or {},
        "initContainers": [{"name": "init-config-reloader", **reloader_container}],
        "containers": [
            {
                "name": "prometheus",
                "image": spec.get("image", ""),
                "ports": [{"name": spec.get("portName", "web"), "containerPort": _PROMETHEUS_PORT}],
                "resources": spec.get("resources") or {},
                "securityContext": dict(_RESTRICTED),
            },
            {
                "name": "config-reloader",
                "ports": [{"name": "reloader-web", "containerPort": _RELOADER_PORT}],
                **reloader_container,
            },
        ],
        "hostNetwork": bool(spec.get("hostNetwork", False)),
    }
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    storage = spec.get("storage") or {}
    statefulset_spec: dict[str, Any] = {
        "replicas": int(spec.get("replicas", 1)),
        "serviceName": "prometheus-operated",
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    claim = storage.get("volumeClaimTemplate")
    if claim:
        statefulset_spec["volumeClaimTemplates"] = [{"metadata": {"name": f"prometheus-{name}-db"}, "spec": claim.get("spec") or {}}]
    else:
        pod_spec["volumes"] = [{"name": f"prometheus-{name}-db", "emptyDir": storage.get("emptyDir") or {}}]
    if spec.get("persistentVolumeClaimRetentionPolicy"):
        statefulset_spec["persistentVolumeClaimRetentionPolicy"] = spec["persistentVolumeClaimRetentionPolicy"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": f"prometheus-{name}", "namespace": item.namespace, "labels": dict(selector)},
        "spec": statefulset_spec,
    }


def _alertmanager_statefulset(item: KubeObject, reloader: dict[str, Any]) -> dict[str, Any]:
    """pkg/alertmanager/statefulset.go (v0.93.0): "alertmanager-<name>", containers ``alertmanager`` (the CR's
    ``resources``, web port 9093 named ``portName``, mesh 9094 TCP and UDP) and ``config-reloader``, init container
    ``init-config-reloader``; labels from pkg/alertmanager/operator.go ``makeSelectorLabels``."""
    spec = item.obj.get("spec") or {}
    name = item.name
    selector = {
        "app.kubernetes.io/name": "alertmanager",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": name,
        "alertmanager": name,
    }
    labels = {**((spec.get("podMetadata") or {}).get("labels") or {}), **selector}
    reloader_container = {"image": reloader["image"], "resources": reloader["resources"], "securityContext": dict(_RESTRICTED)}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.get("serviceAccountName", ""),
        "securityContext": spec.get("securityContext") or {},
        "initContainers": [{"name": "init-config-reloader", **reloader_container}],
        "containers": [
            {
                "name": "alertmanager",
                "image": spec.get("image", ""),
                "ports": [
                    {"name": spec.get("portName", "web"), "containerPort": 9093, "protocol": "TCP"},
                    {"name": "mesh-tcp", "containerPort": 9094, "protocol": "TCP"},
                    {"name": "mesh-udp", "containerPort": 9094, "protocol": "UDP"},
                ],
                "resources": spec.get("resources") or {},
                "securityContext": dict(_RESTRICTED),
            },
            {"name": "config-reloader", "ports": [{"name": "reloader-web", "containerPort": _RELOADER_PORT}], **reloader_container},
        ],
    }
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": f"alertmanager-{name}", "namespace": item.namespace, "labels": dict(selector)},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "serviceName": "alertmanager-operated",
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
