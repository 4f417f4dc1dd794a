"""Pods JupyterHub's KubeSpawner creates at run time: one notebook server per profile, in the profile's namespace.

No chart renders them: the hub builds each pod when a user starts a server. The admission (LimitRange, quota,
Pod Security), capacity ("can it run on its pool"), workload and network checks must still see them, so this
module builds, for every profile the hub offers, the pod KubeSpawner would create, from the rendered hub Secret's
``values.yaml`` (the file the hub's ``z2jh.get_config`` reads: zero-to-jupyterhub-k8s@4.4.0
jupyterhub/templates/hub/secret.yaml) and mlstack's profile list in it (``custom.mlstack.teams``,
components/notebooks.py).

Source: jupyterhub/kubespawner@7.0.0 (the hub image of chart 4.4.0):

- ``kubespawner/objects.py`` ``make_pod``: container ``notebook`` with port ``notebook-port`` (the spawner's
  ``port``, 8888), requests from ``cpu_guarantee``/``mem_guarantee``/``extra_resource_guarantees`` and limits
  from ``cpu_limit``/``mem_limit``/``extra_resource_limits``; the container security context from ``uid``,
  ``gid``, ``allow_privilege_escalation`` updated with ``container_security_context``, the pod's from
  ``fs_gid`` updated with ``pod_security_context``; ``restart_policy`` OnFailure; ``automountServiceAccountToken``.
- ``kubespawner/spawner.py`` ``_build_pod_labels``: the chart's common labels (jupyterhub_config.py), the
  profile's ``extra_labels`` and ``component``/``app.kubernetes.io/component`` = ``singleuser-server``.
- A profile's ``kubespawner_override`` replaces list traits (tolerations) and merges dict traits (node_selector,
  extra_labels) into the chart's settings (spawner.py ``profile_list`` help, ``_apply_overrides``).

Each server is modelled as a one-pod Job: it must fit its namespace's quota and some node of its pool, but it
exists only while a user runs it, so it holds no capacity at idle (mlstack.simulate.pods ``transient``). Only what
the checks read is built.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any

from mlstack.simulate.helm import KubeObject
from mlstack.yaml_loading import fast_safe_load

SERVER_PORT = 8888  # kubespawner@7.0.0 spawner.py `port` default
COMPONENT = "singleuser-server"  # spawner.py `component_label` default


def spawner_made(objects: Iterable[KubeObject]) -> list[KubeObject]:
    """One notebook-server Job per profile of every JupyterHub release among ``objects`` (found by its hub
    Secret), attributed to that release."""
    made: list[KubeObject] = []
    for item in objects:
        if item.kind != "Secret" or not item.template.endswith("templates/hub/secret.yaml"):
            continue
        values = _values(item)
        if values is None:
            continue
        teams = ((values.get("custom") or {}).get("mlstack") or {}).get("teams") or {}
        for team in sorted(teams):
            for profile in (teams[team] or {}).get("profiles") or []:
                made.append(
                    KubeObject(
                        server_job(values, profile),
                        item.urn,
                        item.release,
                        f"{item.template} (notebook server KubeSpawner creates for profile "
                        f"{profile.get('slug')}, modelled as a one-pod Job)",
                        item.default_namespace,
                    )
                )
    return made


def _values(secret: KubeObject) -> dict[str, Any] | None:
    data = (secret.obj.get("data") or {}).get("values.yaml")
    if not isinstance(data, str):
        return None
    loaded = fast_safe_load(base64.b64decode(data))
    return loaded if isinstance(loaded, dict) else None


def _chart_labels(values: dict[str, Any]) -> dict[str, str]:
    """jupyterhub_config.py ``common_labels`` (app/release and their app.kubernetes.io twins, chart, managed-by)."""
    chart = values.get("Chart") or {}
    release = (values.get("Release") or {}).get("Name") or ""
    name = values.get("nameOverride") or chart.get("Name") or "jupyterhub"
    labels = {"app.kubernetes.io/name": name, "app": name, "app.kubernetes.io/managed-by": "kubespawner"}
    if release:
        labels["app.kubernetes.io/instance"] = labels["release"] = release
    if chart.get("Name") and chart.get("Version"):
        labels["helm.sh/chart"] = labels["chart"] = f"{chart['Name']}-{str(chart['Version']).replace('+', '_')}"
    return labels


def _str_quantity(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _resources(settings: dict[str, Any]) -> dict[str, dict[str, str]]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for key, target, name in (
        ("cpu_guarantee", requests, "cpu"),
        ("mem_guarantee", requests, "memory"),
        ("cpu_limit", limits, "cpu"),
        ("mem_limit", limits, "memory"),
    ):
        if settings.get(key):
            target[name] = _str_quantity(settings[key])
    requests.update({k: _str_quantity(v) for k, v in (settings.get("extra_resource_guarantees") or {}).items()})
    limits.update({k: _str_quantity(v) for k, v in (settings.get("extra_resource_limits") or {}).items()})
    return {"requests": requests, "limits": limits}


def _chart_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The KubeSpawner settings the chart's jupyterhub_config.py derives from ``singleuser`` and ``hub.config``
    that the checks read (before a profile's overrides)."""
    single = values.get("singleuser") or {}
    scheduling = (values.get("scheduling") or {}).get("userPods") or {}
    image = single.get("image") or {}
    cpu, memory = single.get("cpu") or {}, single.get("memory") or {}
    extra_resource = single.get("extraResource") or {}
    settings: dict[str, Any] = {
        "image": f"{image.get('name')}:{image.get('tag')}" if image.get("tag") else image.get("name"),
        "uid": single.get("uid"),
        "fs_gid": single.get("fsGid"),
        "allow_privilege_escalation": single.get("allowPrivilegeEscalation"),
        "service_account": single.get("serviceAccountName"),
        "node_selector": dict(single.get("nodeSelector") or {}),
        "tolerations": [*(scheduling.get("tolerations") or []), *(single.get("extraTolerations") or [])],
        "extra_labels": dict(single.get("extraLabels") or {}),
        "cpu_guarantee": cpu.get("guarantee"),
        "cpu_limit": cpu.get("limit"),
        "mem_guarantee": memory.get("guarantee"),
        "mem_limit": memory.get("limit"),
        "extra_resource_guarantees": dict(extra_resource.get("guarantees") or {}),
        "extra_resource_limits": dict(extra_resource.get("limits") or {}),
        "automount_service_account_token": None,
        "namespace": (values.get("Release") or {}).get("Namespace"),
    }
    settings.update(((values.get("hub") or {}).get("config") or {}).get("KubeSpawner") or {})
    return settings


