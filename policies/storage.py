"""S3 rules. pulumi-aws v7 splits a bucket's settings into sibling resources, so most rules are relations:
every Bucket must have its encryption, public-access block, TLS-only policy, versioning and ownership attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from mlstack.guardrail_exceptions import sse_s3_allowed
from policies.framework import (
    Severity,
    as_list,
    depends_on,
    resource_rule,
    resources_of,
    stack_rule,
    statements,
)

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _attached(args: StackValidationArgs, kind: str, bucket: PolicyResource) -> list[PolicyResource]:
    """The ``kind`` resources configuring ``bucket``: by the engine's property dependency, else by name."""
    name = bucket.props.get("bucket")
    return [
        r
        for r in resources_of(args, kind)
        if depends_on(r, "bucket", bucket) or (name is not None and r.props.get("bucket") == name)
    ]


def _log_targets(args: StackValidationArgs) -> set[str]:
    return {str(r.props.get("targetBucket")) for r in resources_of(args, LOGGING)}


def _each_bucket(args: StackValidationArgs, kind: str, problem: Any) -> Iterator[tuple[str, str | None]]:
    for bucket in resources_of(args, BUCKET):
        attached = _attached(args, kind, bucket)
        message = problem(bucket, attached)
        if message:
            yield f"bucket {bucket.props.get('bucket', bucket.name)}: {message}", bucket.urn


