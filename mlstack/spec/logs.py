"""Logs section of the environment spec: pod and node logs shipped to CloudWatch Logs by Fluent Bit."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlstack.spec.base import StrictModel
from mlstack.spec.network import allowed_log_retention


class LogsSpec(StrictModel):
    """Pod and node logs to CloudWatch Logs: one log group for the platform's own pods, one per team, one for the
    nodes' kubelet and containerd. Every group is created by the stack, encrypted with the logs key and kept for
    ``retention_days``; the log agent may write only to those groups, and each team's human role may read only
    its own group.
    """

    enabled: bool = Field(
        default=True,
        description="Ship pod and node logs to CloudWatch Logs (a Fluent Bit DaemonSet on every node). "
        "Default: on; off leaves logs on the nodes only, where they rotate away within hours.",
    )
    retention_days: int = Field(
        default=30,
        description="Days CloudWatch Logs keeps pod and node logs (a value CloudWatch accepts: 1, 3, 5, 7, 14, 30, "
        "60, 90, ...). Default: 14 in dev, 30 in staging, 90 in prod (tier defaults).",
    )
    agent_memory_limit_mib: int = Field(
        default=250,
        ge=64,
        le=2048,
        description="Memory limit of the Fluent Bit container on each node, in MiB; its request is 50 MiB. "
        "Default: 250 (the chart's own limit).",
    )

    @field_validator("retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        return allowed_log_retention(value)
