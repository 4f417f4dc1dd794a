"""preflight: offerings from moto, quotas and EKS versions from Stubber, failures with exact remediation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from components.cluster import eks_cluster_name
from components.environment import Environment
from mlstack.catalog import eks_addon_versions, gpu_catalog
from mlstack.cli import app
from mlstack.live.aws import Aws, LiveError
from mlstack.live.bootstrap import state_bucket_name
from mlstack.live.preflight import QUOTAS, Preflight, quota_needs
from mlstack.live.report import Report, Status
from mlstack.project import find_project
from mlstack.spec import PlatformSpec
from mlstack.spec.gpu import GpuPoolSpec
from tests.cli import assert_clean_failure
from tests.live.conftest import ACCOUNT, REGION

G_ON_DEMAND = QUOTAS[("G", "on-demand")].code
G_SPOT = QUOTAS[("G", "spot")].code
P_ON_DEMAND = QUOTAS[("P", "on-demand")].code
P_SPOT = QUOTAS[("P", "spot")].code
runner = CliRunner()
# What GetServiceQuota returns as UsageMetric for the EC2 vCPU quotas (the AWS/Usage ResourceCount metric and
# its dimensions, as recorded in public get-service-quota / list-service-quotas outputs).
USAGE_CLASS = {G_ON_DEMAND: "G/OnDemand", P_ON_DEMAND: "P/OnDemand", G_SPOT: "G/Spot", P_SPOT: "P/Spot"}


def usage_metric(code: str) -> dict[str, Any]:
    return {
        "MetricNamespace": "AWS/Usage",
        "MetricName": "ResourceCount",
        "MetricDimensions": {
            "Class": USAGE_CLASS[code],
            "Resource": "vCPU",
            "Service": "EC2",
            "Type": "Resource",
        },
        "MetricStatisticRecommendation": "Maximum",
    }


def put_usage(usage: dict[str, float], minutes_ago: int = 2) -> None:
    """Publish the quotas' current vCPU usage into moto's CloudWatch, as AWS does every minute."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for code, value in usage.items():
        dimensions = [{"Name": k, "Value": v} for k, v in usage_metric(code)["MetricDimensions"].items()]
        cloudwatch.put_metric_data(
            Namespace="AWS/Usage",
            MetricData=[
                {"MetricName": "ResourceCount", "Dimensions": dimensions, "Value": value, "Timestamp": when}
            ],
        )


def dev_spec(**pools: Any) -> PlatformSpec:
    """The shipped dev stack, moved into moto's account, with the given pools (default: the shipped ones)."""
    _, spec = find_project(Path(__file__).parent).load("dev")
    update: dict[str, Any] = {"account_id": ACCOUNT}
    if pools:
        update["gpu_pools"] = [GpuPoolSpec(name=name, **fields) for name, fields in pools.items()]
    return spec.model_copy(update=update)


def quota_client(values: dict[str, float | str]) -> Any:
    """A service-quotas client answering each quota code with a value, or with 'denied'."""
    client = boto3.client("service-quotas", region_name=REGION)
    stub = Stubber(client)
    for code in sorted(values):
        params = {"ServiceCode": "ec2", "QuotaCode": code}
        if values[code] == "denied":
            stub.add_client_error(
                "get_service_quota", "AccessDeniedException", "no", 400, expected_params=params
            )
        else:
            quota = {
                "ServiceCode": "ec2",
                "QuotaCode": code,
                "Value": values[code],
                "UsageMetric": usage_metric(code),
            }
            stub.add_response("get_service_quota", {"Quota": quota}, params)
    stub.activate()
    return client


# Configuration schemas in the shape DescribeAddonConfiguration returns (a JSON Schema document as a string).
# Written for these tests, not copied from EKS: each allows exactly the keys mlstack sets, typed as mlstack sets
# them, and no others, so a test can tell an allowed key from a refused one.
ALLOWING = {
    "coredns": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {"tolerations": {"type": "array", "items": {"type": "object"}}},
    },
    "vpc-cni": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {"enableNetworkPolicy": {"type": "string", "enum": ["true", "false"]}},
    },
    "aws-ebs-csi-driver": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "controller": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"nodeSelector": {"type": "object"}},
            }
        },
    },
}


