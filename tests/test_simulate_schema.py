"""Schema validation in the deploy simulation: every object, ours and the charts', against its schema."""

from __future__ import annotations

import pytest

from mlstack.simulate.crds import candidates
from mlstack.simulate.framework import World
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.objects import chart_objects
from tests.simulation import findings, mutable_plan, resource, world_of

SCHEMA = "MLS-SIM-SCHEMA-001"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_object_of_every_shipped_stack_validates(stack):
    assert findings(world_of(stack), SCHEMA) == []


def test_chart_objects_are_validated_and_blame_their_release():
    """A value that renders a wrong type into a chart's Deployment is found, on the Release."""
    plan = mutable_plan("dev")
    karpenter = resource(plan, RELEASE_TYPE, "karpenter")
    karpenter.inputs["values"] = {**karpenter.inputs["values"], "nodeSelector": {"kubernetes.io/os": 1}}
    found = findings(world_of("dev", plan), SCHEMA)
    assert [f.urn for f in found] == [karpenter.urn]
    assert "Deployment kube-system/karpenter" in found[0].message
    assert "karpenter/templates/deployment.yaml" in found[0].message
    assert "spec.template.spec.nodeSelector.kubernetes.io/os" in found[0].message


def test_our_objects_are_validated_strictly_against_their_crd():
    plan = mutable_plan("prod")
    pool = resource(plan, NODEPOOL, "training")
    pool.inputs["spec"]["disruption"]["consolidateAfterr"] = "30s"
    found = findings(world_of("prod", plan), SCHEMA)
    assert [f.urn for f in found] == [pool.urn]
    assert "consolidateAfterr" in found[0].message


def test_a_version_its_crd_does_not_serve_is_reported():
    plan = mutable_plan("prod")
    queue = resource(plan, CLUSTER_QUEUE, "teams-search")
    queue.inputs["apiVersion"] = "kueue.x-k8s.io/v1alpha9"
    found = findings(world_of("prod", plan), SCHEMA)
    assert [f.urn for f in found] == [queue.urn]
    assert "cannot validate" in found[0].message and "kueue.x-k8s.io/v1beta2" in found[0].message


def test_a_kind_with_no_schema_anywhere_is_reported_never_passed():
    plan = mutable_plan("dev")
    queue = plan.by_type("kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")[0]
    queue.inputs["apiVersion"], queue.inputs["kind"] = "example.com/v1", "Widget"
    found = findings(world_of("dev", plan), SCHEMA)
    assert [f.urn for f in found] == [queue.urn]
    assert "cannot validate" in found[0].message and "example.com/v1 Widget" in found[0].message


def test_a_release_crd_wins_over_the_shared_reference_copy():
    """The HTTP add-on's ScaledObject is validated with the CRD the KEDA release installs, not shared/crds."""
    world = world_of("dev")
    scaled = next(o for o in chart_objects(world) if o.kind == "ScaledObject")
    best = next(iter(candidates(world, scaled)))
    assert best.release == "keda" and best.template.startswith("keda/templates/crds/")


def test_a_chart_custom_object_is_validated_with_its_own_release_crd_first():
    world = world_of("prod")
    params = next(o for o in chart_objects(world) if o.kind == "IngressClassParams")
    best = next(iter(candidates(world, params)))
    assert best.release == params.release and best.urn == params.urn


def test_a_kubernetes_version_without_builtin_schemas_is_reported():
    world = world_of("dev")
    cluster = world.spec.cluster.model_copy(update={"kubernetes_version": "1.99"})
    future = World(world.plan, world.spec.model_copy(update={"cluster": cluster}), world.project_root)
    found = findings(future, SCHEMA)
    assert [f.urn for f in found] == [None]
    assert "cannot validate built-in kinds" in found[0].message and "1.99" in found[0].message
