"""GPU pool section of the environment spec: one Karpenter NodePool per entry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from mlstack.catalog import GpuInstanceType, gpu_catalog
from mlstack.spec.base import DnsLabel, RuleViolations, StrictModel

InstanceSelector = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*(\.[0-9a-z]+)?$"),
    Field(description="An instance family (g5, p5) or an exact instance type (g6e.12xlarge)."),
]


class GpuSharingSpec(StrictModel):
    """How several pods share one physical GPU. Default: no sharing, one pod owns each GPU."""

    mode: Literal["time-slicing", "mig"] = Field(
        description="'time-slicing' advertises each GPU several times (no memory isolation, any GPU). 'mig' "
        "is refused for now: nothing in mlstack enables MIG on the nodes or creates the partition layout."
    )
    replicas: int = Field(
        default=4,
        ge=2,
        le=16,
        description="With time-slicing: how many pods share each GPU. Default: 4.",
    )


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
        description="Allow-list of GPU instance families or exact types. Each must be in the GPU instance table "
        "(components/data/gpu_instances.yaml).",
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
    efa: bool = Field(
        default=False,
        description="Attach Elastic Fabric Adapter interfaces and launch into a cluster placement group, for "
        "multi-node training. Training pools only; every listed type or family must support EFA (the pool "
        "then keeps only the family's EFA sizes). Default: off.",
    )
    sharing: GpuSharingSpec | None = Field(
        default=None,
        description="Let several pods share a GPU through the NVIDIA device plugin config. Default: none, one "
        "pod per GPU.",
    )
    volume_gib: int = Field(
        default=200,
        ge=50,
        le=16384,
        description="Encrypted gp3 root volume per node, sized for large images and model caches. Default: 200 GiB.",
    )
    consolidate_after_minutes: int = Field(
        default=10,
        ge=0,
        le=1440,
        description="Minutes a node must be empty or underused before Karpenter removes it; the pool scales to "
        "zero when idle. Default: 10.",
    )
    dcgm_exporter: bool = Field(
        default=True,
        description="Run the NVIDIA DCGM exporter on this pool's nodes for GPU metrics (utilisation, memory, "
        "errors). Default: on; idle GPUs are only noticed when measured.",
    )

    @model_validator(mode="after")
    def _known_gpu_types(self) -> GpuPoolSpec:
        problems: list[tuple[str, str]] = []
        catalog = gpu_catalog()
        resolved: list[GpuInstanceType] = []
        for i, selector in enumerate(self.instance_types):
            try:
                types = catalog.expand(selector)
            except KeyError as exc:
                problems.append(
                    (
                        f"instance_types.{i}",
                        f"{exc.args[0]}; only GPU instance types from the table can join a pool",
                    )
                )
                continue
            resolved += types
            if self.efa and not any(t.efa for t in types):
                problems.append(
                    (
                        f"instance_types.{i}",
                        f"'{selector}' has no EFA support; EFA-capable choices: {_efa_choices(types[0].family)}; "
                        "pick one of them or turn efa off",
                    )
                )
        if self.efa and self.workload_class != "training":
            problems.append(
                ("efa", f"EFA only helps multi-node training, not {self.workload_class}: turn efa off")
            )
        if self.sharing is not None and self.sharing.mode == "mig":
            # The device plugin's migStrategy only advertises MIG devices that already exist on the node
            # (NVIDIA/k8s-device-plugin@v0.17.1:internal/rm/device_map.go); nothing in mlstack enables MIG or
            # creates the layout (no NVIDIA MIG manager), so the pool would silently hand out whole GPUs.
            problems.append(
                (
                    "sharing.mode",
                    "mig is not supported yet: nothing on the nodes enables MIG or partitions the GPUs, so the "
                    "pool would advertise whole GPUs; use time-slicing, or remove sharing for whole GPUs",
                )
            )
        if self.sharing is not None and self.efa:
            problems.append(("sharing", "GPU sharing and EFA do not mix: training over EFA needs whole GPUs"))
        if problems:
            raise RuleViolations(problems)
        return self

    def resolved_types(self) -> list[GpuInstanceType]:
        """Every exact instance type the pool may launch, de-duplicated; with EFA, only the EFA-capable ones."""
        catalog = gpu_catalog()
        seen: dict[str, GpuInstanceType] = {}
        for selector in self.instance_types:
            for instance_type in catalog.expand(selector):
                if instance_type.efa or not self.efa:
                    seen.setdefault(instance_type.name, instance_type)
        return list(seen.values())


def _efa_choices(family: str) -> str:
    """The EFA sizes of the same family, or every family with EFA sizes when the family has none."""
    catalog = gpu_catalog()
    sizes = [t.name for t in catalog.family_types(family) if t.efa]
    if sizes:
        return ", ".join(sizes)
    return ", ".join(f for f in catalog.families if any(t.efa for t in catalog.family_types(f)))
