"""Scheduling and capacity: would every pod the deploy creates find a node, at idle and at peak?

Node supply is what the plan creates: each EKS managed node group at its desired size (nothing else scales it:
the plan installs no cluster-autoscaler), and each Karpenter NodePool, which launches nodes of the instance
types its requirements allow, within its ``limits``. A node's allocatable resources are modelled as the EKS
AL2023 AMI's nodeadm sets the kubelet up (awslabs/amazon-eks-ami@81fec2e nodeadm/internal/kubelet/config.go):

- ``maxPods`` = ENIs x (IPv4 per ENI - 1) + 2 (``eni_max_pods.go`` ``calculateStandardMaxPods``; ENI data from
  ``instance-info.jsonl`` of the same commit, copied to ``data/instance_types.yaml``);
- ``kubeReserved.cpu``: 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% above
  (``getCPUMillicoresToReserve``); ``kubeReserved.memory`` = 11 MiB x maxPods + 255 MiB
  (``getMemoryMebibytesToReserve``); ``evictionHard memory.available`` = 100Mi (``defaultKubeletSubConfig``);
- node memory capacity: the instance's memory (less 64 MiB CMA on Graviton) less Karpenter's VM overhead estimate of 7.5%
  (aws/karpenter-provider-aws@v1.14.1 pkg/operator/options/options.go ``VM_MEMORY_OVERHEAD_PERCENT`` 0.075): the
  kernel's share is not published per type; a test checks that this model gives Karpenter's published
  allocatable for every type of the table;
- node ``ephemeral-storage``: capacity is the root volume the plan gives the node (the system node group's launch
  template ``/dev/xvda`` mapping, else its ``diskSize``, else the EKS default of 20 GiB; a NodePool's EC2NodeClass
  ``rootVolume`` mapping, else its ``/dev/xvda`` mapping, else Karpenter's AL2023 default of 20Gi), or the
  instance store's total size when the EC2NodeClass sets ``instanceStorePolicy: RAID0``
  (aws/karpenter-provider-aws@v1.14.1 pkg/providers/instancetype/types.go ``ephemeralStorage``,
  pkg/providers/amifamily/al2023.go and resolver.go ``DefaultEBS``); allocatable subtracts ``kubeReserved``
  ephemeral-storage 1Gi and ``evictionHard nodefs.available`` 10% of capacity (nodeadm ``withDefaultReservedResources``
  and ``defaultKubeletSubConfig``; Karpenter ``kubeReservedResources`` and ``evictionThreshold``, which also
  apply an EC2NodeClass's ``kubelet`` overrides). The kubelet measures the formatted filesystem, a little smaller
  than the volume: like Karpenter, the model counts the volume.

The scheduler is modelled as a filter (node selector, required node affinity, taints and tolerations,
resources, pod count, required pod anti-affinity by hostname or zone, DoNotSchedule topology spread) and a
least-allocated choice among the nodes that pass; DaemonSet pods are placed first on every node they match.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import Severity

from mlstack.simulate import quantity
from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.objects import label_selector_matches, of_kind
from mlstack.simulate.pods import PodTemplate, Scaling, pod_templates
from mlstack.yaml_loading import fast_safe_load

NODE_GROUP_TYPE = "aws:eks/nodeGroup:NodeGroup"
ADDON_TYPE = "aws:eks/addon:Addon"
_DATA = Path(__file__).parent / "data" / "instance_types.yaml"
_ADDON_PODS = Path(__file__).parent / "data" / "eks_addon_pods.yaml"
_MEMORY_OVERHEAD = Fraction(75, 1000)  # Karpenter VM_MEMORY_OVERHEAD_PERCENT default
_EVICTION_MEMORY_MIB = 100  # nodeadm evictionHard memory.available
_GIB = 2**30
# The AL2023 root device (karpenter-provider-aws@v1.14.1 pkg/providers/amifamily/al2023.go EphemeralBlockDevice).
_ROOT_DEVICE = "/dev/xvda"
# Karpenter's AL2023 default root volume (amifamily/resolver.go DefaultEBS 20Gi); the EKS CreateNodegroup API's
# diskSize default for Linux, "20 GiB for Linux and Bottlerocket" (the API model's documentation, as published in
# https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/eks/aws.sdk.kotlin.services.eks.model/-create-nodegroup-request/disk-size.html).
_DEFAULT_VOLUME = Fraction(20 * _GIB)
_MIB = 2**20
# EKS node group taint effects (aws eks API) -> Kubernetes taint effects.
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
ANY: frozenset[str] = frozenset(
    {"*"}
)  # a label whose value the simulation leaves open (any value can be had)
HOSTNAME, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type and the node it makes under nodeadm (see the module docstring)."""

    name: str
    family: str
    arch: str
    vcpu: int
    memory_mib: int
    gpus: int
    efa: int
    enis: int
    ipv4_per_eni: int
    local_nvme_gb: int = 0

    @property
    def max_pods(self) -> int:
        return self.enis * (self.ipv4_per_eni - 1) + 2

    @property
    def kube_reserved_cpu_millis(self) -> int:
        total = self.vcpu * 1000
        reserved = 0
        for start, end, basis_points in (
            (0, 1000, 600),
            (1000, 2000, 100),
            (2000, 4000, 50),
            (4000, total, 25),
        ):
            if total > start:
                reserved += (min(total, end) - start) * basis_points // 10000
        return reserved

    @property
    def kube_reserved_memory_mib(self) -> int:
        return 11 * self.max_pods + 255

    def capacity(self) -> quantity.Resources:
        """What Karpenter counts against NodePool limits: the type's full resources."""
        out = {
            "cpu": Fraction(self.vcpu),
            "memory": Fraction(self.memory_mib * _MIB),
            "pods": Fraction(self.max_pods),
        }
        if self.gpus:
            out["nvidia.com/gpu"] = Fraction(self.gpus)
        if self.efa:
            out["vpc.amazonaws.com/efa"] = Fraction(self.efa)
        return out

    def allocatable(self) -> quantity.Resources:
        # Gravitons keep 64 MiB of CMA memory back (karpenter-provider-aws@v1.14.1
        # pkg/providers/instancetype/types.go ``memory``), then the VM overhead estimate applies.
        memory_mib = self.memory_mib - (64 if self.arch == "arm64" else 0)
        memory_mib -= math.ceil(memory_mib * _MEMORY_OVERHEAD)
        memory_mib -= self.kube_reserved_memory_mib + _EVICTION_MEMORY_MIB
        out = self.capacity()
        out["cpu"] = Fraction(self.vcpu * 1000 - self.kube_reserved_cpu_millis, 1000)
        out["memory"] = Fraction(memory_mib * _MIB)
        return out

    def labels(self) -> dict[str, frozenset[str]]:
        size = self.name.split(".", 1)[1]
        out = {
            "node.kubernetes.io/instance-type": frozenset({self.name}),
            "kubernetes.io/arch": frozenset({self.arch}),
            "kubernetes.io/os": frozenset({"linux"}),
            "karpenter.k8s.aws/instance-family": frozenset({self.family}),
            "karpenter.k8s.aws/instance-size": frozenset({size}),
            "karpenter.k8s.aws/instance-cpu": frozenset({str(self.vcpu)}),
            "karpenter.k8s.aws/instance-memory": frozenset({str(self.memory_mib)}),
        }
        out["karpenter.k8s.aws/instance-category"] = frozenset({_category(self.family)})
        if self.gpus:
            out["karpenter.k8s.aws/instance-gpu-count"] = frozenset({str(self.gpus)})
        return out

    def describe(self) -> str:
        alloc = self.allocatable()
        return (
            f"{self.name}: {quantity.show('cpu', alloc['cpu'])} cpu, {quantity.show('memory', alloc['memory'])} "
            f"memory, {self.max_pods} pods allocatable"
        )