def eks_client(versions: dict[str, str], schemas: dict[str, Any] | None = None) -> Any:
    """An EKS client answering DescribeClusterVersions, then DescribeAddonConfiguration for each configured add-on
    at the version pinned for Kubernetes 1.34 (a schema dict, None for no schema, or 'denied')."""
    from components.cluster import ADDON_CONFIGURATION

    client = boto3.client("eks", region_name=REGION)
    stub = Stubber(client)
    entries = [{"clusterVersion": v, "versionStatus": s} for v, s in versions.items()]
    stub.add_response("describe_cluster_versions", {"clusterVersions": entries}, {"clusterType": "eks"})
    answers = {**ALLOWING, **(schemas or {})}
    pinned = eks_addon_versions()["1.34"]
    for addon in sorted(ADDON_CONFIGURATION):
        params = {"addonName": addon, "addonVersion": pinned[addon]}
        answer = answers[addon]
        if answer == "denied":
            stub.add_client_error(
                "describe_addon_configuration", "AccessDeniedException", "denied", 403, expected_params=params
            )
            continue
        body: dict[str, Any] = {"addonName": addon, "addonVersion": pinned[addon]}
        if answer is not None:
            body["configurationSchema"] = json.dumps(answer)
        stub.add_response("describe_addon_configuration", body, params)
    stub.activate()
    return client


ALL_ACTIVE = {"environment": "Active", "cost-center": "Active", "team-cost-center": "Active"}


def ce_client(tags: dict[str, str] | str) -> Any:
    """A Cost Explorer client answering ListCostAllocationTags with ``tags`` (key -> status), or 'denied'."""
    client = boto3.client("ce", region_name="us-east-1")
    stub = Stubber(client)
    params = {"TagKeys": ["environment", "cost-center", "team-cost-center"], "Type": "UserDefined"}
    if tags == "denied":
        stub.add_client_error(
            "list_cost_allocation_tags", "AccessDeniedException", "no", 400, expected_params=params
        )
    else:
        assert isinstance(tags, dict)
        answer = [{"TagKey": k, "Type": "UserDefined", "Status": v} for k, v in tags.items()]
        stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": answer}, params)
    stub.activate()
    return client


def run(
    spec: PlatformSpec,
    quotas: dict[str, float | str],
    versions: dict[str, str] | None = None,
    usage: dict[str, float] | None = None,
    tags: dict[str, str] | str | None = None,
    schemas: dict[str, Any] | None = None,
) -> Report:
    """Preflight with the given quota values and, by default, nothing else in the account using them."""
    put_usage({code: 0.0 for code in quotas} if usage is None else usage)
    overrides = {
        "service-quotas": quota_client(quotas),
        "eks": eks_client(versions or {"1.34": "STANDARD_SUPPORT"}, schemas),
        "ce": ce_client(ALL_ACTIVE if tags is None else tags),
    }
    aws = Aws(boto3.session.Session(), spec.region, overrides)
    return Preflight(aws, spec, gpu_catalog()).run()


def by_rule(report: Report, rule: str) -> list:
    return [r for r in report.results if r.rule == rule]


# The shipped dev stack's one SSO client (notebooks.sso, default client_secret_id).
HUB_SECRET = "mlstack/dev/sso/jupyterhub"


@pytest.fixture
def backend(moto: None) -> str:
    bucket = state_bucket_name(ACCOUNT, REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=HUB_SECRET, SecretString='{"client-id": "hub", "client-secret": "s3cr3t"}'
    )
    return bucket


def test_dev_stack_passes_when_types_are_offered_and_quotas_suffice(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512})
    assert {r.status for r in report.results} == {Status.PASS}, report.results
    assert {r.rule for r in report.results} == {
        "credentials",
        "region",
        "zones",
        "offering",
        "quota",
        "kubernetes-version",
        "addon-configuration",
        "backend",
        "cost-allocation-tags",
        "sso-secrets",
    }
    assert report.exit_code() == 0


