"""bootstrap: creates a hardened state backend once, changes nothing the second time, never weakens a bucket."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.live.aws import Aws
from mlstack.live.bootstrap import (
    DEFAULT_ALIAS,
    PUBLIC_ACCESS_FLAGS,
    bootstrap,
    denies_insecure_transport,
    policy_statements,
    state_bucket_name,
)
from tests.cli import assert_clean_failure
from tests.live.conftest import ACCOUNT, REGION

BUCKET = state_bucket_name(ACCOUNT, REGION)
runner = CliRunner()


def _assert_hardened(bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["Arn"]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_id
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    flags = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(flags[name] for name in PUBLIC_ACCESS_FLAGS)
    assert denies_insecure_transport(policy_statements(s3.get_bucket_policy(Bucket=bucket)["Policy"]))
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert any("NoncurrentVersionExpiration" in r and r["Status"] == "Enabled" for r in rules)
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]
    assert ownership["ObjectOwnership"] == "BucketOwnerEnforced"


def test_first_run_creates_a_hardened_backend_and_second_run_changes_nothing(aws: Aws) -> None:
    first = bootstrap(aws)
    assert first.applied
    assert {c.setting for c in first.changes} >= {"key", "bucket", "versioning", "policy", "lifecycle"}
    assert not first.repairs
    _assert_hardened(BUCKET)

    second = bootstrap(aws)
    assert second.changes == []
    assert second.login_command == f"pulumi login 's3://{BUCKET}?region={REGION}&awssdk=v2'"
    assert second.secrets_provider == f"awskms://{DEFAULT_ALIAS}?region={REGION}"
    aliases = boto3.client("kms", region_name=REGION).list_aliases()["Aliases"]
    assert [a["AliasName"] for a in aliases].count(DEFAULT_ALIAS) == 1


def test_cli_says_so_when_nothing_changes(moto: None, cli_aws: dict) -> None:
    first = runner.invoke(app, ["bootstrap"])
    assert first.exit_code == 0, first.output
    assert "set bucket" in first.output
    second = runner.invoke(app, ["bootstrap"])
    assert second.exit_code == 0, second.output
    assert "no changes" in second.output
    assert f"pulumi login 's3://{BUCKET}?region={REGION}&awssdk=v2'" in second.output
    assert f"--secrets-provider='awskms://{DEFAULT_ALIAS}?region={REGION}'" in second.output


def _weaken(bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadForAudit",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            **dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
            "BlockPublicPolicy": False,
        },
    )
    key = boto3.client("kms", region_name=REGION).describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["KeyId"]
    boto3.client("kms", region_name=REGION).disable_key_rotation(KeyId=key)


def test_weakened_bucket_is_refused_without_fix_and_nothing_changes(aws: Aws) -> None:
    bootstrap(aws)
    _weaken(BUCKET)
    refused = bootstrap(aws)
    assert not refused.applied
    assert {(c.resource, c.setting) for c in refused.repairs} == {
        (f"bucket {BUCKET}", "versioning"),
        (f"bucket {BUCKET}", "policy"),
        (f"bucket {BUCKET}", "public access block"),
        (f"key {DEFAULT_ALIAS}", "rotation"),
    }
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Suspended"  # untouched


def test_fix_repairs_without_dropping_existing_policy_statements(aws: Aws) -> None:
    bootstrap(aws)
    _weaken(BUCKET)
    repaired = bootstrap(aws, fix=True)
    assert repaired.applied and repaired.repairs
    _assert_hardened(BUCKET)
    policy = boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket=BUCKET)["Policy"]
    assert "ReadForAudit" in [s.get("Sid") for s in policy_statements(policy)]
    assert bootstrap(aws).changes == []


def test_cli_refuses_a_weakened_bucket_and_lists_the_differences(moto: None, cli_aws: dict) -> None:
    assert runner.invoke(app, ["bootstrap"]).exit_code == 0
    _weaken(BUCKET)
    refused = runner.invoke(app, ["bootstrap"])
    assert refused.exit_code == 1
    assert "versioning is Suspended, wants Enabled" in refused.output
    assert "--fix" in refused.output
    fixed = runner.invoke(app, ["bootstrap", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert "repaired" in fixed.output


def test_existing_bucket_with_sse_s3_is_a_repair_not_a_create(aws: Aws) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="team-state")
    result = bootstrap(aws, bucket="team-state")
    assert not result.applied
    assert "default encryption" in {c.setting for c in result.repairs}
    assert [c.setting for c in result.changes if not c.repair] == ["key"]


@pytest.mark.parametrize("alias", ["mlstack", "alias/aws/s3"])
def test_reserved_or_malformed_alias_is_refused(aws: Aws, alias: str) -> None:
    from mlstack.live.aws import LiveError

    with pytest.raises(LiveError, match="alias"):
        bootstrap(aws, alias=alias)


def test_denied_read_stops_with_the_permission_named(moto: None, cli_aws: dict) -> None:
    assert runner.invoke(app, ["bootstrap"]).exit_code == 0
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    owned = {"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT}
    stub.add_response("head_bucket", {"BucketRegion": REGION}, owned)
    stub.add_response("get_bucket_tagging", {"TagSet": []}, owned)
    stub.add_response(
        "get_bucket_ownership_controls",
        {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
        owned,
    )
    stub.add_response(
        "get_public_access_block",
        {"PublicAccessBlockConfiguration": dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)},
        owned,
    )
    stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, owned)
    stub.add_client_error(
        "get_bucket_encryption", "AccessDenied", "Access Denied", 403, expected_params=owned
    )
    stub.activate()
    cli_aws["s3"] = s3
    result = runner.invoke(app, ["bootstrap"])
    assert_clean_failure(result, 3, "s3:GetEncryptionConfiguration denied; bootstrap needs it")


def test_no_credentials_give_one_clear_line(no_credentials: None) -> None:
    result = runner.invoke(app, ["bootstrap", "--region", REGION])
    assert_clean_failure(result, 2, "no AWS credentials found")
