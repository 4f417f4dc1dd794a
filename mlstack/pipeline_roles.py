"""Names of the three IAM roles the GitOps pipeline assumes in each environment's account, shared by the code
that creates them (the account foundation) and the code that grants them access (the cluster's access entries,
the workflows' documentation), so the two can never disagree.

- deploy: runs ``pulumi up`` (and ``mlstack preflight``); cluster admin through an EKS access entry.
- preview: runs ``pulumi preview`` on pull requests; read-only, cannot change anything.
- audit: runs ``mlstack audit`` (nightly drift); read-only.
"""

from __future__ import annotations

from typing import Literal

PipelineRole = Literal["deploy", "preview", "audit"]
PIPELINE_ROLES: tuple[PipelineRole, ...] = ("deploy", "preview", "audit")


def pipeline_role_name(environment: str, role: PipelineRole) -> str:
    """``<environment>-mlstack-<role>``, for example ``prod-mlstack-deploy``."""
    return f"{environment}-mlstack-{role}"


def pipeline_role_arn(account_id: str, environment: str, role: PipelineRole) -> str:
    return f"arn:aws:iam::{account_id}:role/{pipeline_role_name(environment, role)}"


def deploy_runner_project_name(environment: str) -> str:
    """The AWS CodeBuild project that hosts the GitHub Actions runner inside the environment's VPC, the only
    place that reaches the private cluster endpoint: ``<environment>-mlstack-deploy-runner``. Workflow jobs
    select it with ``runs-on: codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}``."""
    return f"{environment}-mlstack-deploy-runner"


def pipeline_boundary_name(environment: str) -> str:
    """The permission boundary of the three pipeline roles, created with them by the account foundation
    (components/account.py): ``<environment>-mlstack-pipeline-permission-boundary``. The platform's own boundary
    is created by the deploy role and so cannot cap it."""
    return f"{environment}-mlstack-pipeline-permission-boundary"
