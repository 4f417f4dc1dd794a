"""Vector database section of the environment spec."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.orchestrator import ChartVersion

CpuQuantity = Annotated[str, StringConstraints(pattern=r"^(\d+m|\d+(\.\d+)?)$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^\d+(Mi|Gi)$")]
# Five-field cron (minute hour day-of-month month day-of-week), as a Kubernetes CronJob takes it.
CronSchedule = Annotated[str, StringConstraints(pattern=r"^(\S+\s+){4}\S+$")]
S3Prefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")]


# The qdrant chart's image (qdrant/qdrant-helm qdrant-1.19.0 charts/qdrant/values.yaml: image.repository
# docker.io/qdrant/qdrant, tag defaulting to the chart's appVersion v1.19.0).
QDRANT_IMAGE_REGISTRY = "docker.io"
QDRANT_IMAGE_REPOSITORY = "docker.io/qdrant/qdrant"


class VectorDbSpec(StrictModel):
    """Vector search. Default: Qdrant on the cluster, API key auth, reachable only from team and inference
    namespaces, snapshotted daily to the artifacts bucket."""

    enabled: bool = Field(default=True, description="Provision a vector database. Default: on.")
    engine: Literal["qdrant", "aurora-pgvector"] = Field(
        default="qdrant",
        description="'qdrant' runs on the cluster; 'aurora-pgvector' is managed Aurora Serverless v2. Default: qdrant.",
    )
    namespace: DnsLabel = Field(
        default="qdrant",
        description="Namespace of Qdrant and its snapshot job (qdrant engine only). Default: qdrant.",
    )
    qdrant_chart_version: ChartVersion = Field(
        default="1.19.0",
        description="Pinned version of the qdrant Helm chart (qdrant/qdrant-helm); the chart pins the same "
        "Qdrant release. Default: 1.19.0.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Qdrant replicas; 1, or 3 and more for a Raft majority. Default: 1 in dev, 3 in staging "
        "and prod.",
    )
    storage_gb: int = Field(
        default=10,
        ge=1,
        le=16384,
        description="Encrypted volume per Qdrant replica, on the cluster's encrypted StorageClass. Default: 10 GiB.",
    )
    cpu_request: CpuQuantity = Field(
        default="250m", description="CPU request of each Qdrant replica. Default: 250m."
    )
    memory_request: MemoryQuantity = Field(
        default="1Gi",
        description="Memory request and limit of each Qdrant replica (equal, so it is never OOM-evicted "
        "first). Default: 1Gi.",
    )
    snapshot_schedule: CronSchedule = Field(
        default="0 3 * * *",
        description="Cron schedule (UTC) of the job that snapshots every collection to the artifacts bucket. "
        "Default: daily at 03:00.",
    )
    qdrant_image_through_cache: bool = Field(
        default=True,
        description="Pull Qdrant's image (docker.io/qdrant/qdrant, the chart's default) through the registry's "
        "docker-hub pull-through cache, which then must exist (it needs Docker Hub credentials). Off is a named "
        "opt-out: pods pull from Docker Hub directly, unscanned and under anonymous rate limits. Default: on.",
    )
    writer_teams: list[DnsLabel] = Field(
        default_factory=list,
        description="Teams that get Qdrant's read-write API key (Secret qdrant-read-write in their namespace); "
        "every team gets the read-only key (Secret qdrant-read-only). A writer can change every collection. "
        "Default: none, read-only for all.",
    )
    snapshot_prefix: S3Prefix = Field(
        default="platform/vectordb",
        description="Prefix of the artifacts bucket the snapshots go under. It must not be a team's prefix. "
        "Default: platform/vectordb.",
    )
    aurora_min_acu: float = Field(
        default=0.0,
        ge=0,
        le=256,
        description="Aurora Serverless v2 minimum capacity in ACUs, a multiple of 0.5; 0 lets the cluster pause "
        "when idle. Default: 0 in dev, 0.5 in staging, 2 in prod.",
    )
    aurora_max_acu: float = Field(
        default=2.0,
        ge=1,
        le=256,
        description="Aurora Serverless v2 maximum capacity in ACUs, a multiple of 0.5. Default: 2 in dev, 4 in "
        "staging, 16 in prod.",
    )
    aurora_instances: int = Field(
        default=1,
        ge=1,
        le=15,
        description="Aurora instances (one writer, the rest readers in other zones). Default: 1 in dev, 2 in "
        "staging and prod.",
    )
    backup_retention_days: int = Field(
        default=1,
        ge=1,
        le=35,
        description="Aurora automated backup retention. Default: 1 in dev, 7 in staging, 14 in prod.",
    )

    @field_validator("aurora_min_acu", "aurora_max_acu")
    @classmethod
    def _half_steps(cls, value: float) -> float:
        if (value * 2) != int(value * 2):
            raise ValueError(
                f"Aurora capacity moves in steps of 0.5 ACU, got {value}; use for example 0.5 or 1"
            )
        return value

    @field_validator("replicas")
    @classmethod
    def _raft_majority(cls, value: int) -> int:
        if value == 2:
            raise ValueError("2 Qdrant replicas lose their Raft majority when one fails; use 1 or 3 and more")
        return value

    @model_validator(mode="after")
    def _capacity_ordered(self) -> VectorDbSpec:
        if self.aurora_min_acu > self.aurora_max_acu:
            raise ValueError(
                f"aurora_min_acu ({self.aurora_min_acu}) is above aurora_max_acu ({self.aurora_max_acu})"
            )
        return self
