"""Team tenancy: namespace, quotas, network policy, RBAC, Kueue queues and IAM roles per team."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.teams import TeamSpec


@dataclass(frozen=True)
class TeamsArgs:
    env: Environment
    spec: list[TeamSpec]


class Teams(pulumi.ComponentResource):
    """Team tenancy: namespace, quotas, network policy, RBAC, Kueue queues and IAM roles per team.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: TeamsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:teams:Teams", name, None, opts)
        self.register_outputs({})
