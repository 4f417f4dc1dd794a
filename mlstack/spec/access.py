"""Access section of the environment spec: how deploys and people reach the private cluster endpoint.

The cluster API is private (components/cluster.py), so two things must sit inside the VPC: the GitHub Actions
runner that runs ``pulumi up`` (an AWS CodeBuild project, components/deployer.py) and, for people, a small
Session Manager host that port-forwards to the API and the UIs (components/access.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from mlstack.spec.base import StrictModel
from mlstack.spec.network import allowed_log_retention

# owner/name as GitHub spells it (letters, digits, '-', '_', '.'); the project source is its https URL.
GithubRepository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
]
CodeConnectionArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
    ),
]
# CodeBuild on-demand container compute types (pulumi-aws 7.51.1 codebuild ProjectEnvironmentArgs.compute_type;
# CodeBuild user guide build-env-ref-compute-types). Lambda and GPU types cannot run the deploy.
RunnerComputeType = Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"]
# Graviton instance types for the access host: it only relays TCP.
AccessInstanceType = Literal["t4g.nano", "t4g.micro", "t4g.small"]


class DeployRunnerSpec(StrictModel):
    """The in-VPC GitHub Actions runner that runs ``pulumi up``: an AWS CodeBuild project with a webhook on
    ``WORKFLOW_JOB_QUEUED``, in the private subnets, allowed to the cluster API on 443. Default: on."""

    enabled: bool = Field(
        default=True,
        description="Create the CodeBuild-hosted runner (once a repository is named: github_repository here or "
        "deployment.github_repository). Set false when deploys run on another runner inside the VPC "
        "(actions-runner-controller, a Pulumi Deployments agent): see docs/components/deployer.md. Default: on.",
    )
    github_repository: GithubRepository | None = Field(
        default=None,
        description="The GitHub repository (owner/name) whose workflow jobs the runner takes. Default: "
        "deployment.github_repository, the repository the pipeline roles trust; without either, no runner is "
        "created, and policy MLS-CB-004 reports a private cluster that has no runner and no enabled: false.",
    )
    connection_arn: CodeConnectionArn | None = Field(
        default=None,
        description="An existing, already authorised AWS CodeConnections connection to GitHub to use. Default: "
        "the stack creates a connection, which someone authorises once in the console before the runner works.",
    )
    compute_type: RunnerComputeType = Field(
        default="BUILD_GENERAL1_MEDIUM",
        description="CodeBuild compute of each job (MEDIUM: 4 vCPU, 7 GB). Default: BUILD_GENERAL1_MEDIUM.",
    )
    build_timeout_minutes: int = Field(
        default=120,
        ge=5,
        le=480,
        description="Longest a deploy job may run before CodeBuild stops it; a cold prod `up` takes about "
        "25 minutes. Default: 120.",
    )
    log_retention_days: int = Field(
        default=90,
        description="Retention of the runner's CloudWatch log group (encrypted with the logs key). Default: 90.",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        return allowed_log_retention(value)


class AccessHostSpec(StrictModel):
    """A Session Manager host in a private subnet through which people port-forward to the cluster API and the
    UIs: no public address, no inbound rule, IMDSv2 with hop limit 1, encrypted root volume. Default: on."""

    enabled: bool = Field(
        default=True,
        description="Create the access host. Without it nobody outside the VPC reaches the private API "
        "(kubectl, Argo, Metaflow) unless you bring a VPN. Default: on.",
    )
    instance_type: AccessInstanceType = Field(
        default="t4g.nano",
        description="Instance type; the host relays TCP only, so the smallest Graviton type is enough. "
        "Default: t4g.nano.",
    )
    root_volume_gb: int = Field(
        default=8,
        ge=8,
        le=64,
        description="Encrypted gp3 root volume; the Amazon Linux 2023 minimal AMI needs 8 GiB or less "
        "(its snapshot size). Default: 8.",
    )
