"""Storage section of the environment spec: the S3 buckets that hold datasets, artifacts and models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mlstack.spec.base import AwsRegion, StrictModel

BucketPurpose = Literal["datasets", "artifacts", "models"]
DEFAULT_BUCKETS: tuple[BucketPurpose, ...] = ("datasets", "artifacts", "models")
# Buckets the storage component adds on its own: server access logs (one per region holding buckets) and the
# models replica.
ACCESS_LOGS = "access-logs"
MODELS_REPLICA = "models-replica"
S3_BUCKET_NAME_MAX = 63


def s3_bucket_name(environment: str, account_id: str, region: str, purpose: str) -> str:
    """Physical bucket name ``<env>-<account>-<region>-<purpose>``: globally unique because S3 names are.

    The one naming rule: the storage component names its buckets with it and the spec checks their length.
    """
    return "-".join((environment, account_id, region, purpose))


class StorageSpec(StrictModel):
    """Object storage. Default: one KMS-encrypted, versioned, private bucket per purpose, plus an access-logs bucket."""

    buckets: list[BucketPurpose] = Field(
        default_factory=lambda: list(DEFAULT_BUCKETS),
        min_length=1,
        description="Bucket purposes to create. Default: datasets, artifacts (workflow and Metaflow datastore, "
        "checkpoints) and models (the model registry's storage). An access-logs bucket is always added.",
    )
    noncurrent_version_expiration_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days after which noncurrent (overwritten or deleted) object versions expire. Default: 30.",
    )
    abort_incomplete_multipart_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="Days after which unfinished multipart uploads are aborted and their parts deleted. "
        "Default: 7.",
    )
    datasets_intelligent_tiering: bool = Field(
        default=True,
        description="Move objects in the datasets bucket to S3 Intelligent-Tiering as soon as they are written, "
        "so rarely read data gets cheaper on its own. Default: on. Ignored when no datasets bucket is declared.",
    )
    access_logs_retention_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Days the access-logs bucket keeps server access logs before they expire. Default: 365.",
    )
    expected_gb: dict[BucketPurpose, float] = Field(
        default_factory=dict,
        description="Expected stored volume per bucket in GB, used only by the cost estimate. Default: 0.",
    )
    models_replication_region: AwsRegion | None = Field(
        default=None,
        description="Replicate the models bucket to a KMS-encrypted replica bucket in this region (another "
        "region than the environment's; needs a models bucket). Default: no replication.",
    )

    @field_validator("buckets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each bucket purpose may be listed once")
        return value

    @field_validator("expected_gb")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"expected volume of {negative} is negative; use 0 or more GB")
        return value


def generated_bucket_names(spec: StorageSpec, environment: str, account_id: str, region: str) -> list[str]:
    """Every bucket name the storage component creates for these settings, the added buckets included."""
    names = [s3_bucket_name(environment, account_id, region, p) for p in (*spec.buckets, ACCESS_LOGS)]
    replica = spec.models_replication_region
    if replica is not None and replica != region and "models" in spec.buckets:
        names += [s3_bucket_name(environment, account_id, replica, p) for p in (MODELS_REPLICA, ACCESS_LOGS)]
    return names
