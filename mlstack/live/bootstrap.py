"""The self-managed Pulumi backend of an account and region: a hardened S3 state bucket and a KMS key.

The command first reads everything and plans its changes, then applies them. Creating what is missing is
always allowed; altering an existing bucket or key is a repair and needs ``fix=True``, so that a bucket
someone else configured is never changed behind their back and never weakened: every repair only adds
protection (a statement is added to a policy, a rule to a lifecycle, never removed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlstack.live.aws import Aws, Denied, LiveError, aws_call, error_code

MANAGED_BY_TAG = {"managed-by": "mlstack", "purpose": "pulumi-state"}
DEFAULT_ALIAS = "alias/mlstack-pulumi-secrets"
DEFAULT_NONCURRENT_DAYS = 90
TLS_ONLY_SID = "DenyInsecureTransport"
LIFECYCLE_RULE_ID = "mlstack-expire-noncurrent-state"
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def state_bucket_name(account_id: str, region: str) -> str:
    """The state bucket's name: bucket names are global, so account and region make it unique and guessable."""
    return f"mlstack-pulumi-state-{account_id}-{region}"


@dataclass(frozen=True)
class Change:
    """One planned change. ``repair`` changes alter something that exists and need --fix."""

    resource: str
    setting: str
    current: str
    desired: str
    repair: bool
    apply: Callable[[], None] = field(compare=False, repr=False)

    def describe(self) -> str:
        return f"{self.resource}: {self.setting} is {self.current}, wants {self.desired}"


@dataclass
class BootstrapResult:
    """What bootstrap found and did, and the values to give Pulumi."""

    account_id: str
    region: str
    bucket: str
    alias: str
    changes: list[Change]
    applied: bool

    @property
    def backend_url(self) -> str:
        return f"s3://{self.bucket}?region={self.region}&awssdk=v2"

    @property
    def login_command(self) -> str:
        return f"pulumi login '{self.backend_url}'"

    @property
    def secrets_provider(self) -> str:
        return f"awskms://{self.alias}?region={self.region}"

    @property
    def repairs(self) -> list[Change]:
        return [c for c in self.changes if c.repair]


class _KeyRef:
    """The key ARN, known only after the key is created; the bucket's encryption change reads it late."""

    arn: str = ""


def bootstrap(
    aws: Aws,
    *,
    fix: bool = False,
    bucket: str | None = None,
    alias: str = DEFAULT_ALIAS,
    noncurrent_days: int = DEFAULT_NONCURRENT_DAYS,
) -> BootstrapResult:
    """Plan the backend's changes and apply them; repairs of existing resources are applied only with ``fix``."""
    if not alias.startswith("alias/") or alias.startswith("alias/aws/"):
        raise LiveError(
            f"KMS alias '{alias}' must start with 'alias/' and not with the reserved 'alias/aws/'"
        )
    account_id = aws.account_id()
    bucket = bucket or state_bucket_name(account_id, aws.region)
    key = _KeyRef()
    changes = _plan_key(aws, alias, key) + _plan_bucket(aws, bucket, key, alias, noncurrent_days)
    result = BootstrapResult(account_id, aws.region, bucket, alias, changes, applied=False)
    if result.repairs and not fix:
        return result
    for change in changes:
        change.apply()
    result.applied = True
    return result


# --- KMS key ---------------------------------------------------------------------------------------------


def _find_alias(kms: Any, alias: str) -> str | None:
    with aws_call("kms:ListAliases"):
        for page in kms.get_paginator("list_aliases").paginate():
            for entry in page["Aliases"]:
                if entry["AliasName"] == alias:
                    return str(entry.get("TargetKeyId", "")) or None
    return None


