"""Vector database section of the environment spec."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlstack.spec.base import StrictModel


class VectorDbSpec(StrictModel):
    """Vector search. Default: Qdrant on the cluster."""

    enabled: bool = Field(default=True, description="Provision a vector database. Default: on.")
    engine: Literal["qdrant", "aurora-pgvector"] = Field(
        default="qdrant",
        description="'qdrant' runs on the cluster; 'aurora-pgvector' is managed Aurora Serverless v2. Default: qdrant.",
    )
    replicas: int = Field(
        default=1, ge=1, le=9, description="Qdrant replicas. Default: 1 in dev, 3 in staging and prod."
    )
