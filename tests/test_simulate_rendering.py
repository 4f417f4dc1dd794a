"""Helm rendering in the deploy simulation: real helm, packaged charts, failures reported as findings."""

from __future__ import annotations

import pytest

from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.objects import chart_objects, renders
from tests.simulation import findings, mutable_plan, resource, world_of

RENDERS = "MLS-SIM-HELM-001"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_release_of_every_shipped_stack_renders(stack):
    world = world_of(stack)
    assert renders(world), "the stack has Helm releases"
    assert findings(world, RENDERS) == []


def test_chart_objects_land_in_the_release_namespace_and_crds_stay_cluster_wide():
    world = world_of("dev")
    karpenter = [o for o in chart_objects(world) if o.release == "karpenter" and o.kind == "Deployment"]
    assert karpenter and all(o.namespace == "kube-system" for o in karpenter)
    crds = [o for o in chart_objects(world) if o.kind == "CustomResourceDefinition"]
    assert crds and all(o.namespace == "" for o in crds)


def test_a_chart_version_without_a_package_is_a_finding():
    plan = mutable_plan("dev")
    release = resource(plan, RELEASE_TYPE, "karpenter")
    release.inputs["version"] = "0.0.0-not-packaged"
    found = findings(world_of("dev", plan), RENDERS)
    assert [f.urn for f in found] == [release.urn]
    assert "karpenter-0.0.0-not-packaged.tgz" in found[0].message


def test_values_that_break_a_template_are_a_finding():
    plan = mutable_plan("dev")
    karpenter = resource(plan, RELEASE_TYPE, "karpenter")
    karpenter.inputs["values"] = {**karpenter.inputs["values"], "settings": {"clusterName": ""}}
    found = findings(world_of("dev", plan), RENDERS)
    assert [f.urn for f in found] == [karpenter.urn]
    assert "clusterName" in found[0].message


def test_derived_views_are_computed_once_per_world():
    world = world_of("dev")
    assert renders(world) is renders(world)
