"""Model-serving endpoints on Kubernetes (KEDA autoscaled) or SageMaker."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.environment import Environment
from mlstack.spec.inference import InferenceSpec


@dataclass(frozen=True)
class InferenceArgs:
    env: Environment
    spec: InferenceSpec


class Inference(pulumi.ComponentResource):
    """Model-serving endpoints on Kubernetes (KEDA autoscaled) or SageMaker.

    Skeleton: the resources land with their own issue; the shape (token, args, outputs) is fixed here.
    """

    def __init__(self, name: str, args: InferenceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:inference:Inference", name, None, opts)
        self.register_outputs({})
