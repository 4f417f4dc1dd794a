"""EncryptionKeys on the recorded plans: rotation, protection, deletion window, aliases and key policies."""

from __future__ import annotations

import json

import pytest

from mlstack.plan.recorder import Plan
from tests.plans import PROJECT

PURPOSES = ("data", "registry", "logs", "cluster")


def _keys(plan: Plan):
    return [k for k in plan.by_type("aws:kms/key:Key") if "mlstack:keys:EncryptionKeys" in k.urn]


def test_one_key_per_purpose_with_alias_named_after_env_and_purpose(stack_plan: Plan) -> None:
    keys = _keys(stack_plan)
    assert sorted(k.name.rsplit("-", 1)[-1] for k in keys) == sorted(PURPOSES)
    aliases = {a.inputs["name"]: a for a in stack_plan.by_type("aws:kms/alias:Alias")}
    for purpose in PURPOSES:
        alias = aliases[f"alias/mlstack/{stack_plan.stack}/{purpose}"]
        key = stack_plan.get(alias.property_dependencies["targetKeyId"][0])
        assert key.name.endswith(f"-{purpose}")


def test_every_key_rotates(stack_plan: Plan) -> None:
    keys = stack_plan.by_type("aws:kms/key:Key")
    assert keys
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)


def test_hardened_keys_are_protected_retained_with_the_longest_window(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    for key in stack_plan.by_type("aws:kms/key:Key"):
        if spec.tier.hardened:
            assert key.protect and key.retain_on_delete, key.urn
            assert key.inputs["deletionWindowInDays"] == 30
        else:
            assert not key.protect and key.inputs["deletionWindowInDays"] == 7


def _policy(key) -> list[dict]:
    return json.loads(key.inputs["policy"])["Statement"]


def test_no_key_policy_names_the_open_principal_without_a_condition(stack_plan: Plan) -> None:
    for key in stack_plan.by_type("aws:kms/key:Key"):
        for statement in _policy(key):
            principal = statement["Principal"]
            open_principal = principal == "*" or "*" in json.dumps(principal.get("AWS", ""))
            assert not open_principal or statement.get("Condition"), (key.urn, statement)
            assert statement["Action"] not in ("*", "kms:*"), (key.urn, statement)


@pytest.mark.parametrize(("purpose", "service"), [("data", "s3"), ("registry", "ecr"), ("cluster", "eks")])
def test_crypto_use_only_through_the_purposes_service(stack_plan: Plan, purpose: str, service: str) -> None:
    key = next(k for k in _keys(stack_plan) if k.name.endswith(f"-{purpose}"))
    _, spec = PROJECT.load(stack_plan.stack)
    for statement in _policy(key):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if {"kms:Decrypt", "kms:Encrypt", "kms:CreateGrant"} & set(actions):
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert f"{service}.{spec.region}.amazonaws.com" in via
            assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == spec.account_id


def test_logs_key_admits_cloudwatch_logs_of_this_account_only(stack_plan: Plan) -> None:
    key = next(k for k in _keys(stack_plan) if k.name.endswith("-logs"))
    _, spec = PROJECT.load(stack_plan.stack)
    services = [s for s in _policy(key) if "Service" in s["Principal"]]
    assert [s["Principal"]["Service"] for s in services] == [f"logs.{spec.region}.amazonaws.com"]
    context = services[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert context == f"arn:aws:logs:{spec.region}:{spec.account_id}:*"


def test_keys_of_rds_managed_secrets_admit_secrets_manager(stack_plan: Plan) -> None:
    """RDS keeps each master password in Secrets Manager, encrypted with the key we name; Secrets Manager uses
    that key through kms:ViaService secretsmanager.<region>, so the key policy must admit it or the secret can
    be neither created nor read (review rt-data U3, M4)."""
    _, spec = PROJECT.load(stack_plan.stack)
    keys = {k.urn: k for k in stack_plan.by_type("aws:kms/key:Key")}
    databases = [
        r
        for r in stack_plan.by_type("aws:rds/instance:Instance")
        + stack_plan.by_type("aws:rds/cluster:Cluster")
        if r.inputs.get("manageMasterUserPassword")
    ]
    assert databases, "every shipped stack has the Metaflow database"
    for database in databases:
        (key_urn,) = database.property_dependencies["masterUserSecretKmsKeyId"]
        use = next(s for s in _policy(keys[key_urn]) if s.get("Sid") == "UseOnlyThroughServices")
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(use["Action"])
        assert (
            f"secretsmanager.{spec.region}.amazonaws.com"
            in use["Condition"]["StringEquals"]["kms:ViaService"]
        )