def _category(family: str) -> str:
    letters = ""
    for char in family:
        if char.isdigit():
            break
        letters += char
    return letters


@cache
def _table() -> dict[str, Any]:
    # libyaml's loader when present: the pure-Python one takes most of a second on this table.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return dict(yaml.load(_DATA.read_text(encoding="utf-8"), Loader=loader))  # noqa: S506 (a safe loader)


@cache
def instance_types() -> dict[str, InstanceType]:
    """The instance type table (``data/instance_types.yaml``, generated from the sources it names)."""
    data = _table()
    return {
        name: InstanceType(
            name,
            row["family"],
            row["arch"],
            row["vcpu"],
            row["memory_mib"],
            row["gpus"],
            row["efa"],
            row["enis"],
            row["ipv4_per_eni"],
            row.get("local_nvme_gb", 0),
        )
        for name, row in data["instance_types"].items()
    }


@cache
def karpenter_allocatable() -> dict[str, dict[str, str]]:
    """Karpenter's own published allocatable per type, for the cross-check test."""
    data = _table()
    return {name: row["karpenter_allocatable"] for name, row in data["instance_types"].items()}


@dataclass(frozen=True)
class NodeStorage:
    """Where a node's ``ephemeral-storage`` comes from and what the kubelet keeps back of it (module docstring)."""

    volume: Fraction = _DEFAULT_VOLUME  # root volume, bytes
    raid0: bool = False  # EC2NodeClass instanceStorePolicy: RAID0
    kube_reserved: Fraction = Fraction(_GIB)  # nodeadm and Karpenter default kubeReserved ephemeral-storage
    system_reserved: Fraction = Fraction(0)
    eviction: str = "10%"  # evictionHard nodefs.available (nodeadm default)

    def capacity(self, itype: InstanceType) -> Fraction:
        # Karpenter counts TotalSizeInGB in decimal GB ("%dG") when RAID0 is set and the type has instance store.
        # The table takes it from the karpenter.k8s.aws/instance-local-nvme label, set for NVMe instance store
        # only: a type with non-NVMe instance store would read 0 here (the table's families without the label are
        # the EBS-only ones, c6i, m7i, t3...; not checked against DescribeInstanceTypes).
        if self.raid0 and itype.local_nvme_gb:
            return Fraction(itype.local_nvme_gb * 10**9)
        return self.volume

    def threshold(self, capacity: Fraction) -> Fraction:
        """The eviction threshold in bytes (Karpenter ``computeEvictionSignal``: a percentage of capacity,
        rounded up, 100% meaning disabled; otherwise a quantity)."""
        if self.eviction.endswith("%"):
            percent = Fraction(self.eviction[:-1].strip())
            return Fraction(0) if percent == 100 else Fraction(math.ceil(capacity * percent / 100))
        return quantity.parse(self.eviction)

    def allocatable(self, itype: InstanceType) -> Fraction:
        capacity = self.capacity(itype)
        return capacity - self.kube_reserved - self.system_reserved - self.threshold(capacity)


