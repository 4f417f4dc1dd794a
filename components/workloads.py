"""Building blocks shared by the components that run workloads on the cluster and keep data in RDS.

Not a component: functions that create children of the component passed as ``parent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import Cluster
from components.environment import Environment
from components.iam import platform_role, pod_identity_trust
from components.options import child

POSTGRES_PORT = 5432
# Pulled through the environment's ECR pull-through cache (prefix ecr-public), never from the public registry.
AWS_CLI_IMAGE = "ecr-public/aws-cli/aws-cli:2.31.13"
# Pod Security Standard every namespace of ours enforces: the charts and pods here are configured to meet it.
RESTRICTED = "restricted"
# The one relaxation: a namespace whose pods need a container that runs as root (named where it is used).
BASELINE = "baseline"

# Container security context that meets the restricted Pod Security Standard.
RESTRICTED_CONTAINER: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_pod(user: int = 65532) -> dict[str, Any]:
    """Pod security context of a non-root pod: a fixed unprivileged user, group and fsGroup."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def namespace(
    parent: pulumi.Resource,
    logical_name: str,
    name: str,
    provider: k8s.Provider,
    purpose: str,
    *,
    enforce: str = RESTRICTED,
) -> k8s.core.v1.Namespace:
    """A namespace that enforces the restricted Pod Security Standard (``enforce=BASELINE`` relaxes only the
    enforcement; restricted stays audited and warned, so every exception shows up)."""
    return k8s.core.v1.Namespace(
        logical_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            labels={
                "app.kubernetes.io/managed-by": "mlstack",
                "mlstack.dev/purpose": purpose,
                "pod-security.kubernetes.io/enforce": enforce,
                "pod-security.kubernetes.io/audit": RESTRICTED,
                "pod-security.kubernetes.io/warn": RESTRICTED,
            },
        ),
        opts=child(parent, provider=provider),
    )


def workload_role(
    parent: pulumi.Resource,
    logical_name: str,
    *,
    env: Environment,
    cluster: Cluster,
    role_suffix: str,
    boundary_arn: pulumi.Input[str],
    namespace: str,
    service_account: str,
    description: str,
    tags: dict[str, str] | None = None,
) -> aws.iam.Role:
    """An IAM role for one Kubernetes service account, bound through EKS Pod Identity (no static keys, no IRSA
    annotations): only pods running as ``namespace/service_account`` in this cluster receive its credentials."""
    role = platform_role(
        parent,
        logical_name,
        env=env,
        role_suffix=role_suffix,
        boundary_arn=boundary_arn,
        assume_role_policy=pod_identity_trust(env, namespace=namespace, service_account=service_account),
        description=description,
        tags=tags,
    )
    cluster.pod_identity(
        f"{logical_name}-pod-identity",
        namespace=namespace,
        service_account=service_account,
        role=role,
        parent=parent,
    )
    return role


def database_network(
    parent: pulumi.Resource,
    name: str,
    *,
    env: Environment,
    purpose: str,
    vpc_id: pulumi.Input[str],
    private_subnet_ids: pulumi.Input[Sequence[str]],
    cluster_security_group_id: pulumi.Input[str],
) -> tuple[aws.ec2.SecurityGroup, aws.rds.SubnetGroup]:
    """A security group that admits PostgreSQL only from the cluster's security group, and a subnet group of
    private subnets, so that the database is never reachable from outside the cluster."""
    group = aws.ec2.SecurityGroup(
        f"{name}-db-sg",
        name=env.resource_name(purpose, "db"),
        description=f"{purpose} database: PostgreSQL from the cluster only",
        vpc_id=vpc_id,
        revoke_rules_on_delete=True,
        opts=child(parent),
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-db-from-cluster",
        security_group_id=group.id,
        referenced_security_group_id=cluster_security_group_id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        description="PostgreSQL from pods and nodes of the cluster",
        opts=child(parent),
    )
    subnets = aws.rds.SubnetGroup(
        f"{name}-db-subnets",
        name=env.resource_name(purpose, "db"),
        description=f"Private subnets of the {purpose} database",
        subnet_ids=private_subnet_ids,
        opts=child(parent),
    )
    return group, subnets


# RDS for PostgreSQL refuses non-TLS connections when rds.force_ssl is 1 ("Requiring an SSL connection to a
# PostgreSQL DB instance", RDS User Guide, PostgreSQL.Concepts.General.SSL; Aurora PostgreSQL the same through
# its cluster parameter group). The stack sets it explicitly rather than trusting an engine default that has
# changed between major versions. pending-reboot is accepted for static and dynamic parameters alike, and a
# new database boots with its group's values. Family names follow the RDS API reference
# (CreateDBParameterGroup.DBParameterGroupFamily: "postgres13", "aurora-postgresql14").
FORCE_TLS_PARAMETER = "rds.force_ssl"


def tls_parameter_group(
    parent: pulumi.Resource, name: str, *, env: Environment, purpose: str, family: str, cluster: bool = False
) -> aws.rds.ParameterGroup | aws.rds.ClusterParameterGroup:
    """A parameter group of ``family`` (``postgres16``, ``aurora-postgresql16``) that forces TLS on every
    connection; ``cluster`` makes it an Aurora cluster parameter group."""
    common: dict[str, Any] = {
        "name": env.resource_name(purpose, "tls"),
        "family": family,
        "description": f"{purpose} database: TLS required on every connection",
    }
    if cluster:
        return aws.rds.ClusterParameterGroup(
            f"{name}-db-parameters",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(
                    name=FORCE_TLS_PARAMETER, value="1", apply_method="pending-reboot"
                )
            ],
            opts=child(parent),
            **common,
        )
    return aws.rds.ParameterGroup(
        f"{name}-db-parameters",
        parameters=[
            aws.rds.ParameterGroupParameterArgs(
                name=FORCE_TLS_PARAMETER, value="1", apply_method="pending-reboot"
            )
        ],
        opts=child(parent),
        **common,
    )


def clients_only_policy(
    *, pod_labels: dict[str, str], namespaces: Sequence[str], ports: Sequence[int]
) -> dict[str, Any]:
    """NetworkPolicy spec: the selected pods accept traffic only from the listed namespaces, on these ports.

    With no namespace listed the pods accept nothing, which is the safe reading of 'no clients'.
    """
    ingress = []
    if namespaces:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "In",
                                    "values": sorted(namespaces),
                                }
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": p} for p in ports],
            }
        )
    return {"podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"], "ingress": ingress}


def secret_name(secret_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The name of a Secrets Manager secret from its ARN: the last ARN field without the 6-character suffix
    Secrets Manager appends."""
    return pulumi.Output.from_input(secret_arn).apply(lambda arn: arn.split(":", 6)[-1][:-7])