def _apply(settings: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(settings)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def server_job(values: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    """The pod KubeSpawner would create for ``profile``, wrapped in a one-pod Job in its namespace."""
    settings = _apply(_chart_settings(values), profile.get("kubespawner_override") or {})
    labels = {
        **{str(k): str(v) for k, v in (settings.get("extra_labels") or {}).items()},
        **_chart_labels(values),
        "component": COMPONENT,
        "app.kubernetes.io/component": COMPONENT,
    }
    container_context: dict[str, Any] = {}
    if settings.get("uid") is not None:
        container_context["runAsUser"] = int(settings["uid"])
    if settings.get("gid") is not None:
        container_context["runAsGroup"] = int(settings["gid"])
    if settings.get("allow_privilege_escalation") is not None:
        container_context["allowPrivilegeEscalation"] = settings["allow_privilege_escalation"]
    container_context.update(settings.get("container_security_context") or {})
    pod_context: dict[str, Any] = {}
    if settings.get("fs_gid") is not None:
        pod_context["fsGroup"] = int(settings["fs_gid"])
    pod_context.update(settings.get("pod_security_context") or {})
    pod: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "containers": [
            {
                "name": "notebook",
                "image": settings.get("image"),
                "ports": [{"name": "notebook-port", "containerPort": SERVER_PORT}],
                "resources": _resources(settings),
                **({"securityContext": container_context} if container_context else {}),
            }
        ],
        **({"securityContext": pod_context} if pod_context else {}),
        **({"nodeSelector": settings["node_selector"]} if settings.get("node_selector") else {}),
        **({"tolerations": settings["tolerations"]} if settings.get("tolerations") else {}),
    }
    if settings.get("service_account"):
        pod["serviceAccountName"] = settings["service_account"]
    automount = settings.get("automount_service_account_token")
    if automount is None and not settings.get("service_account"):
        automount = False
    if automount is not None:
        pod["automountServiceAccountToken"] = bool(automount)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"jupyter-{profile.get('slug')}",
            "namespace": settings.get("namespace"),
            "labels": labels,
        },
        "spec": {"parallelism": 1, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def server_pods(objects: Iterable[KubeObject]) -> Iterator[KubeObject]:
    """The modelled notebook servers among ``objects``."""
    for item in objects:
        if item.kind == "Job" and (item.obj.get("metadata") or {}).get("labels", {}).get("component") == COMPONENT:
            yield item
