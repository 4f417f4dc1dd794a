"""Install ordering in the deploy simulation: CRDs before their custom resources, webhooks before what they admit."""

from __future__ import annotations

import pytest

from mlstack.plan.recorder import Plan
from mlstack.simulate.crds import crd_sources
from mlstack.simulate.framework import World
from mlstack.simulate.helm import RELEASE_TYPE, KubeObject, RenderResult
from mlstack.simulate.objects import renders
from mlstack.simulate.ordering import selector_matches, waits
from tests.simulation import findings, mutable_plan, resource, world_of

CRDS = "MLS-SIM-ORDER-001"
WEBHOOKS = "MLS-SIM-ORDER-002"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def _fixed_http_addon(plan: Plan, dependency: str) -> str:
    """The dev plan with the HTTP add-on release waiting for ``dependency`` only (rt-cluster row 4's fix)."""
    addon = resource(plan, RELEASE_TYPE, "http-addon")
    addon.dependencies = [dependency]
    return addon.urn


def test_rt_cluster_row_4_http_addon_scaled_object_races_the_keda_crd():
    """rt-cluster row 4: keda-add-ons-http renders a keda.sh ScaledObject whose CRD is a template of the KEDA
    release, and the two releases have no dependency: flagged on the add-on release, naming both."""
    plan = mutable_plan("dev")
    addon = resource(plan, RELEASE_TYPE, "http-addon")
    addon.dependencies = []  # the reviewed defect, as main@427347a recorded it
    found = findings(world_of("dev", plan), CRDS)
    assert [f.urn for f in found] == [addon.urn]
    assert "keda.sh/ScaledObject" in found[0].message
    assert "keda/templates/crds/crd-scaledobjects.yaml" in found[0].message
    assert "interceptor/scaledobject.yaml" in found[0].message


def test_a_dependency_on_the_crd_release_orders_the_install():
    plan = mutable_plan("dev")
    _fixed_http_addon(plan, resource(plan, RELEASE_TYPE, "inference-keda").urn)
    assert findings(world_of("dev", plan), CRDS) == []


def test_a_dependency_on_the_component_holding_the_crd_release_counts_as_the_sdk_expands_it():
    plan = mutable_plan("dev")
    keda = resource(plan, RELEASE_TYPE, "inference-keda")
    _fixed_http_addon(plan, keda.parent)  # the Inference component: the SDK expands it to its children
    assert findings(world_of("dev", plan), CRDS) == []


def test_waiting_is_transitive():
    plan = mutable_plan("dev")
    keda = resource(plan, RELEASE_TYPE, "inference-keda")
    addon = resource(plan, RELEASE_TYPE, "http-addon")
    middle = next(
        r for r in plan.resources if r.custom and r.urn not in (keda.urn, addon.urn) and not r.dependencies
    )
    middle.dependencies = [keda.urn]
    addon.dependencies = [middle.urn]
    world = world_of("dev", plan)
    assert waits(world, addon.urn, keda.urn)
    assert findings(world, CRDS) == []


def test_our_custom_resource_without_a_dependency_on_its_crd_release_is_flagged():
    plan = mutable_plan("prod")
    pool = resource(plan, NODEPOOL, "training")
    karpenter = resource(plan, RELEASE_TYPE, "karpenter")
    assert karpenter.urn in pool.dependencies
    pool.dependencies = []  # its node class waits for Karpenter too, so drop that path as well
    found = findings(world_of("prod", plan), CRDS)
    assert [f.urn for f in found] == [pool.urn]
    assert "karpenter.sh/NodePool" in found[0].message and "prod-gpu-karpenter" in found[0].message


def test_a_kind_whose_crd_nothing_in_the_plan_installs_is_flagged():
    plan = mutable_plan("prod")
    karpenter = resource(plan, RELEASE_TYPE, "karpenter")
    plan.resources.remove(karpenter)  # shared/crds still has the NodePool CRD, but only as a reference copy
    found = findings(world_of("prod", plan), CRDS)
    pools = {r.urn for r in plan.by_type(NODEPOOL)}
    assert pools <= {f.urn for f in found}
    assert all("nothing in the plan installs the CRD" in f.message for f in found if f.urn in pools)


def _world_with_release_objects(objects: list[dict]) -> tuple[World, str]:
    """The dev world with one of its releases rendering ``objects`` instead of its chart."""
    world = world_of("dev")
    release = resource(world.plan, RELEASE_TYPE, "http-addon")
    fake = RenderResult(
        release,
        tuple(KubeObject(o["obj"], release.urn, "fake", o["template"], "fake-ns") for o in objects),
    )
    world.cached(f"{renders.__module__}.{renders.__qualname__}", lambda: [fake])
    return world, release.urn


_WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
        ],
    },
}
_WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}


