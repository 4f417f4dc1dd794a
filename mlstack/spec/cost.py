"""Cost section of the environment spec: the assumptions `mlstack cost` makes where the plan cannot know."""

from __future__ import annotations

from pydantic import Field

from mlstack.spec.base import StrictModel


class CostSpec(StrictModel):
    """Assumptions of the monthly cost estimate. They change only the estimate, never what is deployed."""

    spot_discount_percent: float = Field(
        default=60.0,
        ge=0,
        le=90,
        description="Assumed discount of Spot over On-Demand prices for spot and spot-preferred pools, in percent. "
        "Default: 60 (AWS quotes up to 90; GPU Spot discounts are usually smaller and vary by zone).",
    )
    nat_processed_gb_per_month: float = Field(
        default=50.0,
        ge=0,
        le=1_000_000,
        description="Data processed by the NAT gateways per month, in GB, for the whole environment (image pulls, "
        "package installs, external APIs). Default: 50.",
    )
    logs_ingested_gb_per_month: float = Field(
        default=10.0,
        ge=0,
        le=1_000_000,
        description="Pod and node logs ingested into CloudWatch Logs per month, in GB, for the whole environment "
        "(priced for ingestion, and for storage over the logs' retention). Default: 10.",
    )
