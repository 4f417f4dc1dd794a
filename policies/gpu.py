"""GPU pool rules on Karpenter NodePools and EC2NodeClasses: tainted, limited, allow-listed, reliable, locked down."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    as_list,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
)

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
GPU_RESOURCE = "nvidia.com/gpu"
FAMILY_KEY = "karpenter.k8s.aws/instance-family"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
CAPACITY_KEY = "karpenter.sh/capacity-type"
WORKLOAD_CLASS_LABEL = "mlstack.io/workload-class"
# NVIDIA GPU families: g4dn, g5, g5g, g6, g6e, gr6, p4d, p5, p5en... (inf/trn are Neuron, not GPUs).
_GPU_FAMILY = re.compile(r"^(g|gr|p)\d[a-z0-9]*$")


def _template_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = props.get("spec") or {}
    template = spec.get("template") or {} if isinstance(spec, Mapping) else {}
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def _requirements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in as_list(_template_spec(props).get("requirements")) if isinstance(r, Mapping)]


def _requirement_values(props: Mapping[str, Any], key: str) -> list[str] | None:
    for requirement in _requirements(props):
        if requirement.get("key") == key and requirement.get("operator") == "In":
            return [str(v) for v in as_list(requirement.get("values"))]
    return None


def instance_families(props: Mapping[str, Any]) -> set[str] | None:
    """The instance families a pool may launch (from families and exact types), or None when unrestricted."""
    families = _requirement_values(props, FAMILY_KEY)
    types = _requirement_values(props, INSTANCE_TYPE_KEY)
    if families is None and types is None:
        return None
    return set(families or []) | {t.split(".", 1)[0] for t in types or []}


def capacity_types(props: Mapping[str, Any]) -> list[str] | None:
    return _requirement_values(props, CAPACITY_KEY)


def gpu_limit(props: Mapping[str, Any]) -> float | None:
    spec = props.get("spec") or {}
    limits = spec.get("limits") if isinstance(spec, Mapping) else None
    value = limits.get(GPU_RESOURCE) if isinstance(limits, Mapping) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _taints(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in as_list(_template_spec(props).get("taints")) if isinstance(t, Mapping)]


def _labels(props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = props.get("spec") or {}
    template = spec.get("template") or {} if isinstance(spec, Mapping) else {}
    metadata = template.get("metadata") or {} if isinstance(template, Mapping) else {}
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def is_gpu_pool(props: Mapping[str, Any]) -> bool:
    """A NodePool is a GPU pool if anything about it says so: GPU families, the GPU taint, limit or label.

    Deliberately broad: removing the taint must not turn a GPU pool into a pool the taint rule skips.
    """
    families = instance_families(props) or set()
    return bool(
        (families and all(_GPU_FAMILY.match(f) for f in families))
        or any(t.get("key") == GPU_RESOURCE for t in _taints(props))
        or gpu_limit(props) is not None
        or WORKLOAD_CLASS_LABEL in _labels(props)
    )


@resource_rule(
    "MLS-GPU-001",
    types=[NODE_POOL],
    title="GPU pools carry the nvidia.com/gpu NoSchedule taint",
    why="Without the taint, ordinary pods land on GPU nodes, keep them alive and block consolidation; the "
    "most expensive nodes of the platform then run web servers.",
    severity=Severity.HIGH,
    remediation="Add the taint {key: nvidia.com/gpu, effect: NoSchedule} to spec.template.spec.taints.",
)
def gpu_pool_tainted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_gpu_pool(args.props):
        return
    if not any(t.get("key") == GPU_RESOURCE and t.get("effect") == "NoSchedule" for t in _taints(args.props)):
        yield "the pool has no nvidia.com/gpu NoSchedule taint"


@resource_rule(
    "MLS-GPU-002",
    types=[NODE_POOL],
    title="GPU pools have a GPU limit",
    why="Karpenter launches nodes until a pool's limit; without one, a burst of pending pods can buy hundreds "
    "of GPUs.",
    severity=Severity.CRITICAL,
    remediation="Set gpu_pools[].max_gpus in the stack file (it becomes spec.limits['nvidia.com/gpu']).",
)
def gpu_pool_limited(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_gpu_pool(args.props):
        return
    limit = gpu_limit(args.props)
    if limit is None or limit <= 0:
        yield "spec.limits['nvidia.com/gpu'] is not set to a positive number"


@resource_rule(
    "MLS-GPU-003",
    types=[NODE_POOL],
    title="GPU pools allow-list their instance families or types",
    why="An unrestricted pool lets Karpenter pick any instance that fits, including the largest GPU types.",
    severity=Severity.HIGH,
    remediation="List gpu_pools[].instance_types; they become an In requirement on the instance family or type.",
)
def gpu_pool_allow_list(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if is_gpu_pool(args.props) and not instance_families(args.props):
        yield "no In requirement on karpenter.k8s.aws/instance-family or node.kubernetes.io/instance-type"


@resource_rule(
    "MLS-GPU-004",
    types=[NODE_POOL],
    title="Inference pools in staging and prod are not spot-only",
    why="Spot capacity can be reclaimed with two minutes' notice; an endpoint served only from spot can lose "
    "every replica at once.",
    severity=Severity.HIGH,
    remediation="Use capacity_type on-demand (or spot-preferred) for pools with workload_class inference.",
)
def inference_not_spot_only(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not stack_context().hardened or _labels(args.props).get(WORKLOAD_CLASS_LABEL) != "inference":
        return
    capacity = capacity_types(args.props)
    if capacity == ["spot"]:
        yield "the inference pool buys spot capacity only"


@resource_rule(
    "MLS-GPU-005",
    types=[NODE_POOL],
    title="GPU pools consolidate idle nodes",
    why="An idle GPU node costs the same as a busy one; consolidation removes empty nodes so pools scale to "
    "zero.",
    severity=Severity.MEDIUM,
    remediation="Set spec.disruption.consolidationPolicy (WhenEmpty or WhenEmptyOrUnderutilized) and a "
    "consolidateAfter other than Never.",
)
def gpu_pool_consolidates(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_gpu_pool(args.props):
        return
    spec = args.props.get("spec") or {}
    disruption = spec.get("disruption") or {}
    if not disruption.get("consolidationPolicy"):
        yield "spec.disruption.consolidationPolicy is not set"
    if disruption.get("consolidateAfter") == "Never":
        yield "spec.disruption.consolidateAfter is Never"


@stack_rule(
    "MLS-GPU-006",
    subjects=[NODE_POOL, NODE_CLASS],
    title="Every NodePool refers to an EC2NodeClass of the stack",
    why="The node class carries the AMI, subnets, security groups, IMDS and disk settings the other rules "
    "check; a pool pointing at a class outside the stack launches nodes nobody reviewed.",
    severity=Severity.HIGH,
    remediation="Point spec.template.spec.nodeClassRef.name at an EC2NodeClass created by the GpuPools component.",
)
def pool_uses_stack_node_class(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    classes = {str((c.props.get("metadata") or {}).get("name")) for c in resources_of(args, NODE_CLASS)}
    for pool in resources_of(args, NODE_POOL):
        ref = _template_spec(pool.props).get("nodeClassRef") or {}
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if name not in classes:
            yield (
                f"NodePool {pool.name} refers to EC2NodeClass {name!r}, not one of {sorted(classes)}",
                pool.urn,
            )


@resource_rule(
    "MLS-GPU-007",
    types=[NODE_CLASS],
    title="Node classes keep IMDSv2 with a hop limit of 1",
    why="Pods must get AWS credentials from Pod Identity, not from the node's role through the instance "
    "metadata service; IMDSv2 with one hop keeps the node role out of pods' reach.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.8"]},
    remediation="Leave spec.metadataOptions out (Karpenter's default is secure) or set httpTokens: required and "
    "httpPutResponseHopLimit: 1.",
)
def node_class_imdsv2(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    spec = args.props.get("spec") or {}
    options = spec.get("metadataOptions")
    if not isinstance(options, Mapping):
        return
    if options.get("httpTokens", "required") != "required":
        yield f"metadataOptions.httpTokens is {options.get('httpTokens')!r}, not 'required'"
    hops = options.get("httpPutResponseHopLimit", 1)
    if float(hops) > 1:
        yield f"metadataOptions.httpPutResponseHopLimit is {hops:g}, above 1"


@resource_rule(
    "MLS-GPU-008",
    types=[NODE_CLASS],
    title="Node classes encrypt every EBS volume",
    why="Node volumes hold container images, model weights and scratch data copied from encrypted buckets.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.3"]},
    remediation="Set encrypted: true (and the platform's KMS key) on every spec.blockDeviceMappings[].ebs.",
)
def node_class_encrypted_volumes(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    spec = args.props.get("spec") or {}
    mappings = [m for m in as_list(spec.get("blockDeviceMappings")) if isinstance(m, Mapping)]
    if not mappings:
        yield "spec.blockDeviceMappings is not set, so volume encryption is left to the AMI default"
    for mapping in mappings:
        ebs = mapping.get("ebs") or {}
        if ebs.get("encrypted") is not True:
            yield f"volume {mapping.get('deviceName', '?')} is not encrypted"
