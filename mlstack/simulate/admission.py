"""Admission: would the API server accept the pods, budgets and quotas the deploy creates?

Each check models one admission step of the API server at the cluster's version, for every pod the deploy
creates (ours and the charts'): LimitRanger defaulting and bounds with request <= limit validation
(:mod:`mlstack.simulate.pods`), ResourceQuota at maximum replicas, PodDisruptionBudget validation, and Pod
Security admission against the namespace's enforce level (:mod:`mlstack.simulate.pod_security`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pulumi_policy import Severity

from mlstack.simulate import quantity
from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.objects import all_objects, containers, of_kind
from mlstack.simulate.pod_security import LEVELS, violations
from mlstack.simulate.pods import PodTemplate, pod_limits, pod_templates

# Quota resources a pod's containers must all specify once a quota tracks them (kubernetes/kubernetes
# pkg/quota/v1/evaluator/core/pods.go: Constraints -> enforcePodContainerConstraints, "must specify ...").
_MUST_SPECIFY = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"


@sim_check(
    "MLS-SIM-ADM-001",
    title="Every pod passes LimitRanger and resource validation",
    why=(
        "The LimitRanger plugin injects a namespace LimitRange's default limit into every container that sets "
        "none, then the API server rejects a container whose request exceeds its limit; a pod outside a "
        "LimitRange's min/max/ratio is rejected too. The controller retries forever (FailedCreate), the "
        "workload never becomes Available and Pulumi's await or Helm's --wait fails the deploy"
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Set explicit limits on every resource the container requests (a CPU limit >= the CPU request), or "
        "change the namespace LimitRange's default/bounds so the defaulted pod is valid"
    ),
    subjects=("LimitRange", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"),
)
def pods_pass_limit_ranger(world: World) -> SimResult:
    for pod in pod_templates(world):
        if (pod.rejections and pod.scaling.peak > 0) or (pod.rejections and pod.kind == "DaemonSet"):
            yield f"pods of {pod.item.label} would be rejected: {'; '.join(pod.rejections)}", pod.item.urn
        elif pod.rejections:
            yield (
                (
                    f"pods of {pod.item.label} (0 replicas now, scaled up by {pod.scaling.source}) would be rejected: "
                    f"{'; '.join(pod.rejections)}"
                ),
                pod.item.urn,
            )
        for note in pod.unknown:
            if note.startswith("cannot evaluate resources"):
                yield note, pod.item.urn


def _usage(pod: PodTemplate) -> quantity.Resources:
    """Quota usage of one pod (pkg/quota/v1/evaluator/core/pods.go podComputeUsageHelper over PodRequests and
    PodLimits): pods, cpu/memory requests and limits, and requests.<extended resource>."""
    requests = pod.requests()
    limits = pod_limits(pod.spec)
    usage: quantity.Resources = {"pods": Fraction(1)}
    for name, amount in requests.items():
        usage[f"requests.{name}"] = amount
        if name in ("cpu", "memory", "ephemeral-storage"):
            usage[name] = amount
    for name, amount in limits.items():
        if name in ("cpu", "memory", "ephemeral-storage"):
            usage[f"limits.{name}"] = amount
    return usage


def _missing_specified(pod: PodTemplate, tracked: set[str]) -> list[str]:
    required = tracked & set(_MUST_SPECIFY)
    missing: list[str] = []
    for container in containers(pod.spec):
        resources = container.get("resources") or {}
        present = set()
        for name in resources.get("requests") or {}:
            if name in ("cpu", "memory"):
                present |= {name, f"requests.{name}"}
        for name in resources.get("limits") or {}:
            if name in ("cpu", "memory"):
                present.add(f"limits.{name}")
        for name in sorted(required - present):
            missing.append(f"{name} for container {container.get('name', '')}")
    return missing


@sim_check(
    "MLS-SIM-ADM-002",
    title="ResourceQuota admits every namespace's pods at maximum replicas",
    why=(
        "The ResourceQuota plugin rejects a pod that would push the namespace's usage over a hard limit, and one "
        "whose containers do not all specify a cpu/memory resource the quota tracks. Autoscaled endpoints then "
        "stop scaling at the quota, silently, during the load that needed them"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Raise the namespace quota (team resource_quota in the stack file) to cover every workload at its maximum "
        "replicas, or lower the workloads' max replicas or requests; give every container the resources the quota "
        "tracks"
    ),
    subjects=("ResourceQuota", "HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"),
)
def quota_fits_at_max_replicas(world: World) -> SimResult:
    by_namespace: dict[str, list[PodTemplate]] = {}
    for pod in pod_templates(world):
        by_namespace.setdefault(pod.namespace, []).append(pod)
    for quota in of_kind(world, "ResourceQuota"):
        spec = quota.obj.get("spec") or {}
        if spec.get("scopes") or spec.get("scopeSelector"):
            yield f"cannot evaluate {quota.label}: quota scopes are not modelled", quota.urn
            continue
        try:
            hard = quantity.resource_list(spec.get("hard"))
        except quantity.BadQuantity as error:
            yield f"cannot evaluate {quota.label}: {error}", quota.urn
            continue
        used: quantity.Resources = {}
        contributors: list[str] = []
        for pod in by_namespace.get(quota.namespace, []):
            if pod.kind == "DaemonSet":
                yield (
                    f"cannot evaluate {quota.label}: DaemonSet {pod.item.name} has one pod per node",
                    quota.urn,
                )
                continue
            missing = _missing_specified(pod, set(hard))
            if missing:
                yield (
                    f"{quota.label} rejects pods of {pod.item.label}: must specify {', '.join(missing)}",
                    pod.item.urn,
                )
            if pod.scaling.peak:
                used = quantity.add(used, _usage(pod), pod.scaling.peak)
                contributors.append(f"{pod.item.kind} {pod.item.name} x{pod.scaling.peak}")
        for name, limit in sorted(hard.items()):
            if name in used and used[name] > limit:
                yield (
                    (
                        f"{quota.label}: {name} at maximum replicas is {quantity.show(name, used[name])}, over the hard "
                        f"limit {quantity.show(name, limit)} ({', '.join(contributors)}); pods beyond it are rejected"
                    ),
                    quota.urn,
                )


@sim_check(
    "MLS-SIM-ADM-003",
    title="Every PodDisruptionBudget passes API validation",
    why=(
        "The API server rejects a PodDisruptionBudget that sets both minAvailable and maxUnavailable, or a "
        "negative or over-100% value (kubernetes/kubernetes pkg/apis/policy/validation "
        "ValidatePodDisruptionBudgetSpec); the Helm release or Pulumi resource that carries it fails"
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Set exactly one of minAvailable and maxUnavailable; for a chart whose default sets the other field, "
        "clear it explicitly (null) in the release values"
    ),
    subjects=("PodDisruptionBudget", RELEASE_TYPE),
)
def disruption_budgets_are_valid(world: World) -> SimResult:
    for budget in of_kind(world, "PodDisruptionBudget"):
        spec = budget.obj.get("spec") or {}
        present = [name for name in ("minAvailable", "maxUnavailable") if spec.get(name) is not None]
        if len(present) == 2:
            yield (
                (
                    f"{budget.label} is invalid: minAvailable and maxUnavailable cannot be both set "
                    f"(minAvailable={spec['minAvailable']!r}, maxUnavailable={spec['maxUnavailable']!r})"
                ),
                budget.urn,
            )
        for name in present:
            problem = _int_or_percent_problem(spec[name])
            if problem:
                yield f"{budget.label} is invalid: spec.{name} {problem}", budget.urn


def _int_or_percent_problem(value: Any) -> str:
    """ValidatePositiveIntOrPercent + IsNotMoreThan100Percent (pkg/apis/apps/validation)."""
    if isinstance(value, bool):
        return f"{value!r} is neither an integer nor a percentage"
    if isinstance(value, int | float):
        if float(value) != int(value):
            return f"{value!r} is not an integer"
        return "must be greater than or equal to 0" if value < 0 else ""
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        return "must not be greater than 100%" if int(text[:-1]) > 100 else ""
    return f"{text!r} must be an integer or a percentage (e.g. '50%')"


@derived
def namespace_levels(world: World) -> dict[str, tuple[str, str, str]]:
    """Namespace -> (enforce level, enforce version, where it comes from), for namespaces the deploy creates.

    Our Namespace objects carry their labels; a namespace a Helm release creates (``createNamespace``) has no
    label, so the cluster default applies: EKS enables Pod Security admission with the upstream default
    configuration, every mode ``privileged`` (aws.amazon.com/blogs/containers/implementing-pod-security-standards-
    in-amazon-eks/; kubernetes.io/docs/tasks/configure-pod-container/enforce-standards-admission-controller/).
    """
    levels: dict[str, tuple[str, str, str]] = {}
    for release in world.resources(RELEASE_TYPE):
        if release.inputs.get("createNamespace"):
            namespace = str(release.inputs.get("namespace") or "default")
            levels[namespace] = (
                "privileged",
                "latest",
                f"namespace {namespace} created by release {release.name}, unlabelled",
            )
    for item in all_objects(world):
        if item.kind == "Namespace":
            labels = (item.obj.get("metadata") or {}).get("labels") or {}
            level = str(labels.get(ENFORCE_LABEL, "privileged"))
            version = str(labels.get(ENFORCE_VERSION_LABEL, "latest"))
            levels[item.name] = (level, version, f"Namespace {item.name} enforce={level} (version {version})")
    return levels


@sim_check(
    "MLS-SIM-ADM-004",
    title="Every pod meets its namespace's enforced Pod Security level",
    why=(
        "Pod Security admission rejects a pod that violates the namespace's pod-security.kubernetes.io/enforce "
        "level (baseline or restricted, Pod Security Standards at the cluster version); the controller's pods are "
        "never created and the workload never becomes Available"
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Give the pod the securityContext the level requires (restricted: runAsNonRoot, allowPrivilegeEscalation "
        "false, capabilities drop ALL, seccompProfile RuntimeDefault), or run it in a namespace whose level allows it"
    ),
    subjects=("Namespace", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"),
)
def pods_meet_pod_security(world: World) -> SimResult:
    levels = namespace_levels(world)
    cluster = _minor(str(world.spec.cluster.kubernetes_version))
    for pod in pod_templates(world):
        # A namespace the deploy does not create (kube-system, default) carries no label of ours: the cluster
        # default applies to it too (labels set outside the deploy are not seen; see docs/simulation.md).
        default = ("privileged", "latest", f"namespace {pod.namespace} unlabelled by the deploy")
        level, pinned, origin = levels.get(pod.namespace, default)
        # enforce-version "latest" (the default) is the cluster's version; a pinned "v1.N" checks as of 1.N.
        version = cluster if pinned == "latest" else _minor(pinned.lstrip("v"), default=-1)
        if level not in LEVELS or version < 0:
            yield (
                f"cannot evaluate Pod Security for {pod.item.label}: {origin} is not a known level",
                pod.item.urn,
            )
            continue
        found = violations(pod.spec, level, version)
        if found:
            yield (
                (
                    f'pods of {pod.item.label} violate PodSecurity "{level}:v1.{version}" ({origin}): '
                    f"{'; '.join(found)}"
                ),
                pod.item.urn,
            )


def _minor(version: str, default: int = 0) -> int:
    parts = version.split(".")
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else default


KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def _pool_resources(world: World) -> dict[str, tuple[set[str], dict[str, frozenset[str]]]]:
    """NodePool name -> (extended resources its workloads request, its node labels)."""
    from mlstack.simulate.capacity import node_sources  # the capacity module builds node supply once

    efa_pools = {pool.name for pool in world.spec.gpu_pools if pool.efa}
    out: dict[str, tuple[set[str], dict[str, frozenset[str]]]] = {}
    for source in node_sources(world):
        if not source.karpenter:
            continue
        name = source.label.split(" ", 1)[1]
        wanted = {"nvidia.com/gpu"} if any(t.gpus for t in source.types) else set()
        # An EFA pool is there for multi-node training over EFA: its pods request vpc.amazonaws.com/efa, the
        # resource the EFA device plugin advertises (aws/eks-charts stable/aws-efa-k8s-device-plugin).
        if name in efa_pools:
            wanted.add("vpc.amazonaws.com/efa")
        out[name] = (wanted, source.labels)
    return out


@sim_check(
    "MLS-SIM-ADM-005",
    title="Kueue can admit the workloads each team queue is for",
    why=(
        "Kueue admits a workload only if every resource its pods request is covered by a resource group of its "
        "ClusterQueue; otherwise it stays suspended with 'resource <name> unavailable in ClusterQueue' "
        "(kubernetes-sigs/kueue pkg/scheduler/flavorassigner/flavorassigner.go findFlavorForPodSetResource). A "
        "queue whose flavor targets a GPU or EFA pool must therefore cover what that pool's pods request"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Add the resource (e.g. vpc.amazonaws.com/efa for EFA pools) to the ClusterQueue's coveredResources with "
        "a quota in the pool's flavor"
    ),
    subjects=("ClusterQueue", "ResourceFlavor", "LocalQueue", "NodePool"),
)
def kueue_covers_what_its_pools_need(world: World) -> SimResult:
    flavors = {item.name: item for item in of_kind(world, "ResourceFlavor")}
    pools = _pool_resources(world)
    queues = {}
    for cluster_queue in of_kind(world, "ClusterQueue"):
        groups = (cluster_queue.obj.get("spec") or {}).get("resourceGroups") or []
        covered = {str(r) for group in groups for r in group.get("coveredResources") or []}
        queues[cluster_queue.name] = (cluster_queue, covered)
        for group in groups:
            for flavor_ref in group.get("flavors") or []:
                flavor = flavors.get(str(flavor_ref.get("name")))
                if flavor is None:
                    yield (
                        f"{cluster_queue.label}: flavor {flavor_ref.get('name')} is not in the plan",
                        cluster_queue.urn,
                    )
                    continue
                node_labels = (flavor.obj.get("spec") or {}).get("nodeLabels") or {}
                for pool, (wanted, labels) in pools.items():
                    if not node_labels or not all(
                        str(v) in labels.get(str(k), frozenset()) for k, v in node_labels.items()
                    ):
                        continue
                    for name in sorted(wanted - covered):
                        yield (
                            (
                                f"{cluster_queue.label}: flavor {flavor.name} targets NodePool {pool}, whose pods request "
                                f"{name}, but no resource group covers {name}: every such workload stays suspended "
                                f"('resource {name} unavailable in ClusterQueue')"
                            ),
                            cluster_queue.urn,
                        )
    local = {
        (q.namespace, q.name): str((q.obj.get("spec") or {}).get("clusterQueue", ""))
        for q in of_kind(world, "LocalQueue")
    }
    for pod in pod_templates(world):
        queue_name = pod.labels.get(KUEUE_QUEUE_LABEL) or (
            (pod.item.obj.get("metadata") or {}).get("labels") or {}
        ).get(KUEUE_QUEUE_LABEL)
        if not queue_name:
            continue
        target = local.get((pod.namespace, str(queue_name)))
        if target is None or target not in queues:
            yield (
                f"{pod.item.label} names queue {queue_name}, which has no LocalQueue/ClusterQueue in the plan",
                pod.item.urn,
            )
            continue
        cluster_queue, covered = queues[target]
        missing = sorted(n for n, amount in pod.requests().items() if amount and n not in covered)
        if missing:
            yield (
                (
                    f"{pod.item.label} requests {', '.join(missing)}, which {cluster_queue.label} does not cover: "
                    "Kueue never admits it"
                ),
                pod.item.urn,
            )
