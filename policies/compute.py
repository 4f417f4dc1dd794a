"""CPU pool rules on Karpenter NodePools and the system node group: bounded, consolidated, one architecture,
platform pods only on the system nodes.

GPU pools have their own rules (policies/gpu.py); node class rules (IMDSv2, encrypted volumes, MLS-GPU-007 and
MLS-GPU-008) apply to every EC2NodeClass, the CPU pools' included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, as_list, resource_rule
from policies.gpu import NODE_POOL, is_gpu_pool

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ARCH_KEY = "kubernetes.io/arch"
SYSTEM_ROLE_LABEL = ("mlstack.io/node-role", "system")
_CONSOLIDATING = {"WhenEmptyOrUnderutilized", "WhenEmpty"}


def _spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = props.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _template_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    template = _spec(props).get("template")
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def _positive(value: Any) -> bool:
    """A Kubernetes quantity that is a positive number or a positive number with a unit (``64``, ``256Gi``)."""
    text = str(value).strip() if value is not None else ""
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    try:
        return float(digits) > 0
    except ValueError:
        return False


@resource_rule(
    "MLS-CPU-001",
    types=[NODE_POOL],
    title="CPU pools have a vCPU and a memory limit",
    why="Karpenter launches nodes for pending pods until a pool's limits; without them, one runaway workflow "
    "fan-out or a stuck retry loop buys instances without bound.",
    severity=Severity.CRITICAL,
    remediation="Set cpu_pools[].max_vcpu in the stack file (it becomes spec.limits.cpu, and spec.limits.memory "
    "follows from the types' memory per vCPU).",
)
def cpu_pool_limited(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if is_gpu_pool(args.props):
        return
    limits = _spec(args.props).get("limits")
    limits = limits if isinstance(limits, Mapping) else {}
    for resource in ("cpu", "memory"):
        if not _positive(limits.get(resource)):
            yield f"spec.limits.{resource} is not set to a positive quantity"


@resource_rule(
    "MLS-CPU-002",
    types=[NODE_POOL],
    title="CPU pools consolidate and bound their disruption",
    why="A pool that never consolidates keeps paying for empty or underused nodes after a burst; a pool without "
    "a disruption budget may drain all its nodes at once on an AMI update or consolidation.",
    severity=Severity.MEDIUM,
    remediation="Leave cpu_pools[].consolidate_after_minutes and disruption_budget_percent at their defaults or "
    "set them: spec.disruption needs consolidationPolicy WhenEmptyOrUnderutilized (or WhenEmpty), a "
    "consolidateAfter other than Never, and at least one budget.",
)
def cpu_pool_consolidates(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if is_gpu_pool(args.props):
        return
    disruption = _spec(args.props).get("disruption")
    disruption = disruption if isinstance(disruption, Mapping) else {}
    policy = disruption.get("consolidationPolicy")
    if policy not in _CONSOLIDATING:
        yield f"spec.disruption.consolidationPolicy is {policy!r}, not one of {sorted(_CONSOLIDATING)}"
    if disruption.get("consolidateAfter") == "Never":
        yield "spec.disruption.consolidateAfter is Never"
    if not [b for b in as_list(disruption.get("budgets")) if isinstance(b, Mapping)]:
        yield "spec.disruption.budgets is empty"


@resource_rule(
    "MLS-CPU-003",
    types=[NODE_POOL],
    title="Node pools launch one architecture, and Graviton pools are opt-in",
    why="An image built for amd64 only crash-loops on a Graviton node ('exec format error'). A pool that may "
    "launch either architecture, or an arm64 pool without a taint, lands such pods there; the taint lets only "
    "pods that declare multi-arch images (by tolerating it) use Graviton.",
    severity=Severity.HIGH,
    remediation="Require exactly one kubernetes.io/arch value in spec.template.spec.requirements (cpu_pools[].arch "
    "does), and give arm64 pools the taint kubernetes.io/arch=arm64:NoSchedule.",
)
def pool_single_arch(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    template = _template_spec(args.props)
    arches: list[str] | None = None
    for requirement in as_list(template.get("requirements")):
        if isinstance(requirement, Mapping) and requirement.get("key") == ARCH_KEY:
            if requirement.get("operator") == "In":
                arches = [str(v) for v in as_list(requirement.get("values"))]
            else:
                arches = []
    if arches is None or len(arches) != 1:
        yield f"the pool does not require exactly one {ARCH_KEY} (found {arches})"
        return
    if arches == ["arm64"]:
        taints = [t for t in as_list(template.get("taints")) if isinstance(t, Mapping)]
        if not any(
            t.get("key") == ARCH_KEY and t.get("value") == "arm64" and t.get("effect") == "NoSchedule"
            for t in taints
        ):
            yield "the arm64 pool has no kubernetes.io/arch=arm64:NoSchedule taint"


@resource_rule(
    "MLS-CPU-004",
    types=[NODE_GROUP],
    title="System nodes carry a NoSchedule taint",
    why="The system node group runs CoreDNS, Karpenter, Kueue and the platform's controllers; team pods that land "
    "there starve them and keep nodes busy that nothing scales. A taint keeps every pod off that does not "
    "tolerate it, and team pods never do.",
    severity=Severity.HIGH,
    remediation="Give the system node group the taint CriticalAddonsOnly=true:NoSchedule (components/cluster.py "
    "SYSTEM_TAINT) and platform charts the matching toleration (system_placement()).",
)
def system_nodes_tainted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    labels = args.props.get("labels")
    key, value = SYSTEM_ROLE_LABEL
    if not (isinstance(labels, Mapping) and labels.get(key) == value):
        return
    taints = [t for t in as_list(args.props.get("taints")) if isinstance(t, Mapping)]
    if not any(t.get("effect") in ("NO_SCHEDULE", "NO_EXECUTE") for t in taints):
        yield "the system node group has no NO_SCHEDULE or NO_EXECUTE taint"
