"""The pods the deploy creates, as the API server would store them: replica counts at idle and at peak, and
resources after the API's defaulting and the LimitRanger admission plugin.

Sources, read at the cluster's version (Kubernetes 1.34):

- Defaulting: a container limit with no request gets the limit as its request (kubernetes.io/docs/concepts/
  configuration/manage-resources-containers: "If you specify a limit for a resource, but do not specify any
  request ... Kubernetes copies the limit"); a LimitRange ``default`` without ``defaultRequest`` defaults the
  request, and ``max`` defaults ``default`` (kubernetes/kubernetes pkg/apis/core/v1/defaults.go
  ``SetDefaults_LimitRangeItem``).
- LimitRanger (kubernetes/kubernetes plugin/pkg/admission/limitranger/admission.go, the current form with
  ``PodMutateLimitFunc``/``PodValidateLimitFunc``; the kubernetes repository is too large to snapshot here, so the
  exact 1.34 tag was not pinned): ``mergePodResourceRequirements`` merges the Container defaults into every
  container and init container where a resource is absent; ``PodValidateLimitFunc`` enforces
  ``min``/``max``/``maxLimitRequestRatio`` per container and init container, and per Pod on ``podRequests`` and
  ``podLimits`` (the sum of containers and sidecars, or the largest init container if larger).
- Replicas: a Deployment/StatefulSet/ReplicaSet's ``spec.replicas`` (default 1), or its autoscaler's range: an
  HPA's ``minReplicas`` (default 1) and ``maxReplicas``; a KEDA ScaledObject's ``minReplicaCount`` (default 0)
  and ``maxReplicaCount`` (default 100; keda.sh/docs/2.14/reference/scaledobject-spec, not re-read at 2.20); an HTTPScaledObject's
  ``replicas.min``/``replicas.max`` (http-add-on v0.15 CRD; no default is documented, so a missing ``max`` is
  reported as not evaluable). A Job runs ``parallelism`` pods (default 1), a CronJob one Job at a time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from mlstack.simulate import quantity
from mlstack.simulate.framework import World, derived
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.objects import all_objects, containers, workloads

SCALABLE = ("Deployment", "StatefulSet", "ReplicaSet")
# Resources the API treats as overcommittable; any other (extended) resource needs request == limit.
# kubernetes/kubernetes pkg/apis/core/helper: IsOvercommitAllowed (native resources and hugepages aside).
_NATIVE = ("cpu", "memory", "ephemeral-storage")


@dataclass
class Scaling:
    """The replica range of one workload and where it comes from."""

    idle: int
    peak: int
    source: str
    unknown: list[str] = field(default_factory=list)


@dataclass
class PodTemplate:
    """One workload's pods after defaulting and LimitRanger: what the scheduler and quota see."""

    item: KubeObject
    spec: dict[str, Any]
    labels: dict[str, str]
    scaling: Scaling
    limit_ranges: list[KubeObject]
    # Why the API server would reject the pods (LimitRanger or resource validation), one line each.
    rejections: list[str] = field(default_factory=list)
    # Facts the simulation could not evaluate for these pods.
    unknown: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.item.namespace

    @property
    def kind(self) -> str:
        return self.item.kind

    @property
    def transient(self) -> bool:
        """Jobs and CronJobs run to completion: they must fit somewhere, but do not hold capacity at idle."""
        return self.kind in ("Job", "CronJob")

    def requests(self) -> quantity.Resources:
        """The pod's effective request: max(sum of containers, largest init container) + overhead, per resource
        (kubernetes/kubernetes pkg/api/v1/resource ``PodRequests``; restartable init sidecars are summed)."""
        return pod_requests(self.spec)


def pod_requests(spec: dict[str, Any]) -> quantity.Resources:
    return quantity.add(_pod_total(spec, "requests"), quantity.resource_list(spec.get("overhead")))


def pod_limits(spec: dict[str, Any]) -> quantity.Resources:
    """LimitRanger's ``podLimits``: as ``podRequests``, over limits."""
    return _pod_total(spec, "limits")


def _pod_total(spec: dict[str, Any], which: str) -> quantity.Resources:
    regular: quantity.Resources = {}
    sidecars: quantity.Resources = {}
    for container in spec.get("containers") or []:
        regular = quantity.add(regular, _resources_of(container, which))
    init_peak: quantity.Resources = {}
    for container in spec.get("initContainers") or []:
        own = _resources_of(container, which)
        if container.get("restartPolicy") == "Always":
            sidecars = quantity.add(sidecars, own)
            continue
        # A regular init container runs beside the sidecars started before it.
        running = quantity.add(sidecars, own)
        for name, amount in running.items():
            init_peak[name] = max(init_peak.get(name, Fraction(0)), amount)
    out = quantity.add(regular, sidecars)
    for name, amount in init_peak.items():
        out[name] = max(out.get(name, Fraction(0)), amount)
    return out


