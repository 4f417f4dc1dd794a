"""Compute for ordinary work: Karpenter CPU pools (x86 and Graviton) and JobSet for multi-node jobs.

The CPU pools use the Karpenter installation, node role and instance profile of :class:`components.gpu.GpuPools`;
the Kueue flavors that admit work onto them are built by :mod:`components.teams` (one per architecture).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster import Cluster, system_placement
from components.environment import Environment
from components.gpu import POOL_LABEL, GpuPools, ec2_node_class_spec
from components.helm import chart_source
from components.options import child
from components.registry import PullThrough
from mlstack.spec.compute import CpuPoolSpec

ARCH_LABEL = "kubernetes.io/arch"
# Graviton nodes are opt-in: a pod lands there only if it tolerates this taint, i.e. its author knows every
# image of the pod is built for arm64. Kueue's arm64 flavor lists the same taint under nodeTaints, so Kueue
# assigns that flavor only to workloads that tolerate it (kueue.x-k8s.io_resourceflavors.yaml at v0.19.2).
ARM64_TAINT = {"key": ARCH_LABEL, "value": "arm64", "effect": "NoSchedule"}
CAPACITY_VALUES = {"spot": ["spot"], "on-demand": ["on-demand"], "spot-preferred": ["spot", "on-demand"]}

# kubernetes-sigs/jobset@v0.12.0:charts/jobset/README.md: helm install ... oci://registry.k8s.io/jobset/charts/jobset
JOBSET_CHART_REPO = "oci://registry.k8s.io/jobset/charts"
JOBSET_CHART = "jobset"
JOBSET_VERSION = "0.12.0"
JOBSET_NAMESPACE = "jobset-system"
# The released chart's controller image (shared/charts/release-values/jobset-0.12.0.yaml, which upstream's
# hack/helm-chart-package.sh writes into values.yaml): registry.k8s.io/jobset/jobset:v0.12.0.
JOBSET_IMAGE = "registry.k8s.io/jobset/jobset"
JOBSET_IMAGE_TAG = "v0.12.0"
# Metaflow's @parallel creates JobSets of this group and version (Netflix/metaflow@2.19.39:
# metaflow/metaflow_config.py KUBERNETES_JOBSET_GROUP / KUBERNETES_JOBSET_VERSION); the chart's CRD serves it.
JOBSET_API = "jobset.x-k8s.io/v1alpha2"


@dataclass(frozen=True)
class ComputeArgs:
    """Inputs of Compute: the CPU pools, the Karpenter installation they share, and the image caches."""

    env: Environment
    spec: list[CpuPoolSpec]
    cluster: Cluster
    karpenter: GpuPools
    pull_through: PullThrough


class Compute(pulumi.ComponentResource):
    """One Karpenter NodePool and EC2NodeClass per CPU pool, and the JobSet controller.

    CPU pools are untainted on amd64 (so any pod that is not pinned elsewhere lands there: the system nodes are
    tainted) and tainted ``kubernetes.io/arch=arm64:NoSchedule`` on arm64. Every pool is limited in vCPU and
    memory, consolidated when empty or underused, and scales to zero.

    Outputs: ``node_pool_names``. Attribute ``jobset`` is the JobSet release (Kueue waits for it, so that its
    JobSet integration finds the CRD).
    """

    node_pool_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:compute:Compute", name, None, opts)
        self._name = name
        k8s = args.cluster.k8s_provider
        self.node_pools = {pool.name: self._pool(args, pool) for pool in args.spec}

        chart, repository = chart_source(JOBSET_CHART_REPO, JOBSET_CHART)
        self.jobset = kubernetes.helm.v3.Release(
            f"{name}-jobset",
            name=JOBSET_CHART,
            chart=chart,
            version=JOBSET_VERSION,
            namespace=JOBSET_NAMESPACE,
            create_namespace=True,
            repository_opts=repository,
            values=jobset_values(hardened=args.env.tier.hardened, pull_through=args.pull_through),
            atomic=True,
            opts=child(self, provider=k8s),
        )

        self.node_pool_names = pulumi.Output.from_input([pool.name for pool in args.spec])
        self.register_outputs({"node_pool_names": self.node_pool_names})

    def _pool(self, args: ComputeArgs, pool: CpuPoolSpec) -> kubernetes.apiextensions.CustomResource:
        name = f"{self._name}-{pool.name}"
        karpenter = args.karpenter
        node_class = kubernetes.apiextensions.CustomResource(
            f"{name}-nodeclass",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": pool.name},
            spec=ec2_node_class_spec(
                args.env,
                args.cluster,
                ami_alias=karpenter.ami_alias,
                instance_profile=karpenter.instance_profile.name,
                volume_gib=pool.volume_gib,
                pool=pool.name,
            ),
            opts=child(self, provider=args.cluster.k8s_provider, depends_on=[karpenter.karpenter]),
        )
        return kubernetes.apiextensions.CustomResource(
            f"{name}-nodepool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": pool.name},
            spec=node_pool_spec(pool),
            opts=child(
                self, provider=args.cluster.k8s_provider, depends_on=[karpenter.karpenter, node_class]
            ),
        )


def node_pool_spec(pool: CpuPoolSpec) -> dict[str, Any]:
    """The NodePool of a CPU pool (field names from karpenter.sh_nodepools.yaml at v1.14.1)."""
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
        "requirements": [
            {
                "key": "node.kubernetes.io/instance-type",
                "operator": "In",
                "values": sorted(pool.instance_types),
            },
            # With both allowed Karpenter launches Spot first and falls back to On-Demand.
            {
                "key": "karpenter.sh/capacity-type",
                "operator": "In",
                "values": CAPACITY_VALUES[pool.capacity_type],
            },
            {"key": ARCH_LABEL, "operator": "In", "values": [pool.arch]},
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        ],
        # Nodes are replaced monthly so that AMI patches land even on busy pools.
        "expireAfter": "720h",
    }
    if pool.arch == "arm64":
        template_spec["taints"] = [dict(ARM64_TAINT)]
    return {
        "template": {"metadata": {"labels": {POOL_LABEL: pool.name}}, "spec": template_spec},
        "limits": {"cpu": str(pool.max_vcpu), "memory": f"{pool.memory_limit_gib()}Gi"},
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": f"{pool.consolidate_after_minutes}m",
            "budgets": [{"nodes": f"{pool.disruption_budget_percent}%"}],
        },
    }


def jobset_values(*, hardened: bool, pull_through: PullThrough) -> dict[str, Any]:
    """Helm values of JobSet 0.12.0 (kubernetes-sigs/jobset@v0.12.0:charts/jobset/values.yaml): the controller
    image through the registry.k8s.io cache, on the system nodes, two replicas where hardened (the chart's
    leader election keeps one active)."""
    return {
        "image": {"repository": pull_through.image(JOBSET_IMAGE), "tag": JOBSET_IMAGE_TAG},
        "controller": {
            "replicas": 2 if hardened else 1,
            **system_placement(),
            # The chart's default requests 500m CPU (limits 2 CPU, 4Gi); the controller only reconciles JobSets,
            # so a smaller CPU request leaves the small system nodes room for the other controllers. Memory
            # keeps the chart's request and limit.
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "4Gi"},
            },
        },
    }
