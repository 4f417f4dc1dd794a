"""The environment's VPC: private and public subnets per zone, NAT, endpoints and flow logs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.network import NetworkSpec


@dataclass(frozen=True)
class NetworkArgs:
    env: Environment
    spec: NetworkSpec


class Network(pulumi.ComponentResource):
    """The environment's VPC: private and public subnets per zone, NAT, endpoints and flow logs.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:network:Network", name, None, opts)
        self.register_outputs({})
