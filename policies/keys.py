"""KMS rules: every key rotates, outlives a mistaken deletion, trusts no one outside the account, has an alias."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    as_list,
    depends_on,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
    statements,
)

KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
HARDENED_DELETION_WINDOW_DAYS = 30


@resource_rule(
    "MLS-KMS-001",
    types=[KMS_KEY],
    title="KMS keys rotate their key material",
    why="Yearly rotation limits how much data one key version protects and is required by most compliance "
    "baselines.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["KMS.4"]},
    remediation="Set enable_key_rotation=True on the key.",
)
def key_rotation(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("enableKeyRotation") is not True:
        yield "enableKeyRotation is not true"


@resource_rule(
    "MLS-KMS-002",
    types=[KMS_KEY],
    title="KMS keys in staging and prod wait 30 days before deletion",
    why="Deleting a key destroys every object encrypted with it; the longest waiting period gives time to "
    "notice and cancel a mistaken deletion.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["KMS.3"]},
    remediation="Set deletion_window_in_days=30 for hardened tiers (components/keys.py does it from env.tier).",
)
def key_deletion_window(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not stack_context().hardened:
        return
    window = args.props.get("deletionWindowInDays")
    if window is None or float(window) < HARDENED_DELETION_WINDOW_DAYS:
        yield f"deletionWindowInDays is {window}, below {HARDENED_DELETION_WINDOW_DAYS}"


def _is_open_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in as_list(value) for value in principal.values())
    return False


@resource_rule(
    "MLS-KMS-003",
    types=[KMS_KEY],
    title="KMS key policies allow no anonymous or cross-account principal without a condition",
    why="A key policy is the only gate on a key; a '*' principal without a condition lets any AWS account use "
    "it to decrypt the platform's data.",
    severity=Severity.CRITICAL,
    remediation="Grant the account root and named service principals only; when a service needs '*', scope it "
    "with a condition such as kms:CallerAccount or aws:SourceAccount.",
)
def key_policy_no_open_principal(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    account = stack_context().account_id
    for index, statement in enumerate(statements(args.props.get("policy"))):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        sid = statement.get("Sid", f"#{index}")
        if _is_open_principal(principal) and not statement.get("Condition"):
            yield f"statement {sid} allows principal '*' without a condition"
        aws_principals = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
        foreign = [p for p in aws_principals if account and p != "*" and f":{account}:" not in str(p)]
        if foreign:
            yield f"statement {sid} allows principals of another account: {foreign}"


@stack_rule(
    "MLS-KMS-004",
    subjects=[KMS_KEY, KMS_ALIAS],
    title="Every KMS key has an alias",
    why="Operators and key policies refer to keys by alias (alias/mlstack/ENV/PURPOSE); a key without one is "
    "hard to audit and easy to orphan.",
    severity=Severity.LOW,
    remediation="Create an aws.kms.Alias named alias/mlstack/<env>/<purpose> whose target_key_id is the key.",
)
def key_has_alias(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    aliases = resources_of(args, KMS_ALIAS)
    for key in resources_of(args, KMS_KEY):
        if not any(depends_on(alias, "targetKeyId", key) for alias in aliases):
            yield f"key {key.name} has no alias", key.urn


STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_CSI = "ebs.csi.aws.com"


@stack_rule(
    "MLS-KMS-005",
    subjects=[STORAGE_CLASS, KMS_KEY],
    title="EBS storage classes encrypt with a platform KMS key",
    why="Without kmsKeyId the EBS CSI driver's volumes are encrypted with the AWS managed aws/ebs key, whose "
    "key policy AWS owns: every principal of the account may use it through EBS, and the platform can change "
    "neither its policy nor its state per environment; snapshots encrypted with it cannot be shared with "
    "another account. Prometheus, Qdrant and notebook volumes hold the platform's data and belong under its own "
    "key, whose policy it writes.",
    severity=Severity.HIGH,
    remediation="Set parameters.kmsKeyId of every ebs.csi.aws.com StorageClass to a KMS key of the stack "
    "(components/cluster.py: ClusterArgs.volume_key_arn, the data key), whose policy lets EC2 use it on the "
    "driver's behalf, and grant the driver's role its use.",
)
def storage_class_platform_key(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    keys = resources_of(args, KMS_KEY)
    arns = {str(key.props.get("arn")) for key in keys if key.props.get("arn")}
    for storage_class in resources_of(args, STORAGE_CLASS):
        if storage_class.props.get("provisioner") != EBS_CSI:
            continue
        key_id = str((storage_class.props.get("parameters") or {}).get("kmsKeyId") or "")
        if not key_id:
            yield f"StorageClass {storage_class.name} sets no parameters.kmsKeyId", storage_class.urn
        elif key_id not in arns and not any(depends_on(storage_class, "parameters", key) for key in keys):
            yield (
                f"StorageClass {storage_class.name} encrypts with {key_id}, which is no KMS key of this stack",
                storage_class.urn,
            )
