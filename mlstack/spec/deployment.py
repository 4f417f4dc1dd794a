"""Deployment section of the environment spec: what the account foundation stack (``account/``) needs to know
about the GitOps pipeline: the GitHub repository whose workflows may assume the pipeline roles, the state
backend those roles read and write, and, optionally, the IAM Identity Center instance whose permission sets
the environment's human roles trust."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints, field_validator

from mlstack.spec.base import StrictModel
from mlstack.spec.teams import PermissionSetName

if TYPE_CHECKING:
    from mlstack.spec import PlatformSpec

# GitHub owner (user or organization) and repository names: an owner is 1-39 alphanumerics or single hyphens,
# a repository name letters, digits, '.', '_' and '-' (GitHub's own validation, as the create-repository form
# states it). Case is kept: GitHub's OIDC `sub` claim carries the names as they are spelled.
GitHubRepository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9._-]{1,100}$")
]
OidcProviderArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
    ),
]
IamRoleArn = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
]
# IAM Identity Center ARNs (sso-admin API reference, "Instance" and "PermissionSet" data types):
# arn:aws:sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}.
IdentityCenterInstanceArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$")
]
# Identity Store group ids are UUIDs, optionally prefixed by a 10-digit store id and '-'
# (identitystore API reference, Group.GroupId pattern).
IdentityStoreGroupId = Annotated[
    str,
    StringConstraints(
        pattern=r"^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$"
    ),
]
# ISO-8601 duration of an Identity Center session (PermissionSet SessionDuration), 1 to 12 hours.
SessionDuration = Annotated[str, StringConstraints(pattern=r"^PT(?:[1-9]|1[0-2])H$")]
KmsAlias = Annotated[str, StringConstraints(max_length=256, pattern=r"^alias/[a-zA-Z0-9/_-]+$")]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


class IdentityCenterSpec(StrictModel):
    """The IAM Identity Center instance that holds the permission sets the stack file names
    (``platform_admins.sso_permission_sets`` and ``teams[].human_access.sso_permission_sets``).

    The account foundation creates one permission set per name, whose only grant is ``sts:AssumeRole`` on the
    human roles that trust it, and assigns it to this account for the listed groups. Permission sets live in
    the account that holds the instance (the organization's management account or its delegated
    administrator): give ``admin_role_arn`` when that is not the account the foundation deploys to.
    """

    instance_arn: IdentityCenterInstanceArn = Field(
        description="ARN of the Identity Center instance, arn:aws:sso:::instance/ssoins-... "
        "(`aws sso-admin list-instances`). Required."
    )
    admin_role_arn: IamRoleArn | None = Field(
        default=None,
        description="Role the foundation assumes to manage permission sets, in the account that holds the "
        "instance. Default: none, the foundation's own credentials (right when it runs there).",
    )
    session_duration: SessionDuration = Field(
        default="PT1H",
        description="How long an Identity Center sign-in to these permission sets lasts (ISO-8601, PT1H to "
        "PT12H). Default: PT1H, the same hour the human roles allow.",
    )
    group_assignments: dict[PermissionSetName, list[IdentityStoreGroupId]] = Field(
        default_factory=dict,
        description="Per permission set, the Identity Store group ids assigned to it in this account. A name "
        "must be one the stack file uses. Default: none (assign groups in Identity Center yourself).",
    )

    @field_validator("group_assignments")
    @classmethod
    def _distinct_groups(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, groups in value.items():
            if len(set(groups)) != len(groups):
                raise ValueError(f"group_assignments.{name}: each group may be listed once")
        return value


class DeploymentSpec(StrictModel):
    """How the environment is deployed: read by the account foundation stack (``account/``), which creates the
    GitHub OIDC provider and the deploy, preview and audit roles (docs/runbooks/first-deploy.md)."""

    github_repository: GitHubRepository = Field(
        description="owner/name of the GitHub repository whose workflows deploy this environment; only its "
        "jobs in the environment's GitHub environments (<env>, <env>-preview, <env>-audit) may assume the "
        "pipeline roles. Required."
    )
    github_oidc_provider_arn: OidcProviderArn | None = Field(
        default=None,
        description="An existing IAM OIDC provider for token.actions.githubusercontent.com in this account. "
        "An account holds one provider per URL, so when two environments share an account the second names "
        "the first's. Default: none, the foundation creates the provider.",
    )
    state_bucket: BucketName | None = Field(
        default=None,
        description="S3 bucket of the Pulumi state (`mlstack bootstrap --bucket`). Default: bootstrap's "
        "mlstack-pulumi-state-<account>-<region>.",
    )
    secrets_key_alias: KmsAlias = Field(
        default="alias/mlstack-pulumi-secrets",
        description="KMS alias of the Pulumi secrets key (`mlstack bootstrap --alias`). Default: "
        "alias/mlstack-pulumi-secrets, bootstrap's default.",
    )
    identity_center: IdentityCenterSpec | None = Field(
        default=None,
        description="Identity Center instance for the permission sets the stack names. Default: none, no "
        "permission sets are created (the human roles still trust them by name).",
    )

    @field_validator("secrets_key_alias")
    @classmethod
    def _customer_alias(cls, value: str) -> str:
        if value.startswith("alias/aws/"):
            raise ValueError("alias/aws/ names AWS managed keys; use the alias `mlstack bootstrap` created")
        return value


def sso_permission_set_names(spec: PlatformSpec) -> list[str]:
    """Every permission set the stack file names, platform admins' first, each once."""
    names: list[str] = []
    for access in [spec.platform_admins, *(team.human_access for team in spec.teams)]:
        for name in access.sso_permission_sets if access is not None else []:
            if name not in names:
                names.append(name)
    return names


def deployment_problems(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Cross-section rules: groups are assigned only to permission sets the stack file uses."""
    if spec.deployment is None or spec.deployment.identity_center is None:
        return []
    used = set(sso_permission_set_names(spec))
    return [
        (
            f"deployment.identity_center.group_assignments.{name}",
            f"no role trusts permission set '{name}'; used: {sorted(used) or 'none'} (platform_admins and "
            "teams[].human_access sso_permission_sets)",
        )
        for name in spec.deployment.identity_center.group_assignments
        if name not in used
    ]