@dataclass
class NodeSource:
    """A node group (fixed count) or a Karpenter NodePool (launches on demand, within its limits)."""

    label: str
    urn: str
    karpenter: bool
    types: list[InstanceType]
    labels: dict[str, frozenset[str]]
    taints: list[dict[str, Any]]
    zones: list[str]
    count: int = 0
    limits: quantity.Resources = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    storage: NodeStorage = field(default_factory=NodeStorage)

    def capacity(self, itype: InstanceType) -> quantity.Resources:
        """What a node of this type from this source counts against limits, ephemeral-storage included."""
        return {**itype.capacity(), "ephemeral-storage": self.storage.capacity(itype)}

    def allocatable(self, itype: InstanceType) -> quantity.Resources:
        return {**itype.allocatable(), "ephemeral-storage": self.storage.allocatable(itype)}

    def describe(self, itype: InstanceType) -> str:
        storage = quantity.show("ephemeral-storage", self.storage.allocatable(itype))
        return f"{itype.describe()}, {storage} ephemeral-storage"


@dataclass
class Node:
    name: str
    source: NodeSource
    type: InstanceType
    zone: str
    free: quantity.Resources
    pods: list[tuple[PodTemplate, dict[str, str]]] = field(default_factory=list)

    def labels(self) -> dict[str, frozenset[str]]:
        out = {**self.source.labels, **self.type.labels()}
        out[HOSTNAME] = frozenset({self.name})
        out[ZONE] = frozenset({self.zone})
        return out


def _subnet_zones(world: World, subnet_ids: Iterable[str]) -> list[str]:
    by_id = {r.id: r for r in world.resources("aws:ec2/subnet:Subnet")}
    zones = []
    for subnet in subnet_ids:
        resource = by_id.get(str(subnet))
        zone = str((resource.inputs if resource else {}).get("availabilityZone") or "")
        zones.append(zone or f"zone-of-{subnet}")
    return sorted(set(zones)) or ["zone-unknown"]


@derived
def node_sources(world: World) -> list[NodeSource]:
    """Every source of nodes the plan creates: managed node groups, then Karpenter NodePools."""
    table = instance_types()
    sources: list[NodeSource] = []
    for group in world.resources(NODE_GROUP_TYPE):
        inputs = group.inputs
        names = [str(t) for t in inputs.get("instanceTypes") or []]
        known = [table[n] for n in names if n in table]
        unknown = [
            f"instance type {n} of node group {group.name} is not in the instance type table"
            for n in names
            if n not in table
        ]
        # With several types the group may launch any of them: the smallest allocatable is assumed.
        known.sort(key=lambda t: (t.allocatable()["cpu"], t.allocatable()["memory"], t.max_pods))
        labels = {str(k): frozenset({str(v)}) for k, v in (inputs.get("labels") or {}).items()}
        labels["eks.amazonaws.com/nodegroup"] = ANY
        labels["eks.amazonaws.com/capacityType"] = frozenset({str(inputs.get("capacityType") or "ON_DEMAND")})
        taints = [
            {
                "key": t.get("key"),
                "value": t.get("value"),
                "effect": _EFFECTS.get(str(t.get("effect")), t.get("effect")),
            }
            for t in inputs.get("taints") or []
        ]
        scaling = inputs.get("scalingConfig") or {}
        storage, note = _node_group_storage(world, group.name, inputs)
        unknown += [note] if note else []
        sources.append(
            NodeSource(
                f"node group {group.name}",
                group.urn,
                False,
                known[:1],
                labels,
                taints,
                _subnet_zones(world, inputs.get("subnetIds") or []),
                int(scaling.get("desiredSize", 0)),
                unknown=unknown,
                storage=storage,
            )
        )
    for pool in of_kind(world, "NodePool"):
        sources.append(_node_pool(world, pool, table))
    return sources


# Requirement keys the table can decide for a type; any other key becomes a node label set.
_TYPE_KEYS = (
    "node.kubernetes.io/instance-type",
    "kubernetes.io/arch",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-gpu-count",
)


def _node_pool(world: World, pool: KubeObject, table: dict[str, InstanceType]) -> NodeSource:
    spec = pool.obj.get("spec") or {}
    template = spec.get("template") or {}
    template_spec = template.get("spec") or {}
    requirements = template_spec.get("requirements") or []
    unknown: list[str] = []
    types = list(table.values())
    labels: dict[str, frozenset[str]] = {"karpenter.sh/nodepool": frozenset({pool.name})}
    labels.update(
        {
            str(k): frozenset({str(v)})
            for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()
        }
    )
    labels.setdefault("karpenter.sh/capacity-type", frozenset({"on-demand"}))
    for requirement in requirements:
        key, operator = str(requirement.get("key")), str(requirement.get("operator"))
        values = [str(v) for v in requirement.get("values") or []]
        if key in _TYPE_KEYS:
            types = [t for t in types if _expression_matches(t.labels(), key, operator, values)]
            if key == "node.kubernetes.io/instance-type" and operator == "In":
                unknown += [
                    f"instance type {v} of {pool.label} is not in the instance type table"
                    for v in values
                    if v not in table
                ]
        elif key.startswith("karpenter.k8s.aws/"):
            unknown.append(f"{pool.label} requirement on {key} is not modelled (ignored)")
        elif operator == "In":
            labels[key] = frozenset(values)
        elif operator == "Exists":
            labels[key] = ANY
    if not types:
        unknown.append(f"no instance type of the table satisfies the requirements of {pool.label}")
    taints = [dict(t) for t in template_spec.get("taints") or []]
    try:
        limits = quantity.resource_list(spec.get("limits"))
    except quantity.BadQuantity as error:
        unknown.append(f"cannot evaluate the limits of {pool.label}: {error}")
        limits = {}
    node_class = ((template_spec.get("nodeClassRef") or {}).get("name")) or ""
    storage, notes = _node_class_storage(world, pool.label, node_class)
    unknown += notes
    return NodeSource(
        f"NodePool {pool.name}",
        pool.urn,
        True,
        sorted(types, key=lambda t: (t.vcpu, t.memory_mib, t.name)),
        labels,
        taints,
        _pool_zones(world, node_class),
        limits=limits,
        unknown=unknown,
        storage=storage,
    )


