"""Storage section of the environment spec: the S3 buckets that hold datasets, artifacts and models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mlstack.spec.base import AwsRegion, StrictModel

BucketPurpose = Literal["datasets", "artifacts", "models"]
DEFAULT_BUCKETS: tuple[BucketPurpose, ...] = ("datasets", "artifacts", "models")


class StorageSpec(StrictModel):
    """Object storage. Default: one KMS-encrypted, versioned, private bucket per purpose, plus an access-logs bucket."""

    buckets: list[BucketPurpose] = Field(
        default_factory=lambda: list(DEFAULT_BUCKETS),
        min_length=1,
        description="Bucket purposes to create. Default: datasets, artifacts and models.",
    )
    noncurrent_version_expiration_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days after which noncurrent object versions expire. Default: 30.",
    )
    expected_gb: dict[BucketPurpose, float] = Field(
        default_factory=dict,
        description="Expected stored volume per bucket in GB, used only by the cost estimate. Default: 0.",
    )
    models_replication_region: AwsRegion | None = Field(
        default=None, description="Replicate the models bucket to this region. Default: no replication."
    )

    @field_validator("buckets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each bucket purpose may be listed once")
        return value
