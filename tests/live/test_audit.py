"""audit: a compliant account reports nothing; every injected kind of drift is reported, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.live.audit import RULES, Audit
from mlstack.live.aws import Aws
from mlstack.live.bootstrap import PUBLIC_ACCESS_FLAGS, tls_only_statement
from mlstack.live.report import Report, Status
from mlstack.project import find_project
from mlstack.spec import PlatformSpec
from tests.cli import assert_clean_failure
from tests.live.conftest import ACCOUNT, REGION
from tests.live.plan_account import serve_cache_rules

ENV = "dev"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{ENV}-permission-boundary"
TAGS = {"environment": ENV, "managed-by": "mlstack"}
runner = CliRunner()


def spec() -> PlatformSpec:
    _, loaded = find_project(Path(__file__).parent).load(ENV)
    return loaded.model_copy(update={"account_id": ACCOUNT})


def compliant_bucket(name: str, tags: dict[str, str] = TAGS) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/dev-data",
                    }
                }
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)
    )
    s3.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls_only_statement(name)]})
    )


@pytest.fixture
def account(moto: None) -> dict[str, str]:
    """A compliant dev environment, plus a non-compliant staging bucket that the dev audit must ignore."""
    compliant_bucket("dev-datasets")
    compliant_bucket("dev-models")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="staging-datasets")  # weak, other env
    boto3.client("s3", region_name=REGION).put_bucket_tagging(
        Bucket="staging-datasets", Tagging={"TagSet": [{"Key": "environment", "Value": "staging"}]}
    )
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="untagged-scratch")  # weak, untagged

    ecr = boto3.client("ecr", region_name=REGION)
    repo = ecr.create_repository(
        repositoryName="dev-training",
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        tags=[{"Key": k, "Value": v} for k, v in TAGS.items()],
    )["repository"]
    ecr.create_repository(repositoryName="scratch", imageTagMutability="MUTABLE")  # untagged

    iam = boto3.client("iam")
    iam.create_policy(
        PolicyName=f"{ENV}-permission-boundary",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    iam.create_role(
        RoleName="dev-workflows",
        AssumeRolePolicyDocument="{}",
        PermissionsBoundary=BOUNDARY,
        Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()],
    )
    iam.create_role(RoleName="human-admin", AssumeRolePolicyDocument="{}")  # untagged, no boundary

    eks = boto3.client("eks", region_name=REGION)
    eks.create_cluster(
        name="dev",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/dev-cluster",
        resourcesVpcConfig={"subnetIds": [], "endpointPublicAccess": False, "endpointPrivateAccess": True},
        logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        encryptionConfig=[
            {"resources": ["secrets"], "provider": {"keyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/x"}}
        ],
        tags=TAGS,
    )
    boto3.client("ec2", region_name=REGION).create_launch_template(
        LaunchTemplateName="dev-eks-system-nodes",
        LaunchTemplateData={"MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}},
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": k, "Value": v} for k, v in TAGS.items()]}
        ],
    )
    boto3.client("budgets", region_name=REGION).create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": f"{ENV}-monthly",
            "BudgetLimit": {"Amount": "500", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )

    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Tags=[{"TagKey": k, "TagValue": v} for k, v in TAGS.items()])["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.create_key()  # untagged, rotation off
    return {"key": key["Arn"], "key_id": key["KeyId"], "repo": repo["repositoryName"]}


def session() -> boto3.session.Session:
    """A session on the mocked account whose ECR answers DescribePullThroughCacheRules (moto lacks it)."""
    mocked = boto3.session.Session()
    serve_cache_rules(mocked, {})
    return mocked


def audit() -> Report:
    return Audit(Aws(session(), REGION), spec()).run()


def drift(report: Report) -> set[tuple[str, str]]:
    return {(r.rule, r.subject) for r in report.results if r.status is not Status.PASS}


def test_compliant_account_has_no_drift_and_every_rule_ran(account: dict[str, str]) -> None:
    report = audit()
    assert drift(report) == set(), report.results
    assert {r.rule for r in report.results} == {rule.id for rule in RULES}
    subjects = {r.subject for r in report.results}
    assert {
        "dev-datasets",
        "dev-models",
        "dev-training",
        "dev-workflows",
        "dev",
        "dev-eks-system-nodes",
        "dev-monthly",
        account["key"],
    } == subjects
    assert report.exit_code() == 0


def test_every_injected_drift_is_reported_and_nothing_else(account: dict[str, str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_bucket_encryption(Bucket="dev-datasets")
    s3.put_bucket_versioning(Bucket="dev-datasets", VersioningConfiguration={"Status": "Suspended"})
    s3.put_public_access_block(
        Bucket="dev-models",
        PublicAccessBlockConfiguration={
            **dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
            "RestrictPublicBuckets": False,
        },
    )
    s3.put_bucket_policy(
        Bucket="dev-models",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Public",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::dev-models/*",
                    }
                ],
            }
        ),
    )
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.put_image_tag_mutability(repositoryName="dev-training", imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(
        repositoryName="dev-training", imageScanningConfiguration={"scanOnPush": False}
    )
    boto3.client("iam").delete_role_permissions_boundary(RoleName="dev-workflows")
    eks = boto3.client("eks", region_name=REGION)
    eks.update_cluster_config(
        name="dev", resourcesVpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}
    )
    eks.update_cluster_config(
        name="dev", logging={"clusterLogging": [{"types": ["audit"], "enabled": False}]}
    )
    boto3.client("kms", region_name=REGION).disable_key_rotation(KeyId=account["key_id"])

    report = audit()
    assert drift(report) == {
        ("s3-encryption", "dev-datasets"),
        ("s3-versioning", "dev-datasets"),
        ("s3-public-access-block", "dev-models"),
        ("s3-policy", "dev-models"),
        ("ecr-immutable-tags", "dev-training"),
        ("ecr-scanning", "dev-training"),
        ("iam-boundary", "dev-workflows"),
        ("eks-endpoint", "dev"),
        ("eks-logging", "dev"),
        ("kms-rotation", account["key"]),
    }
    assert {r.status for r in report.results if r.status is not Status.PASS} == {Status.FAIL}
    policy = next(r for r in report.results if r.rule == "s3-policy" and r.subject == "dev-models")
    assert "no statement denies requests without TLS" in policy.message and "Public" in policy.message
    assert report.exit_code() == 1


def test_denied_read_is_not_checked_and_names_the_permission(account: dict[str, str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    # Each bucket's logging is read first (to know the access-log targets), then, bucket by bucket:
    # encryption, versioning, public access block, policy.
    for bucket in ("dev-datasets", "dev-models"):
        stub.add_response("get_bucket_logging", {}, {"Bucket": bucket})
    for bucket in ("dev-datasets", "dev-models"):
        stub.add_client_error(
            "get_bucket_encryption", "AccessDenied", "denied", 403, expected_params={"Bucket": bucket}
        )
        stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": bucket})
        stub.add_response(
            "get_public_access_block",
            {"PublicAccessBlockConfiguration": dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)},
            {"Bucket": bucket},
        )
        policy = json.dumps({"Version": "2012-10-17", "Statement": [tls_only_statement(bucket)]})
        stub.add_response("get_bucket_policy", {"Policy": policy}, {"Bucket": bucket})
    stub.activate()
    report = Audit(Aws(session(), REGION, {"s3": s3}), spec()).run()
    denied = [r for r in report.results if r.status is Status.NOT_CHECKED]
    assert {(r.rule, r.subject) for r in denied} == {
        ("s3-encryption", "dev-datasets"),
        ("s3-encryption", "dev-models"),
    }
    assert {r.message for r in denied} == {"s3:GetEncryptionConfiguration denied"}
    assert report.exit_code() == 3
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "markdown"])
def test_cli_formats_carry_the_drift(
    account: dict[str, str], cli_aws: dict, monkeypatch: pytest.MonkeyPatch, fmt: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setattr("mlstack.live.cli_support.load_spec", lambda env, project_dir: spec())
    boto3.client("ecr", region_name=REGION).put_image_tag_mutability(
        repositoryName="dev-training", imageTagMutability="MUTABLE"
    )
    out = tmp_path / f"audit.{fmt}"
    result = runner.invoke(app, ["audit", ENV, "--format", fmt, "--output", str(out)])
    assert result.exit_code == 1, result.output
    text = out.read_text()
    assert "ecr-immutable-tags" in text and "dev-training" in text
    assert "dev-datasets" not in text or fmt in ("json", "junit")  # passing rows only in complete formats
    if fmt == "sarif":
        [run] = json.loads(text)["runs"]
        assert [r["ruleId"] for r in run["results"]] == ["ecr-immutable-tags"]


def test_credentials_for_another_account_stop_the_audit(account: dict[str, str], cli_aws: dict) -> None:
    result = runner.invoke(app, ["audit", ENV])  # the shipped dev stack names account 111122223333
    assert_clean_failure(result, 2, "credentials are for account 123456789012")


def test_no_credentials_give_one_clear_line(no_credentials: None) -> None:
    result = runner.invoke(app, ["audit", ENV])
    assert_clean_failure(result, 2, "no AWS credentials found")


def test_expired_credentials_give_one_clear_line(moto: None, cli_aws: dict[str, Any]) -> None:
    sts = boto3.client("sts", region_name=REGION)
    stub = Stubber(sts)
    stub.add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired", 403
    )
    stub.activate()
    cli_aws["sts"] = sts
    result = runner.invoke(app, ["audit", ENV])
    assert result.exit_code == 2
    assert "expired" in result.output and "aws sso login" in result.output


def test_pipeline_roles_carry_the_pipeline_boundary(account: dict[str, str]) -> None:
    # The account foundation's roles (components/account.py) are bounded by its own boundary, not the platform's.
    iam = boto3.client("iam")
    pipeline_boundary = iam.create_policy(
        PolicyName=f"{ENV}-mlstack-pipeline-permission-boundary",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    tags = [{"Key": k, "Value": v} for k, v in TAGS.items()]
    iam.create_role(
        RoleName="dev-mlstack-deploy",
        AssumeRolePolicyDocument="{}",
        PermissionsBoundary=pipeline_boundary,
        Tags=tags,
    )
    iam.create_role(
        RoleName="dev-mlstack-audit", AssumeRolePolicyDocument="{}", PermissionsBoundary=BOUNDARY, Tags=tags
    )
    report = audit()
    assert drift(report) == {("iam-boundary", "dev-mlstack-audit")}
    [wrong] = [r for r in report.results if r.subject == "dev-mlstack-audit"]
    assert pipeline_boundary in wrong.message
