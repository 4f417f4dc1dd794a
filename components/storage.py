"""Object storage: one S3 bucket per declared purpose, encrypted, versioned, private, TLS-only and logged.

The models bucket is the model registry's storage. Model artifacts follow one layout,
``s3://<models bucket>/<team>/<model>/<version>/``, built by :func:`model_artifact_prefix` and
:meth:`ObjectStore.model_artifact_uri`; teams and inference endpoints are granted access by that prefix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import platform_role, policy_document, service_trust
from components.keys import create_key
from components.options import child, provider_in_region, stateful
from mlstack.spec.storage import ACCESS_LOGS, MODELS_REPLICA, StorageSpec, s3_bucket_name

# A prefix ends at a '/' so that 'search/' cannot also match 'search-archive/', and holds no IAM wildcard.
_PREFIX = re.compile(r"^([A-Za-z0-9!_.'()-]+/)+$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")

Access = Literal["read", "write"]
_READ_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"]
# Deleting only adds a delete marker: versioning keeps the data until the noncurrent expiry.
_WRITE_OBJECT_ACTIONS = [
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:DeleteObject",
]


def bucket_name(env: Environment, purpose: str, region: str | None = None) -> str:
    """Physical bucket name ``<env>-<account>-<region>-<purpose>``: globally unique because S3 names are."""
    return s3_bucket_name(env.name, env.account_id, region or env.region, purpose)


def model_artifact_prefix(team: str, model: str | None = None, version: str | None = None) -> str:
    """Key prefix of a team's models (``<team>/``), one model (``<team>/<model>/``) or one version
    (``<team>/<model>/<version>/``) in the models bucket: the layout every team and endpoint uses.
    """
    parts = [team] + ([model] if model is not None else []) + ([version] if version is not None else [])
    if version is not None and model is None:
        raise ValueError("a model version needs its model name")
    bad = [part for part in parts if not _LABEL.match(part)]
    if bad:
        raise ValueError(
            f"model artifact path parts {bad} must be lower-case letters, digits, '.', '_' or '-' (at most 64)"
        )
    return "".join(f"{part}/" for part in parts)


@dataclass(frozen=True)
class BucketArgs:
    """Settings of one bucket. ``key_arn`` absent means SSE-S3, which only the access-logs bucket uses."""

    env: Environment
    purpose: str
    bucket_name: str
    key_arn: pulumi.Input[str] | None
    noncurrent_version_expiration_days: int
    abort_incomplete_multipart_days: int
    region: str | None = None
    access_logs: Bucket | None = None
    intelligent_tiering: bool = False
    current_version_expiration_days: int | None = None
    log_sources: tuple[str, ...] = ()


class Bucket(pulumi.ComponentResource):
    """One private S3 bucket and everything that keeps it safe: default encryption (SSE-KMS with the bucket
    key), versioning, all four public-access-block flags, BucketOwnerEnforced ownership (no ACLs), a policy
    that denies plain HTTP and uploads encrypted with another key, lifecycle rules and access logging.

    Grant access with :meth:`grant_read` and :meth:`grant_write`. Outputs: ``bucket_name``, ``bucket_arn``.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:storage:Bucket", name, None, opts)
        env = args.env
        self.purpose = args.purpose
        self._env = env
        self._region = args.region or env.region
        self._key_arn = args.key_arn
        self._grants: set[str] = set()

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            # Emptying a bucket on delete is never implied; a stack that must delete one does it by hand.
            force_destroy=False,
            opts=stateful(self, env),
        )
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=stateful(self, env),
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=stateful(self, env),
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[_encryption_rule(args.key_arn)],
            opts=stateful(self, env),
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=stateful(self, env),
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=policy_document(self._policy_statements(args)),
            # A policy put before the public-access block exists could race with it.
            opts=stateful(self, env, depends_on=[self.public_access_block]),
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=_lifecycle_rules(args),
            opts=child(self, depends_on=[self.versioning]),
        )
        self.logging: aws.s3.BucketLogging | None = None
        if args.access_logs is not None:
            self.logging = aws.s3.BucketLogging(
                f"{name}-logging",
                bucket=self.bucket.id,
                target_bucket=args.access_logs.bucket_name,
                target_prefix=f"{args.bucket_name}/",
                opts=child(self, depends_on=[args.access_logs]),
            )
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

    @property
    def key_arn(self) -> pulumi.Input[str] | None:
        """The bucket's KMS key, or ``None`` for SSE-S3. Clients that name a key must name this one."""
        return self._key_arn

    def read_statements(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """IAM statements to list and read objects (under ``prefix`` when given), and decrypt them."""
        return self._statements("read", prefix)

    def write_statements(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """IAM statements to list, write and delete objects (under ``prefix`` when given) with the bucket's
        key. Writing does not include reading: grant both for read-write access.
        """
        return self._statements("write", prefix)

    def grant_read(self, principal: aws.iam.Role, prefix: str | None = None) -> aws.iam.RolePolicy:
        """Let ``principal`` list and read objects, under ``prefix`` (for example ``"search/"``) when given.

        Creates and returns an inline policy on the role, including ``kms:Decrypt`` on the bucket's key through
        S3 only. The same role and prefix may be granted once per access level.
        """
        return self._grant("read", principal, prefix)

    def grant_write(self, principal: aws.iam.Role, prefix: str | None = None) -> aws.iam.RolePolicy:
        """Let ``principal`` write and delete objects, under ``prefix`` when given.

        Creates and returns an inline policy on the role, including ``kms:GenerateDataKey`` and ``kms:Decrypt``
        (multipart uploads need it) on the bucket's key through S3 only.
        """
        return self._grant("write", principal, prefix)

    def _grant(self, access: Access, principal: aws.iam.Role, prefix: str | None) -> aws.iam.RolePolicy:
        suffix = f"{access}-{principal.pulumi_resource_name}" + (f"-{_prefix_slug(prefix)}" if prefix else "")
        if suffix in self._grants:
            raise ValueError(
                f"{principal.pulumi_resource_name} already has {access} access to the {self.purpose} bucket"
                + (f" under '{prefix}'" if prefix else "")
            )
        self._grants.add(suffix)
        policy_name = f"s3-{self.purpose}-{access}" + (f"-{_prefix_slug(prefix)}" if prefix else "")
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-{suffix}",
            role=principal.name,
            name=policy_name,
            policy=policy_document(self._statements(access, prefix)),
            opts=child(self),
        )

    def _statements(self, access: Access, prefix: str | None) -> list[dict[str, Any]]:
        if prefix is not None and not _PREFIX.match(prefix):
            raise ValueError(
                f"prefix '{prefix}' must be one or more path segments each ending in '/', without wildcards, "
                "for example 'search/' or 'search/ranker/'"
            )
        objects = pulumi.Output.concat(self.bucket_arn, "/", prefix or "", "*")
        listing: dict[str, Any] = {
            "Sid": "ListObjects",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": self.bucket_arn,
        }
        if prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
        statements: list[dict[str, Any]] = [
            listing,
            {
                "Sid": "ReadObjects" if access == "read" else "WriteObjects",
                "Effect": "Allow",
                "Action": _READ_OBJECT_ACTIONS if access == "read" else _WRITE_OBJECT_ACTIONS,
                "Resource": objects,
            },
        ]
        if self._key_arn is not None:
            statements.append(
                {
                    "Sid": "DecryptThroughS3" if access == "read" else "EncryptThroughS3",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"] if access == "read" else ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": self._key_arn,
                    "Condition": _through_s3(self._region, self.bucket_arn),
                }
            )
        return statements

    def _policy_statements(self, args: BucketArgs) -> list[dict[str, Any]]:
        everything = [self.bucket_arn, pulumi.Output.concat(self.bucket_arn, "/*")]
        objects = pulumi.Output.concat(self.bucket_arn, "/*")
        statements: list[dict[str, Any]] = [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": everything,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                # Uploads without encryption headers get the default encryption; only other choices are refused.
                # 'Null: false' limits the deny to requests that carry the header: a negated operator, and any
                # '...IfExists' one, is true when the key is absent (IAM user guide, "Condition operators"),
                # which would refuse every upload that relies on the default encryption.
                "Sid": "DenyOtherEncryption",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEquals": {
                        "s3:x-amz-server-side-encryption": "aws:kms" if args.key_arn is not None else "AES256"
                    },
                    "Null": {"s3:x-amz-server-side-encryption": "false"},
                },
            },
        ]
        if args.key_arn is not None:
            statements.append(
                {
                    "Sid": "DenyOtherKmsKeys",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": objects,
                    "Condition": {
                        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": args.key_arn},
                        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                    },
                },
            )
            # 'aws:kms' without a key id passes both denies above, and S3 then encrypts with the AWS-managed
            # aws/s3 key (PutObject SSEKMSKeyId: "If you specify x-amz-server-side-encryption:aws:kms ... but
            # do not provide x-amz-server-side-encryption-aws-kms-key-id, Amazon S3 uses the AWS managed key").
            # Clients either send no SSE header (bucket default: this key) or name this key.
            statements.append(
                {
                    "Sid": "DenyKmsWithoutKeyId",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": objects,
                    "Condition": {
                        "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                    },
                }
            )
        if args.log_sources:
            # With BucketOwnerEnforced, S3 delivers server access logs under this policy instead of an ACL.
            statements.append(
                {
                    "Sid": "ServerAccessLogsFromPlatformBuckets",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": objects,
                    "Condition": {
                        "ArnLike": {
                            "aws:SourceArn": [f"arn:aws:s3:::{source}" for source in args.log_sources]
                        },
                        "StringEquals": {"aws:SourceAccount": args.env.account_id},
                    },
                }
            )
        return statements


def _encryption_rule(
    key_arn: pulumi.Input[str] | None,
) -> aws.s3.BucketServerSideEncryptionConfigurationRuleArgs:
    if key_arn is None:
        return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
        )
    return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=key_arn
        ),
        # One data key per bucket instead of one KMS call per object: cheaper and far fewer KMS requests.
        bucket_key_enabled=True,
    )


