"""Every policy of the pack against real recorded plans: one compliant and one non-compliant case at least.

Cases live in CASES, keyed by policy id; test_every_policy_has_both_kinds_of_case fails for a policy
without them. Non-compliant cases mutate a real recorded resource (see tests/policy_cases.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.catalog import ALL_RULES, RULES_BY_ID
from tests.policy_cases import (
    Case,
    bad,
    del_input,
    dropped,
    edit_json,
    edit_statements,
    ok,
    run_case,
    set_input,
    set_option,
    subjects_present,
)

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
PROVIDER = "pulumi:providers:aws"
POLICY = "aws:iam/policy:Policy"
BUDGET = "aws:budgets/budget:Budget"


def _without_tag(tag: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["tags"].pop(tag)

    return edit


def _drop_statement(sid: str) -> Any:
    return lambda statements: [s for s in statements if s.get("Sid") != sid]


def _ceiling_allows_everything(statements: list[dict[str, Any]]) -> None:
    statements[0]["Action"] = "*"


def _ceiling_allows_not_action(statements: list[dict[str, Any]]) -> None:
    statements[0]["NotAction"] = statements[0].pop("Action")


def _open_key_policy(statements: list[dict[str, Any]]) -> None:
    statements.append({"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"})


def _foreign_key_admin(statements: list[dict[str, Any]]) -> None:
    statements[0]["Principal"] = {"AWS": "arn:aws:iam::999988887777:root"}


def _conditioned_service_key_policy(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "AnyPrincipalOfTheAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "333344445555"}},
        }
    )


def _as_workload_policy(*, scoped: bool) -> Any:
    """The boundary document turned into an ordinary role policy: a copy-paste that keeps `s3:*` on '*'."""

    def apply(resource: Any) -> None:
        resource.inputs["name"] = "dev-trainer-data-access"
        if scoped:
            document = json.loads(resource.inputs["policy"])
            document["Statement"][0]["Resource"] = ["arn:aws:s3:::dev-datasets", "arn:aws:s3:::dev-datasets/*"]
            resource.inputs["policy"] = json.dumps(document)

    return apply


def _silent_notifications(resource: Any) -> None:
    for notification in resource.inputs["notifications"]:
        notification.pop("subscriberEmailAddresses", None)


def _only_actual_notifications(resource: Any) -> None:
    resource.inputs["notifications"] = [
        n for n in resource.inputs["notifications"] if n["notificationType"] != "FORECASTED"
    ]


def _budget_for(environment: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["costFilters"] = [{"name": "TagKeyValue", "values": [f"user:environment${environment}"]}]

    return apply


CASES: dict[str, list[Case]] = {
    # environment
    "MLS-ENV-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no owner tag", PROVIDER, edit_json("defaultTags", _without_tag("owner"))),
        bad("prod", "no default tags", PROVIDER, del_input("defaultTags")),
    ],
    "MLS-ENV-002": [
        ok("dev"),
        ok("staging", "configured region", config={"MLS-ENV-002": {"allowedRegions": ["us-east-1"]}}),
        bad("dev", "unapproved region", PROVIDER, set_input("region", "ap-southeast-1")),
        Case("prod", False, "region not in user config", config={"MLS-ENV-002": {"allowedRegions": ["eu-west-1"]}}),
    ],
    "MLS-ENV-003": [
        ok("prod"),
        bad("prod", "dev account", PROVIDER, set_input("allowedAccountIds", '["111122223333"]')),
        bad("dev", "not pinned", PROVIDER, del_input("allowedAccountIds")),
    ],
    "MLS-ENV-004": [
        ok("dev"),
        bad("dev", "default provider", KEY, set_option(provider="")),
    ],
    "MLS-ENV-005": [
        ok("prod"),
        ok("dev", "extra tags", target_type=KEY, mutate=set_input("tags", {"purpose": "data"})),
        bad("prod", "relabelled cost", KEY, set_input("tags", {"cost-center": "someone-else"})),
    ],
    "MLS-ENV-006": [
        ok("prod"),
        ok("staging"),
        ok("dev", "dev may leave keys unprotected"),
        bad("prod", "unprotected key", KEY, set_option(protect=False), name="data"),
        bad("staging", "unprotected key", KEY, set_option(protect=False), name="registry"),
    ],
    # iam
    "MLS-IAM-003": [
        ok("dev"),
        bad("dev", "detachable", POLICY, edit_statements("policy", _drop_statement("BoundaryStaysAttached"))),
        bad("prod", "unbounded roles", POLICY, edit_statements("policy", _drop_statement("NewRolesCarryTheBoundary"))),
    ],
    "MLS-IAM-004": [
        ok("dev"),
        bad("dev", "action star", POLICY, edit_statements("policy", _ceiling_allows_everything)),
        bad("prod", "allow not action", POLICY, edit_statements("policy", _ceiling_allows_not_action)),
    ],
    "MLS-IAM-005": [
        ok("dev", "boundary is exempt"),
        ok("dev", "scoped copy", target_type=POLICY, mutate=_as_workload_policy(scoped=True)),
        bad("dev", "s3 star on star", POLICY, _as_workload_policy(scoped=False)),
    ],
    # keys
    "MLS-KMS-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no rotation", KEY, set_input("enableKeyRotation", False)),
        bad("prod", "rotation unset", KEY, del_input("enableKeyRotation"), name="logs"),
    ],
    "MLS-KMS-002": [
        ok("prod"),
        ok("dev", "dev may use 7 days"),
        bad("prod", "7 day window", KEY, set_input("deletionWindowInDays", 7.0)),
        bad("staging", "default window", KEY, del_input("deletionWindowInDays")),
    ],
    "MLS-KMS-003": [
        ok("dev"),
        ok("prod", "star with condition", target_type=KEY, mutate=edit_statements("policy", _conditioned_service_key_policy)),
        bad("dev", "anyone decrypts", KEY, edit_statements("policy", _open_key_policy)),
        bad("prod", "foreign admin", KEY, edit_statements("policy", _foreign_key_admin)),
    ],
    "MLS-KMS-004": [
        ok("dev"),
        dropped("dev", "data key alias removed", ALIAS, name="data"),
    ],
    # cost
    "MLS-COST-001": [
        ok("dev"),
        ok("prod"),
        dropped("dev", "no budget", BUDGET),
        bad("staging", "another environment's budget", BUDGET, _budget_for("prod")),
    ],
    "MLS-COST-002": [
        ok("dev"),
        bad("dev", "nobody notified", BUDGET, _silent_notifications),
        bad("prod", "no forecast", BUDGET, _only_actual_notifications),
    ],
    "MLS-COST-003": [
        ok("prod"),
        bad("prod", "budget above ceiling", BUDGET, set_input("limitAmount", "900000.00")),
        bad(
            "dev",
            "user ceiling",
            BUDGET,
            set_input("limitAmount", "600.00"),
            config={"MLS-COST-003": {"maxMonthlyBudgetUsd": {"dev": 550}}},
        ),
    ],
}


def _all_cases() -> list[Any]:
    return [
        pytest.param(policy_id, case, id=f"{policy_id}:{case.id}")
        for policy_id, cases in sorted(CASES.items())
        for case in cases
    ]


def test_every_policy_has_both_kinds_of_case() -> None:
    lacking = {
        rule.id: sorted({"compliant" if c.compliant else "non-compliant" for c in CASES.get(rule.id, [])})
        for rule in ALL_RULES
        if {c.compliant for c in CASES.get(rule.id, [])} != {True, False}
    }
    assert not lacking, f"policies without a compliant and a non-compliant case (have: ...): {lacking}"


def test_cases_name_only_policies_of_the_pack() -> None:
    assert set(CASES) <= set(RULES_BY_ID)


def test_every_non_compliant_case_mutates_a_recorded_resource() -> None:
    for policy_id, cases in CASES.items():
        for case in cases:
            if not case.compliant:
                assert case.target_type or case.config, f"{policy_id} {case.id} changes nothing in the plan"


@pytest.mark.parametrize(("policy_id", "case"), _all_cases())
def test_case(policy_id: str, case: Case) -> None:
    outcome = run_case(policy_id, case)
    assert subjects_present(policy_id, outcome.resources) or case.drop, (
        f"{case.stack} has no resource {RULES_BY_ID[policy_id].subjects}: the case would pass vacuously"
    )
    own = [v for v in outcome.violations if v.policy_id == policy_id]
    if case.compliant:
        assert not own, [v.message for v in own]
        return
    assert own, f"{policy_id} found nothing wrong after: {case.note}"
    rule = RULES_BY_ID[policy_id]
    if rule.kind == "resource" and outcome.target_urns:
        assert {v.urn for v in own} == set(outcome.target_urns), "the violation names another resource"
