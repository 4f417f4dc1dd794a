"""Argo Workflows and the Metaflow metadata service on RDS."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.orchestrator import OrchestratorSpec


@dataclass(frozen=True)
class OrchestratorArgs:
    env: Environment
    spec: OrchestratorSpec


class Orchestrator(pulumi.ComponentResource):
    """Argo Workflows and the Metaflow metadata service on RDS.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:orchestrator:Orchestrator", name, None, opts)
        self.register_outputs({})
