"""The IAM policy evaluator of the deploy simulation, against the AWS documentation's rules and examples."""

from __future__ import annotations

import json

import pytest

from mlstack.simulate.iam import (
    Decision,
    Policy,
    Principal,
    Request,
    evaluate,
    evaluate_condition,
    managed_policies,
)

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev-app"


def policy(*statements: dict, name: str = "p") -> Policy:
    return Policy.parse(name, f"urn:{name}", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str = "s3:GetObject", resource: str = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "s3:GetObject", resource: str = "*", **extra: object) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def role(*identity: Policy, boundary: Policy | None = None) -> Principal:
    return Principal(ROLE, ACCOUNT, "urn:role", tuple(identity), boundary)


def holds(condition: dict, **context: tuple[str, ...]) -> bool | None:
    request = Request(
        "s3:GetObject", "arn:aws:s3:::b/k", {k.replace("__", ":"): v for k, v in context.items()}
    )
    return evaluate_condition(condition, request).holds


# ---- conditions (reference_policies_elements_condition_operators.html) ----------------------------------------


def test_a_positive_operator_is_false_and_a_negated_one_true_when_the_key_is_known_absent():
    absent = {"s3__x-amz-server-side-encryption": ()}
    assert holds({"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, **absent) is False
    assert holds({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, **absent) is True


def test_if_exists_is_true_when_the_key_is_absent_so_a_deny_with_it_applies():
    """'If the key is not present, evaluate the condition element as true': a Deny with
    StringNotEqualsIfExists refuses a request that does not send the key at all."""
    condition = {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}
    assert holds(condition, **{"s3__x-amz-server-side-encryption": ()}) is True
    assert holds(condition, **{"s3__x-amz-server-side-encryption": ("aws:kms",)}) is False
    assert holds(condition, **{"s3__x-amz-server-side-encryption": ("AES256",)}) is True


def test_null_tests_presence():
    assert holds({"Null": {"aws:RequestTag/team": "true"}}, **{"aws__RequestTag/team": ()}) is True
    assert holds({"Null": {"aws:RequestTag/team": "false"}}, **{"aws__RequestTag/team": ()}) is False
    assert holds({"Null": {"aws:RequestTag/team": "false"}}, **{"aws__RequestTag/team": ("a",)}) is True


def test_set_operators_on_an_absent_key():
    """ForAllValues over no values is true; ForAnyValue is false (multi-valued context keys)."""
    absent = {"aws__TagKeys": ()}
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, **absent) is True
    assert holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, **absent) is False
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, aws__TagKeys=("a", "c")) is False
    assert holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, aws__TagKeys=("a", "c")) is True


def test_several_values_are_ored_and_a_negated_operator_nors_them():
    assert holds({"StringEquals": {"k": ["a", "b"]}}, k=("b",)) is True
    assert holds({"StringNotEquals": {"k": ["a", "b"]}}, k=("b",)) is False
    assert holds({"StringNotEquals": {"k": ["a", "b"]}}, k=("c",)) is True


def test_operators_and_keys_are_anded():
    condition = {"StringEquals": {"a": "1", "b": "2"}, "Bool": {"aws:SecureTransport": "true"}}
    assert holds(condition, a=("1",), b=("2",), aws__SecureTransport=("true",)) is True
    assert holds(condition, a=("1",), b=("3",), aws__SecureTransport=("true",)) is False


def test_wildcards_and_arn_parts():
    assert holds({"StringLike": {"k": "team-?/*"}}, k=("team-a/x/y",)) is True
    assert holds({"StringLike": {"k": "team-?/*"}}, k=("team-ab/x",)) is False
    # ArnLike compares each of the six parts: a '*' in the resource part does not swallow the account.
    pattern = f"arn:aws:iam::{ACCOUNT}:role/dev-*"
    assert holds({"ArnLike": {"aws:PrincipalArn": pattern}}, aws__PrincipalArn=(ROLE,)) is True
    assert (
        holds({"ArnLike": {"aws:PrincipalArn": pattern}}, aws__PrincipalArn=(ROLE.replace("dev", "prod"),))
        is False
    )
    assert holds({"ArnNotLike": {"aws:PrincipalArn": pattern}}, aws__PrincipalArn=(ROLE,)) is False


