"""The Kubernetes side of a plan: every object the deploy would apply, ours and the charts'.

Our objects are the plan's ``kubernetes:*`` resources rebuilt from their recorded inputs. Chart objects come
from rendering each Helm release (:mod:`mlstack.simulate.helm`); a namespaced chart object without a namespace
lands in its release's namespace. Scope (namespaced or cluster-wide) of custom kinds is read from the CRDs the
plan installs (ours and the charts') and from ``shared/crds``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlstack.simulate.framework import World, derived
from mlstack.simulate.helm import (
    BUILTIN_CLUSTER_SCOPED_KINDS,
    RELEASE_TYPE,
    KubeObject,
    Renderer,
    RenderResult,
    charts_directory,
    shared_folder,
    unwrap_secrets,
)
from mlstack.simulate.operator_made import operator_made
from mlstack.simulate.operators import argo_events_objects
from mlstack.simulate.spawner_made import spawner_made

# Pulumi types that wrap Kubernetes objects rather than being one.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "pulumi:providers:kubernetes", "kubernetes:yaml")
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@derived
def renders(world: World) -> list[RenderResult]:
    """Every Helm release of the plan rendered (or the reason it could not be), in plan order."""
    cluster = world.spec.cluster
    kube_version = str(getattr(cluster, "kubernetes_version", "1.34"))
    root = world.project_root
    renderer = Renderer(charts_directory(root), root / "build" / "cache" / "helm", kube_version)
    return [renderer.render(release) for release in world.resources(RELEASE_TYPE)]


@derived
def our_objects(world: World) -> list[KubeObject]:
    """The plan's own Kubernetes objects, as the API server would receive them."""
    objects = []
    for resource in world.plan.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
            continue
        if "apiVersion" in resource.inputs and "kind" in resource.inputs:
            objects.append(KubeObject(obj=unwrap_secrets(copy.deepcopy(resource.inputs)), urn=resource.urn))
    return objects


@derived
def crd_scopes(world: World) -> dict[str, str]:
    """Custom kind -> ``Namespaced`` or ``Cluster``, from every CRD known to the plan and shared/crds."""
    scopes: dict[str, str] = {}
    for crd in shared_crds(world.project_root):
        scopes[crd["spec"]["names"]["kind"]] = crd["spec"].get("scope", "Namespaced")
    for result in renders(world):
        for item in result.objects:
            if item.kind == "CustomResourceDefinition":
                spec = item.obj.get("spec") or {}
                scopes[(spec.get("names") or {}).get("kind", "")] = spec.get("scope", "Namespaced")
    for item in our_objects(world):
        if item.kind == "CustomResourceDefinition":
            spec = item.obj.get("spec") or {}
            scopes[(spec.get("names") or {}).get("kind", "")] = spec.get("scope", "Namespaced")
    return scopes


def is_cluster_scoped(world: World, kind: str) -> bool:
    return kind in BUILTIN_CLUSTER_SCOPED_KINDS or crd_scopes(world).get(kind) == "Cluster"


@derived
def chart_objects(world: World) -> list[KubeObject]:
    """Every object of every rendered release, namespaced objects placed in their release namespace, then what
    the Argo Events controller builds from the plan's EventBus and EventSource objects (:mod:`operators`)."""
    placed = []
    for result in renders(world):
        for item in _flattened(result.objects):
            if not item.namespace and not is_cluster_scoped(world, item.kind):
                obj = copy.deepcopy(item.obj)
                obj.setdefault("metadata", {})["namespace"] = item.default_namespace
                item = KubeObject(obj, item.urn, item.release, item.template, item.default_namespace)
            placed.append(item)
    # Pods and Services that in-cluster controllers build from the plan's custom objects, checked like a chart's.
    placed += argo_events_objects(our_objects(world), placed)
    # What the Prometheus Operator builds from the rendered Prometheus objects (mlstack.simulate.operator_made).
    placed.extend(operator_made(placed))
    # The notebook servers JupyterHub's KubeSpawner creates per profile (mlstack.simulate.spawner_made).
    placed.extend(spawner_made(placed))
    return placed


def _flattened(objects: Iterable[KubeObject]) -> Iterator[KubeObject]:
    """Objects with each ``v1 List`` document replaced by its items: Helm builds a release's manifest with
    the resource builder's ``Flatten()`` (helm/helm@v3.20.2:pkg/kube/client.go:336-341), so a template that
    renders a List creates its items, never a List."""
    for item in objects:
        if (
            item.api_version == "v1"
            and item.kind.endswith("List")
            and isinstance(item.obj.get("items"), list)
        ):
            for element in item.obj["items"]:
                if isinstance(element, dict) and element.get("kind"):
                    yield KubeObject(element, item.urn, item.release, item.template, item.default_namespace)
        else:
            yield item


@derived
def all_objects(world: World) -> list[KubeObject]:
    """Ours and the charts', in plan order."""
    return [*our_objects(world), *chart_objects(world)]


def of_kind(world: World, *kinds: str) -> list[KubeObject]:
    wanted = set(kinds)
    return [item for item in all_objects(world) if item.kind in wanted]


def pod_spec(item: KubeObject) -> dict[str, Any] | None:
    """The pod spec a workload object creates (a Pod's own spec, a template's, a CronJob's job template's)."""
    spec = item.obj.get("spec") or {}
    if item.kind == "Pod":
        return spec
    if item.kind in POD_TEMPLATE_KINDS:
        return ((spec.get("template") or {}).get("spec")) or None
    if item.kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or None
    return None


def workloads(world: World) -> Iterator[tuple[KubeObject, dict[str, Any]]]:
    """Every object that creates pods, with its pod spec."""
    for item in all_objects(world):
        spec = pod_spec(item)
        if spec is not None:
            yield item, spec


def containers(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Init and regular containers of a pod spec."""
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against a label set; an absent or empty
    selector matches everything (apimachinery ``LabelSelectorAsSelector``)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key")), str(expression.get("operator"))
        values = {str(v) for v in expression.get("values") or []}
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def shared_crds(root: Path) -> list[dict[str, Any]]:
    """The upstream CRDs in the nearest ``shared/crds`` (empty when there is none)."""
    folder = shared_folder("crds", root)
    return _crds_in(folder) if folder is not None else []


@cache
def _crds_in(folder: Path) -> list[dict[str, Any]]:
    # libyaml's loader when PyYAML has it: the pure-Python one takes seconds over the 330 kB of upstream CRDs.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [yaml.load(p.read_text(encoding="utf-8"), Loader=loader) for p in sorted(folder.glob("*.yaml"))]  # noqa: S506