def _node_group_storage(world: World, name: str, inputs: dict[str, Any]) -> tuple[NodeStorage, str]:
    """A managed node group's root volume: its launch template's root mapping (GiB), else ``diskSize`` (GiB), else
    the API default; nodeadm's kubelet defaults apply (the plan passes no kubelet config)."""
    ami_type = str(inputs.get("amiType") or "")
    if ami_type and not ami_type.startswith("AL2023_"):
        # nodeadm (and /dev/xvda as the root device) are AL2023's; other AMI types configure the kubelet otherwise.
        note = f"node group {name}: ephemeral-storage is modelled for AL2023 AMI types only ({ami_type})"
        return NodeStorage(), note
    reference = inputs.get("launchTemplate") or {}
    if reference:
        templates = world.resources("aws:ec2/launchTemplate:LaunchTemplate")
        template = next(
            (
                t
                for t in templates
                if (reference.get("id") and t.id == reference.get("id"))
                or (reference.get("name") and t.inputs.get("name") == reference.get("name"))
            ),
            None,
        )
        mappings = (template.inputs if template else {}).get("blockDeviceMappings") or []
        root = next((m for m in mappings if m.get("deviceName") == _ROOT_DEVICE), None)
        size = ((root or {}).get("ebs") or {}).get("volumeSize")
        if size:
            return NodeStorage(volume=Fraction(str(size)) * _GIB), ""
        return NodeStorage(), (
            f"node group {name}: its launch template sets no {_ROOT_DEVICE} volume size; the AMI's own root "
            "volume size is not modelled (20 GiB assumed for ephemeral-storage)"
        )
    size = inputs.get("diskSize")
    return NodeStorage(volume=Fraction(str(size)) * _GIB if size else _DEFAULT_VOLUME), ""


def _node_class_storage(world: World, pool: str, node_class: str) -> tuple[NodeStorage, list[str]]:
    """A NodePool's ephemeral-storage as Karpenter v1.14.1 computes it from the EC2NodeClass
    (``ephemeralStorage``, ``kubeReservedResources``, ``evictionThreshold`` in pkg/providers/instancetype/types.go)."""
    found = next((c for c in of_kind(world, "EC2NodeClass") if c.name == node_class), None)
    if found is None:
        return NodeStorage(), [f"{pool}: EC2NodeClass {node_class!r} is not in the plan (20Gi root volume assumed)"]
    spec = found.obj.get("spec") or {}
    notes: list[str] = []
    aliases = [str(t.get("alias")) for t in spec.get("amiSelectorTerms") or [] if t.get("alias")]
    if not aliases or any(not a.startswith("al2023@") for a in aliases):
        notes.append(f"{pool}: ephemeral-storage is modelled for AL2023 AMI aliases only (EC2NodeClass {node_class})")
    try:
        mappings = spec.get("blockDeviceMappings") or []
        root = next((m for m in mappings if m.get("rootVolume")), None)
        if root is None or not (root.get("ebs") or {}).get("volumeSize"):
            root = next((m for m in mappings if m.get("deviceName") == _ROOT_DEVICE), None)
        size = ((root or {}).get("ebs") or {}).get("volumeSize")
        kubelet = spec.get("kubelet") or {}
        kube_reserved = (kubelet.get("kubeReserved") or {}).get("ephemeral-storage")
        system_reserved = (kubelet.get("systemReserved") or {}).get("ephemeral-storage")
        storage = NodeStorage(
            volume=quantity.parse(size) if size else _DEFAULT_VOLUME,
            raid0=spec.get("instanceStorePolicy") == "RAID0",
            kube_reserved=quantity.parse(kube_reserved) if kube_reserved else Fraction(_GIB),
            system_reserved=quantity.parse(system_reserved) if system_reserved else Fraction(0),
            eviction=str((kubelet.get("evictionHard") or {}).get("nodefs.available") or "10%"),
        )
        storage.threshold(storage.volume)  # a bad eviction value fails here, not mid-simulation
    except (quantity.BadQuantity, ValueError, ArithmeticError) as error:
        notes.append(f"cannot evaluate the ephemeral-storage of EC2NodeClass {node_class}: {error}")
        storage = NodeStorage()
    return storage, notes


def _pool_zones(world: World, node_class: str) -> list[str]:
    # The EC2NodeClass selects subnets by tag; every private subnet of the VPC is a candidate zone.
    zones = sorted(
        {
            str(r.inputs.get("availabilityZone"))
            for r in world.resources("aws:ec2/subnet:Subnet")
            if r.inputs.get("availabilityZone")
        }
    )
    return zones or [f"zone-of-{node_class}"]


# --- matching ----------------------------------------------------------------------------------------------