def test_numeric_operators():
    assert holds({"NumericLessThan": {"s3:max-keys": "10"}}, **{"s3__max-keys": ("5",)}) is True
    assert holds({"NumericLessThan": {"s3:max-keys": "10"}}, **{"s3__max-keys": ("10",)}) is False
    assert holds({"NumericNotEquals": {"s3:max-keys": "10"}}, **{"s3__max-keys": ("10",)}) is False
    assert holds({"NumericNotEquals": {"s3:max-keys": "10"}}, **{"s3__max-keys": ("9",)}) is True


def test_a_key_the_request_cannot_supply_is_undecided_never_passed():
    result = evaluate_condition(
        {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, Request("kms:Decrypt", "*")
    )
    assert result.holds is None and result.unknown == ("kms:ViaService",)
    # ...unless another part of the condition is already false.
    both = {"StringEquals": {"kms:ViaService": "x"}, "Bool": {"aws:SecureTransport": "true"}}
    assert (
        evaluate_condition(both, Request("kms:Decrypt", "*", {"aws:SecureTransport": ("false",)})).holds
        is False
    )


def test_policy_variables_and_unmodelled_operators_are_undecided():
    assert holds({"StringLike": {"s3:prefix": "${aws:username}/*"}}, **{"s3__prefix": ("a/",)}) is None
    assert holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, aws__SourceIp=("10.1.2.3",)) is None


def test_condition_key_names_are_case_insensitive():
    assert holds({"StringEquals": {"AWS:SecureTransport": "true"}}, aws__securetransport=("true",)) is True


# ---- evaluation (reference_policies_evaluation-logic.html) ----------------------------------------------------


def request(
    action: str = "s3:GetObject", resource: str = "arn:aws:s3:::b/k", **context: tuple[str, ...]
) -> Request:
    extra = {k.replace("__", ":"): v for k, v in context.items()}
    return Request(action, resource, {"aws:SecureTransport": ("true",), **extra})


def test_nothing_allowed_is_an_implicit_deny():
    assert evaluate(role(), request()).decision is Decision.IMPLICIT_DENY