def _plan_key(aws: Aws, alias: str, key: _KeyRef) -> list[Change]:
    kms = aws.client("kms")
    key_id = _find_alias(kms, alias)
    label = f"key {alias}"
    if key_id is None:

        def create() -> None:
            with aws_call("kms:CreateKey"):
                created = kms.create_key(
                    Description="mlstack: Pulumi secrets and state bucket encryption",
                    KeySpec="SYMMETRIC_DEFAULT",
                    KeyUsage="ENCRYPT_DECRYPT",
                    Tags=[{"TagKey": k, "TagValue": v} for k, v in MANAGED_BY_TAG.items()],
                )["KeyMetadata"]
            key.arn = created["Arn"]
            with aws_call("kms:EnableKeyRotation"):
                kms.enable_key_rotation(KeyId=created["KeyId"])
            with aws_call("kms:CreateAlias"):
                kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])

        return [Change(label, "key", "missing", "created with rotation on", repair=False, apply=create)]

    with aws_call("kms:DescribeKey"):
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    key.arn = metadata["Arn"]
    changes: list[Change] = []
    state = metadata["KeyState"]
    if state == "PendingDeletion":

        def restore() -> None:
            with aws_call("kms:CancelKeyDeletion"):
                kms.cancel_key_deletion(KeyId=key_id)
            with aws_call("kms:EnableKey"):
                kms.enable_key(KeyId=key_id)

        changes.append(Change(label, "state", state, "Enabled", repair=True, apply=restore))
    elif state == "Disabled":

        def enable() -> None:
            with aws_call("kms:EnableKey"):
                kms.enable_key(KeyId=key_id)

        changes.append(Change(label, "state", state, "Enabled", repair=True, apply=enable))
    elif state != "Enabled":
        raise LiveError(f"{label} ({key_id}) is {state}; bootstrap cannot repair that, pick another --alias")
    if state == "Enabled":
        with aws_call("kms:GetKeyRotationStatus"):
            rotation_on = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    else:
        rotation_on = False  # a key pending deletion refuses the read; enabling rotation again is harmless
    if not rotation_on:

        def rotate() -> None:
            with aws_call("kms:EnableKeyRotation"):
                kms.enable_key_rotation(KeyId=key_id)

        changes.append(Change(label, "rotation", "off", "on", repair=True, apply=rotate))
    return changes


# --- S3 bucket -------------------------------------------------------------------------------------------


def tls_only_statement(bucket: str) -> dict[str, Any]:
    """The statement that refuses every request not made over TLS."""
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def denies_insecure_transport(statements: list[dict[str, Any]]) -> bool:
    """Whether some statement denies every action when aws:SecureTransport is false."""
    for statement in statements:
        condition = statement.get("Condition", {}).get("Bool", {})
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if (
            statement.get("Effect") == "Deny"
            and str(condition.get("aws:SecureTransport", "")).lower() == "false"
            and any(a in ("s3:*", "*") for a in actions)
        ):
            return True
    return False


def policy_statements(document: str | None) -> list[dict[str, Any]]:
    if not document:
        return []
    statements = json.loads(document).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _read(s3: Any, permission: str, call: str, bucket: str, missing: str) -> dict[str, Any] | None:
    """One bucket read; ``missing`` is the error code that means the setting is absent (None then)."""
    try:
        with aws_call(permission):
            return dict(getattr(s3, call)(Bucket=bucket))
    except ClientError as exc:
        if error_code(exc) == missing:
            return None
        raise


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        with aws_call("s3:ListBucket"):
            s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket"):
            return False
        if code == "301":
            raise LiveError(
                f"bucket {bucket} exists in another region; run bootstrap in that region or pass --bucket"
            ) from exc
        raise


