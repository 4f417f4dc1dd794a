"""Namespaced Kubernetes RBAC: a Role and the RoleBinding that grants it, declared together.

Several components grant one narrow Role in one namespace (sensors, notebook spawners, port-forwards, workflow
executors); the pair always shares its name, namespace and labels, and the binding always names the Role it was
declared with, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.options import child

RBAC_API_GROUP = "rbac.authorization.k8s.io"


def group_subject(group: str) -> k8s.rbac.v1.SubjectArgs:
    """A Kubernetes group (a team's, mapped from IAM by the cluster's access entries)."""
    return k8s.rbac.v1.SubjectArgs(kind="Group", name=group, api_group=RBAC_API_GROUP)


def service_account_subject(name: str, namespace: str) -> k8s.rbac.v1.SubjectArgs:
    return k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=name, namespace=namespace)


def bound_role(
    parent: pulumi.Resource,
    name: str,
    *,
    metadata: Mapping[str, Any] | k8s.meta.v1.ObjectMetaArgs,
    rules: Sequence[Mapping[str, Any]],
    subjects: Sequence[k8s.rbac.v1.SubjectArgs],
    provider: pulumi.ProviderResource | None,
    role_opts: pulumi.ResourceOptions,
    binding_after: Sequence[pulumi.Resource] = (),
    binding_name: str | None = None,
) -> k8s.rbac.v1.Role:
    """Declare Role ``name`` and its RoleBinding (``binding_name``, default ``<name>-binding``) with the same
    ``metadata``; ``rules`` are PolicyRule fields in snake_case. The Role takes ``role_opts`` (the caller's child
    options: its namespace); the binding, on ``provider``, waits for ``binding_after`` and the Role. Returns the
    Role."""
    role_name = metadata["name"] if isinstance(metadata, Mapping) else metadata.name
    role = k8s.rbac.v1.Role(
        name,
        metadata=metadata,
        rules=[k8s.rbac.v1.PolicyRuleArgs(**rule) for rule in rules],
        opts=role_opts,
    )
    k8s.rbac.v1.RoleBinding(
        binding_name or f"{name}-binding",
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_API_GROUP, kind="Role", name=role_name),
        subjects=list(subjects),
        opts=child(parent, provider=provider, depends_on=[*binding_after, role]),
    )
    return role
