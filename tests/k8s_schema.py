"""Validate single Kubernetes objects in tests, with the deploy simulation's validator.

A thin wrapper over :mod:`mlstack.simulate.schema` (check ``MLS-SIM-SCHEMA-001``, which validates every object
of a plan, ours and the charts', in ``mlstack check``): built-in kinds against kubernetes-validate's strict
schemas for the given Kubernetes version, custom kinds against the upstream CRDs in ``shared/crds``.

API: ``kubernetes_objects(plan)`` and ``validate_object(obj, kubernetes_version)``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kubernetes_validate import utils as kv_utils

from mlstack.plan.recorder import Plan
from mlstack.simulate.crds import CrdSource, crd_sources, group_of
from mlstack.simulate.helm import unwrap_secrets  # re-exported for tests
from mlstack.simulate.objects import shared_crds
from mlstack.simulate.schema import NoSchema, validate
from mlstack.simulate.schema import supported_version as _simulation_version

ROOT = Path(__file__).resolve().parent.parent
# Resource types that are Pulumi constructs around Kubernetes, not Kubernetes objects themselves.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "pulumi:providers:kubernetes", "kubernetes:yaml")
_COMPILED: dict[tuple[int, str], Any] = {}


def kubernetes_objects(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object the plan would apply, rebuilt from its recorded inputs."""
    objects = []
    for resource in plan.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
            continue
        if "apiVersion" in resource.inputs and "kind" in resource.inputs:
            objects.append(unwrap_secrets(copy.deepcopy(resource.inputs)))
    return objects


def supported_version(kubernetes_version: str) -> str:
    """The schema version used for a Kubernetes version: its own minor, else kubernetes-validate's newest."""
    return _simulation_version(kubernetes_version) or kv_utils.latest_version()


def plan_crds(plan: Plan) -> list[CrdSource]:
    """The CRDs that the plan's releases (or its own CRD resources) install, as the simulation finds them."""
    from tests.simulation import world_of

    return [s for sources in crd_sources(world_of(plan.stack, plan)).values() for s in sources if s.in_plan]


def validate_object(
    obj: dict[str, Any], kubernetes_version: str, plan_crds: list[CrdSource] | None = None
) -> list[str]:
    """Problems with one object, each as '<kind>/<name>: <path>: <message>'; empty when it validates.

    A custom kind validates against the upstream copies in ``shared/crds``, and against ``plan_crds`` (the CRDs
    a plan's releases install, ``mlstack.simulate.crds.crd_sources``) when given."""
    kind, name = obj.get("kind", "?"), (obj.get("metadata") or {}).get("name", "?")
    wanted = (group_of(str(obj.get("apiVersion", ""))), kind)
    crds = [
        CrdSource(crd)
        for crd in shared_crds(ROOT)
        if (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == wanted
    ]
    crds += [source for source in plan_crds or [] if (source.group, source.kind) == wanted]
    try:
        problems = validate(obj, supported_version(kubernetes_version), crds, _COMPILED)
    except NoSchema as exc:
        return [f"{kind}/{name}: {exc}"]
    return [f"{kind}/{name}: {problem}" for problem in problems]