def _secrets_client(calls: list[str]) -> Any:
    """A real (moto) Secrets Manager client that records every operation preflight makes with it."""
    client = boto3.client("secretsmanager", region_name=REGION)
    client.meta.events.register("before-call.secretsmanager.*", lambda model, **_: calls.append(model.name))
    return client


def test_sso_secrets_are_described_never_read(backend: str) -> None:
    calls: list[str] = []
    spec = dev_spec()
    put_usage({G_ON_DEMAND: 0.0, G_SPOT: 0.0})
    aws = Aws(
        boto3.session.Session(),
        spec.region,
        {
            "service-quotas": quota_client({G_ON_DEMAND: 512, G_SPOT: 512}),
            "eks": eks_client({"1.34": "STANDARD_SUPPORT"}),
            "ce": ce_client(ALL_ACTIVE),
            "secretsmanager": _secrets_client(calls),
        },
    )
    [row] = by_rule(Preflight(aws, spec, gpu_catalog()).run(), "sso-secrets")
    assert row.status is Status.PASS and row.subject == f"jupyterhub: {HUB_SECRET}"
    assert calls == ["DescribeSecret"]


def test_a_missing_sso_secret_fails_with_the_create_command(moto: None) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=state_bucket_name(ACCOUNT, REGION))
    [row] = by_rule(run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}), "sso-secrets")
    assert row.status is Status.FAIL and "notebooks.sso.client_secret_id" in row.message
    assert f"create-secret --region {REGION} --name {HUB_SECRET}" in row.remediation
    assert "file://" in row.remediation  # the value never goes on a command line


def test_an_sso_secret_scheduled_for_deletion_fails(backend: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=HUB_SECRET, RecoveryWindowInDays=7
    )
    [row] = by_rule(run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}), "sso-secrets")
    assert row.status is Status.FAIL and "scheduled for deletion" in row.message
    assert "restore-secret" in row.remediation


def test_an_sso_secret_under_a_key_the_operator_may_not_use_fails(moto: None) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=state_bucket_name(ACCOUNT, REGION))
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=HUB_SECRET, SecretString="{}", KmsKeyId=key["KeyId"]
    )
    [row] = by_rule(run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}), "sso-secrets")
    assert row.status is Status.FAIL and "external_secrets.kms_key_arn" in row.remediation
    spec = dev_spec()
    named = spec.model_copy(
        update={"external_secrets": spec.external_secrets.model_copy(update={"kms_key_arn": key["Arn"]})}
    )
    [row] = by_rule(run(named, {G_ON_DEMAND: 512, G_SPOT: 512}), "sso-secrets")
    assert row.status is Status.PASS


def test_denied_describe_secret_is_not_checked_never_passed(backend: str) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    stub = Stubber(client)
    stub.add_client_error("describe_secret", "AccessDeniedException", http_status_code=400)
    stub.activate()
    spec = dev_spec()
    put_usage({G_ON_DEMAND: 0.0, G_SPOT: 0.0})
    aws = Aws(
        boto3.session.Session(),
        spec.region,
        {
            "service-quotas": quota_client({G_ON_DEMAND: 512, G_SPOT: 512}),
            "eks": eks_client({"1.34": "STANDARD_SUPPORT"}),
            "ce": ce_client(ALL_ACTIVE),
            "secretsmanager": client,
        },
    )
    [row] = by_rule(Preflight(aws, spec, gpu_catalog()).run(), "sso-secrets")
    assert row.status is Status.NOT_CHECKED and "secretsmanager:DescribeSecret" in row.message


def test_inactive_team_tag_fails_when_team_budgets_filter_on_it(backend: str) -> None:
    base = dev_spec()
    team = base.teams[0].name
    spec = base.model_copy(
        update={"budgets": base.budgets.model_copy(update={"team_limits_usd": {team: 100.0}})}
    )
    report = run(spec, {G_ON_DEMAND: 512, G_SPOT: 512}, tags={**ALL_ACTIVE, "team-cost-center": "Inactive"})
    (row,) = [r for r in by_rule(report, "cost-allocation-tags") if r.subject == "team-cost-center"]
    assert row.status is Status.FAIL
    assert "TagKey=team-cost-center,Status=Active" in row.remediation
    assert report.exit_code() == 1


