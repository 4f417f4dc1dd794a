"""GPU pool section of the environment spec: one Karpenter NodePool per entry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from mlstack.spec.base import DnsLabel, StrictModel

InstanceSelector = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*(\.[0-9a-z]+)?$"),
    Field(description="An instance family (g5, p5) or an exact instance type (g6e.12xlarge)."),
]


class GpuPoolSpec(StrictModel):
    """A pool of GPU nodes that Karpenter launches on demand and removes when idle."""

    name: DnsLabel = Field(
        description="Pool name; becomes the NodePool name and the node label mlstack.io/pool."
    )
    workload_class: Literal["training", "inference", "notebook"] = Field(
        description="What the pool serves; becomes the node label mlstack.io/workload-class."
    )
    instance_types: list[InstanceSelector] = Field(
        min_length=1,
        description="Allow-list of GPU instance families or exact types. Each must be in the GPU instance table.",
    )
    capacity_type: Literal["spot", "on-demand", "spot-preferred"] = Field(
        default="spot-preferred",
        description="Capacity to buy: spot only, on-demand only, or both with spot preferred. Default: spot-preferred.",
    )
    max_gpus: int = Field(
        ge=1,
        le=4096,
        description="Upper limit of GPUs this pool may hold at once (Karpenter limit nvidia.com/gpu). Required.",
    )
