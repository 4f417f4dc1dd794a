"""The anti-escalation denies the platform and pipeline boundaries share (components/boundary_guards.py): both
boundaries keep themselves in force the same way, and every role either lets be created carries the platform
boundary."""

from __future__ import annotations

from typing import Any

from components.account import pipeline_boundary_statements
from components.boundary_guards import LONG_LIVED_CREDENTIALS, POLICY_VERSION_WRITES
from components.environment import Environment
from components.governance import boundary_statements
from tests.plans import PROJECT

ACCOUNT = "111122223333"
PLATFORM = f"arn:aws:iam::{ACCOUNT}:policy/dev-permission-boundary"
PIPELINE = f"arn:aws:iam::{ACCOUNT}:policy/dev-pipeline-boundary"


def _both() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    _, spec = PROJECT.load("dev")
    env = Environment.from_spec(spec)
    platform = {s["Sid"]: s for s in boundary_statements(env, PLATFORM)}
    pipeline = {s["Sid"]: s for s in pipeline_boundary_statements(env, PIPELINE, PLATFORM)}
    return platform, pipeline


def test_each_boundary_denies_changes_to_itself_and_its_detachment() -> None:
    platform, pipeline = _both()
    for statements, own in ((platform, PLATFORM), (pipeline, PIPELINE)):
        immutable = statements["BoundaryIsImmutable"]
        assert (immutable["Effect"], immutable["Resource"]) == ("Deny", own)
        assert immutable["Action"] == list(POLICY_VERSION_WRITES)
    assert platform["BoundaryStaysAttached"] == pipeline["BoundaryStaysAttached"]


def test_every_role_either_boundary_lets_be_created_carries_the_platform_boundary() -> None:
    platform, pipeline = _both()
    own, theirs = platform["NewRolesCarryTheBoundary"], pipeline["NewRolesCarryThePlatformBoundary"]
    for statement in (own, theirs):
        assert statement["Effect"] == "Deny"
        assert statement["Action"] == ["iam:CreateRole", "iam:PutRolePermissionsBoundary"]
        assert statement["Condition"] == {"StringNotEquals": {"iam:PermissionsBoundary": PLATFORM}}


def test_both_refuse_long_lived_credentials() -> None:
    platform, pipeline = _both()
    for statements in (platform, pipeline):
        denied = statements["NoLongLivedCredentials"]["Action"]
        assert denied[: len(LONG_LIVED_CREDENTIALS)] == list(LONG_LIVED_CREDENTIALS)
    # What each adds: a reactivated access key (platform); console password and service credentials, which the
    # platform boundary denies through NoEscalationThroughOtherPrincipals (pipeline).
    assert "iam:UpdateAccessKey" in platform["NoLongLivedCredentials"]["Action"]
    escalation = platform["NoEscalationThroughOtherPrincipals"]["Action"]
    for action in ("iam:UpdateLoginProfile", "iam:CreateServiceSpecificCredential"):
        assert action in pipeline["NoLongLivedCredentials"]["Action"] and action in escalation
