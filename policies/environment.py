"""Environment-wide rules: the AWS provider's pinning and required tags, allowed regions, and tier protection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import (
    Severity,
    as_list,
    json_value,
    resource_rule,
    stack_context,
)

AWS_PROVIDER = "pulumi:providers:aws"
REQUIRED_TAGS = ("environment", "owner", "cost-center", "managed-by")
DEFAULT_ALLOWED_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"]

# Resources that hold data or identity that cannot be recreated: losing one to a stray `pulumi destroy` or a
# replace is an incident. `stateful()` in components/options.py marks exactly these.
STATEFUL_TYPES = (
    "aws:kms/key:Key",
    "aws:eks/cluster:Cluster",
    "aws:s3/bucket:Bucket",
    "aws:ecr/repository:Repository",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
    "aws:secretsmanager/secret:Secret",
    # Control-plane and flow logs are audit evidence.
    "aws:cloudwatch/logGroup:LogGroup",
)


def _default_tags(props: Mapping[str, Any]) -> dict[str, Any]:
    default_tags = json_value(props.get("defaultTags")) or {}
    tags = default_tags.get("tags") if isinstance(default_tags, Mapping) else None
    return dict(tags) if isinstance(tags, Mapping) else {}


@resource_rule(
    "MLS-ENV-001",
    types=[AWS_PROVIDER],
    title="The AWS provider sets the required tags as default tags",
    why="Cost allocation, ownership and clean-up rely on environment, owner, cost-center and managed-by being "
    "on every resource; default tags on the one provider put them there without relying on each resource.",
    severity=Severity.MEDIUM,
    mlstack_only=True,
    remediation="Create the provider in components/platform.py with default_tags=aws.ProviderDefaultTagsArgs("
    "tags=env.tags); Environment.from_spec fills the four required keys.",
)
def provider_default_tags(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    tags = _default_tags(args.props)
    missing = [key for key in REQUIRED_TAGS if not str(tags.get(key) or "").strip()]
    if missing:
        yield f"default tags lack {', '.join(missing)}"


@resource_rule(
    "MLS-ENV-002",
    types=[AWS_PROVIDER],
    title="The AWS provider targets an allowed region",
    why="Data residency and the permission boundary's region fence assume the platform runs only in regions "
    "the organisation approved.",
    severity=Severity.HIGH,
    remediation="Set the stack's region (and aws:region) to one of the allowed regions, or add the region to "
    "the policy's allowedRegions config after approval.",
    config={
        "allowedRegions": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_ALLOWED_REGIONS,
            "description": "Regions an environment may run in.",
        }
    },
)
def provider_region_allowed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    region = args.props.get("region")
    allowed = list(config.get("allowedRegions") or [])
    if region not in allowed:
        yield f"region {region!r} is not in the allowed regions {allowed}"


@resource_rule(
    "MLS-ENV-003",
    types=[AWS_PROVIDER],
    title="The AWS provider is pinned to the environment's account",
    why="allowedAccountIds stops a deployment with the wrong credentials from creating prod resources in the "
    "dev account, or the reverse.",
    severity=Severity.HIGH,
    remediation="Pass allowed_account_ids=[env.account_id] to the provider.",
)
def provider_account_pinned(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = [str(a) for a in as_list(json_value(args.props.get("allowedAccountIds")))]
    expected = stack_context().account_id
    if not allowed:
        yield "allowedAccountIds is not set"
    elif expected and allowed != [expected]:
        yield f"allowedAccountIds is {allowed}, expected exactly ['{expected}']"


@resource_rule(
    "MLS-ENV-004",
    types=["aws:*"],
    title="AWS resources use the platform's provider, never the default one",
    why="Only the platform's provider carries the default tags and the account pin; a resource on the default "
    "provider is untagged and may land in whichever account the credentials point at.",
    severity=Severity.HIGH,
    mlstack_only=True,
    remediation="Create the resource under a component that received providers={'aws': ...} from the Platform, "
    "and never pass a provider-less ResourceOptions to an AWS resource.",
)
def uses_platform_provider(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    provider = args.provider
    if provider is None or provider.name.startswith("default"):
        name = provider.name if provider is not None else "none"
        yield f"uses provider '{name}', not the platform's AWS provider"


@resource_rule(
    "MLS-ENV-005",
    types=["aws:*"],
    title="Resources do not override the required tags",
    why="Required tags come from one place, the provider's default tags; a resource-level value silently "
    "relabels cost and ownership.",
    severity=Severity.MEDIUM,
    mlstack_only=True,
    remediation="Remove environment, owner, cost-center and managed-by from the resource's tags; change them in "
    "the stack file instead.",
)
def no_required_tag_override(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    tags = args.props.get("tags")
    if not isinstance(tags, Mapping):
        return
    overridden = sorted(key for key in REQUIRED_TAGS if key in tags)
    if overridden:
        yield f"sets required tags {overridden} itself"


@resource_rule(
    "MLS-ENV-006",
    types=STATEFUL_TYPES,
    title="Stateful resources are protected in staging and prod",
    why="Keys, buckets, repositories, databases, audit log groups and the cluster (etcd) hold data that a replace "
    "or destroy loses for good; protect makes the engine refuse to delete them. (CrossGuard does not expose "
    "retainOnDelete; the components set it together with protect through components.options.stateful, except "
    "on the cluster, which is protected but not retained: a retained cluster would keep billing after a "
    "deliberate destroy.)",
    severity=Severity.CRITICAL,
    remediation="Create the resource with opts=stateful(self, env) from components/options.py.",
)
def stateful_protected(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and not args.opts.protect:
        yield f"is not protected in the {stack_context().tier} tier"
