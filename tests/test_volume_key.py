"""The gp3 StorageClass encrypts with the platform's data key: the StorageClass names it, the key policy lets EC2
use it for callers, the EBS CSI driver's role may use it through EC2, and the deploy simulation's IAM check
(MLS-SIM-IAM-001) proves the driver's CreateGrant, GenerateDataKeyWithoutPlaintext and Decrypt are allowed, and
fails when either side is taken away."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cluster import ebs_volume_key_statements
from tests.plans import plan_of
from tests.simulation import findings, mutable_plan, world_of

STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
KEY = "aws:kms/key:Key"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM = "MLS-SIM-IAM-001"


def _data_key(plan: Any) -> Any:
    aliases = [
        r
        for r in plan.resources
        if r.type == "aws:kms/alias:Alias" and str(r.inputs["name"]).endswith("/data")
    ]
    (alias,) = aliases
    (key_urn,) = alias.property_dependencies["targetKeyId"]
    return next(r for r in plan.resources if r.urn == key_urn)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_storage_class_names_the_data_key(stack: str) -> None:
    plan = plan_of(stack)
    (storage_class,) = plan.by_type(STORAGE_CLASS)
    key = _data_key(plan)
    parameters = storage_class.inputs["parameters"]
    assert parameters["encrypted"] == "true"
    assert parameters["kmsKeyId"] == key.outputs["arn"]
    assert key.urn in storage_class.property_dependencies["parameters"]


def test_the_data_key_lets_ec2_use_it_for_callers() -> None:
    policy = json.loads(_data_key(plan_of("dev")).inputs["policy"])
    for sid in ("UseOnlyThroughServices", "GrantsOnlyForServices"):
        statement = next(s for s in policy["Statement"] if s.get("Sid") == sid)
        assert "ec2.us-east-1.amazonaws.com" in statement["Condition"]["StringEquals"]["kms:ViaService"]


def test_the_driver_may_grant_the_key_only_to_aws_resources_and_only_through_ec2() -> None:
    statements = ebs_volume_key_statements("arn:aws:kms:us-east-1:111122223333:key/k", "us-east-1")
    grant = next(s for s in statements if s["Action"] == "kms:CreateGrant")
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    for statement in statements:
        assert statement["Resource"] == "arn:aws:kms:us-east-1:111122223333:key/k"
        assert statement["Condition"]["StringEquals"] == {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert not any("*" in action for action in actions)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_simulation_allows_the_drivers_key_calls(stack: str) -> None:
    from mlstack.simulate.access import outcomes

    driver = [
        o
        for o in outcomes(world_of(stack))
        if o.call.principal.arn.endswith("-ebs-csi-driver")
        and o.call.request.action.startswith("kms:")
        and o.call.expect_allowed
    ]
    assert {o.call.request.action for o in driver} == {
        "kms:CreateGrant",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:Decrypt",
    }
    assert all(o.decision.name == "ALLOW" for o in driver), [
        (o.call.request.action, o.reason) for o in driver
    ]
    assert findings(world_of(stack), IAM) == []


def test_without_the_roles_key_policy_the_driver_cannot_create_volumes() -> None:
    plan = mutable_plan("dev")
    policy = next(r for r in plan.by_type(ROLE_POLICY) if r.name.endswith("-ebs-csi-kms"))
    plan.resources.remove(policy)
    found = findings(world_of("dev", plan), IAM)
    actions = {
        a for f in found for a in ("kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext") if a in f.message
    }
    assert actions == {"kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext"}
    assert all("ebs-csi-driver" in f.message for f in found)


def test_without_ec2_in_the_key_policy_the_driver_cannot_create_volumes() -> None:
    plan = mutable_plan("dev")
    key = _data_key(plan)
    policy = json.loads(key.inputs["policy"])
    for statement in policy["Statement"]:
        via = (statement.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
        if via:
            statement["Condition"]["StringEquals"]["kms:ViaService"] = [
                v for v in via if not v.startswith("ec2.")
            ]
    key.inputs["policy"] = json.dumps(policy)
    found = findings(world_of("dev", plan), IAM)
    assert found and all("ebs-csi-driver" in f.message for f in found)


def test_the_driver_cannot_grant_the_key_to_anyone_nor_use_it_outside_ec2() -> None:
    from mlstack.simulate.access import outcomes

    refused = [
        o
        for o in outcomes(world_of("dev"))
        if o.call.principal.arn.endswith("-ebs-csi-driver") and not o.call.expect_allowed
    ]
    assert {o.call.request.action for o in refused} == {"kms:CreateGrant", "kms:Decrypt"}
    assert all(o.decision.name != "ALLOW" for o in refused)
    assert findings(world_of("dev"), "MLS-SIM-IAM-002") == []


def test_a_driver_policy_without_the_grant_condition_is_caught_once_the_key_allows_it() -> None:
    """Both gates must hold: with the key policy's GrantIsForAWSResource condition removed too, an identity
    statement granting CreateGrant unconditionally lets the driver hand the key to anyone."""
    plan = mutable_plan("dev")
    key = _data_key(plan)
    policy = json.loads(key.inputs["policy"])
    for statement in policy["Statement"]:
        if statement.get("Sid") == "GrantsOnlyForServices":
            del statement["Condition"]["Bool"]
    key.inputs["policy"] = json.dumps(policy)
    role_policy = next(r for r in plan.by_type(ROLE_POLICY) if r.name.endswith("-ebs-csi-kms"))
    document = json.loads(role_policy.inputs["policy"])
    for statement in document["Statement"]:
        if statement["Action"] == "kms:CreateGrant":
            del statement["Condition"]["Bool"]
    role_policy.inputs["policy"] = json.dumps(document)
    found = findings(world_of("dev", plan), "MLS-SIM-IAM-002")
    assert found and all("kms:CreateGrant" in f.message and "ebs-csi-driver" in f.message for f in found)
