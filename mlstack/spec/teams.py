"""Teams section of the environment spec: tenants with their namespace, quotas and roles."""

from __future__ import annotations

from pydantic import Field

from mlstack.spec.base import DnsLabel, StrictModel


class TeamSpec(StrictModel):
    """A tenant of the platform: one namespace, one GPU share, its own data prefixes and roles."""

    name: DnsLabel = Field(description="Team name; becomes its namespace and its prefix in every bucket.")
    cost_center: str = Field(
        min_length=1, max_length=64, description="Cost-center tag for the team's resources and budget."
    )
    gpu_quota: int = Field(
        ge=0, le=4096, description="Nominal GPUs the team may request at once (ResourceQuota, Kueue)."
    )
