"""Registry section of the environment spec: ECR repositories for training, serving and base images."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlstack.spec.base import DnsLabel, StrictModel


class RegistrySpec(StrictModel):
    """Container registry. Default: immutable, KMS-encrypted, scanned ECR repositories."""

    repositories: list[DnsLabel] = Field(
        default_factory=lambda: ["training", "serving", "base"],
        min_length=1,
        description="Repository names (prefixed with the environment). Default: training, serving and base.",
    )
    keep_tagged_images: int = Field(
        default=30, ge=1, le=1000, description="How many tagged images each repository keeps. Default: 30."
    )
    untagged_expiry_days: int = Field(
        default=7, ge=1, le=365, description="Days after which untagged images expire. Default: 7."
    )
    enhanced_scanning: bool = Field(
        default=False,
        description="Registry-level enhanced (Inspector) scanning. Default: off in dev and staging, on in prod.",
    )

    @field_validator("repositories")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each repository may be listed once")
        return value
