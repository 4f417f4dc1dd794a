"""Resource options for children of a component. The caller's options are never forwarded to children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.environment import Environment


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Fresh options for a child: parented to the component, nothing inherited from the caller but the parent."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def stateful(
    parent: pulumi.Resource,
    env: Environment,
    *,
    depends_on: Sequence[pulumi.Resource] | None = None,
    **kwargs: Any,
) -> pulumi.ResourceOptions:
    """Options for a resource that holds data: protected and retained on delete where the tier demands it."""
    return pulumi.ResourceOptions(
        parent=parent,
        protect=env.protect_stateful,
        retain_on_delete=env.protect_stateful,
        depends_on=list(depends_on) if depends_on else None,
        **kwargs,
    )


def provider_in_region(
    parent: pulumi.Resource, logical_name: str, env: Environment, region: str
) -> aws.Provider:
    """An AWS provider for ``region`` (a replica's region), a child of ``parent``.

    It is pinned to the environment's account and carries the same default tags as the platform's provider,
    so that what it creates is tagged and placed like everything else.
    """
    return aws.Provider(
        logical_name,
        region=region,
        allowed_account_ids=[env.account_id],
        default_tags=aws.ProviderDefaultTagsArgs(tags=env.tags),
        opts=child(parent),
    )
