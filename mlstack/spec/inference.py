"""Inference section of the environment spec: model serving endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlstack.spec.base import DnsLabel, StrictModel


class EndpointSpec(StrictModel):
    """One model-serving endpoint."""

    name: DnsLabel = Field(description="Endpoint name, unique in the environment.")
    team: DnsLabel = Field(description="Team that owns the endpoint; must be declared under teams.")
    gpu_pool: DnsLabel = Field(description="GPU pool the endpoint runs on; must be declared under gpu_pools.")
    runtime: Literal["vllm", "triton", "custom"] = Field(description="Serving runtime.")
    min_replicas: int = Field(
        default=0, ge=0, le=100, description="Minimum replicas; 0 scales to zero. Default: 0."
    )
    max_replicas: int = Field(default=1, ge=1, le=100, description="Maximum replicas. Default: 1.")

    @model_validator(mode="after")
    def _replicas_ordered(self) -> EndpointSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is greater than max_replicas ({self.max_replicas})"
            )
        return self


class InferenceSpec(StrictModel):
    """Model serving. Default: no endpoints."""

    endpoints: list[EndpointSpec] = Field(
        default_factory=list, description="Endpoints to serve. Default: none."
    )
