"""What every component needs to know about the environment it is part of, derived from the spec once."""

from __future__ import annotations

from dataclasses import dataclass

from mlstack.spec import PlatformSpec, Tier

MANAGED_BY = "mlstack"


@dataclass(frozen=True)
class Environment:
    """Name, tier, account and region of an environment, plus the tags and protection it implies."""

    name: str
    tier: Tier
    account_id: str
    region: str
    protect_stateful: bool
    tags: dict[str, str]

    @classmethod
    def from_spec(cls, spec: PlatformSpec) -> Environment:
        required = {
            "environment": spec.environment,
            "owner": spec.owner,
            "cost-center": spec.cost_center,
            "managed-by": MANAGED_BY,
        }
        # Required tags win over extra tags so that nobody can relabel an environment's cost.
        return cls(
            name=spec.environment,
            tier=spec.tier,
            account_id=spec.account_id,
            region=spec.region,
            protect_stateful=spec.protect_stateful,
            tags={**spec.tags, **required},
        )

    def resource_name(self, *parts: str) -> str:
        """Physical name of an AWS resource: the environment name, then the parts, joined by '-'."""
        return "-".join((self.name, *parts))

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{self.account_id}:{resource}"
