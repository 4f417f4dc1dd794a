"""The first, targeted ``pulumi up`` of a fresh environment: only what the in-VPC deploy runner needs.

The cluster API is private, so the full ``pulumi up`` can only run inside the VPC, on the runner that this
first step creates. The targets are read from the recorded plan: the resources under the DeployRunner
component and the whole network its subnets route through, plus everything they depend on, transitively (the
keys, the permission boundary, the parent components and the providers), never the cluster.

``pulumi up --target URN`` restricts the update to the named URNs and does not add their dependencies on its own
(``--target-dependents`` adds dependents, the other direction), so the closure is computed here (Pulumi docs,
"Targeted updates": ``--target`` "Restricts the operation to only the resources whose URNs match";
``--target-dependents`` "Also includes resources that depend on a targeted resource"). Providers are always
targeted by the engine (pulumi/pulumi#14238); they are listed anyway so the command reads the same on any CLI.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Literal

from mlstack.plan.recorder import STACK_TYPE, Plan, RecordedResource

RUNNER_TYPE = "mlstack:deployer:DeployRunner"
# Dependency edges record data flow only. The runner also needs what its subnets route through (NAT gateways,
# the internet gateway, route tables, the interface endpoints of prod) to reach GitHub and the AWS APIs, none of
# which it references: the whole network comes along.
NETWORK_TYPE = "mlstack:network:Network"
CONNECTION_TYPE = "aws:codeconnections/connection:Connection"
Step = Literal["connection", "runner"]


class NoDeployRunner(ValueError):
    """The stack has no DeployRunner (``deploy_runner.enabled: false``): there is no first step to take."""


def _provider_urn(reference: str) -> str:
    # A provider reference is "<urn>::<id>"; the URN itself contains "::" separators, the id never does.
    return reference.rsplit("::", 1)[0] if reference else ""


def _runner_roots(plan: Plan, step: Step) -> list[RecordedResource]:
    runners = [r for r in plan.resources if r.type == RUNNER_TYPE]
    if not runners:
        raise NoDeployRunner(
            f"stack {plan.stack} has no deploy runner (deploy_runner.enabled is false): deploy from the runner "
            "you brought instead (docs/components/deployer.md)"
        )
    under: set[str] = {r.urn for r in runners}
    if step == "runner":
        under |= {r.urn for r in plan.resources if r.type == NETWORK_TYPE}
    # Children are recorded after their parents, so one pass in order collects every descendant.
    for resource in plan.resources:
        if resource.parent in under:
            under.add(resource.urn)
    roots = [r for r in plan.resources if r.urn in under]
    if step == "connection":
        roots = [r for r in roots if r.type == CONNECTION_TYPE]
        if not roots:
            raise NoDeployRunner(
                f"stack {plan.stack} brings its own connection (deploy_runner.connection_arn): skip this step"
            )
    return roots


def first_deploy_targets(plan: Plan, step: Step = "runner") -> list[str]:
    """URNs for ``pulumi up --target``: the runner's resources (or only its GitHub connection) and the
    transitive closure of their dependencies, parents and providers, in the plan's registration order. The runner step includes the whole network."""
    by_urn = {r.urn: r for r in plan.resources}
    wanted: set[str] = set()
    pending = [r.urn for r in _runner_roots(plan, step)]
    while pending:
        urn = pending.pop()
        if urn in wanted or urn not in by_urn:
            continue
        resource = by_urn[urn]
        if resource.type == STACK_TYPE:
            continue
        wanted.add(urn)
        edges: Iterable[str] = [
            *resource.dependencies,
            *(u for urns in resource.property_dependencies.values() for u in urns),
            resource.parent,
            _provider_urn(resource.provider),
        ]
        pending.extend(edge for edge in edges if edge)
    return [r.urn for r in plan.resources if r.urn in wanted]


def up_command(stack: str, targets: list[str]) -> str:
    """The ``pulumi up`` line, each URN quoted for a POSIX shell (URNs carry ``$`` between parent types)."""
    lines = [f"pulumi up --stack {shlex.quote(stack)}"] + [f"  --target {shlex.quote(t)}" for t in targets]
    return " \\\n".join(lines)
