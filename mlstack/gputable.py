"""The GPU instance table (components/data/gpu_instances.yaml) as the cost model reads it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

GPU_TABLE_FILE = Path(__file__).resolve().parent.parent / "components" / "data" / "gpu_instances.yaml"


@dataclass(frozen=True)
class GpuInstance:
    """A GPU instance type: its family and how many GPUs it carries."""

    name: str
    family: str
    gpu_count: int


@cache
def gpu_instances(path: Path = GPU_TABLE_FILE) -> dict[str, GpuInstance]:
    """Every GPU instance type of the table by name; empty while the table does not exist."""
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        name: GpuInstance(name=name, family=str(row["family"]), gpu_count=int(row["gpu_count"]))
        for name, row in (document.get("instance_types") or {}).items()
    }
