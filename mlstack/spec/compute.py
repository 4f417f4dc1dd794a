"""CPU pool section of the environment spec: Karpenter NodePools for workflow steps and notebooks without GPUs."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from mlstack.spec.base import DnsLabel, RuleViolations, StrictModel, Tier
from mlstack.yaml_loading import fast_safe_load

# The instance table the capacity simulation uses (vCPUs, memory, architecture, GPUs per type, from Karpenter's
# v1.14.1 instance-type reference; see its header). A CPU pool may only name types of this table, so that the
# simulation can place pods on it and `mlstack cost` can price it.
_INSTANCE_TABLE = Path(__file__).resolve().parent.parent / "simulate" / "data" / "instance_types.yaml"

Arch = Literal["amd64", "arm64"]


@cache
def cpu_instance_table() -> dict[str, dict[str, Any]]:
    """Instance types without GPUs: name -> {arch, vcpu, memory_mib, family}."""
    rows = fast_safe_load(_INSTANCE_TABLE.read_text())["instance_types"]
    return {name: row for name, row in rows.items() if not row.get("gpus")}


class CpuPoolSpec(StrictModel):
    """A pool of CPU nodes that Karpenter launches for pending pods and removes when empty or underused."""

    name: DnsLabel = Field(
        description="Pool name; becomes the NodePool and EC2NodeClass name and the node label mlstack.io/pool. "
        "Must not repeat a GPU pool's name."
    )
    arch: Arch = Field(
        description="CPU architecture of every type in the pool: amd64 (x86) or arm64 (Graviton). arm64 pools "
        "carry the taint kubernetes.io/arch=arm64:NoSchedule, so only pods that tolerate it (their images are "
        "multi-arch) land there."
    )
    instance_types: list[str] = Field(
        min_length=1,
        description="Allow-list of exact instance types (m7i.xlarge), all of the pool's arch, none with GPUs. "
        "Each must be in the instance table (mlstack/simulate/data/instance_types.yaml) and priced in "
        "mlstack/data/prices.yaml.",
    )
    capacity_type: Literal["spot", "on-demand", "spot-preferred"] = Field(
        default="spot-preferred",
        description="Capacity to buy: spot only, on-demand only, or both with spot preferred. Default: "
        "spot-preferred.",
    )
    max_vcpu: int = Field(
        ge=1,
        le=100000,
        description="Upper limit of vCPUs the pool may hold at once (Karpenter limit cpu; the memory limit "
        "follows from the types' memory per vCPU). Required.",
    )
    volume_gib: int = Field(
        default=50,
        ge=20,
        le=16384,
        description="Encrypted gp3 root volume per node, for images and scratch space. Default: 50 GiB.",
    )
    consolidate_after_minutes: int = Field(
        default=5,
        ge=0,
        le=1440,
        description="Minutes a node must be empty or underused before Karpenter removes or replaces it; the pool "
        "scales to zero when idle. Default: 5.",
    )
    disruption_budget_percent: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Most nodes of the pool Karpenter may disrupt at once through consolidation, emptiness and "
        "drift, in percent (rounded up). Expiry after 30 days is not limited by it. Default: 10.",
    )

    @model_validator(mode="after")
    def _known_cpu_types(self) -> CpuPoolSpec:
        table = cpu_instance_table()
        problems: list[tuple[str, str]] = []
        for i, name in enumerate(self.instance_types):
            row = table.get(name)
            if row is None:
                problems.append(
                    (
                        f"instance_types.{i}",
                        f"'{name}' is not a CPU instance type of the instance table; pick one of "
                        f"{_choices(self.arch)}",
                    )
                )
            elif row["arch"] != self.arch:
                problems.append(
                    (
                        f"instance_types.{i}",
                        f"'{name}' is {row['arch']}, but the pool's arch is {self.arch}; pick one of "
                        f"{_choices(self.arch)} or set arch: {row['arch']}",
                    )
                )
        if len(set(self.instance_types)) != len(self.instance_types):
            problems.append(("instance_types", "lists a type twice; remove the repeat"))
        if problems:
            raise RuleViolations(problems)
        return self

    def memory_limit_gib(self) -> int:
        """The pool's memory limit: max_vcpu times the largest memory per vCPU of its types, so that the cpu
        limit, not memory, is what stops the pool."""
        table = cpu_instance_table()
        per_vcpu = max(table[t]["memory_mib"] / table[t]["vcpu"] for t in self.instance_types)
        return int(self.max_vcpu * per_vcpu // 1024)


def _choices(arch: str) -> str:
    names = sorted(n for n, row in cpu_instance_table().items() if row["arch"] == arch)
    families = sorted({n.split(".", 1)[0] for n in names})
    return f"the {arch} families {', '.join(families)} (e.g. {names[0]})"


# Every stack gets these pools unless its file sets cpu_pools (an empty list turns them off). The types are the
# current general-purpose families with 4 GiB per vCPU, sizes the price table carries; dev buys Spot only and
# small limits, staging and prod prefer Spot and fall back to On-Demand (workflow steps retry; notebooks are
# checkpointed to their volume).
_DEFAULT_X86 = ["m7i.large", "m7i.xlarge", "m7i.2xlarge"]
_DEFAULT_ARM = ["m7g.large", "m7g.xlarge"]
_DEFAULT_LIMITS: dict[Tier, tuple[str, int, int]] = {
    Tier.DEV: ("spot", 16, 8),
    Tier.STAGING: ("spot-preferred", 64, 32),
    Tier.PROD: ("spot-preferred", 256, 64),
}


def default_cpu_pools(tier: Tier) -> list[dict[str, Any]]:
    """The tier's default CPU pools, as stack-file data: an x86 pool and an opt-in Graviton pool."""
    capacity, x86_vcpu, arm_vcpu = _DEFAULT_LIMITS[tier]
    return [
        {
            "name": "cpu",
            "arch": "amd64",
            "instance_types": list(_DEFAULT_X86),
            "capacity_type": capacity,
            "max_vcpu": x86_vcpu,
        },
        {
            "name": "cpu-arm",
            "arch": "arm64",
            "instance_types": list(_DEFAULT_ARM),
            "capacity_type": capacity,
            "max_vcpu": arm_vcpu,
        },
    ]
