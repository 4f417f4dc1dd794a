"""ObjectStore on the recorded plans: every bucket's safeguards, protection, lifecycle, logging, replication,
grants, and a rename that keeps every stateful resource.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlstack.plan.recorder import Plan, RecordedResource
from tests.plans import PROJECT, policy_json
from tests.programs import answered_urns, program_plan

STATEFUL_TYPES = ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:ecr/repository:Repository")


def _attached(plan: Plan, bucket: RecordedResource, type_: str) -> list[RecordedResource]:
    """Resources of ``type_`` whose ``bucket`` input is this bucket (by reference, not by name)."""
    return [r for r in plan.by_type(type_) if bucket.urn in r.property_dependencies.get("bucket", [])]


def _one(plan: Plan, bucket: RecordedResource, type_: str) -> RecordedResource:
    attached = _attached(plan, bucket, type_)
    assert len(attached) == 1, f"{bucket.name}: {len(attached)} x {type_}"
    return attached[0]


def _buckets(plan: Plan) -> list[RecordedResource]:
    return plan.by_type("aws:s3/bucket:Bucket")


def test_one_bucket_per_purpose_plus_access_logs(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    names = sorted(b.inputs["bucket"] for b in _buckets(stack_plan))
    expected = [
        f"{spec.environment}-{spec.account_id}-{spec.region}-{p}"
        for p in [*spec.storage.buckets, "access-logs"]
    ]
    if spec.storage.models_replication_region:
        replica = f"{spec.environment}-{spec.account_id}-{spec.storage.models_replication_region}"
        expected += [f"{replica}-models-replica", f"{replica}-access-logs"]
    assert names == sorted(expected)


def test_every_bucket_has_its_safeguards_attached(stack_plan: Plan) -> None:
    for bucket in _buckets(stack_plan):
        assert bucket.inputs.get("forceDestroy") is False, bucket.name
        access = _one(stack_plan, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
        assert all(
            access[flag] is True
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        ownership = _one(stack_plan, bucket, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        versioning = _one(stack_plan, bucket, "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        statements = policy_json(
            _one(stack_plan, bucket, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
        )["Statement"]
        tls = [
            s
            for s in statements
            if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert tls and tls[0]["Effect"] == "Deny" and tls[0]["Action"] == "s3:*", bucket.name
        assert (
            bucket.outputs["arn"] in tls[0]["Resource"] and f"{bucket.outputs['arn']}/*" in tls[0]["Resource"]
        )
        encryption = _one(
            stack_plan,
            bucket,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        default = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        if bucket.inputs["bucket"].endswith("-access-logs"):
            # Server access logs cannot be delivered to an SSE-KMS bucket.
            assert default == {"sseAlgorithm": "AES256"}
            continue
        assert (
            default["sseAlgorithm"] == "aws:kms" and encryption.inputs["rules"][0]["bucketKeyEnabled"] is True
        )
        key = stack_plan.get(encryption.property_dependencies["rules"][0])
        assert key.type == "aws:kms/key:Key" and default["kmsMasterKeyId"] == key.outputs["arn"]
        other_keys = [s for s in statements if s["Sid"] == "DenyOtherKmsKeys"]
        assert other_keys[0]["Condition"]["StringNotEquals"] == {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": key.outputs["arn"]
        }


def test_buckets_in_the_home_region_use_the_data_key(stack_plan: Plan) -> None:
    data_key = next(
        k for k in stack_plan.by_type("aws:kms/key:Key") if k.name == f"{stack_plan.stack}-keys-data"
    )
    for bucket in _buckets(stack_plan):
        if bucket.inputs["bucket"].endswith(("-access-logs", "-models-replica")):
            continue
        encryption = _one(
            stack_plan,
            bucket,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        assert encryption.property_dependencies["rules"] == [data_key.urn]


def test_hardened_buckets_and_their_settings_are_protected_and_retained(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    for bucket in _buckets(stack_plan):
        guarded = [bucket] + [
            _one(stack_plan, bucket, t)
            for t in (
                "aws:s3/bucketVersioning:BucketVersioning",
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "aws:s3/bucketPolicy:BucketPolicy",
            )
        ]
        for resource in guarded:
            assert (resource.protect, resource.retain_on_delete) == (spec.tier.hardened,) * 2, resource.urn


def test_lifecycle_rules_follow_the_spec(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    for bucket in _buckets(stack_plan):
        rules = {
            r["id"]: r
            for r in _one(
                stack_plan, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
            ).inputs["rules"]
        }
        assert (
            rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"][
                "daysAfterInitiation"
            ]
            == spec.storage.abort_incomplete_multipart_days
        )
        assert (
            rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"]
            == spec.storage.noncurrent_version_expiration_days
        )
        name = bucket.inputs["bucket"]
        tiered = name.endswith("-datasets") and spec.storage.datasets_intelligent_tiering
        assert ("intelligent-tiering" in rules) == tiered, name
        if tiered:
            assert rules["intelligent-tiering"]["transitions"] == [
                {"days": 0.0, "storageClass": "INTELLIGENT_TIERING"}
            ]
        if name.endswith("-access-logs"):
            assert (
                rules["expire-current-versions"]["expiration"]["days"]
                == spec.storage.access_logs_retention_days
            )


def test_home_region_buckets_log_to_the_access_logs_bucket(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    home = f"-{spec.region}-"
    logs = next(b for b in _buckets(stack_plan) if b.inputs["bucket"].endswith(f"{home}access-logs"))
    logged = []
    for bucket in _buckets(stack_plan):
        loggings = _attached(stack_plan, bucket, "aws:s3/bucketLogging:BucketLogging")
        if bucket.inputs["bucket"].endswith("-access-logs"):
            assert loggings == []
            continue
        if home not in bucket.inputs["bucket"]:
            # A replica logs to the access-logs bucket of its own region: S3 delivers logs only within one.
            region = (
                bucket.inputs["bucket"].split(f"{spec.account_id}-", 1)[1].rsplit("-models-replica", 1)[0]
            )
            assert loggings[0].inputs["targetBucket"].endswith(f"-{region}-access-logs")
            continue
        assert loggings[0].inputs["targetBucket"] == logs.inputs["bucket"]
        assert loggings[0].inputs["targetPrefix"] == bucket.inputs["bucket"] + "/"
        logged.append(bucket.outputs["arn"])
    delivery = next(
        s
        for s in policy_json(_one(stack_plan, logs, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])[
            "Statement"
        ]
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    )
    assert sorted(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(logged)


def test_models_replicate_to_the_other_region_only_where_declared(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    replications = stack_plan.by_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    region = spec.storage.models_replication_region
    assert len(replications) == (1 if region else 0)
    if not region:
        return
    replication = replications[0]
    source = stack_plan.get(replication.property_dependencies["bucket"][0])
    assert source.inputs["bucket"].endswith("-models")
    rule = replication.inputs["rules"][0]
    replica = next(b for b in _buckets(stack_plan) if b.outputs["arn"] == rule["destination"]["bucket"])
    provider = stack_plan.get(replica.provider.rsplit("::", 1)[0])
    assert provider.inputs["region"] == region
    replica_key = next(
        k
        for k in stack_plan.by_type("aws:kms/key:Key")
        if k.outputs["arn"] == rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"]
    )
    assert replica_key.provider == replica.provider and replica_key.protect
    role = stack_plan.get(replication.property_dependencies["role"][0])
    assert role.inputs["permissionsBoundary"]
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"


def test_flat_outputs_name_every_bucket(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    store = stack_plan.by_type("mlstack:storage:ObjectStore")[0]
    buckets = {b.inputs["bucket"]: b for b in _buckets(stack_plan)}
    for purpose in [*spec.storage.buckets, "access_logs"]:
        name = store.outputs[f"{purpose}_bucket_name"]
        assert buckets[name].outputs["arn"] == store.outputs[f"{purpose}_bucket_arn"]


# Grants, exercised by a small program that wires the store and registry to throwaway roles.


def _grant(plan: Plan, name: str) -> list[dict[str, Any]]:
    policy = next(p for p in plan.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == name)
    return policy_json(policy.inputs["policy"])["Statement"]


def test_prefixed_read_grant_is_scoped_to_the_prefix_and_the_key() -> None:
    plan = program_plan("prod")
    _, spec = PROJECT.load("prod")
    bucket = f"arn:aws:s3:::prod-{spec.account_id}-{spec.region}-models"
    statements = {s["Sid"]: s for s in _grant(plan, "store-models-read-role-server-search-chat-v3-740327")}
    assert statements["ListObjects"]["Resource"] == bucket
    assert statements["ListObjects"]["Condition"]["StringLike"]["s3:prefix"] == [
        "search/chat/v3/",
        "search/chat/v3/*",
    ]
    assert statements["ReadObjects"]["Resource"] == f"{bucket}/search/chat/v3/*"
    assert "s3:PutObject" not in statements["ReadObjects"]["Action"]
    kms = statements["DecryptThroughS3"]
    assert kms["Action"] == ["kms:Decrypt"]
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{spec.region}.amazonaws.com"
    assert kms["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [bucket, f"{bucket}/*"]


def test_unprefixed_write_grant_covers_the_bucket_and_generates_data_keys() -> None:
    plan = program_plan("dev")
    statements = {s["Sid"]: s for s in _grant(plan, "store-models-write-role-trainer-search-86cf2c")}
    assert "kms:GenerateDataKey" in statements["EncryptThroughS3"]["Action"]
    assert "s3:GetObject" not in statements["WriteObjects"]["Action"]
    read_all = {s["Sid"]: s for s in _grant(plan, "store-datasets-read-role-trainer")}
    assert "Condition" not in read_all["ListObjects"]
    assert read_all["ReadObjects"]["Resource"].endswith("-datasets/*")


def test_grants_are_deterministic() -> None:
    first = program_plan("staging")
    from tests.programs import _program_plan

    _program_plan.cache_clear()
    assert program_plan("staging").dumps() == first.dumps()


@pytest.mark.parametrize("prefix", ["search", "/search/", "search/*", "a//", ""])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    from components.storage import _PREFIX

    assert not _PREFIX.match(prefix)


def test_model_artifact_layout() -> None:
    from components.storage import model_artifact_prefix

    assert model_artifact_prefix("search") == "search/"
    assert model_artifact_prefix("search", "chat", "v3") == "search/chat/v3/"
    with pytest.raises(ValueError, match="needs its model"):
        model_artifact_prefix("search", version="v3")
    with pytest.raises(ValueError, match="lower-case"):
        model_artifact_prefix("Search/x")


# Renames.


def _stateful(plan: Plan) -> list[RecordedResource]:
    return [r for r in plan.resources if r.custom and (r.protect or r.type in STATEFUL_TYPES)]


def _orphans(old: Plan, new: Plan) -> list[str]:
    """Stateful URNs of ``old`` that no resource of ``new`` answers to: the engine would replace them."""
    answered = set().union(*(answered_urns(new, r.urn) for r in new.resources))
    return [r.urn for r in _stateful(old) if r.urn not in answered]


def test_renaming_the_store_with_an_alias_replaces_no_stateful_resource() -> None:
    old = program_plan("prod", "store")
    renamed = program_plan("prod", "object-store", ("store",))
    assert len(_stateful(old)) >= 20
    assert {r.urn for r in renamed.resources}.isdisjoint(r.urn for r in _stateful(old) if "store" in r.name)
    assert _orphans(old, renamed) == []


def test_renaming_without_an_alias_would_replace_the_buckets() -> None:
    old = program_plan("prod", "store")
    renamed = program_plan("prod", "object-store")
    orphans = _orphans(old, renamed)
    assert any("aws:s3/bucket:Bucket::store-models-bucket" in urn for urn in orphans)
    assert len(orphans) == len([r for r in _stateful(old) if r.name.startswith("store-")])


def _condition_holds(condition: dict[str, dict[str, Any]], headers: dict[str, str]) -> bool:
    """Whether an S3 bucket-policy condition block holds for a PutObject with these request headers. Only the
    operators the bucket policies use; an unknown one fails the test rather than guessing."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            values = expected if isinstance(expected, list) else [expected]
            present = key in headers
            # IAM user guide, "Condition operators": an absent key makes a positive operator false, and a
            # negated one (and every ...IfExists operator) true.
            if operator == "StringEquals":
                ok = present and headers[key] in values
            elif operator in ("StringNotEquals", "StringNotEqualsIfExists"):
                ok = not present or headers[key] not in values
            elif operator == "Null":
                ok = (not present) == (values == ["true"])
            elif operator == "Bool":
                ok = present and headers[key] in values
            else:
                raise AssertionError(f"operator {operator} not modelled")
            if not ok:
                return False
    return True


SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # no header: the bucket's default encryption with its key
        ({SSE: "aws:kms", SSE_KEY: "OUR_KEY"}, False),
        ({SSE: "aws:kms"}, True),  # would land under aws/s3 (rt-data S1)
        ({SSE: "aws:kms", SSE_KEY: "arn:aws:kms:us-east-1:111122223333:key/other"}, True),
        ({SSE: "AES256"}, True),
        ({SSE: "aws:kms:dsse", SSE_KEY: "OUR_KEY"}, True),
    ],
)
def test_kms_buckets_accept_only_their_own_key(headers: dict[str, str], refused: bool) -> None:
    """A PutObject over TLS to a KMS bucket is refused unless it leaves encryption to the bucket default or
    names the bucket's own key; 'aws:kms' without a key id is refused, since S3 would use aws/s3."""
    plan = program_plan("prod")
    bucket = next(b for b in _buckets(plan) if b.inputs["bucket"].endswith("-artifacts"))
    policy = _one(plan, bucket, "aws:s3/bucketPolicy:BucketPolicy")
    encryption = _one(
        plan, bucket, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    our_key = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    request = {"aws:SecureTransport": "true"} | {
        k: our_key if v == "OUR_KEY" else v for k, v in headers.items()
    }
    denies = [
        s
        for s in policy_json(policy.inputs["policy"])["Statement"]
        if s["Effect"] == "Deny" and s["Action"] in ("s3:PutObject", "s3:*")
    ]
    assert any(_condition_holds(s.get("Condition", {}), request) for s in denies) is refused