def test_a_tag_not_yet_billed_fails_for_the_environment_budget_and_warns_otherwise(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, tags={"cost-center": "Active"})
    rows = {r.subject: r.status for r in by_rule(report, "cost-allocation-tags")}
    # dev has no team budgets, so an unbilled team-cost-center only warns.
    assert rows == {"environment": Status.FAIL, "cost-center": Status.PASS, "team-cost-center": Status.WARN}


def test_denied_cost_explorer_is_not_checked_never_passed(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, tags="denied")
    (row,) = by_rule(report, "cost-allocation-tags")
    assert row.status is Status.NOT_CHECKED and "ce:ListCostAllocationTags" in row.message


def test_quota_needs_count_each_purchase_option_at_the_pool_maximum() -> None:
    needs, unclassified = quota_needs(dev_spec().gpu_pools, gpu_catalog())
    g5 = gpu_catalog().family_types("g5") + gpu_catalog().family_types("g6")
    widest = max(t.vcpus / t.gpu_count for t in g5)
    leanest = min(t.vcpus / t.gpu_count for t in g5)
    # spot-preferred: both quotas must hold the whole pool, since spot can run dry
    assert needs == {
        QUOTAS[("G", "spot")]: (int(leanest * 4), int(widest * 4)),
        QUOTAS[("G", "on-demand")]: (int(leanest * 4), int(widest * 4)),
    }
    assert not unclassified


def test_quota_too_small_fails_with_the_increase_command(backend: str) -> None:
    spec = dev_spec(
        train={
            "workload_class": "training",
            "instance_types": ["p5"],
            "capacity_type": "on-demand",
            "max_gpus": 16,
        }
    )
    report = run(spec, {P_ON_DEMAND: 0})
    quota = by_rule(report, "quota")
    assert [(r.subject.split()[0], r.status) for r in quota] == [(P_ON_DEMAND, Status.FAIL)]
    p5 = gpu_catalog().family_types("p5")
    most = int(max(t.vcpus / t.gpu_count for t in p5) * 16)
    assert quota[0].remediation == (
        f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {P_ON_DEMAND} "
        f"--desired-value {most} --region {REGION}"
    )
    assert report.exit_code() == 1


def _launch(count: int, instance_type: str, tags: dict[str, str]) -> None:
    boto3.client("ec2", region_name=REGION).run_instances(
        ImageId="ami-12c6146b",
        InstanceType=instance_type,
        MinCount=count,
        MaxCount=count,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )


def test_quota_usage_leaves_out_the_stacks_own_gpu_nodes(backend: str) -> None:
    # Preflight runs before every deploy: the pool's own running nodes are part of its need at the maximum, so
    # they must not also count as usage that competes with it.
    spec = dev_spec(
        infer={
            "workload_class": "inference",
            "instance_types": ["g6.xlarge"],
            "capacity_type": "on-demand",
            "max_gpus": 4,
        }
    )
    most = 4 * 4  # g6.xlarge: 4 vCPUs per GPU
    cluster = eks_cluster_name(Environment.from_spec(spec))
    _launch(2, "g6.xlarge", {"eks:eks-cluster-name": cluster, "karpenter.sh/nodepool": "infer"})  # 8 vCPUs
    _launch(1, "g6.xlarge", {"eks:eks-cluster-name": "other-cluster", "karpenter.sh/nodepool": "infer"})  # 4
    report = run(spec, {G_ON_DEMAND: most + 4}, usage={G_ON_DEMAND: 12.0})
    [row] = by_rule(report, "quota")
    assert row.status is Status.PASS, row
    assert row.message.startswith(f"{most + 4} vCPUs, 4 in use (this stack's GPU nodes' 8 left out), 16 free")
    # Left in, the same account would have read 12 in use and 8 free: a FAIL that blocks the deploy.


