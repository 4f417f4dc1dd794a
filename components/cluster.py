"""The EKS cluster, its system node group, managed add-ons and the Kubernetes provider."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.cluster import ClusterSpec


def eks_cluster_name(env: Environment) -> str:
    """The EKS cluster's name, known before the cluster exists so that subnets can carry discovery tags."""
    return env.resource_name("eks")


@dataclass(frozen=True)
class ClusterArgs:
    env: Environment
    spec: ClusterSpec


class Cluster(pulumi.ComponentResource):
    """The EKS cluster, its system node group, managed add-ons and the Kubernetes provider.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:cluster:Cluster", name, None, opts)
        self.register_outputs({})
