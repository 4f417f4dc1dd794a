"""One test per row of the 2026-11-30 live-tooling review (issue 22); each failed on the code it reviewed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ConnectTimeoutError, CredentialRetrievalError
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from mlstack.catalog import gpu_catalog
from mlstack.cli import app
from mlstack.live.audit import Audit
from mlstack.live.aws import Aws, LiveError
from mlstack.live.bootstrap import (
    DEFAULT_ALIAS,
    LIFECYCLE_RULE_ID,
    bootstrap,
    state_bucket_name,
)
from mlstack.live.preflight import QUOTAS, quota_needs
from mlstack.live.report import Status
from mlstack.project import find_project
from tests.cli import assert_clean_failure
from tests.live.conftest import ACCOUNT, REGION
from tests.live.plan_account import serve_cache_rules

runner = CliRunner()
BUCKET = state_bucket_name(ACCOUNT, REGION)


def dev_spec() -> Any:

    return find_project(Path(__file__).parent).load("dev")[1].model_copy(update={"account_id": ACCOUNT})


def _session() -> boto3.session.Session:
    session = boto3.session.Session()
    serve_cache_rules(session, {REGION: ["ecr-public"]})
    return session


def _repo(name: str, **kwargs: Any) -> None:
    boto3.client("ecr", region_name=REGION).create_repository(
        repositoryName=name, tags=[{"Key": "environment", "Value": "dev"}], **kwargs
    )


# --- audit -----------------------------------------------------------------------------------------------


def test_row2_pull_through_cache_repository_is_an_exception_not_drift(moto: None) -> None:
    _repo("ecr-public/library/busybox", imageTagMutability="MUTABLE")
    _repo("dev/hand-made", imageTagMutability="MUTABLE")
    report = Audit(Aws(_session(), REGION), dev_spec()).run()
    by = {(r.rule, r.subject): r for r in report.results}
    assert by[("ecr-immutable-tags", "ecr-public/library/busybox")].status is Status.PASS
    assert by[("ecr-scanning", "ecr-public/library/busybox")].status is Status.PASS
    assert by[("ecr-immutable-tags", "dev/hand-made")].status is Status.FAIL


def test_row4_immutable_with_exclusion_is_drift(moto: None) -> None:
    _repo(
        "dev/training",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "*"}],
        imageScanningConfiguration={"scanOnPush": True},
    )
    report = Audit(Aws(_session(), REGION), dev_spec()).run()
    [result] = [r for r in report.results if r.rule == "ecr-immutable-tags"]
    assert result.status is Status.FAIL and "*" in result.message


def test_row5_enhanced_rule_whose_filter_excludes_the_repository_is_drift(moto: None) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}],
            }
        ],
    )
    _repo("dev/training", imageTagMutability="IMMUTABLE", imageScanningConfiguration={"scanOnPush": True})
    report = Audit(Aws(_session(), REGION), dev_spec()).run()
    [result] = [r for r in report.results if r.rule == "ecr-scanning"]
    assert result.status is Status.FAIL and "scanning disabled" in result.message


def test_row5_filter_semantics_follow_the_ecr_user_guide() -> None:
    from mlstack.live.audit import effective_scanning, scan_filter_matches

    # The table of "Filters to choose which repositories are scanned in Amazon ECR".
    names = ["prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo"]
    table = {
        "prod": [True, True, True, True, True],
        "*prod": [True, True, False, False, False],
        "prod*": [True, False, True, False, True],
        "*prod*": [True, True, True, True, True],
        "prod*repo": [False, False, True, False, True],
    }
    for pattern, expected in table.items():
        assert [scan_filter_matches(pattern, n) for n in names] == expected, pattern
    assert effective_scanning(
        {"repositoryName": "dev/x", "imageScanningConfiguration": {"scanOnPush": True}},
        {"scanType": "BASIC", "rules": []},
    )[0]


def test_row13_stale_tagging_entry_is_skipped(moto: None) -> None:
    session = _session()

    def with_stale_bucket(
        parsed: dict[str, Any], params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        # GetResources lists "tagged or previously tagged resources": a deleted bucket may still appear.
        if kwargs["model"].name == "GetResources":
            parsed["ResourceTagMappingList"].append(
                {"ResourceARN": "arn:aws:s3:::dev-deleted-bucket", "Tags": []}
            )

    session.events.register("after-call.resource-groups-tagging-api.GetResources", with_stale_bucket)
    report = Audit(Aws(session, REGION), dev_spec()).run()
    assert all("dev-deleted-bucket" not in r.subject for r in report.results)


def test_row13_unexpected_client_error_is_one_line_exit_2(
    moto: None, cli_aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = boto3.client("iam")
    stub = Stubber(iam)
    stub.add_client_error("list_roles", "ServiceFailure", "internal error", 500)
    stub.activate()
    cli_aws["iam"] = iam
    spec = dev_spec()
    import mlstack.live.cli_support as support

    # The fixture undoes the patch after the test; a bare MonkeyPatch() leaked it into every later CLI test.
    monkeypatch.setattr(support, "load_spec", lambda env, project_dir: spec)
    result = runner.invoke(app, ["audit", "dev"])
    assert_clean_failure(result, 2, "error:", "ListRoles failed: ServiceFailure")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectTimeoutError(endpoint_url="https://sts.us-east-1.amazonaws.com"),
        CredentialRetrievalError(provider="custom-process", error_msg="exit status 1"),
    ],
)
@pytest.mark.parametrize("command", [["audit", "dev"], ["preflight", "dev"], ["bootstrap"]])
def test_row14_transport_and_credential_process_errors_exit_2(
    moto: None, cli_aws: dict, exc: Exception, command: list[str]
) -> None:
    sts = boto3.client("sts", region_name=REGION)

    def fail(**kwargs: Any) -> None:
        raise exc

    sts.meta.events.register("before-call.sts.GetCallerIdentity", fail)
    cli_aws["sts"] = sts
    result = runner.invoke(app, command)
    assert_clean_failure(result, 2, "error:")
    assert result.output.count("error:") == 1


def test_row20_replica_region_is_audited(moto: None) -> None:
    spec = dev_spec().model_copy(
        update={"storage": dev_spec().storage.model_copy(update={"models_replication_region": "us-west-2"})}
    )
    kms = boto3.client("kms", region_name="us-west-2")
    key = kms.create_key(Tags=[{"TagKey": "environment", "TagValue": "dev"}])["KeyMetadata"]
    report = Audit(Aws(_session(), REGION), spec).run()
    [result] = [r for r in report.results if r.subject == key["Arn"]]
    assert result.status is Status.FAIL  # rotation off, in us-west-2


def test_row27_key_with_imported_material_is_not_rotation_drift(moto: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Origin="EXTERNAL", Tags=[{"TagKey": "environment", "TagValue": "dev"}])[
        "KeyMetadata"
    ]
    report = Audit(Aws(_session(), REGION), dev_spec()).run()
    [result] = [r for r in report.results if r.subject == key["Arn"]]
    assert result.status is Status.WARN and "EXTERNAL" in result.message


# --- preflight -------------------------------------------------------------------------------------------


def test_row6_efa_pool_needs_are_counted_on_its_efa_sizes() -> None:
    spec = dev_spec()
    pool = spec.gpu_pools[0].model_copy(update={"instance_types": ["g5"], "efa": True, "max_gpus": 8})
    needs, _ = quota_needs([pool], gpu_catalog())
    least = min(low for low, _ in needs.values())
    efa_sizes = [t for t in gpu_catalog().expand("g5") if t.efa]
    assert least == min(t.vcpus // t.gpu_count for t in efa_sizes) * 8
    assert least > 32


def test_row9_disabled_region_is_reported_not_a_credentials_error(
    moto: None, cli_aws: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    stub.add_response(
        "describe_regions", {"Regions": [{"RegionName": "us-east-1", "OptInStatus": "not-opted-in"}]}
    )
    stub.activate()
    cli_aws["ec2"] = ec2
    spec = dev_spec()
    import mlstack.live.cli_support as support

    # The fixture undoes the patch after the test; a bare MonkeyPatch() leaked it into every later CLI test.
    monkeypatch.setattr(support, "load_spec", lambda env, project_dir: spec)
    result = runner.invoke(app, ["preflight", "dev", "--format", "json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    region = next(r for r in document["results"] if r["rule"] == "region")
    assert region["status"] == "fail" and "enable-region" in region["remediation"]
    assert {r["status"] for r in document["results"][2:]} == {"not checked"}


# --- bootstrap -------------------------------------------------------------------------------------------


def test_row11_every_bucket_call_names_the_expected_owner(aws: Aws) -> None:
    seen: list[tuple[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        seen.append((model.name, params.get("ExpectedBucketOwner")))

    aws.session.events.register("provide-client-params.s3.*", record)
    bootstrap(aws)
    calls = [
        (name, owner) for name, owner in seen if name != "CreateBucket"
    ]  # CreateBucket has no such field
    assert calls and all(owner == ACCOUNT for _, owner in calls), calls


def test_row12_bucket_in_another_region_is_refused(moto: None) -> None:
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )

    with pytest.raises(LiveError, match="exists in eu-west-1"):
        bootstrap(Aws(boto3.session.Session(), REGION))


def test_row15_disabled_own_rule_is_replaced_not_duplicated(aws: Aws) -> None:
    bootstrap(aws)
    s3 = boto3.client("s3", region_name=REGION)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    for rule in rules:
        rule["Status"] = "Disabled"
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})
    bootstrap(aws, fix=True)
    ids = [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]]
    assert ids.count(LIFECYCLE_RULE_ID) == 1


def test_row16_a_run_that_stopped_after_create_bucket_is_finished_by_the_next(aws: Aws) -> None:
    s3 = aws.client("s3")

    def stop(**kwargs: Any) -> None:
        raise CredentialRetrievalError(provider="test", error_msg="stopped half-way")

    s3.meta.events.register_first("before-call.s3.PutBucketVersioning", stop)
    with pytest.raises(LiveError):
        bootstrap(aws)
    s3.meta.events.unregister("before-call.s3.PutBucketVersioning", stop)
    second = bootstrap(aws)
    assert second.applied and second.repairs == []
    assert bootstrap(aws).changes == []


def test_row16_key_created_without_alias_is_reused(aws: Aws) -> None:
    kms = aws.client("kms")

    def stop(**kwargs: Any) -> None:
        raise CredentialRetrievalError(provider="test", error_msg="stopped half-way")

    kms.meta.events.register_first("before-call.kms.CreateAlias", stop)
    with pytest.raises(LiveError):
        bootstrap(aws)
    kms.meta.events.unregister("before-call.kms.CreateAlias", stop)
    bootstrap(aws)
    keys = boto3.client("kms", region_name=REGION).list_keys()["Keys"]
    assert len(keys) == 1


def test_row17_aws_region_alone_is_honoured(monkeypatch: pytest.MonkeyPatch, credentials: None) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Aws.connect().region == "eu-west-1"


def test_row18_foreign_bucket_never_gets_an_expiry_rule(aws: Aws) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="someone-elses-state")
    result = bootstrap(aws, bucket="someone-elses-state", fix=True)
    assert "lifecycle" not in {c.setting for c in result.changes}


def test_row23_missing_key_is_created_while_a_bucket_repair_waits(aws: Aws) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="existing-state")
    result = bootstrap(aws, bucket="existing-state")
    assert result.repairs and not result.applied
    assert _alias_exists()


def _alias_exists() -> bool:
    aliases = boto3.client("kms", region_name=REGION).list_aliases()["Aliases"]
    return any(a["AliasName"] == DEFAULT_ALIAS for a in aliases)


def test_row25_policy_repair_keeps_version_and_id(aws: Aws) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="existing-state")
    s3.put_bucket_policy(
        Bucket="existing-state",
        Policy=json.dumps(
            {
                "Version": "2008-10-17",
                "Id": "Legacy",
                "Statement": [
                    {
                        "Sid": "Read",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::existing-state/*",
                    }
                ],
            }
        ),
    )
    bootstrap(aws, bucket="existing-state", fix=True)
    document = json.loads(s3.get_bucket_policy(Bucket="existing-state")["Policy"])
    assert document["Version"] == "2008-10-17" and document["Id"] == "Legacy"
    assert [s["Sid"] for s in document["Statement"]] == ["Read", "DenyInsecureTransport"]


# --- workflows -------------------------------------------------------------------------------------------

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def test_row7_ci_preflight_checks_the_backend_pulumi_up_uses() -> None:
    stage = yaml.safe_load((WORKFLOWS / "deploy-stack.yml").read_text())
    steps = {step.get("name"): step for step in stage["jobs"]["deploy"]["steps"]}
    preflight = steps["Preflight"]
    assert '--backend-url "$BACKEND_URL"' in preflight["run"]
    assert "vars.PULUMI_BACKEND_URL" in preflight["env"]["BACKEND_URL"]
    assert steps["pulumi up with the policy pack"]["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_row7_pulumi_cloud_backend_does_not_make_preflight_incomplete(moto: None) -> None:
    from mlstack.live.preflight import Preflight

    spec = dev_spec()
    report = Preflight(Aws(boto3.session.Session(), REGION), spec, gpu_catalog(), "https://api.pulumi.com")
    [row] = report._backend()
    assert row.status is Status.WARN


def test_row10_drift_workflow_tells_outcomes_apart_and_files_once() -> None:
    """The nightly audit's exit code decides what is filed (drift, denied, broken), once per environment: the
    workflow hands the code to scripts/drift-issue.sh, which maps it and comments on an open issue instead of
    opening a second (tests/test_workflows.py runs the script against a fake gh)."""
    text = (WORKFLOWS / "drift.yml").read_text()
    assert "steps.audit.outcome" not in text
    job = yaml.safe_load(text)["jobs"]["guardrails"]
    filing = next(s for s in job["steps"] if s.get("name") == "File the outcome once per environment")["run"]
    assert filing.startswith("scripts/drift-issue.sh guardrails ")
    assert "steps.audit.outputs.code" in filing
    script = (WORKFLOWS.parent.parent / "scripts" / "drift-issue.sh").read_text()
    for code, outcome in (("0)", "clean"), ("1)", "drift"), ("3)", "denied"), ("*)", "broken")):
        assert f"{code} outcome={outcome} ;;" in script
    assert "gh issue list --state open" in script and "gh issue comment" in script


def test_row24_head_bucket_denied_stops_bootstrap_with_exit_3(moto: None, cli_aws: dict) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    stub.add_client_error(
        "head_bucket",
        "403",
        "Forbidden",
        403,
        expected_params={"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT},
    )
    stub.activate()
    cli_aws["s3"] = s3
    result = runner.invoke(app, ["bootstrap"])
    assert_clean_failure(result, 3, "s3:ListBucket denied, or the name belongs to another account")


# --- preflight: rows 19 and 22 (issue 18's list left them open) ---------------------------------------------


def _preflight_report(spec: Any, quotas: dict[str, float], usage: dict[str, float] | None) -> Any:
    from tests.live.test_preflight import run

    return run(spec, quotas, usage=usage)  # type: ignore[arg-type]


def _quota_rows(report: Any) -> dict[str, Any]:
    return {r.subject.split()[0]: r for r in report.results if r.rule == "quota"}


def test_row19_quota_less_current_usage_fails_when_the_rest_of_the_account_uses_it(moto: None) -> None:
    from tests.live.test_preflight import G_ON_DEMAND, G_SPOT

    # dev's pool needs 16 to 256 vCPUs of each G quota; 512 would pass on the raw value alone.
    report = _preflight_report(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, {G_ON_DEMAND: 500, G_SPOT: 0})
    rows = _quota_rows(report)
    on_demand = rows[G_ON_DEMAND]
    assert on_demand.status is Status.FAIL
    assert on_demand.message.startswith("512 vCPUs, 500 in use, 12 free; the pools at their maximum need")
    most = max(most for _, most in quota_needs(dev_spec().gpu_pools, gpu_catalog())[0].values())
    assert f"--quota-code {G_ON_DEMAND} --desired-value {500 + most} " in on_demand.remediation
    assert rows[G_SPOT].status is Status.PASS and "0 in use, 512 free" in rows[G_SPOT].message


def test_row19_quota_without_usage_data_says_so_and_does_not_pass(moto: None) -> None:
    from tests.live.test_preflight import G_ON_DEMAND, G_SPOT

    report = _preflight_report(dev_spec(), {G_ON_DEMAND: 512, G_SPOT: 512}, {})
    for row in _quota_rows(report).values():
        assert row.status is Status.WARN
        assert "only if nothing else used the quota" in row.message
        assert "no AWS/Usage ResourceCount data for the last 60 minutes" in row.message


def test_row19_usage_is_read_with_the_metric_service_quotas_names(moto: None) -> None:
    from mlstack.live.preflight import Preflight
    from tests.live.test_preflight import G_ON_DEMAND, put_usage, usage_metric

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stub = Stubber(cloudwatch)
    stub.add_response(
        "get_metric_statistics",
        {"Datapoints": [{"Timestamp": "2026-11-30T10:00:00Z", "Maximum": 7.0}]},
        {
            "Namespace": "AWS/Usage",
            "MetricName": "ResourceCount",
            "Dimensions": [
                {"Name": "Class", "Value": "G/OnDemand"},
                {"Name": "Resource", "Value": "vCPU"},
                {"Name": "Service", "Value": "EC2"},
                {"Name": "Type", "Value": "Resource"},
            ],
            "StartTime": ANY,
            "EndTime": ANY,
            "Period": 60,
            "Statistics": ["Maximum"],
        },
    )
    stub.activate()
    put_usage({})
    aws = Aws(boto3.session.Session(), REGION, {"cloudwatch": cloudwatch})
    usage = Preflight(aws, dev_spec(), gpu_catalog())._usage(usage_metric(G_ON_DEMAND))
    assert usage.value == 7.0
    stub.assert_no_pending_responses()


def test_row19_denied_usage_is_not_checked(moto: None) -> None:
    from mlstack.live.preflight import Preflight
    from tests.live.test_preflight import G_ON_DEMAND, usage_metric

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stub = Stubber(cloudwatch)
    stub.add_client_error("get_metric_statistics", "AccessDenied", "no", 403)
    stub.activate()
    aws = Aws(boto3.session.Session(), REGION, {"cloudwatch": cloudwatch})
    preflight = Preflight(aws, dev_spec(), gpu_catalog())
    usage = preflight._usage(usage_metric(G_ON_DEMAND))
    row = preflight._quota_result(QUOTAS[("G", "on-demand")], G_ON_DEMAND, 512, usage, 16, 256)
    assert row.status is Status.NOT_CHECKED and row.remediation.startswith(
        "grant cloudwatch:GetMetricStatistics"
    )


def _zoned_spec(*zones: str) -> Any:
    spec = dev_spec()
    network = spec.network.model_copy(update={"availability_zones": list(zones), "az_count": len(zones)})
    return spec.model_copy(update={"network": network})


def test_row22_a_zone_that_does_not_exist_is_a_zones_failure_not_an_offering_one(moto: None) -> None:
    from tests.live.test_preflight import G_ON_DEMAND, G_SPOT

    report = _preflight_report(_zoned_spec("us-east-1a", "us-east-1z"), {G_ON_DEMAND: 512, G_SPOT: 512}, None)
    zones = {r.subject: r for r in report.results if r.rule == "zones"}
    assert zones["us-east-1z"].status is Status.FAIL
    assert zones["us-east-1z"].message == "no such zone in us-east-1"
    assert "us-east-1a, us-east-1b" in zones["us-east-1z"].remediation
    assert zones["us-east-1a"].status is Status.PASS
    offering = [r for r in report.results if r.rule == "offering"]
    assert offering and not any("us-east-1z" in r.message for r in offering)


def _zones_stub(zones: list[dict[str, Any]], offered: dict[str, list[str]]) -> Any:
    ec2 = boto3.client("ec2", region_name=REGION)
    stub = Stubber(ec2)
    stub.add_response(
        "describe_availability_zones", {"AvailabilityZones": zones}, {"AllAvailabilityZones": True}
    )
    offerings = [
        {"InstanceType": t, "LocationType": "availability-zone", "Location": z}
        for t, zs in offered.items()
        for z in zs
    ]
    stub.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": offerings})
    stub.activate()
    return ec2


def _zone(
    name: str, state: str = "available", opt_in: str = "opt-in-not-required", **extra: Any
) -> dict[str, Any]:
    return {"ZoneName": name, "State": state, "OptInStatus": opt_in, "ZoneType": "availability-zone", **extra}


def test_row22_zone_state_opt_in_and_gpu_offerings_are_checked(moto: None) -> None:
    from mlstack.live.preflight import Preflight

    spec = _zoned_spec("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
    zones = [
        _zone("us-east-1a"),
        _zone("us-east-1b", "impaired", Messages=[{"Message": "power event"}]),
        _zone("us-east-1c", opt_in="not-opted-in", GroupName="us-east-1-group-c"),
        _zone("us-east-1d"),
    ]
    types = {t.name for s in spec.gpu_pools[0].instance_types for t in gpu_catalog().expand(s)}
    ec2 = _zones_stub(zones, {t: ["us-east-1a", "us-east-1b", "us-east-1c"] for t in types})
    rows = {
        r.subject: r
        for r in Preflight(
            Aws(boto3.session.Session(), REGION, {"ec2": ec2}), spec, gpu_catalog()
        )._zone_check()
    }
    assert rows["us-east-1a"].status is Status.PASS
    assert (
        rows["us-east-1b"].status is Status.FAIL
        and rows["us-east-1b"].message == "the zone is impaired: power event"
    )
    assert rows["us-east-1c"].status is Status.FAIL
    assert (
        "modify-availability-zone-group --group-name us-east-1-group-c --opt-in-status opted-in"
        in rows["us-east-1c"].remediation
    )
    assert (
        rows["us-east-1d"].status is Status.WARN
        and "offers none of the GPU types of pool(s) gpu-dev" in rows["us-east-1d"].message
    )


def test_row22_denied_zone_lookup_is_not_checked(moto: None) -> None:
    from mlstack.live.preflight import Preflight

    ec2 = boto3.client("ec2", region_name=REGION)
    stub = Stubber(ec2)
    stub.add_client_error("describe_availability_zones", "UnauthorizedOperation", "no", 403)
    stub.activate()
    [row] = Preflight(
        Aws(boto3.session.Session(), REGION, {"ec2": ec2}), dev_spec(), gpu_catalog()
    )._zone_check()
    assert row.status is Status.NOT_CHECKED and row.message == "ec2:DescribeAvailabilityZones denied"