def test_quota_between_leanest_and_widest_types_warns(backend: str) -> None:
    spec = dev_spec(
        infer={
            "workload_class": "inference",
            "instance_types": ["g6"],
            "capacity_type": "spot",
            "max_gpus": 4,
        }
    )
    report = run(spec, {G_SPOT: 32})
    assert [r.status for r in by_rule(report, "quota")] == [Status.WARN]
    assert report.exit_code() == 0


def test_type_offered_in_no_chosen_zone_fails_and_names_the_zones_that_offer_it(backend: str) -> None:
    spec = dev_spec(
        big={
            "workload_class": "training",
            "instance_types": ["p5en.48xlarge"],
            "capacity_type": "on-demand",
            "max_gpus": 8,
        },
        other={
            "workload_class": "training",
            "instance_types": ["p5e.48xlarge"],
            "capacity_type": "on-demand",
            "max_gpus": 8,
        },
    )
    spec = spec.model_copy(
        update={
            "network": spec.network.model_copy(update={"availability_zones": ["us-east-1b", "us-east-1d"]})
        }
    )
    report = run(spec, {P_ON_DEMAND: 10_000})
    offering = {r.subject: r for r in by_rule(report, "offering")}
    en = offering["gpu_pools[0] big: p5en.48xlarge"]
    assert en.status is Status.FAIL
    assert "us-east-1a, us-east-1c" in en.remediation
    e = offering["gpu_pools[1] other: p5e.48xlarge"]
    assert e.status is Status.FAIL and "not offered in this region" in e.remediation
    assert report.exit_code() == 1


def test_type_offered_in_some_chosen_zones_warns(backend: str) -> None:
    spec = dev_spec(
        big={
            "workload_class": "training",
            "instance_types": ["p5en.48xlarge"],
            "capacity_type": "on-demand",
            "max_gpus": 8,
        }
    )
    report = run(spec, {P_ON_DEMAND: 10_000})
    [offering] = by_rule(report, "offering")
    assert offering.status is Status.WARN and "not in us-east-1b" in offering.message


def test_unsupported_kubernetes_version_fails_and_extended_support_warns(backend: str) -> None:
    fail = run(
        dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, {"1.32": "STANDARD_SUPPORT", "1.33": "STANDARD_SUPPORT"}
    )
    [version] = by_rule(fail, "kubernetes-version")
    assert version.status is Status.FAIL and version.remediation.endswith("1.32, 1.33")
    warn = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, {"1.34": "EXTENDED_SUPPORT"})
    assert [r.status for r in by_rule(warn, "kubernetes-version")] == [Status.WARN]


def test_addon_configuration_passes_when_the_pinned_schemas_allow_it(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512})
    rows = {r.subject.split()[0]: r for r in by_rule(report, "addon-configuration")}
    pinned = eks_addon_versions()["1.34"]
    assert rows["coredns"].subject == f"coredns {pinned['coredns']}"
    assert (
        rows["coredns"].status is Status.PASS
        and rows["coredns"].message == "tolerations allowed by the schema"
    )
    assert rows["vpc-cni"].status is Status.PASS


def test_addon_configuration_the_schema_refuses_fails_with_the_key(backend: str) -> None:
    # A coredns version whose schema has no `tolerations`: CreateAddon would refuse the add-on's values.
    without = {**ALLOWING["coredns"], "properties": {"replicaCount": {"type": "integer"}}}
    # A vpc-cni schema that wants a boolean where mlstack sends the string "true".
    boolean = {**ALLOWING["vpc-cni"], "properties": {"enableNetworkPolicy": {"type": "boolean"}}}
    report = run(
        dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, schemas={"coredns": without, "vpc-cni": boolean}
    )
    rows = {r.subject.split()[0]: r for r in by_rule(report, "addon-configuration")}
    assert rows["coredns"].status is Status.FAIL and "'tolerations' was unexpected" in rows["coredns"].message
    assert "ADDON_CONFIGURATION" in rows["coredns"].remediation
    assert rows["vpc-cni"].status is Status.FAIL and "enableNetworkPolicy: 'true' is not of type" in (
        rows["vpc-cni"].message
    )
    assert report.exit_code() == 1


