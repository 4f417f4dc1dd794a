"""`mlstack audit` on an account that holds exactly what each shipped stack's plan describes reports no drift.

The account is built in moto from the recorded plan (tests/live/plan_account.py), in the stack's own account
and in every region the plan deploys to, so the audit sees what `pulumi up` leaves behind, including the
platform's deliberate exceptions (SSE-S3 access-log buckets, mutable pull-through cache repositories).
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.live import cli_support
from mlstack.live.audit import RULES, Audit
from mlstack.live.aws import Aws
from mlstack.live.report import Status
from tests.live.plan_account import build_account, serve_cache_rules
from tests.plans import PROJECT, STACKS, plan_of

runner = CliRunner()


@pytest.fixture
def stack_account(request: pytest.FixtureRequest, credentials: None, monkeypatch: pytest.MonkeyPatch):
    stack = request.param
    _, spec = PROJECT.load(stack)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", spec.account_id)
    with mock_aws():
        session = boto3.session.Session()
        caches = build_account(plan_of(stack), session)
        serve_cache_rules(session, caches)
        yield stack, spec, session


@pytest.mark.parametrize("stack_account", STACKS, indirect=True)
def test_audit_of_the_planned_account_reports_no_drift(stack_account) -> None:
    _stack, spec, session = stack_account
    report = Audit(Aws(session, spec.region), spec).run()
    problems = [r for r in report.results if r.status is not Status.PASS]
    assert problems == []
    audited = {r.rule for r in report.results}
    # Every rule met at least one resource of the plan, so "no drift" is not "nothing read".
    assert audited == {rule.id for rule in RULES}
    subjects = {r.subject for r in report.results}
    if spec.replica_regions():
        assert any(f"({spec.replica_regions()[0]})" in s for s in subjects), "replica region not audited"
        assert any(f":kms:{spec.replica_regions()[0]}:" in s for s in subjects)
    exceptions = [r for r in report.results if r.message.startswith("exception:")]
    assert {r.rule for r in exceptions} >= {"s3-encryption", "ecr-immutable-tags"}


@pytest.mark.parametrize("stack_account", ["prod"], indirect=True)
def test_cli_audit_of_the_planned_prod_account_exits_0(stack_account, monkeypatch, tmp_path) -> None:
    stack, spec, session = stack_account
    monkeypatch.setattr(cli_support, "connect", lambda region, profile: Aws(session, region or spec.region))
    out = tmp_path / "audit.json"
    result = runner.invoke(app, ["audit", stack, "--format", "json", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["summary"]["fail"] == 0


@pytest.mark.parametrize("stack_account", ["dev"], indirect=True)
def test_sse_s3_outside_the_access_log_bucket_is_still_drift(stack_account) -> None:
    _stack, spec, session = stack_account
    s3 = session.client("s3", region_name=spec.region)
    datasets = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith("-datasets"))
    s3.put_bucket_encryption(
        Bucket=datasets,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    report = Audit(Aws(session, spec.region), spec).run()
    failed = {(r.rule, r.subject) for r in report.results if r.status is Status.FAIL}
    assert failed == {("s3-encryption", datasets)}