def _expression_matches(
    labels: dict[str, frozenset[str]], key: str, operator: str, values: list[str]
) -> bool:
    have = labels.get(key)
    if operator == "Exists":
        return have is not None
    if operator == "DoesNotExist":
        return have is None
    if have is None:
        return operator == "NotIn"
    if have is ANY:
        return True
    if operator == "In":
        return bool(have & set(values))
    if operator == "NotIn":
        return bool(have - set(values))
    if operator in ("Gt", "Lt") and values:
        bound = int(values[0])
        return any(
            v.lstrip("-").isdigit() and (int(v) > bound if operator == "Gt" else int(v) < bound) for v in have
        )
    return False


def _node_affinity_problem(spec: dict[str, Any], labels: dict[str, frozenset[str]]) -> str:
    for key, value in (spec.get("nodeSelector") or {}).items():
        if not _expression_matches(labels, str(key), "In", [str(value)]):
            return f"nodeSelector {key}={value}"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    terms = (required or {}).get("nodeSelectorTerms") or []
    if terms and not any(
        all(
            _expression_matches(
                labels, str(e.get("key")), str(e.get("operator")), [str(v) for v in e.get("values") or []]
            )
            for e in term.get("matchExpressions") or []
        )
        for term in terms
    ):
        return "required node affinity"
    return ""


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        key = toleration.get("key")
        if operator == "Exists" and (not key or key == taint.get("key")):
            return True
        if (
            operator == "Equal"
            and key == taint.get("key")
            and str(toleration.get("value") or "") == str(taint.get("value") or "")
        ):
            return True
    return False


def _taint_problem(spec: dict[str, Any], taints: list[dict[str, Any]]) -> str:
    tolerations = spec.get("tolerations") or []
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return f"untolerated taint {taint.get('key')}={taint.get('value') or ''}:{taint.get('effect')}"
    return ""


def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """An affinity term's labelSelector: a null selector matches no pod (core/v1 PodAffinityTerm)."""
    return selector is not None and label_selector_matches(selector, labels)


def _anti_affinity_terms(pod: PodTemplate) -> list[dict[str, Any]]:
    affinity = (pod.spec.get("affinity") or {}).get("podAntiAffinity") or {}
    return list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _term_namespaces(pod: PodTemplate, term: dict[str, Any]) -> set[str] | None:
    if term.get("namespaceSelector") is not None:
        return None  # any namespace the selector picks: treated as every namespace (conservative)
    return {str(n) for n in term.get("namespaces") or []} or {pod.namespace}


def _domain(node: Node, key: str) -> str | None:
    if key == HOSTNAME:
        return node.name
    if key == ZONE:
        return node.zone
    value = node.labels().get(key)
    return None if value is None else ",".join(sorted(value))


def _anti_affinity_problem(pod: PodTemplate, labels: dict[str, str], node: Node, nodes: list[Node]) -> str:
    for term in _anti_affinity_terms(pod):
        key = str(term.get("topologyKey"))
        domain = _domain(node, key)
        namespaces = _term_namespaces(pod, term)
        for other in nodes:
            if _domain(other, key) != domain:
                continue
            for placed, placed_labels in other.pods:
                if (namespaces is None or placed.namespace in namespaces) and _selector_matches(
                    term.get("labelSelector"), placed_labels
                ):
                    return f"required pod anti-affinity on {key}"
    # Symmetry: a placed pod's anti-affinity also keeps this pod away (the scheduler checks both directions).
    for other in nodes:
        for placed, _ in other.pods:
            for term in _anti_affinity_terms(placed):
                key = str(term.get("topologyKey"))
                namespaces = _term_namespaces(placed, term)
                if (
                    _domain(other, key) == _domain(node, key)
                    and (namespaces is None or pod.namespace in namespaces)
                    and _selector_matches(term.get("labelSelector"), labels)
                ):
                    return f"required pod anti-affinity of {placed.item.name} on {key}"
    return ""


def _spread_problem(
    pod: PodTemplate, labels: dict[str, str], node: Node, domains: dict[str, dict[str, int]]
) -> str:
    for constraint in pod.spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        key = str(constraint.get("topologyKey"))
        counts = domains.get(key, {})
        domain = _domain(node, key)
        if domain is None or not counts:
            continue
        skew = counts.get(domain, 0) + 1 - min(counts.values())
        if skew > int(constraint.get("maxSkew", 1)):
            return f"topology spread on {key} (maxSkew {constraint.get('maxSkew', 1)})"
    return ""


def _spread_domains(
    pod: PodTemplate, labels: dict[str, str], nodes: list[Node], sources: list[NodeSource]
) -> dict[str, dict[str, int]]:
    """Per DoNotSchedule topology key: matching pods per eligible domain (nodeAffinityPolicy Honor)."""
    out: dict[str, dict[str, int]] = {}
    for constraint in pod.spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        key = str(constraint.get("topologyKey"))
        selector = constraint.get("labelSelector")
        counts: dict[str, int] = {}
        for node in nodes:
            if _node_affinity_problem(pod.spec, node.labels()):
                continue
            domain = _domain(node, key)
            if domain is not None:
                counts.setdefault(domain, 0)
                counts[domain] += sum(
                    1
                    for p, pl in node.pods
                    if p.namespace == pod.namespace and _selector_matches(selector, pl)
                )
        # A NodePool the pod may use can add a new empty domain (a new host, or any zone of its subnets).
        for source in sources:
            eligible = any(
                not _node_affinity_problem(pod.spec, {**source.labels, **t.labels()}) for t in source.types
            )
            if source.karpenter and eligible and not _taint_problem(pod.spec, source.taints):
                if key == HOSTNAME:
                    counts.setdefault("<new node>", 0)
                elif key == ZONE:
                    for zone in source.zones:
                        counts.setdefault(zone, 0)
        out[key] = counts
    return out