def test_addon_configuration_without_a_schema_fails_and_denied_is_not_checked(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, schemas={"coredns": None, "vpc-cni": "denied"})
    rows = {r.subject.split()[0]: r for r in by_rule(report, "addon-configuration")}
    assert rows["coredns"].status is Status.FAIL and "no configuration schema" in rows["coredns"].message
    assert rows["vpc-cni"].status is Status.NOT_CHECKED
    assert rows["vpc-cni"].message == "eks:DescribeAddonConfiguration denied"


def test_missing_backend_fails_with_bootstrap_remediation(moto: None) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512})
    [backend] = by_rule(report, "backend")
    assert backend.status is Status.FAIL and backend.remediation.startswith("mlstack bootstrap")


def test_denied_quota_is_not_checked_never_passed(backend: str) -> None:
    report = run(dev_spec(), {G_ON_DEMAND: "denied", G_SPOT: 512})
    statuses = {r.subject.split()[0]: r for r in by_rule(report, "quota")}
    assert statuses[G_ON_DEMAND].status is Status.NOT_CHECKED
    assert statuses[G_ON_DEMAND].message == "servicequotas:GetServiceQuota denied"
    assert statuses[G_SPOT].status is Status.PASS
    assert report.exit_code() == 3


def test_wrong_account_stops_preflight(backend: str) -> None:
    spec = dev_spec().model_copy(update={"account_id": "999999999999"})
    with pytest.raises(LiveError, match="999999999999"):
        Preflight(Aws(boto3.session.Session(), REGION), spec, gpu_catalog()).run()


def test_cli_wrong_account_exits_2_with_one_error_line(moto: None, cli_aws: dict) -> None:
    # The shipped dev stack names account 111122223333; moto answers 123456789012.
    result = runner.invoke(app, ["preflight", "dev", "--format", "json"])
    assert_clean_failure(result, 2, "are for account 123456789012")


def test_no_credentials_exit_2_with_one_error_line(no_credentials: None, tmp_path: Path) -> None:
    out = tmp_path / "preflight.json"
    result = runner.invoke(app, ["preflight", "dev", "--format", "json", "--output", str(out)])
    assert_clean_failure(result, 2, "no AWS credentials found")
    assert not out.exists()


def test_cli_reports_failures_with_remediation_and_exit_code(
    moto: None, cli_aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped_account = find_project(Path(__file__).parent).load("dev")[1].account_id
    monkeypatch.setenv("MOTO_ACCOUNT_ID", shipped_account)  # run the shipped dev stack file unchanged
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=state_bucket_name(shipped_account, REGION))
    cli_aws["service-quotas"] = quota_client({G_ON_DEMAND: 1, G_SPOT: 1})
    cli_aws["eks"] = eks_client({"1.34": "STANDARD_SUPPORT"})
    cli_aws["ce"] = ce_client(ALL_ACTIVE)
    result = runner.invoke(app, ["preflight", "dev", "--format", "markdown"])
    assert result.exit_code == 1, result.output
    assert f"| fail | quota | {G_ON_DEMAND}" in result.output
    assert f"--quota-code {G_SPOT} --desired-value" in result.output
    assert "| credentials |" not in result.output  # passing rows stay out of the PR comment


@pytest.mark.parametrize("command", ["preflight", "audit"])
def test_an_unwritable_output_stops_before_any_aws_call(
    no_credentials: None, tmp_path: Path, command: str
) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")
    result = runner.invoke(app, [command, "dev", "-o", str(a_file / "report.txt")])
    # Without credentials a run that reached AWS would report that instead; the output path is checked first.
    assert_clean_failure(result, 2, f"cannot create the output directory {a_file} (--output)")
    assert "credentials" not in result.output


def test_denied_instance_lookup_keeps_own_nodes_as_usage_and_says_so(moto: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    stub = Stubber(ec2)
    stub.add_client_error("describe_instances", "UnauthorizedOperation", "no", 403)
    stub.activate()
    preflight = Preflight(Aws(boto3.session.Session(), REGION, {"ec2": ec2}), dev_spec(), gpu_catalog())
    own, denied = preflight._own_usage()
    assert own == {} and denied is not None and denied.permission == "ec2:DescribeInstances"