def test_an_explicit_deny_in_any_policy_wins():
    bucket = policy(
        {
            **deny("s3:*", "arn:aws:s3:::b/*"),
            "Principal": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        name="bucket",
    )
    verdict = evaluate(role(policy(allow())), request(aws__SecureTransport=("false",)), bucket)
    assert verdict.decision is Decision.EXPLICIT_DENY and verdict.culprit is bucket
    assert evaluate(role(policy(allow())), request(), bucket).allowed


def test_a_boundary_and_an_identity_policy_must_both_allow():
    boundary = policy(allow("s3:*"), name="boundary")
    assert evaluate(role(policy(allow()), boundary=boundary), request()).allowed
    verdict = evaluate(role(policy(allow("kms:Decrypt")), boundary=boundary), request("kms:Decrypt", "*"))
    assert verdict.decision is Decision.IMPLICIT_DENY and verdict.culprit is boundary
    # The boundary grants nothing on its own.
    assert evaluate(role(boundary=boundary), request()).decision is Decision.IMPLICIT_DENY


def test_a_same_account_resource_policy_naming_the_role_grants_within_the_boundary():
    """access_policies_boundaries.html: an implicit deny in a boundary does limit a resource policy's grant to the
    role's ARN."""
    grant = policy({**allow("s3:GetObject", "arn:aws:s3:::b/*"), "Principal": {"AWS": ROLE}}, name="bucket")
    assert evaluate(role(), request(), grant).allowed
    assert evaluate(role(boundary=policy(allow("s3:*"))), request(), grant).allowed
    assert not evaluate(role(boundary=policy(allow("ec2:*"))), request(), grant).allowed


def test_a_resource_policy_naming_the_account_root_only_delegates_to_iam():
    root = policy(
        {**allow("s3:GetObject", "arn:aws:s3:::b/*"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    )
    assert evaluate(role(), request(), root).decision is Decision.IMPLICIT_DENY
    assert evaluate(role(policy(allow())), request(), root).allowed


def test_a_key_policy_must_allow_even_when_iam_does():
    """kms key-policy-default.html: without a key policy statement for the account, IAM policies grant nothing."""
    key = "arn:aws:kms:us-east-1:111122223333:key/k"
    only_admin = policy(
        {**allow("kms:Describe*"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, name="key"
    )
    verdict = evaluate(
        role(policy(allow("kms:*"))), request("kms:Decrypt", key), only_admin, kms_key_policy=True
    )
    assert verdict.decision is Decision.IMPLICIT_DENY and verdict.culprit is only_admin
    via_s3 = policy(
        {
            **allow("kms:Decrypt"),
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
        }
    )
    through_s3 = request("kms:Decrypt", key, kms__ViaService=("s3.us-east-1.amazonaws.com",))
    through_sm = request("kms:Decrypt", key, kms__ViaService=("secretsmanager.us-east-1.amazonaws.com",))
    assert evaluate(role(policy(allow("kms:*"))), through_s3, via_s3, kms_key_policy=True).allowed
    assert not evaluate(role(policy(allow("kms:*"))), through_sm, via_s3, kms_key_policy=True).allowed
    # Root delegation still needs the role's own IAM allow.
    assert not evaluate(role(), through_s3, via_s3, kms_key_policy=True).allowed


def test_not_action_and_not_resource():
    boundary = policy(
        allow("*"),
        {"Effect": "Deny", "Action": "iam:PassRole", "NotResource": f"arn:aws:iam::{ACCOUNT}:role/dev-*"},
        {"Effect": "Deny", "NotAction": ["s3:*", "iam:*"], "Resource": "*"},
    )
    anything = policy(allow("*"))
    own, other = f"arn:aws:iam::{ACCOUNT}:role/dev-x", f"arn:aws:iam::{ACCOUNT}:role/prod-x"
    assert evaluate(role(anything, boundary=boundary), request("iam:PassRole", own)).allowed
    assert (
        evaluate(role(anything, boundary=boundary), request("iam:PassRole", other)).decision
        is Decision.EXPLICIT_DENY
    )
    assert (
        evaluate(role(anything, boundary=boundary), request("ec2:RunInstances", "*")).decision
        is Decision.EXPLICIT_DENY
    )


def test_actions_match_case_insensitively_with_wildcards():
    assert evaluate(role(policy(allow("S3:get*"))), request()).allowed
    assert evaluate(role(policy(allow("s3:G?tObject"))), request()).allowed
    assert not evaluate(role(policy(allow("s3:Put*"))), request()).allowed


def test_an_undecided_allow_is_reported_not_granted():
    conditional = policy(allow(Condition={"StringEquals": {"aws:ResourceTag/team": "a"}}))
    verdict = evaluate(role(conditional), request())
    assert verdict.decision is Decision.UNKNOWN and "aws:ResourceTag/team" in verdict.reason


def test_an_undecided_deny_makes_an_allowed_call_undecided():
    policies = policy(allow(), deny(Condition={"StringEquals": {"aws:ResourceTag/team": "a"}}))
    assert evaluate(role(policies), request()).decision is Decision.UNKNOWN


def test_a_service_principal_is_allowed_only_by_the_resource_policy_naming_it():
    queue = "arn:aws:sqs:us-east-1:111122223333:q"
    queue_policy = policy(
        {**allow("sqs:SendMessage", queue), "Principal": {"Service": "events.amazonaws.com"}}
    )
    events = Principal("events.amazonaws.com", ACCOUNT, service="events.amazonaws.com")
    logs = Principal("logs.amazonaws.com", ACCOUNT, service="logs.amazonaws.com")
    assert evaluate(events, request("sqs:SendMessage", queue), queue_policy).allowed
    assert not evaluate(logs, request("sqs:SendMessage", queue), queue_policy).allowed


def test_policy_documents_encoded_twice_are_read():
    doc = {"Statement": [allow()]}
    assert Policy.parse("x", None, json.dumps(json.dumps(doc))).statements[0].actions == ("s3:GetObject",)


# ---- the vendored managed policies ----------------------------------------------------------------------------


def test_the_vendored_managed_policies_match_the_installed_moto_copy():
    moto_policies = pytest.importorskip("moto.iam.aws_managed_policies")
    data = json.loads(moto_policies.aws_managed_policies_data)
    for name, document in managed_policies().items():
        assert document["Statement"] == data[name.rsplit("/", 1)[-1]]["Document"]["Statement"], name


def test_every_managed_policy_a_stack_attaches_is_vendored():
    from mlstack.simulate.iam import access
    from tests.simulation import world_of

    for stack in ("dev", "prod"):
        assert all(not p.missing_managed for p in access(world_of(stack)).roles.values())
