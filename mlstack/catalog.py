"""The GPU instance table (components/data/gpu_instances.yaml), typed and loaded once.

Pool validation in the spec and the cost estimates both read it, so it lives beside the spec rather than in a
component. The YAML is the single source of truth; this module only parses and answers questions about it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mlstack.yaml_loading import fast_safe_load

TABLE_PATH = Path(__file__).resolve().parent.parent / "components" / "data" / "gpu_instances.yaml"


@dataclass(frozen=True)
class GpuModel:
    """A GPU model and whether it can be split with MIG (Multi-Instance GPU)."""

    name: str
    vendor: str
    architecture: str
    mig: bool


@dataclass(frozen=True)
class GpuInstanceType:
    """One EC2 instance type with GPUs. gpu_memory_gib is per GPU; memory_gib is host memory."""

    name: str
    family: str
    gpu_model: GpuModel
    gpu_count: int
    gpu_memory_gib: int
    vcpus: int
    memory_gib: int
    efa: bool
    max_efa_interfaces: int

    @property
    def total_gpu_memory_gib(self) -> int:
        return self.gpu_count * self.gpu_memory_gib


@dataclass(frozen=True)
class GpuCatalog:
    """Every known GPU instance type, by name, with family expansion and close-match suggestions."""

    types: dict[str, GpuInstanceType]

    @property
    def families(self) -> list[str]:
        return sorted({t.family for t in self.types.values()})

    def is_gpu_type(self, name: str) -> bool:
        """True for an exact instance type in the table (g5.xlarge); families are not types."""
        return name in self.types

    def is_family(self, name: str) -> bool:
        return name in self.families

    def lookup(self, name: str) -> GpuInstanceType:
        """The exact type, or KeyError naming close matches."""
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"'{name}' is not a known GPU instance type{self._hint(name)}") from None

    def family_types(self, family: str) -> list[GpuInstanceType]:
        """Every type of a family, smallest first."""
        members = [t for t in self.types.values() if t.family == family]
        if not members:
            raise KeyError(f"'{family}' is not a known GPU instance family{self._hint(family)}")
        return sorted(members, key=lambda t: (t.vcpus, t.gpu_count, t.name))

    def expand(self, selector: str) -> list[GpuInstanceType]:
        """The types a selector stands for: the whole family for a family name, else the one exact type."""
        if self.is_family(selector):
            return self.family_types(selector)
        return [self.lookup(selector)]

    def close_matches(self, name: str, limit: int = 4) -> list[str]:
        return difflib.get_close_matches(name, [*self.families, *self.types], n=limit, cutoff=0.5)

    def _hint(self, name: str) -> str:
        matches = self.close_matches(name)
        if matches:
            return f" (did you mean {', '.join(matches)}?)"
        return f" (known GPU families: {', '.join(self.families)})"


@cache
def gpu_catalog(path: Path = TABLE_PATH) -> GpuCatalog:
    """The table, parsed once per process."""
    document = fast_safe_load(path.read_text())
    models = {
        name: GpuModel(name=name, vendor=v["vendor"], architecture=v["architecture"], mig=bool(v["mig"]))
        for name, v in document["gpu_models"].items()
    }
    types = {
        name: GpuInstanceType(
            name=name,
            family=v["family"],
            gpu_model=models[v["gpu_model"]],
            gpu_count=int(v["gpu_count"]),
            gpu_memory_gib=int(v["gpu_memory_gib"]),
            vcpus=int(v["vcpus"]),
            memory_gib=int(v["memory_gib"]),
            efa=bool(v["efa"]),
            max_efa_interfaces=int(v["max_efa_interfaces"]),
        )
        for name, v in document["instance_types"].items()
    }
    return GpuCatalog(types=types)


ADDONS_PATH = TABLE_PATH.parent / "eks_addons.yaml"
EKS_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver")


@cache
def eks_addon_versions() -> dict[str, dict[str, str]]:
    """Pinned EKS managed add-on versions: Kubernetes minor version -> add-on name -> version."""
    document = fast_safe_load(ADDONS_PATH.read_text())
    return {str(k8s): {str(addon): str(v) for addon, v in row.items()} for k8s, row in document.items()}