def _resources_of(container: dict[str, Any], which: str) -> quantity.Resources:
    resources = container.get("resources") or {}
    return quantity.resource_list(resources.get(which))


@derived
def scalers(world: World) -> dict[tuple[str, str, str], Scaling]:
    """(namespace, kind, name) of a scale target -> its autoscaler's replica range."""
    found: dict[tuple[str, str, str], Scaling] = {}
    for item in all_objects(world):
        spec = item.obj.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if item.kind == "HorizontalPodAutoscaler":
            key = (item.namespace, str(ref.get("kind", "")), str(ref.get("name", "")))
            found[key] = Scaling(int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)), item.label)
        elif item.kind == "ScaledObject":
            key = (item.namespace, str(ref.get("kind") or "Deployment"), str(ref.get("name", "")))
            found[key] = Scaling(
                int(spec.get("minReplicaCount", 0)), int(spec.get("maxReplicaCount", 100)), item.label
            )
        elif item.kind == "HTTPScaledObject":
            replicas = spec.get("replicas") or {}
            key = (item.namespace, str(ref.get("kind") or "Deployment"), str(ref.get("name", "")))
            unknown = (
                [] if "max" in replicas else [f"{item.label} sets no replicas.max (no documented default)"]
            )
            low = int(replicas.get("min", 0))
            found[key] = Scaling(low, int(replicas.get("max", max(low, 1))), item.label, unknown)
    return found


def _scaling(world: World, item: KubeObject) -> Scaling:
    spec = item.obj.get("spec") or {}
    if item.kind in SCALABLE:
        scaler = scalers(world).get((item.namespace, item.kind, item.name))
        if scaler is not None:
            return scaler
        replicas = int(spec.get("replicas", 1))
        return Scaling(replicas, replicas, f"{item.kind} spec.replicas")
    if item.kind == "Job":
        parallelism = int(spec.get("parallelism", 1))
        return Scaling(parallelism, parallelism, "Job spec.parallelism")
    if item.kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        parallelism = int(job.get("parallelism", 1))
        return Scaling(parallelism, parallelism, "CronJob jobTemplate parallelism")
    # DaemonSets: one per matching node (the capacity module places them); a bare Pod: one.
    return Scaling(1, 1, item.kind)


@derived
def limit_ranges(world: World) -> dict[str, list[KubeObject]]:
    by_namespace: dict[str, list[KubeObject]] = {}
    for item in all_objects(world):
        if item.kind == "LimitRange":
            by_namespace.setdefault(item.namespace, []).append(item)
    return by_namespace


@derived
def pod_templates(world: World) -> list[PodTemplate]:
    """Every workload's pods, defaulted and checked by LimitRanger and resource validation."""
    templates = []
    for item, raw_spec in workloads(world):
        spec = copy.deepcopy(raw_spec)
        template = _template_of(item)
        labels = {str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}
        ranges = limit_ranges(world).get(item.namespace, [])
        pod = PodTemplate(item, spec, labels, _scaling(world, item), ranges)
        pod.unknown.extend(pod.scaling.unknown)
        try:
            _admit(pod)
        except quantity.BadQuantity as error:
            pod.unknown.append(f"cannot evaluate resources of {item.label}: {error}")
        templates.append(pod)
    return templates


def _template_of(item: KubeObject) -> dict[str, Any]:
    spec = item.obj.get("spec") or {}
    if item.kind == "Pod":
        return item.obj
    if item.kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    return spec.get("template") or {}