def _fits(request: quantity.Resources, free: quantity.Resources) -> str:
    for name, amount in request.items():
        if amount > free.get(name, Fraction(0)):
            return f"insufficient {name} (needs {quantity.show(name, amount)}, {quantity.show(name, free.get(name, Fraction(0)))} free)"
    return ""


def _with_pod(request: quantity.Resources) -> quantity.Resources:
    return quantity.add(request, {"pods": Fraction(1)})


# --- EKS managed add-ons --------------------------------------------------------------------------------------


@cache
def eks_addon_pods() -> dict[str, Any]:
    """The add-on pod table (``data/eks_addon_pods.yaml``: per add-on, the version read and its workloads)."""
    return dict(fast_safe_load(_ADDON_PODS.read_text(encoding="utf-8")))


# Where an add-on's configuration values set a workload's node selector (the add-on's chart values, which its
# configuration schema mirrors): aws-ebs-csi-driver `controller.nodeSelector` for the controller Deployment.
_CONFIGURED_NODE_SELECTOR = {("aws-ebs-csi-driver", "ebs-csi-controller"): ("controller", "nodeSelector")}


def _configured_node_selector(addon: str, workload: str, configuration: Any) -> dict[str, str]:
    """The node selector the add-on's ``configurationValues`` (JSON) give ``workload``, or none."""
    path = _CONFIGURED_NODE_SELECTOR.get((addon, workload))
    if path is None or not isinstance(configuration, str) or not configuration:
        return {}
    try:
        value: Any = json.loads(configuration)
    except ValueError:
        return {}
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _addon_object(
    addon: str, version: str, workload: dict[str, Any], urn: str, node_selector: dict[str, str] | None = None
) -> KubeObject:
    """A stand-in for one workload EKS creates for an add-on: its kind, tolerations, node selector (from the
    add-on's configuration) and one pod's request."""
    template = {
        "metadata": {"labels": {"app.kubernetes.io/name": workload["name"], "eks.amazonaws.com/addon": addon}},
        "spec": {
            **({"nodeSelector": node_selector} if node_selector else {}),
            "tolerations": workload.get("tolerations") or [],
            "containers": [
                {
                    "name": workload["name"],
                    "resources": {"requests": {"cpu": workload["cpu"], "memory": workload["memory"]}},
                }
            ],
        },
    }
    spec: dict[str, Any] = {"template": template}
    if workload["kind"] == "Deployment":
        spec["replicas"] = workload["replicas"]
    return KubeObject(
        {
            "apiVersion": "apps/v1",
            "kind": workload["kind"],
            "metadata": {"name": workload["name"], "namespace": "kube-system", "annotations": {"version": version}},
            "spec": spec,
        },
        urn,
    )


@derived
def addon_templates(world: World) -> list[PodTemplate]:
    """The pods of the plan's EKS managed add-ons (vpc-cni, kube-proxy, CoreDNS, EBS CSI, Pod Identity agent),
    from the add-on pod table. An add-on the table does not know, or a version other than the one it was read
    for, is reported as not evaluated rather than guessed."""
    table = eks_addon_pods()
    templates = []
    for addon in world.resources(ADDON_TYPE):
        name = str(addon.inputs.get("addonName", ""))
        version = str(addon.inputs.get("addonVersion", ""))
        row = table.get(name)
        for workload in (row or {}).get("workloads", []):
            selector = _configured_node_selector(name, workload["name"], addon.inputs.get("configurationValues"))
            item = _addon_object(name, version, workload, addon.urn, selector)
            replicas = int(workload.get("replicas", 1))
            pod = PodTemplate(
                item,
                item.obj["spec"]["template"]["spec"],
                dict(item.obj["spec"]["template"]["metadata"]["labels"]),
                Scaling(replicas, replicas, f"EKS add-on {name} {version}"),
                [],
            )
            if row is not None and row.get("read_for") != version:
                pod.unknown.append(
                    f"EKS add-on {name} {version}: its pods were read for {row.get('read_for')} "
                    "(mlstack/simulate/data/eks_addon_pods.yaml); re-read them for this version"
                )
            templates.append(pod)
        if row is None:
            placeholder = PodTemplate(
                KubeObject({"kind": "Addon", "metadata": {"name": name}}, addon.urn),
                {},
                {},
                Scaling(0, 0, f"EKS add-on {name}"),
                [],
                unknown=[
                    f"EKS add-on {name} is not in mlstack/simulate/data/eks_addon_pods.yaml: its pods are not counted"
                ],
            )
            templates.append(placeholder)
    return templates


@derived
def capacity_templates(world: World) -> list[PodTemplate]:
    """Every pod the capacity checks place: the plan's and the charts' workloads, and the EKS add-ons' pods."""
    return [*pod_templates(world), *addon_templates(world)]


# --- the simulation ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One scenario (idle or peak): the nodes it ends with and the replicas that stay Pending, with why."""

    nodes: list[Node]
    pending: dict[int, list[str]]  # id(PodTemplate) -> one reason per pending replica
    unknown: list[tuple[str, str]]


