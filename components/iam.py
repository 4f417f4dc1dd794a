"""IAM building blocks shared by every component: trust policies and roles that always carry the boundary."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.options import child

POLICY_VERSION = "2012-10-17"


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document as JSON; statements may hold Outputs, which stay tracked as dependencies."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": statements})


def service_trust(*services: str) -> str:
    """Trust policy for AWS service principals (for example ec2.amazonaws.com)."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": sorted(services)}, "Action": "sts:AssumeRole"}
            ],
        },
        sort_keys=True,
    )


def pod_identity_trust(
    env: Environment, *, namespace: str | None = None, service_account: str | None = None
) -> str:
    """Trust policy for EKS Pod Identity: only this account and only the environment's cluster (its name is
    ``<env>-eks``, components.cluster.eks_cluster_name), and, when given, only one namespace and service
    account, so that no other cluster in the account, and no other association, can use the role.

    EKS Pod Identity tags its session with the cluster, namespace and service account, and the trust policy
    may condition on those tags (EKS user guide, pod-id-role.html, "Setting Conditions":
    ``aws:RequestTag/kubernetes-namespace`` ...; pod-id-abac.html lists ``eks-cluster-name`` and
    ``kubernetes-service-account`` among the session tags). Associations keep session tags on (the default).
    """
    equals = {
        "aws:SourceAccount": env.account_id,
        "aws:RequestTag/eks-cluster-name": env.resource_name("eks"),
    }
    if namespace is not None:
        equals["aws:RequestTag/kubernetes-namespace"] = namespace
    if service_account is not None:
        equals["aws:RequestTag/kubernetes-service-account"] = service_account
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"StringEquals": equals},
                }
            ],
        },
        sort_keys=True,
    )


def platform_role(
    parent: pulumi.Resource,
    logical_name: str,
    *,
    env: Environment,
    role_suffix: str,
    boundary_arn: pulumi.Input[str],
    assume_role_policy: pulumi.Input[str],
    description: str,
    tags: dict[str, str] | None = None,
) -> aws.iam.Role:
    """An IAM role named ``<env>-<suffix>`` under the permission boundary. Every role the stack creates uses this.

    The name prefix matters: the boundary only lets roles pass roles whose names start with the environment.
    ``tags`` add to the provider's default tags (never the required ones, policy MLS-ENV-005): a team-owned
    role carries its team's ``team-cost-center`` (see :func:`team_tags`).
    """
    name = env.resource_name(role_suffix)
    if len(name) > 64:
        raise ValueError(f"IAM role name '{name}' is longer than 64 characters; shorten '{role_suffix}'")
    return aws.iam.Role(
        logical_name,
        name=name,
        description=description,
        assume_role_policy=assume_role_policy,
        permissions_boundary=boundary_arn,
        max_session_duration=3600,
        tags=tags,
        opts=child(parent),
    )


TEAM_COST_CENTER_TAG = "team-cost-center"


def team_tags(team: str, cost_center: str) -> dict[str, str]:
    """Tags of an AWS resource one team owns: the team's cost center, which the team's budget filters on
    (``user:team-cost-center$<cost center>``), and the team's name. The environment's own ``cost-center`` tag
    stays as the provider sets it, so environment totals keep every resource (policy MLS-ENV-005)."""
    return {TEAM_COST_CENTER_TAG: cost_center, "team": team}
