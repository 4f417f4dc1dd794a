"""ECR repositories: immutable tags, KMS encryption, scan on push, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.registry import RegistrySpec


@dataclass(frozen=True)
class RegistryArgs:
    env: Environment
    spec: RegistrySpec


class Registry(pulumi.ComponentResource):
    """ECR repositories: immutable tags, KMS encryption, scan on push, lifecycle.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:registry:Registry", name, None, opts)
        self.register_outputs({})