def _simulate(world: World, peak: bool) -> Outcome:
    sources = node_sources(world)
    templates = [p for p in capacity_templates(world) if not p.rejections]
    daemonsets = [p for p in templates if p.kind == "DaemonSet"]
    nodes: list[Node] = []
    pending: dict[int, list[str]] = {}
    unknown: list[tuple[str, str]] = []
    launched: dict[str, quantity.Resources] = {}

    def add_node(source: NodeSource, itype: InstanceType, zone: str) -> Node:
        node = Node(f"{source.label.split()[-1]}-{len(nodes) + 1}", source, itype, zone, source.allocatable(itype))
        nodes.append(node)
        for ds in daemonsets:
            if _node_affinity_problem(ds.spec, node.labels()) or _taint_problem(ds.spec, source.taints):
                continue
            problem = _fits(_with_pod(ds.requests()), node.free)
            if problem:
                pending.setdefault(id(ds), []).append(f"on {node.name} ({itype.name}): {problem}")
                continue
            node.free = quantity.add(node.free, _with_pod(ds.requests()), -1)
            node.pods.append((ds, ds.labels))
        return node

    for source in sources:
        if not source.karpenter and source.types:
            for index in range(source.count):
                add_node(source, source.types[0], source.zones[index % len(source.zones)])

    replicas = [
        (pod, index)
        for pod in templates
        if pod.kind != "DaemonSet" and not pod.transient
        for index in range(pod.scaling.peak if peak else pod.scaling.idle)
    ]
    replicas.sort(
        key=lambda r: (
            -r[0].requests().get("cpu", Fraction(0)),
            -r[0].requests().get("memory", Fraction(0)),
            r[0].item.label,
            r[1],
        )
    )
    for pod, _ in replicas:
        reason = _place(pod, nodes, sources, launched, add_node)
        if reason:
            pending.setdefault(id(pod), []).append(reason)
    for source in sources:
        unknown += [(note, source.urn) for note in source.unknown]
    # The chart and plan pods' own unknowns are the admission checks' to report; the add-ons' are only here.
    unknown += [(note, pod.item.urn) for pod in addon_templates(world) for note in pod.unknown]
    return Outcome(nodes, pending, unknown)


def _place(
    pod: PodTemplate,
    nodes: list[Node],
    sources: list[NodeSource],
    launched: dict[str, quantity.Resources],
    add_node: Any,
) -> str:
    request = _with_pod(pod.requests())
    labels = pod.labels
    domains = _spread_domains(pod, labels, nodes, sources)
    reasons: dict[str, str] = {}
    best: Node | None = None
    best_score = Fraction(-1)
    for node in nodes:
        problem = (
            _node_affinity_problem(pod.spec, node.labels())
            or _taint_problem(pod.spec, node.source.taints)
            or _fits(request, node.free)
            or _anti_affinity_problem(pod, labels, node, nodes)
            or _spread_problem(pod, labels, node, domains)
        )
        if problem:
            reasons.setdefault(node.source.label, f"{node.source.label} ({node.source.describe(node.type)}): {problem}")
            continue
        allocatable = node.type.allocatable()
        score = min(
            node.free.get(n, Fraction(0)) / allocatable[n] for n in ("cpu", "memory") if allocatable.get(n)
        )
        if score > best_score:
            best, best_score = node, score
    if best is not None:
        best.free = quantity.add(best.free, request, -1)
        best.pods.append((pod, labels))
        return ""
    for source in sources:
        if not source.karpenter:
            if source.label not in reasons:
                reasons[source.label] = (
                    f"{source.label}: no node ({source.count} desired)" if source.count == 0 else source.label
                )
            continue
        problem = _taint_problem(pod.spec, source.taints)
        if problem:
            reasons[source.label] = f"{source.label}: {problem}"
            continue
        chosen, why = _launchable(pod, request, source, launched, nodes)
        if chosen is None:
            reasons[source.label] = f"{source.label}: {why}"
            continue
        zone = min(source.zones, key=lambda z: sum(1 for n in nodes if n.zone == z))
        node = add_node(source, chosen, zone)
        launched[source.label] = quantity.add(launched.get(source.label, {}), source.capacity(chosen))
        problem = (
            _fits(request, node.free)
            or _anti_affinity_problem(pod, labels, node, nodes)
            or _spread_problem(pod, labels, node, domains)
        )
        if problem:
            reasons[source.label] = f"{source.label}: {problem}"
            continue
        node.free = quantity.add(node.free, request, -1)
        node.pods.append((pod, labels))
        return ""
    return "; ".join(reasons.values()) or "no node source in the plan"


def _launchable(
    pod: PodTemplate,
    request: quantity.Resources,
    source: NodeSource,
    launched: dict[str, quantity.Resources],
    nodes: list[Node],
) -> tuple[InstanceType | None, str]:
    """The smallest type of the pool that holds the pod beside the pool's DaemonSets, within the pool's limits."""
    if not source.types:
        return None, "no instance type of the table satisfies its requirements"
    used = launched.get(source.label, {})
    limit_hit = ""
    too_small = True
    shapes = [
        t for t in source.types if not _node_affinity_problem(pod.spec, {**source.labels, **t.labels()})
    ]
    if not shapes:
        return None, _node_affinity_problem(pod.spec, {**source.labels, **source.types[0].labels()})
    for itype in shapes:
        if _fits(request, source.allocatable(itype)):
            continue
        too_small = False
        after = quantity.add(used, source.capacity(itype))
        over = [n for n, cap in source.limits.items() if after.get(n, Fraction(0)) > cap]
        if over:
            name = over[0]
            limit_hit = (
                f"limit {name}={quantity.show(name, source.limits[name])} reached "
                f"({quantity.show(name, used.get(name, Fraction(0)))} launched)"
            )
            continue
        return itype, ""
    if too_small:
        largest = max(shapes, key=lambda t: (t.vcpu, t.memory_mib))
        problem = _fits(request, source.allocatable(largest))
        return None, f"no instance type large enough: {problem} on the largest ({source.describe(largest)})"
    return None, limit_hit