@pytest.mark.parametrize(
    ("crd_template", "widget_annotations", "flagged"),
    [
        ("fake/templates/crd.yaml", {}, True),  # Helm builds the whole manifest first: no mapping yet
        ("fake/crds/crd.yaml", {}, False),  # crds/ files are created before the manifest is built
        ("fake/templates/crd.yaml", {"helm.sh/hook": "post-install"}, False),  # built after the install
    ],
)
def test_a_crd_and_its_custom_resource_in_one_release(crd_template, widget_annotations, flagged):
    widget = {**_WIDGET, "metadata": {"name": "w", "annotations": widget_annotations}}
    world, urn = _world_with_release_objects(
        [
            {"obj": _WIDGET_CRD, "template": crd_template},
            {"obj": widget, "template": "fake/templates/widget.yaml"},
        ]
    )
    found = [f for f in findings(world, CRDS) if f.urn == urn]  # the other releases are not rendered here
    assert len(found) == (1 if flagged else 0)
    if flagged:
        assert "crds/ folder" in found[0].message


def test_the_lb_controller_webhook_admits_the_ingress_only_after_its_release():
    """The LB controller's vingress.elbv2.k8s.aws webhook (failurePolicy Fail) admits Ingresses: an Ingress that
    does not wait for that release is refused while the controller starts."""
    plan = mutable_plan("prod")
    ingress = resource(plan, INGRESS, "chat")
    controller = resource(plan, RELEASE_TYPE, "lb-controller")
    assert controller.urn in ingress.dependencies
    ingress.dependencies = [d for d in ingress.dependencies if d != controller.urn]
    found = [f for f in findings(world_of("prod", plan), WEBHOOKS) if f.urn == ingress.urn]
    assert found and "vingress.elbv2.k8s.aws" in found[0].message


def test_a_release_that_skips_its_await_does_not_make_its_webhook_ready():
    plan = mutable_plan("prod")
    ingress = resource(plan, INGRESS, "chat")
    resource(plan, RELEASE_TYPE, "lb-controller").inputs["skipAwait"] = True
    assert ingress.urn in {f.urn for f in findings(world_of("prod", plan), WEBHOOKS)}


def test_kueue_webhooks_admit_every_deployment_outside_the_system_namespaces():
    """Kueue 0.19.2's mdeployment.kb.io (failurePolicy Fail) matches Deployments in every namespace but
    kube-system and kueue-system; a Deployment created while Kueue starts is refused (kubernetes-sigs/kueue#5244).
    The shipped plan orders them after the Kueue release; take those dependencies away and the race is back."""
    plan = mutable_plan("prod")
    kueue = resource(plan, RELEASE_TYPE, "kueue").urn
    for item in plan.resources:
        item.dependencies = [d for d in item.dependencies if d != kueue]
    world = world_of("prod", plan)
    found = findings(world, WEBHOOKS)
    chat = resource(world.plan, "kubernetes:apps/v1:Deployment", "-chat-deployment")
    assert any(f.urn == chat.urn and "mdeployment.kb.io" in f.message for f in found)
    metaflow = resource(world.plan, "kubernetes:apps/v1:StatefulSet", "orchestrator-search-metaflow-metadata")
    assert any(f.urn == metaflow.urn and "mstatefulset.kb.io" in f.message for f in found)
    karpenter = resource(world.plan, RELEASE_TYPE, "karpenter")  # kube-system: excluded by the selector
    assert all(f.urn != karpenter.urn for f in found)


def test_a_webhook_that_fails_open_orders_nothing():
    plan = mutable_plan("prod")
    world = world_of("prod", plan)
    ingress = resource(plan, INGRESS, "chat")
    ingress.dependencies = []
    # Every webhook of every configuration set to Ignore: nothing is refused while the controller starts.
    for result in renders(world):
        for item in result.objects:
            for webhook in item.obj.get("webhooks") or []:
                webhook["failurePolicy"] = "Ignore"
    assert findings(world, WEBHOOKS) == []


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_label_selectors(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_install_every_crd_before_its_objects(stack):
    assert findings(world_of(stack), CRDS) == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_wait_for_every_fail_closed_webhook(stack):
    assert findings(world_of(stack), WEBHOOKS) == []


def test_a_kind_that_is_neither_built_in_nor_defined_by_any_crd_is_flagged():
    plan = mutable_plan("dev")
    queue = plan.by_type("kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")[0]
    queue.inputs["apiVersion"], queue.inputs["kind"] = "example.com/v1", "Widget"
    found = [f for f in findings(world_of("dev", plan), CRDS) if f.urn == queue.urn]
    assert len(found) == 1 and "example.com/Widget" in found[0].message


def test_a_release_that_skips_its_crds_folder_installs_none_of_those_crds():
    """Karpenter's chart ships its CRDs in crds/; with skipCrds the release installs none of them."""
    plan = mutable_plan("prod")
    resource(plan, RELEASE_TYPE, "karpenter").inputs["skipCrds"] = True
    found = findings(world_of("prod", plan), CRDS)
    pools = {r.urn for r in plan.by_type(NODEPOOL)}
    assert pools <= {f.urn for f in found if "nothing in the plan installs the CRD" in f.message}


def test_a_chart_crds_folder_file_keeps_its_source_and_is_created_first():
    """Karpenter's crds/ files start with '---', so helm prints their Source line before an empty document."""
    world = world_of("prod")
    karpenter = [s for s in crd_sources(world)[("karpenter.sh", "NodePool")] if s.release == "karpenter"]
    assert [s.template for s in karpenter] == ["karpenter/crds/karpenter.sh_nodepools.yaml"]
    assert karpenter[0].pre_installed_by_helm