def _lifecycle_rules(args: BucketArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    every_object = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-multipart-uploads",
            status="Enabled",
            filter=every_object,
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=args.abort_incomplete_multipart_days
            ),
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=every_object,
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=args.noncurrent_version_expiration_days
            ),
        ),
    ]
    if args.intelligent_tiering:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="intelligent-tiering",
                status="Enabled",
                filter=every_object,
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=0, storage_class="INTELLIGENT_TIERING"
                    )
                ],
            )
        )
    if args.current_version_expiration_days is not None:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-current-versions",
                status="Enabled",
                filter=every_object,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=args.current_version_expiration_days
                ),
            )
        )
    return rules


def _through_s3(region: str, bucket_arn: pulumi.Output[str]) -> dict[str, Any]:
    """KMS condition: only S3 in ``region`` may use the key, and only for this bucket's objects. With the
    bucket key on, S3 passes the bucket's ARN as encryption context; objects written before it, their own ARN.
    """
    return {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]
        },
    }


def _prefix_slug(prefix: str) -> str:
    """A readable, deterministic and collision-free name part for a key prefix ('a/b/' -> 'a-b-1a2b3c')."""
    readable = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")[:40]
    return f"{readable}-{hashlib.sha256(prefix.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class ObjectStoreArgs:
    env: Environment
    spec: StorageSpec
    data_key_arn: pulumi.Input[str]
    """The data key (EncryptionKeys.data_key_arn) every bucket but the access-logs bucket is encrypted with."""
    permission_boundary_arn: pulumi.Input[str]
    """Boundary of the replication role (Guardrails.permission_boundary_arn)."""