@derived
def idle(world: World) -> Outcome:
    return _simulate(world, peak=False)


@derived
def peak(world: World) -> Outcome:
    return _simulate(world, peak=True)


def _pending_findings(
    outcome: Outcome, world: World, when: str, skip: dict[int, list[str]] | None = None
) -> SimResult:
    for pod in capacity_templates(world):
        reasons = outcome.pending.get(id(pod))
        if not reasons:
            continue
        if skip is not None and len(skip.get(id(pod), [])) >= len(reasons):
            continue
        wanted = pod.scaling.peak if when == "peak" else pod.scaling.idle
        count = f"{len(reasons)} of {wanted} replicas" if pod.kind != "DaemonSet" else f"{len(reasons)} pods"
        distinct = list(dict.fromkeys(reasons))
        yield f"{count} of {pod.item.label} stay Pending at {when}: {' | '.join(distinct[:3])}", pod.item.urn


@sim_check(
    "MLS-SIM-CAP-001",
    title="At idle, every platform pod fits on the nodes the platform has",
    why=(
        "Nothing scales the managed system node group (no cluster-autoscaler), and Karpenter launches only what its "
        "NodePools allow: a pod that fits none of them stays Pending, so a Helm release waiting on it (atomic, "
        "--wait) times out and rolls back, and the deploy fails"
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Give the system node group enough nodes (desired_size) or larger instance types for the platform's pods "
        "at their minimum replicas, or lower the charts' replica counts and requests; for anti-affinity, have at "
        "least as many nodes (or zones) as replicas"
    ),
    subjects=(NODE_GROUP_TYPE, "NodePool", "Deployment", "StatefulSet", "DaemonSet"),
)
def platform_fits_at_idle(world: World) -> SimResult:
    outcome = idle(world)
    yield from _pending_findings(outcome, world, "idle")
    for note, urn in outcome.unknown:
        yield f"cannot evaluate capacity fully: {note}", urn


@sim_check(
    "MLS-SIM-CAP-002",
    title="At peak, every workload at its maximum replicas fits within its node pools' limits",
    why=(
        "An endpoint scaled to its maximum replicas needs nodes its NodePool can launch within its limits "
        "(nvidia.com/gpu, cpu, memory); past them, or on a pool whose types cannot hold the pod, the extra "
        "replicas stay Pending exactly when load needs them"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Raise the GPU pool's max_gpus (NodePool limits) to cover every endpoint's max_replicas x gpus_per_replica "
        "on that pool, or lower max_replicas; give the pool an instance type that holds the pod"
    ),
    subjects=("NodePool", "HorizontalPodAutoscaler", "ScaledObject", "HTTPScaledObject"),
)
def workloads_fit_at_peak(world: World) -> SimResult:
    yield from _pending_findings(peak(world), world, "peak", skip=idle(world).pending)


@sim_check(
    "MLS-SIM-CAP-003",
    title="Every pod, Jobs included, can run on some node the platform can ever have",
    why=(
        "A pod whose selectors, tolerations or requests no node group or NodePool can ever satisfy stays Pending "
        "for good, whatever the load: a Job never completes, a Helm hook times out"
    ),
    severity=Severity.HIGH,
    remediation="Match the pod's nodeSelector/affinity and tolerations to a node source, or lower its requests",
    subjects=(NODE_GROUP_TYPE, "NodePool", "Job", "CronJob"),
)
def every_pod_has_a_home(world: World) -> SimResult:
    sources = node_sources(world)
    for pod in capacity_templates(world):
        if pod.rejections or pod.kind == "DaemonSet" or not pod.scaling.peak:
            continue
        if (
            (pod.spec.get("affinity") or {})
            .get("podAffinity", {})
            .get("requiredDuringSchedulingIgnoredDuringExecution")
        ):
            yield f"cannot evaluate required pod affinity of {pod.item.label} (not modelled)", pod.item.urn
        request = _with_pod(pod.requests())
        reasons = []
        for source in sources:
            problem = _taint_problem(pod.spec, source.taints)
            candidates = source.types if source.karpenter else source.types[:1]
            if not problem:
                shapes = [{**source.labels, **t.labels()} for t in candidates]
                matching = [
                    t
                    for t, labels in zip(candidates, shapes, strict=True)
                    if not _node_affinity_problem(pod.spec, labels)
                ]
                if not candidates:
                    problem = "no known instance type"
                elif not matching:
                    problem = _node_affinity_problem(pod.spec, shapes[0])
                elif any(not _fits(request, source.allocatable(t)) for t in matching):
                    break
                else:
                    largest = max(matching, key=lambda t: (t.vcpu, t.memory_mib))
                    problem = (
                        _fits(request, source.allocatable(largest))
                        + f" on the largest type ({source.describe(largest)})"
                    )
            reasons.append(f"{source.label}: {problem}")
        else:
            yield (
                f"pods of {pod.item.label} can never be scheduled: {'; '.join(reasons) or 'no node source'}",
                pod.item.urn,
            )
