"""The self-managed Pulumi backend of an account and region: a hardened S3 state bucket and a KMS key.

The command first reads everything and plans its changes, then applies them. Creating what is missing is
always allowed; altering an existing bucket or key is a repair and needs ``fix=True``, so that a bucket
someone else configured is never changed behind their back and never weakened: every repair only adds
protection (a statement is added to a policy, never removed) and never deletes data. A bucket or key that
bootstrap itself created (it carries bootstrap's tags) is finished, not repaired, so a run that failed half-way
can simply be run again. Every S3 call names the expected bucket owner, so a bucket of the same name in
another account is refused, never used or repaired.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlstack.live.aws import Aws, Denied, LiveError, aws_call, error_code

MANAGED_BY_TAG = {"managed-by": "mlstack", "purpose": "pulumi-state"}
# On the bucket from CreateBucket until the run's last change: a bucket carrying it is one a run stopped
# half-way through creating, which the next run finishes instead of calling its settings repairs.
IN_PROGRESS_TAG = {"mlstack-bootstrap": "in-progress"}
# On the key: the alias it is created for, so a re-run finds the key if CreateAlias failed.
ALIAS_TAG = "mlstack-alias"
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
    changes = _plan_key(aws, alias, key) + _plan_bucket(aws, bucket, key, alias, noncurrent_days, account_id)
    result = BootstrapResult(account_id, aws.region, bucket, alias, changes, applied=False)
    for change in changes:
        # Creating what is missing is always allowed; repairs wait for --fix.
        if fix or not change.repair:
            change.apply()
    result.applied = fix or not result.repairs
    return result


# --- KMS key ---------------------------------------------------------------------------------------------


def _find_alias(kms: Any, alias: str) -> str | None:
    with aws_call("kms:ListAliases"):
        for page in kms.get_paginator("list_aliases").paginate():
            for entry in page["Aliases"]:
                if entry["AliasName"] == alias:
                    return str(entry.get("TargetKeyId", "")) or None
    return None


def _own_unaliased_key(aws: Aws, alias: str) -> str | None:
    """The ARN of a key bootstrap created for ``alias`` (by its tags) that is usable and has no alias yet."""
    tags = {**MANAGED_BY_TAG, ALIAS_TAG: alias}
    paginator = aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
    with aws_call("tag:GetResources"):
        arns = [
            m["ResourceARN"]
            for page in paginator.paginate(
                TagFilters=[{"Key": k, "Values": [v]} for k, v in tags.items()],
                ResourceTypeFilters=["kms:key"],
            )
            for m in page["ResourceTagMappingList"]
        ]
    kms = aws.client("kms")
    for arn in sorted(arns):
        try:
            with aws_call("kms:DescribeKey"):
                state = kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"]
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":  # a stale Tagging API entry
                continue
            raise
        if state == "Enabled":
            return arn
    return None


def _plan_key(aws: Aws, alias: str, key: _KeyRef) -> list[Change]:
    kms = aws.client("kms")
    key_id = _find_alias(kms, alias)
    label = f"key {alias}"
    if key_id is None:
        orphan = _own_unaliased_key(aws, alias)
        if orphan is not None:
            # A previous run created the key but failed before CreateAlias: finish it instead of a second key.
            key.arn = orphan

            def name_it() -> None:
                with aws_call("kms:CreateAlias"):
                    kms.create_alias(AliasName=alias, TargetKeyId=orphan)

            return [Change(label, "alias", "missing", f"{alias} -> {orphan}", repair=False, apply=name_it)]

        def create() -> None:
            with aws_call("kms:CreateKey"):
                created = kms.create_key(
                    Description="mlstack: Pulumi secrets and state bucket encryption",
                    KeySpec="SYMMETRIC_DEFAULT",
                    KeyUsage="ENCRYPT_DECRYPT",
                    Tags=[
                        {"TagKey": k, "TagValue": v} for k, v in {**MANAGED_BY_TAG, ALIAS_TAG: alias}.items()
                    ],
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


def tls_only_statement(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """The statement that refuses every request not made over TLS."""
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
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


def _read(
    s3: Any, permission: str, call: str, bucket: str, missing: str, owner: str
) -> dict[str, Any] | None:
    """One bucket read; ``missing`` is the error code that means the setting is absent (None then)."""
    try:
        with aws_call(permission):
            return dict(getattr(s3, call)(Bucket=bucket, ExpectedBucketOwner=owner))
    except ClientError as exc:
        if error_code(exc) == missing:
            return None
        raise


def _bucket_region(s3: Any, bucket: str, owner: str) -> str | None:
    """The region of ``bucket`` when it exists in account ``owner``, else None.

    HeadBucket with ExpectedBucketOwner answers 403 for a bucket of another account (S3 API, HeadBucket), and
    botocore's region redirector retries a bucket of another region transparently, so the answer's
    BucketRegion (x-amz-bucket-region) is what tells a bucket elsewhere apart.
    """
    try:
        with aws_call("s3:ListBucket"):
            answer = s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket"):
            return None
        raise
    return str(
        answer.get("BucketRegion") or answer["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region", "")
    )


def _plan_bucket(
    aws: Aws, bucket: str, key: _KeyRef, alias: str, noncurrent_days: int, owner: str
) -> list[Change]:
    s3 = aws.client("s3")
    label = f"bucket {bucket}"
    try:
        region = _bucket_region(s3, bucket, owner)
    except Denied as exc:  # HeadBucket answers 403 for a denied call and for another account's bucket alike
        raise LiveError(
            f"cannot use bucket {bucket}: s3:ListBucket denied, or the name belongs to another account; "
            "grant s3:ListBucket or pass --bucket with another name",
            incomplete=True,
        ) from exc
    exists = region is not None
    if region and region != aws.region:
        raise LiveError(
            f"bucket {bucket} exists in {region}, not {aws.region}; run bootstrap with --region {region}, or "
            "pass --bucket with another name"
        )
    ours = exists and _unfinished(s3, bucket, owner)
    changes: list[Change] = []
    if not exists:

        def create() -> None:
            arguments: dict[str, Any] = {"Bucket": bucket}
            if aws.region != "us-east-1":  # us-east-1 refuses an explicit location constraint
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
            with aws_call("s3:CreateBucket"):
                s3.create_bucket(**arguments)
                s3.get_waiter("bucket_exists").wait(
                    Bucket=bucket, ExpectedBucketOwner=owner, WaiterConfig={"Delay": 2, "MaxAttempts": 30}
                )
            with aws_call("s3:PutBucketTagging"):
                s3.put_bucket_tagging(
                    Bucket=bucket,
                    ExpectedBucketOwner=owner,
                    Tagging={
                        "TagSet": [
                            {"Key": k, "Value": v} for k, v in {**MANAGED_BY_TAG, **IN_PROGRESS_TAG}.items()
                        ]
                    },
                )

        changes.append(Change(label, "bucket", "missing", "created", repair=False, apply=create))

    # A bucket a run stopped half-way through creating is finished, not repaired.
    repair = exists and not ours

    # Ownership first: with ACLs disabled nothing later can be granted through an ACL.
    ownership = (
        _read(
            s3,
            "s3:GetBucketOwnershipControls",
            "get_bucket_ownership_controls",
            bucket,
            "OwnershipControlsNotFoundError",
            owner,
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
                    ExpectedBucketOwner=owner,
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
            owner,
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
                    ExpectedBucketOwner=owner,
                    PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
                )

        changes.append(
            Change(
                label, "public access block", f"off: {', '.join(off)}", "all four on", repair, block_public
            )
        )

    versioning = (
        _read(
            s3,
            "s3:GetBucketVersioning",
            "get_bucket_versioning",
            bucket,
            "",
            owner,
        )
        if exists
        else None
    )
    current_versioning = (versioning or {}).get("Status", "off")
    if current_versioning != "Enabled":

        def version() -> None:
            with aws_call("s3:PutBucketVersioning"):
                s3.put_bucket_versioning(
                    Bucket=bucket, ExpectedBucketOwner=owner, VersioningConfiguration={"Status": "Enabled"}
                )

        changes.append(Change(label, "versioning", current_versioning, "Enabled", repair, version))

    encryption = (
        _read(
            s3,
            "s3:GetEncryptionConfiguration",
            "get_bucket_encryption",
            bucket,
            "ServerSideEncryptionConfigurationNotFoundError",
            owner,
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
                    ExpectedBucketOwner=owner,
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
        _read(
            s3,
            "s3:GetBucketPolicy",
            "get_bucket_policy",
            bucket,
            "NoSuchBucketPolicy",
            owner,
        )
        if exists
        else None
    )
    statements = policy_statements((policy or {}).get("Policy"))
    if not denies_insecure_transport(statements):
        # The existing document's Version and Id are kept: Version decides how ${...} policy variables in the
        # existing statements are read (IAM policy grammar), so the repair only appends a statement.
        original = json.loads((policy or {}).get("Policy") or "{}")

        def tls_only() -> None:
            document = {
                "Version": "2012-10-17",
                **original,
                "Statement": [*statements, tls_only_statement(bucket, aws.partition)],
            }
            with aws_call("s3:PutBucketPolicy"):
                s3.put_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner, Policy=json.dumps(document))

        current = f"{len(statements)} statements, none TLS-only" if statements else "none"
        changes.append(Change(label, "policy", current, "denies requests without TLS", repair, tls_only))

    lifecycle = (
        _read(
            s3,
            "s3:GetLifecycleConfiguration",
            "get_bucket_lifecycle_configuration",
            bucket,
            "NoSuchLifecycleConfiguration",
            owner,
        )
        if exists
        else None
    )
    lifecycle_rules = list((lifecycle or {}).get("Rules", []))
    expiring = [
        r
        for r in lifecycle_rules
        if r.get("Status") == "Enabled" and "NoncurrentVersionExpiration" in r and _whole_bucket(r)
    ]
    # Expiring noncurrent versions deletes them for good (S3 API, NoncurrentVersionExpiration), so it is never
    # a "repair": it is set only on a bucket bootstrap creates or created, never on someone else's bucket.
    if not expiring and (not exists or ours):
        # PutBucketLifecycleConfiguration replaces the whole configuration: keep every other rule (a rule with
        # our ID is replaced, S3 refuses duplicate IDs) and the TransitionDefaultMinimumObjectSize setting.
        kept = [r for r in lifecycle_rules if r.get("ID") != LIFECYCLE_RULE_ID]
        size = (lifecycle or {}).get("TransitionDefaultMinimumObjectSize")

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
                    Bucket=bucket,
                    ExpectedBucketOwner=owner,
                    LifecycleConfiguration={"Rules": [*kept, rule]},
                    **({"TransitionDefaultMinimumObjectSize": size} if size else {}),
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
    if not exists or ours:

        def finished() -> None:
            with aws_call("s3:PutBucketTagging"):
                s3.put_bucket_tagging(
                    Bucket=bucket,
                    ExpectedBucketOwner=owner,
                    Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in MANAGED_BY_TAG.items()]},
                )

        changes.append(Change(label, "bootstrap", "in progress", "complete", repair=False, apply=finished))
    return changes


def _whole_bucket(rule: dict[str, Any]) -> bool:
    """Whether a lifecycle rule applies to every object: no prefix, tag or size filter."""
    scope = rule.get("Filter", {"Prefix": rule.get("Prefix", "")})
    return not any(value not in ("", None) for value in scope.values())


def _unfinished(s3: Any, bucket: str, owner: str) -> bool:
    """Whether a bootstrap run created ``bucket`` and stopped before its last change (the in-progress tag)."""
    tagging = _read(s3, "s3:GetBucketTagging", "get_bucket_tagging", bucket, "NoSuchTagSet", owner)
    tags = {t["Key"]: t["Value"] for t in (tagging or {}).get("TagSet", [])}
    return all(tags.get(k) == v for k, v in {**MANAGED_BY_TAG, **IN_PROGRESS_TAG}.items())