class ObjectStore(pulumi.ComponentResource):
    """One S3 bucket per declared purpose (default: datasets, artifacts, models), an access-logs bucket that
    receives their server access logs, and, when asked, a replica of the models bucket in another region.

    Buckets are reached as ``store.buckets["models"]`` (a :class:`Bucket`) and granted with
    ``store.buckets["models"].grant_read(role, prefix="search/")``.

    Outputs: ``<purpose>_bucket_name`` and ``<purpose>_bucket_arn`` for each declared purpose,
    ``access_logs_bucket_name``/``_arn`` and, with replication, ``models_replica_bucket_name``/``_arn``.
    """

    def __init__(self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:storage:ObjectStore", name, None, opts)
        env, spec = args.env, args.spec
        names = {purpose: bucket_name(env, purpose) for purpose in spec.buckets}
        # S3 server access logging cannot deliver to a bucket whose default encryption is SSE-KMS, so this
        # one bucket uses SSE-S3. It still has versioning, the public-access block, ownership and TLS-only.
        self.access_logs = Bucket(
            f"{name}-{ACCESS_LOGS}",
            BucketArgs(
                purpose=ACCESS_LOGS,
                bucket_name=bucket_name(env, ACCESS_LOGS),
                key_arn=None,
                current_version_expiration_days=spec.access_logs_retention_days,
                log_sources=tuple(names.values()),
                env=env,
                noncurrent_version_expiration_days=spec.noncurrent_version_expiration_days,
                abort_incomplete_multipart_days=spec.abort_incomplete_multipart_days,
            ),
            child(self),
        )
        self.buckets: dict[str, Bucket] = {
            purpose: Bucket(
                f"{name}-{purpose}",
                BucketArgs(
                    purpose=purpose,
                    bucket_name=physical,
                    key_arn=args.data_key_arn,
                    access_logs=self.access_logs,
                    intelligent_tiering=purpose == "datasets" and spec.datasets_intelligent_tiering,
                    env=env,
                    noncurrent_version_expiration_days=spec.noncurrent_version_expiration_days,
                    abort_incomplete_multipart_days=spec.abort_incomplete_multipart_days,
                ),
                child(self),
            )
            for purpose, physical in names.items()
        }
        self.models_replica: Bucket | None = None
        if spec.models_replication_region is not None and "models" in self.buckets:
            self.models_replica = self._replicate_models(name, args, spec.models_replication_region)

        outputs: dict[str, pulumi.Output[str]] = {}
        for purpose, bucket in [*self.buckets.items(), (ACCESS_LOGS, self.access_logs)]:
            outputs[f"{purpose.replace('-', '_')}_bucket_name"] = bucket.bucket_name
            outputs[f"{purpose.replace('-', '_')}_bucket_arn"] = bucket.bucket_arn
        if self.models_replica is not None:
            outputs["models_replica_bucket_name"] = self.models_replica.bucket_name
            outputs["models_replica_bucket_arn"] = self.models_replica.bucket_arn
        self.outputs = outputs
        for key, value in outputs.items():
            setattr(self, key, value)
        self.register_outputs(dict(outputs))

    def model_artifact_uri(
        self, team: str, model: str | None = None, version: str | None = None
    ) -> pulumi.Output[str]:
        """``s3://<models bucket>/<team>/<model>/<version>/``, or the team's or model's folder when less is given."""
        if "models" not in self.buckets:
            raise ValueError("this environment declares no models bucket; add 'models' to storage.buckets")
        return pulumi.Output.concat(
            "s3://", self.buckets["models"].bucket_name, "/", model_artifact_prefix(team, model, version)
        )

    def _replicate_models(self, name: str, args: ObjectStoreArgs, region: str) -> Bucket:
        env, spec = args.env, args.spec
        source = self.buckets["models"]
        # The replica lives in another region, so it needs a provider (and a key) of its own there.
        provider = provider_in_region(self, f"{name}-replica-aws", env, region)
        self.replica_key = create_key(
            self,
            f"{name}-replica-data",
            env=env,
            purpose="data",
            region=region,
            alias_suffix="-replica",
            provider=provider,
        )
        replica_name = bucket_name(env, MODELS_REPLICA, region)
        in_replica_region = pulumi.ResourceOptions(parent=self, providers={"aws": provider})
        # S3 delivers access logs only to a bucket in the same region, so the replica's region gets its own
        # SSE-S3 log bucket, like the home region's.
        self.replica_access_logs = Bucket(
            f"{name}-{MODELS_REPLICA}-{ACCESS_LOGS}",
            BucketArgs(
                env=env,
                purpose=f"{ACCESS_LOGS}-replica",
                bucket_name=bucket_name(env, ACCESS_LOGS, region),
                key_arn=None,
                region=region,
                current_version_expiration_days=spec.access_logs_retention_days,
                log_sources=(replica_name,),
                noncurrent_version_expiration_days=spec.noncurrent_version_expiration_days,
                abort_incomplete_multipart_days=spec.abort_incomplete_multipart_days,
            ),
            in_replica_region,
        )
        replica = Bucket(
            f"{name}-{MODELS_REPLICA}",
            BucketArgs(
                env=env,
                purpose=MODELS_REPLICA,
                bucket_name=replica_name,
                key_arn=self.replica_key.arn,
                region=region,
                noncurrent_version_expiration_days=spec.noncurrent_version_expiration_days,
                abort_incomplete_multipart_days=spec.abort_incomplete_multipart_days,
                access_logs=self.replica_access_logs,
            ),
            in_replica_region,
        )
        role = platform_role(
            self,
            f"{name}-replication-role",
            env=env,
            role_suffix="s3-replication-models",
            boundary_arn=args.permission_boundary_arn,
            assume_role_policy=service_trust("s3.amazonaws.com"),
            description=f"S3 replicates the {env.name} models bucket to {region} with this role.",
        )
        aws.iam.RolePolicy(
            f"{name}-replication-policy",
            role=role.name,
            name="s3-replicate-models",
            policy=policy_document(
                _replication_statements(
                    source, replica, args.data_key_arn, self.replica_key.arn, env.region, region
                )
            ),
            opts=child(self),
        )
        self.replication = aws.s3.BucketReplicationConfig(
            f"{name}-models-replication",
            bucket=source.bucket.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id=f"models-to-{region}",
                    status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Enabled"
                    ),
                    source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                        sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                            status="Enabled"
                        )
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=replica.bucket_arn,
                        storage_class="STANDARD",
                        encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                            replica_kms_key_id=self.replica_key.arn
                        ),
                    ),
                )
            ],
            # S3 refuses a replication configuration until both sides are versioned.
            opts=child(self, depends_on=[source.versioning, replica.versioning]),
        )
        return replica


def _replication_statements(
    source: Bucket,
    replica: Bucket,
    source_key_arn: pulumi.Input[str],
    replica_key_arn: pulumi.Input[str],
    source_region: str,
    replica_region: str,
) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "ReadReplicationConfiguration",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": source.bucket_arn,
        },
        {
            "Sid": "ReadSourceVersions",
            "Effect": "Allow",
            "Action": [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            "Resource": pulumi.Output.concat(source.bucket_arn, "/*"),
        },
        {
            "Sid": "WriteReplica",
            "Effect": "Allow",
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            "Resource": pulumi.Output.concat(replica.bucket_arn, "/*"),
        },
        {
            "Sid": "DecryptSource",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": source_key_arn,
            "Condition": _through_s3(source_region, source.bucket_arn),
        },
        {
            "Sid": "EncryptReplica",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
            "Resource": replica_key_arn,
            "Condition": _through_s3(replica_region, replica.bucket_arn),
        },
    ]