def _plan_bucket(aws: Aws, bucket: str, key: _KeyRef, alias: str, noncurrent_days: int) -> list[Change]:
    s3 = aws.client("s3")
    label = f"bucket {bucket}"
    try:
        exists = _bucket_exists(s3, bucket)
    except Denied as exc:  # HeadBucket answers 403 for a denied call and for another account's bucket alike
        raise LiveError(
            f"cannot read bucket {bucket}: s3:ListBucket denied, or the name belongs to another account; "
            "grant s3:ListBucket or pass --bucket with another name"
        ) from exc
    changes: list[Change] = []
    if not exists:

        def create() -> None:
            arguments: dict[str, Any] = {"Bucket": bucket}
            if aws.region != "us-east-1":  # us-east-1 refuses an explicit location constraint
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
            with aws_call("s3:CreateBucket"):
                s3.create_bucket(**arguments)
                s3.get_waiter("bucket_exists").wait(
                    Bucket=bucket, WaiterConfig={"Delay": 2, "MaxAttempts": 30}
                )
            with aws_call("s3:PutBucketTagging"):
                s3.put_bucket_tagging(
                    Bucket=bucket,
                    Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in MANAGED_BY_TAG.items()]},
                )

        changes.append(Change(label, "bucket", "missing", "created", repair=False, apply=create))

    repair = exists

    # Ownership first: with ACLs disabled nothing later can be granted through an ACL.
    ownership = (
        _read(
            s3,
            "s3:GetBucketOwnershipControls",
            "get_bucket_ownership_controls",
            bucket,
            "OwnershipControlsNotFoundError",
        )
        if exists
        else None
    )
    current_ownership = (
        (ownership or {}).get("OwnershipControls", {}).get("Rules", [{}])[0].get("ObjectOwnership", "none")
    )
    if current_ownership != "BucketOwnerEnforced":

        def own() -> None:
            with aws_call("s3:PutBucketOwnershipControls"):
                s3.put_bucket_ownership_controls(
                    Bucket=bucket,
                    OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                )

        changes.append(
            Change(label, "object ownership", current_ownership, "BucketOwnerEnforced", repair, own)
        )

    block = (
        _read(
            s3,
            "s3:GetBucketPublicAccessBlock",
            "get_public_access_block",
            bucket,
            "NoSuchPublicAccessBlockConfiguration",
        )
        if exists
        else None
    )
    flags = (block or {}).get("PublicAccessBlockConfiguration", {})
    off = [name for name in PUBLIC_ACCESS_FLAGS if not flags.get(name, False)]
    if off:

        def block_public() -> None:
            with aws_call("s3:PutBucketPublicAccessBlock"):
                s3.put_public_access_block(
                    Bucket=bucket,
                    PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
                )

        changes.append(
            Change(
                label, "public access block", f"off: {', '.join(off)}", "all four on", repair, block_public
            )
        )

    versioning = _read(s3, "s3:GetBucketVersioning", "get_bucket_versioning", bucket, "") if exists else None
    current_versioning = (versioning or {}).get("Status", "off")
    if current_versioning != "Enabled":

        def version() -> None:
            with aws_call("s3:PutBucketVersioning"):
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

        changes.append(Change(label, "versioning", current_versioning, "Enabled", repair, version))

    encryption = (
        _read(
            s3,
            "s3:GetEncryptionConfiguration",
            "get_bucket_encryption",
            bucket,
            "ServerSideEncryptionConfigurationNotFoundError",
        )
        if exists
        else None
    )
    rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithm = (
        rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "none")
        if rules
        else "none"
    )
    # Any KMS key is as strong as ours; switching keys would only churn, so only SSE-S3 or none is repaired.
    if algorithm not in KMS_ALGORITHMS:

        def encrypt() -> None:
            with aws_call("s3:PutEncryptionConfiguration"):
                s3.put_bucket_encryption(
                    Bucket=bucket,
                    ServerSideEncryptionConfiguration={
                        "Rules": [
                            {
                                "ApplyServerSideEncryptionByDefault": {
                                    "SSEAlgorithm": "aws:kms",
                                    "KMSMasterKeyID": key.arn,
                                },
                                "BucketKeyEnabled": True,
                            }
                        ]
                    },
                )

        changes.append(
            Change(label, "default encryption", algorithm, f"aws:kms with {alias}", repair, encrypt)
        )

    policy = (
        _read(s3, "s3:GetBucketPolicy", "get_bucket_policy", bucket, "NoSuchBucketPolicy") if exists else None
    )
    statements = policy_statements((policy or {}).get("Policy"))
    if not denies_insecure_transport(statements):

        def tls_only() -> None:
            document = {"Version": "2012-10-17", "Statement": [*statements, tls_only_statement(bucket)]}
            with aws_call("s3:PutBucketPolicy"):
                s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))

        current = f"{len(statements)} statements, none TLS-only" if statements else "none"
        changes.append(Change(label, "policy", current, "denies requests without TLS", repair, tls_only))

    lifecycle = (
        _read(
            s3,
            "s3:GetLifecycleConfiguration",
            "get_bucket_lifecycle_configuration",
            bucket,
            "NoSuchLifecycleConfiguration",
        )
        if exists
        else None
    )
    lifecycle_rules = list((lifecycle or {}).get("Rules", []))
    expiring = [
        r for r in lifecycle_rules if r.get("Status") == "Enabled" and "NoncurrentVersionExpiration" in r
    ]
    if not expiring:

        def expire() -> None:
            rule = {
                "ID": LIFECYCLE_RULE_ID,
                "Status": "Enabled",
                "Filter": {},
                "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
            with aws_call("s3:PutLifecycleConfiguration"):
                s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket, LifecycleConfiguration={"Rules": [*lifecycle_rules, rule]}
                )

        changes.append(
            Change(
                label,
                "lifecycle",
                "no rule expires noncurrent versions",
                f"noncurrent versions expire after {noncurrent_days} days",
                repair,
                expire,
            )
        )
    return changes
