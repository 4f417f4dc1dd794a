"""Every Kubernetes object in every plan validates against its schema; the validator itself catches errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes_validate.utils import latest_version as kubernetes_validate_latest

from mlstack.plan.recorder import Plan
from tests.k8s_schema import kubernetes_objects, plan_crds, supported_version, validate_object
from tests.plans import PROJECT


def _version(stack: str) -> str:
    return PROJECT.load(stack)[1].cluster.kubernetes_version


def test_every_kubernetes_object_validates(stack_plan: Plan) -> None:
    objects = kubernetes_objects(stack_plan)
    kinds = {o["kind"] for o in objects}
    assert {"StorageClass", "EC2NodeClass", "NodePool"} <= kinds
    crds = plan_crds(stack_plan)
    problems = [p for obj in objects for p in validate_object(obj, _version(stack_plan.stack), crds)]
    assert problems == []


def test_schema_version_matches_the_cluster_when_available() -> None:
    assert supported_version("1.34").startswith("1.34")
    # Far-future versions fall back to the newest schema the package ships.
    assert supported_version("1.99") == kubernetes_validate_latest()


def _first(plan: Plan, kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(o for o in kubernetes_objects(plan) if o["kind"] == kind))


@pytest.mark.parametrize(
    ("kind", "mutate", "fragment"),
    [
        ("NodePool", lambda o: o["spec"].pop("template"), "'template' is a required property"),
        ("NodePool", lambda o: o["spec"]["disruption"].update(consolidationPolicy="Never"), "Never"),
        ("EC2NodeClass", lambda o: o["spec"].update(amiFamilly="AL2023"), "amiFamilly"),
        (
            "EC2NodeClass",
            lambda o: o["spec"]["metadataOptions"].update(httpTokens="optional-ish"),
            "optional-ish",
        ),
        ("StorageClass", lambda o: o.update(volumeBindingMode=7), "volumeBindingMode"),
        ("StorageClass", lambda o: o.update(provisionr="x"), "provisionr"),
    ],
)
def test_validator_rejects_broken_objects(plans: dict[str, Plan], kind: str, mutate, fragment: str) -> None:
    obj = _first(plans["prod"], kind)
    assert validate_object(obj, "1.34") == []
    mutate(obj)
    problems = validate_object(obj, "1.34")
    assert problems and any(fragment in p for p in problems), problems


def test_unknown_kinds_are_reported() -> None:
    problems = validate_object(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "1.34"
    )
    assert problems and "no schema" in problems[0]
