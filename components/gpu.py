"""Karpenter and one NodePool per declared GPU pool, with the NVIDIA device plugin."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.gpu import GpuPoolSpec


@dataclass(frozen=True)
class GpuPoolsArgs:
    env: Environment
    spec: list[GpuPoolSpec]


class GpuPools(pulumi.ComponentResource):
    """Karpenter and one NodePool per declared GPU pool, with the NVIDIA device plugin.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: GpuPoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:gpu:GpuPools", name, None, opts)
        self.register_outputs({})
