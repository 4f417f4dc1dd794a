"""Orchestrator section of the environment spec: Argo Workflows and Metaflow."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlstack.spec.base import StrictModel


class OrchestratorSpec(StrictModel):
    """Workflow orchestration. Default: Argo Workflows with client-token auth, Metaflow on top."""

    argo_workflows: bool = Field(default=True, description="Install Argo Workflows. Default: on.")
    server_auth_mode: Literal["client", "sso"] = Field(
        default="client",
        description="Argo server auth: 'client' (Kubernetes bearer tokens) or 'sso'. 'server' mode is never allowed. "
        "Default: client.",
    )
    metaflow: bool = Field(
        default=True, description="Install the Metaflow metadata service on RDS. Default: on."
    )
    backup_retention_days: int = Field(
        default=1,
        ge=1,
        le=35,
        description="Automated backup retention of the metadata database. Default: 1 in dev, 7 in staging, 14 in prod.",
    )
