"""Small hand-made plans for the arithmetic tests of the cost and deploy-time estimates.

Hand-made data is right here: the point is a plan small enough that every expected number can be worked out
on paper. Everything about the shipped stacks is tested on their recorded plans instead.
"""

from __future__ import annotations

from typing import Any

from mlstack.plan.recorder import Plan, RecordedResource

STACK = "t"
STACK_URN = f"urn:pulumi:{STACK}::mlstack::pulumi:pulumi:Stack::mlstack-{STACK}"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::mlstack::{type_}::{name}"


class PlanBuilder:
    """Adds resources in the shape the recorder writes them; a component is a resource with custom=False."""

    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []
        self.platform = self.component("mlstack:platform:Platform", STACK, parent=STACK_URN)

    def component(self, type_: str, name: str, parent: str | None = None) -> str:
        return self.add(type_, name, parent=parent or self.platform, custom=False)

    def add(
        self,
        type_: str,
        name: str,
        parent: str,
        inputs: dict[str, Any] | None = None,
        data: dict[str, list[str]] | None = None,
        depends_on: list[str] | None = None,
        provider: str = "",
        custom: bool = True,
    ) -> str:
        resource_urn = urn(type_, name)
        data = data or {}
        self.resources.append(
            RecordedResource(
                urn=resource_urn,
                type=type_,
                name=name,
                parent=parent,
                custom=custom,
                id=name,
                inputs=inputs or {},
                dependencies=sorted({u for urns in data.values() for u in urns} | set(depends_on or [])),
                property_dependencies=data,
                protect=False,
                retain_on_delete=False,
                delete_before_replace=False,
                ignore_changes=[],
                aliases=[],
                provider=f"{provider}::provider-id" if provider else "",
            )
        )
        return resource_urn

    def plan(self) -> Plan:
        return Plan(project="mlstack", stack=STACK, source="hand-made", resources=self.resources, outputs={})
