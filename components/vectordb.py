"""The vector database: Qdrant on the cluster or Aurora PostgreSQL with pgvector."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.vectordb import VectorDbSpec


@dataclass(frozen=True)
class VectorDbArgs:
    env: Environment
    spec: VectorDbSpec


class VectorDb(pulumi.ComponentResource):
    """The vector database: Qdrant on the cluster or Aurora PostgreSQL with pgvector.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: VectorDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:vectordb:VectorDb", name, None, opts)
        self.register_outputs({})