@stack_rule(
    "MLS-S3-001",
    subjects=[BUCKET, ENCRYPTION],
    title="Every bucket is encrypted with a KMS key",
    why="SSE-KMS puts each read behind the key policy and CloudTrail; datasets and models are the platform's "
    "most sensitive data. Access-log buckets are the one exception: S3 server access logging requires SSE-S3.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["S3.4"]},
    remediation="Attach a BucketServerSideEncryptionConfiguration with sse_algorithm aws:kms and the data key "
    "(the storage component's Bucket does this).",
)
def bucket_encrypted(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    log_targets = _log_targets(args)

    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        if not attached:
            return "has no server-side encryption configuration"
        for configuration in attached:
            for rule in as_list(configuration.props.get("rules")):
                default = rule.get("applyServerSideEncryptionByDefault") or {}
                algorithm = default.get("sseAlgorithm")
                if algorithm in KMS_ALGORITHMS and default.get("kmsMasterKeyId"):
                    return None
                if sse_s3_allowed(algorithm, bucket.props.get("bucket") in log_targets):
                    return None
        return "is not encrypted with a KMS key (sse_algorithm aws:kms and kms_master_key_id)"

    yield from _each_bucket(args, ENCRYPTION, problem)


@stack_rule(
    "MLS-S3-002",
    subjects=[BUCKET, PUBLIC_ACCESS_BLOCK],
    title="Every bucket blocks all public access",
    why="One public ACL or policy on a dataset bucket is a data breach; the four block flags make that "
    "impossible whatever a later policy says.",
    severity=Severity.CRITICAL,
    controls={"aws-fsbp": ["S3.8"]},
    remediation="Attach a BucketPublicAccessBlock with all four flags true.",
)
def bucket_public_access_blocked(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        if not attached:
            return "has no public access block"
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not any(a.props.get(flag) is True for a in attached)]
        return f"public access block leaves {off} off" if off else None

    yield from _each_bucket(args, PUBLIC_ACCESS_BLOCK, problem)


def _denies_insecure_transport(policy: PolicyResource) -> bool:
    for statement in statements(policy.props.get("policy")):
        condition = statement.get("Condition") or {}
        secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
        if statement.get("Effect") == "Deny" and str(secure).lower() == "false":
            return True
    return False


@stack_rule(
    "MLS-S3-003",
    subjects=[BUCKET, BUCKET_POLICY],
    title="Every bucket refuses requests without TLS",
    why="Encryption at rest does not protect data on the wire; a Deny on aws:SecureTransport=false makes "
    "plain HTTP requests fail for every principal.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["S3.5"]},
    remediation="Attach a BucketPolicy with a Deny statement on s3:* when aws:SecureTransport is false.",
)
def bucket_tls_only(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        if not attached:
            return "has no bucket policy"
        return (
            None if any(_denies_insecure_transport(p) for p in attached) else "policy does not deny non-TLS"
        )

    yield from _each_bucket(args, BUCKET_POLICY, problem)


@stack_rule(
    "MLS-S3-004",
    subjects=[BUCKET, VERSIONING],
    title="Every bucket keeps object versions",
    why="Versioning turns an overwrite or delete of a dataset or model into a recoverable event and is "
    "required for replication.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["S3.14"]},
    remediation="Attach a BucketVersioning with versioning_configuration.status Enabled.",
)
def bucket_versioned(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        enabled = any(
            (a.props.get("versioningConfiguration") or {}).get("status") == "Enabled" for a in attached
        )
        return None if enabled else "versioning is not Enabled"

    yield from _each_bucket(args, VERSIONING, problem)


@stack_rule(
    "MLS-S3-005",
    subjects=[BUCKET, OWNERSHIP],
    title="Every bucket disables ACLs (BucketOwnerEnforced)",
    why="With ACLs disabled, access is decided by policies alone, which is what the other rules check; an "
    "object ACL could otherwise grant access nobody reviewed.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["S3.12"]},
    remediation="Attach BucketOwnershipControls with object_ownership BucketOwnerEnforced.",
)
def bucket_owner_enforced(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        enforced = any(
            (a.props.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced" for a in attached
        )
        return None if enforced else "ACLs are not disabled (object ownership is not BucketOwnerEnforced)"

    yield from _each_bucket(args, OWNERSHIP, problem)


@stack_rule(
    "MLS-S3-006",
    subjects=[BUCKET, LOGGING],
    title="Data buckets log access to the access-log bucket",
    why="Server access logs are the record of who read which dataset or model, needed for audits and "
    "incident response.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["S3.9"]},
    remediation="Attach a BucketLogging whose target is the environment's access-log bucket.",
)
def bucket_access_logged(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    log_targets = _log_targets(args)

    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        if bucket.props.get("bucket") in log_targets:
            return None  # a log bucket does not log into itself
        return None if attached else "has no access logging"

    yield from _each_bucket(args, LOGGING, problem)


@stack_rule(
    "MLS-S3-007",
    subjects=[BUCKET, LIFECYCLE],
    title="Every bucket expires noncurrent versions",
    why="Versioned buckets keep every overwritten object forever otherwise; model checkpoints make that the "
    "largest line on the bill.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["S3.10"]},
    remediation="Attach a BucketLifecycleConfiguration with an enabled noncurrent_version_expiration rule.",
)
def bucket_expires_old_versions(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    def problem(bucket: PolicyResource, attached: list[PolicyResource]) -> str | None:
        expiring = any(
            rule.get("status") == "Enabled" and rule.get("noncurrentVersionExpiration")
            for a in attached
            for rule in as_list(a.props.get("rules"))
        )
        return None if expiring else "no enabled rule expires noncurrent versions"

    yield from _each_bucket(args, LIFECYCLE, problem)


@resource_rule(
    "MLS-S3-008",
    types=[BUCKET],
    title="Buckets cannot be force-destroyed",
    why="force_destroy deletes every object with the bucket on `pulumi destroy` or a replace; data buckets must "
    "be emptied on purpose.",
    severity=Severity.HIGH,
    remediation="Leave force_destroy unset (false).",
)
def bucket_not_force_destroyed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("forceDestroy") is True:
        yield "forceDestroy is true"


@resource_rule(
    "MLS-S3-009",
    types=[BUCKET_POLICY],
    title="Bucket policies grant nothing to anonymous principals",
    why="An Allow to Principal '*' without a condition makes the bucket public if the public access block is "
    "ever lifted.",
    severity=Severity.CRITICAL,
    controls={"aws-fsbp": ["S3.2", "S3.3"]},
    remediation="Grant to named roles (grant_read/grant_write) or service principals; keep '*' for Deny only.",
)
def bucket_policy_not_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for index, statement in enumerate(statements(args.props.get("policy"))):
        principal = statement.get("Principal")
        anonymous = principal == "*" or (
            isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))
        )
        if statement.get("Effect") == "Allow" and anonymous and not statement.get("Condition"):
            yield f"statement {statement.get('Sid', f'#{index}')} allows anyone"
