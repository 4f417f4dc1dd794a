"""One S3 bucket per declared purpose, encrypted, versioned, private and TLS-only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.storage import StorageSpec


@dataclass(frozen=True)
class ObjectStoreArgs:
    env: Environment
    spec: StorageSpec


class ObjectStore(pulumi.ComponentResource):
    """One S3 bucket per declared purpose, encrypted, versioned, private and TLS-only.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:storage:ObjectStore", name, None, opts)
        self.register_outputs({})