def _limit_range_defaults(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``default`` and ``defaultRequest`` of a Container limit, completed as SetDefaults_LimitRangeItem does."""
    default = dict(item.get("default") or {})
    for name, value in (item.get("max") or {}).items():
        default.setdefault(name, value)
    default_request = dict(item.get("defaultRequest") or {})
    for name, value in default.items():
        default_request.setdefault(name, value)
    for name, value in (item.get("min") or {}).items():
        default_request.setdefault(name, value)
    return default, default_request


def _admit(pod: PodTemplate) -> None:
    # 1. API defaulting: a limit without a request gives the request (every container, init ones included).
    for container in containers(pod.spec):
        resources = container.setdefault("resources", {}) or {}
        container["resources"] = resources
        limits = resources.get("limits") or {}
        requests = resources.setdefault("requests", {}) or {}
        resources["requests"] = requests
        for name, value in limits.items():
            requests.setdefault(name, value)
    # 2. LimitRanger: merge each LimitRange's Container defaults into every container, then enforce bounds.
    injected: dict[tuple[str, str, str], str] = {}
    for limit_range in pod.limit_ranges:
        for entry in (limit_range.obj.get("spec") or {}).get("limits") or []:
            if entry.get("type") != "Container":
                continue
            default, default_request = _limit_range_defaults(entry)
            for container in containers(pod.spec):
                resources = container["resources"]
                limits = resources.setdefault("limits", {}) or {}
                resources["limits"] = limits
                for name, value in default.items():
                    if name not in limits:
                        limits[name] = value
                        injected[(container.get("name", ""), "limit", name)] = limit_range.label
                for name, value in default_request.items():
                    if name not in resources["requests"]:
                        resources["requests"][name] = value
                        injected[(container.get("name", ""), "request", name)] = limit_range.label
    for limit_range in pod.limit_ranges:
        for entry in (limit_range.obj.get("spec") or {}).get("limits") or []:
            _enforce_bounds(pod, limit_range, entry)
    # 3. Resource validation (ValidateResourceRequirements): request <= limit; extended resources request == limit.
    for container in containers(pod.spec):
        name = container.get("name", "")
        requests = quantity.resource_list(container["resources"].get("requests"))
        limits = quantity.resource_list(container["resources"].get("limits"))
        for resource, request in requests.items():
            limit = limits.get(resource)
            extended = resource not in _NATIVE and not resource.startswith("hugepages-")
            if extended and limit is None:
                pod.rejections.append(
                    f"container {name}: {resource} request without a limit (extended resource)"
                )
            elif extended and limit != request:
                pod.rejections.append(f"container {name}: {resource} request must equal its limit")
            elif limit is not None and request > limit:
                origin = injected.get((name, "limit", resource))
                why = f" (limit injected by the default of {origin})" if origin else ""
                pod.rejections.append(
                    f"container {name}: {resource} request {quantity.show(resource, request)} must be less than or "
                    f"equal to {resource} limit {quantity.show(resource, limit)}{why}"
                )


def _enforce_bounds(pod: PodTemplate, limit_range: KubeObject, entry: dict[str, Any]) -> None:
    kind = entry.get("type")
    if kind == "Container":
        subjects = [
            (
                f"container {c.get('name', '')}",
                c["resources"].get("requests") or {},
                c["resources"].get("limits") or {},
            )
            for c in containers(pod.spec)
        ]
    elif kind == "Pod":
        subjects = [("pod", _pod_total(pod.spec, "requests"), pod_limits(pod.spec))]
    else:
        return
    where = f"LimitRange {limit_range.namespace}/{limit_range.name}"
    for subject, raw_requests, raw_limits in subjects:
        requests, limits = quantity.resource_list(raw_requests), quantity.resource_list(raw_limits)
        for name, bound in quantity.resource_list(entry.get("min")).items():
            if name not in requests:
                pod.rejections.append(
                    f"{subject}: {where} minimum {name} is {quantity.show(name, bound)}, no request"
                )
            elif requests[name] < bound or (name in limits and limits[name] < bound):
                pod.rejections.append(f"{subject}: {where} minimum {name} is {quantity.show(name, bound)}")
        for name, bound in quantity.resource_list(entry.get("max")).items():
            if name not in limits:
                pod.rejections.append(
                    f"{subject}: {where} maximum {name} is {quantity.show(name, bound)}, no limit"
                )
            elif limits[name] > bound or (name in requests and requests[name] > bound):
                pod.rejections.append(f"{subject}: {where} maximum {name} is {quantity.show(name, bound)}")
        for name, ratio in quantity.resource_list(entry.get("maxLimitRequestRatio")).items():
            request, limit = requests.get(name, Fraction(0)), limits.get(name, Fraction(0))
            if not request or not limit:
                pod.rejections.append(
                    f"{subject}: {where} {name} limit/request ratio needs both set and non-zero"
                )
            elif limit / request > ratio:
                pod.rejections.append(
                    f"{subject}: {where} {name} limit/request ratio {float(limit / request):.2f} exceeds {float(ratio)}"
                )
