"""`mlstack check`: exit codes, report formats, waivers, policy config and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from mlstack.check.findings import StackFileLines
from mlstack.check.formats import MARKDOWN_MAX_ROWS
from mlstack.check.waivers import WaiverError, parse_waivers
from mlstack.cli import app
from mlstack.simulate.catalog import all_checks, gate_rules
from policies.catalog import ALL_RULES, RULES_BY_ID
from tests.cli import assert_clean_failure
from tests.plans import PROJECT, ROOT, plan_of

# The CLI checks waivers against the real date, so a valid waiver must stay valid whenever the suite runs.
TODAY = dt.date.today()
GOOD_WAIVER = {
    "policy": "MLS-ENV-002",
    "resource": "urn:pulumi:dev::mlstack::*pulumi:providers:aws::dev-aws",
    "stack": "dev",
    "reason": "region approval for eu-west-1 pending with legal",
    "owner": "ml-platform@example.com",
    "expires": (TODAY + dt.timedelta(days=60)).isoformat(),
}


def _invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's program, stack files and waivers, that a test may change."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    (tmp_path / "policies").mkdir()
    shutil.copy(ROOT / "policies" / "waivers.yaml", tmp_path / "policies" / "waivers.yaml")
    return tmp_path


@pytest.fixture
def eu_only(tmp_path: Path) -> Path:
    """A policy config that makes the dev stack's region a mandatory violation."""
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"MLS-ENV-002": {"allowedRegions": ["eu-west-1"]}}))
    return path


def test_shipped_stacks_pass_with_exit_code_0() -> None:
    result = _invoke("check", "--all", "--project-dir", str(ROOT), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [s["stack"] for s in document["stacks"]] == ["dev", "prod", "staging"]
    assert all(s["counts"]["fail"] == 0 for s in document["stacks"])
    assert all(s["policies"] == len(ALL_RULES) for s in document["stacks"])
    assert all(s["simulationChecks"] == len(all_checks()) > 0 for s in document["stacks"])
    # Waived findings stay visible, with their reason.
    waived = [f for s in document["stacks"] for f in s["findings"] if f["status"] == "waived"]
    assert waived and all(f["waiver"]["reason"] for f in waived)


def test_mandatory_violation_exits_1(project: Path, eu_only: Path) -> None:
    result = _invoke("check", "dev", "--project-dir", str(project), "--config", str(eu_only))
    assert result.exit_code == 1
    assert "MLS-ENV-002" in result.output and "FAIL" in result.output


def test_advisory_violation_is_shown_but_passes(project: Path, tmp_path: Path) -> None:
    config = tmp_path / "advisory.yaml"
    config.write_text(
        yaml.safe_dump({"MLS-ENV-002": {"allowedRegions": ["eu-west-1"], "enforcementLevel": "advisory"}})
    )
    result = _invoke("check", "dev", "--project-dir", str(project), "--config", str(config), "-f", "json")
    assert result.exit_code == 0
    findings = json.loads(result.output)["stacks"][0]["findings"]
    assert [(f["policy"], f["status"]) for f in findings if f["policy"] == "MLS-ENV-002"] == [
        ("MLS-ENV-002", "warn")
    ]
    assert all(f["status"] != "fail" for f in findings)


def test_waiver_turns_the_failure_into_a_visible_waived_finding(project: Path, eu_only: Path) -> None:
    # The shipped waivers stay (the Metaflow migration's root container); the test adds its own.
    path = project / "policies" / "waivers.yaml"
    shipped = yaml.safe_load(path.read_text())["waivers"]
    path.write_text(yaml.safe_dump({"waivers": [*shipped, GOOD_WAIVER]}))
    result = _invoke("check", "dev", "--project-dir", str(project), "--config", str(eu_only), "-f", "json")
    assert result.exit_code == 0, result.output
    findings = json.loads(result.output)["stacks"][0]["findings"]
    finding = next(f for f in findings if f["policy"] == GOOD_WAIVER["policy"])
    assert finding["status"] == "waived" and finding["waiver"]["owner"] == "ml-platform@example.com"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"reason": ""}, "reason", "missing or empty"),
        ({"reason": None}, "reason", "missing or empty"),
        ({"policy": "MLS-NOPE-001"}, "policy", "not a policy of the pack"),
        ({"expires": "soon"}, "expires", "not a date"),
        ({"approved_by": "me"}, "approved_by", "unknown field"),
        ({"approved_by": "me"}, "approved_by", "fix: remove it, or rename it to one of the fields: policy,"),
        ({"owner": 2003}, "owner", "expected text, got int 2003; quote it"),
        ({"reason": True}, "reason", "expected text, got bool True"),
        ({"reason": ["a", "b"]}, "reason", "expected text, got list"),
        ({"stack": 2026}, "stack", "expected text, got int"),
        (
            {"expires": (TODAY + dt.timedelta(days=181)).isoformat()},
            "expires",
            f"more than 180 days ahead (latest: {(TODAY + dt.timedelta(days=180)).isoformat()})",
        ),
        (
            {"expires": TODAY + dt.timedelta(days=400)},
            "expires",
            "fix: set an ISO date (YYYY-MM-DD) at most 180",
        ),
    ],
)
def test_bad_waivers_are_clear_errors(change: dict[str, object], field: str, words: str) -> None:
    entry = {**GOOD_WAIVER, **change}
    with pytest.raises(WaiverError) as info:
        parse_waivers({"waivers": [GOOD_WAIVER, entry]}, RULES_BY_ID, TODAY, "policies/waivers.yaml")
    message = str(info.value)
    assert f"policies/waivers.yaml: entry 1, field '{field}'" in message
    assert words in message and "fix:" in message


def test_waiver_may_expire_today_or_at_the_end_of_the_window() -> None:
    edges = [
        {**GOOD_WAIVER, "expires": TODAY.isoformat()},
        {**GOOD_WAIVER, "expires": (TODAY + dt.timedelta(days=180)).isoformat()},
    ]
    waivers = parse_waivers({"waivers": edges}, RULES_BY_ID, TODAY, "policies/waivers.yaml")
    assert [w.expires for w in waivers] == [TODAY, TODAY + dt.timedelta(days=180)]


def test_bad_waiver_file_fails_the_command_without_traceback(project: Path) -> None:
    broken = {**GOOD_WAIVER, "expires": "soon"}
    (project / "policies" / "waivers.yaml").write_text(yaml.safe_dump({"waivers": [broken]}))
    result = _invoke("check", "dev", "--project-dir", str(project))
    assert_clean_failure(result, 2, "error:", "entry 0, field 'expires': 'soon' is not a date")


def _with_waiver(project: Path, **change: object) -> None:
    path = project / "policies" / "waivers.yaml"
    shipped = yaml.safe_load(path.read_text())["waivers"]
    path.write_text(yaml.safe_dump({"waivers": [*shipped, {**GOOD_WAIVER, **change}]}))


def test_an_expired_waiver_of_another_stack_does_not_block_this_one(project: Path, eu_only: Path) -> None:
    # Issue 18: an expired prod-only waiver made `mlstack check dev` exit 2 (ux review, Tried #29).
    _with_waiver(project, stack="prod", resource="urn:pulumi:prod::mlstack::*", expires="2020-01-01")
    result = _invoke("check", "dev", "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    assert "expired" not in result.output


def test_an_expired_waiver_reports_its_violation_again_in_its_own_stack(project: Path, eu_only: Path) -> None:
    _with_waiver(project, expires="2020-01-01")
    result = _invoke("check", "dev", "--project-dir", str(project), "--config", str(eu_only), "-f", "json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["stacks"][0]["findings"]
    assert [f["status"] for f in findings if f["policy"] == "MLS-ENV-002"] == ["fail"]
    assert "warning: waiver entry" in result.stderr and "expired on 2020-01-01" in result.stderr
    assert "no longer honoured" in result.stderr


def test_a_waiver_about_to_expire_is_a_warning_not_a_failure(project: Path, eu_only: Path) -> None:
    soon = (TODAY + dt.timedelta(days=10)).isoformat()
    _with_waiver(project, expires=soon)
    result = _invoke("check", "dev", "--project-dir", str(project), "--config", str(eu_only))
    assert result.exit_code == 0, result.output
    assert f"expires on {soon} (in 10 days)" in result.stderr
    later = _invoke("check", "prod", "--project-dir", str(project), "--config", str(eu_only))
    assert "expires on" not in later.stderr  # a dev waiver is not prod's business


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"waivers: []\nwaivers: []\n", "duplicate key 'waivers'"),
        (b"\xff\xfewaivers: []\n", "save it as UTF-8"),
    ],
)
def test_unreadable_or_ambiguous_waiver_file_is_one_clear_message(
    project: Path, content: bytes, words: str
) -> None:
    (project / "policies" / "waivers.yaml").write_bytes(content)
    result = _invoke("check", "dev", "--project-dir", str(project))
    assert_clean_failure(result, 2, "waivers.yaml", words)


def test_policy_config_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "MLS-ENV-002:\n  enforcementLevel: advisory\nMLS-ENV-002:\n  enforcementLevel: mandatory\n"
    )
    result = _invoke("check", "dev", "--project-dir", str(ROOT), "--config", str(path))
    assert_clean_failure(result, 2, "duplicate key 'MLS-ENV-002'", str(path))


def test_bad_format_is_one_clear_message() -> None:
    result = _invoke("check", "dev", "--project-dir", str(ROOT), "--format", "html")
    assert_clean_failure(
        result, 2, "unknown --format 'html'; use one of: table, json, sarif, junit, markdown"
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"MLS-NOPE-001": {}}', "'MLS-NOPE-001': not a policy of the pack"),
        ('{"MLS-ENV-002": {"allowedRegion": []}}', "'MLS-ENV-002.allowedRegion': unknown setting"),
        ('{"MLS-ENV-002": {"allowedRegions": "us-east-1"}}', "expected a JSON array, got str"),
        ('{"MLS-ENV-002": {"enforcementLevel": "strict"}}', "'strict' is not one of"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_policy_config_is_one_clear_message(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    result = _invoke("check", "dev", "--project-dir", str(ROOT), "--config", str(path))
    assert_clean_failure(result, 2, words, str(path))


def test_sarif_is_valid_for_code_scanning(tmp_path: Path, project: Path, eu_only: Path) -> None:
    out = tmp_path / "check.sarif"
    result = _invoke(
        "check",
        "--all",
        "--project-dir",
        str(project),
        "--config",
        str(eu_only),
        "-f",
        "sarif",
        "-o",
        str(out),
    )
    assert result.exit_code == 1
    document = json.loads(out.read_text())
    assert document["version"] == "2.1.0" and document["$schema"].endswith("sarif-2.1.0.json")
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    # The pack's rules, then the deploy simulation's checks.
    assert [r["id"] for r in rules] == [r.id for r in gate_rules()]
    assert [r.id for r in gate_rules()][: len(ALL_RULES)] == [r.id for r in ALL_RULES]
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert 0 < float(rule["properties"]["security-severity"]) <= 10
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert run["results"]
    for entry in run["results"]:
        assert rules[entry["ruleIndex"]]["id"] == entry["ruleId"]
        assert entry["level"] in ("error", "warning", "note") and entry["message"]["text"]
        location = entry["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("stacks/Pulumi.")
        assert location["region"]["startLine"] >= 1
        assert entry["partialFingerprints"]
        for suppression in entry.get("suppressions", []):
            assert suppression["kind"] in ("inSource", "external") and suppression["justification"]
    region = next(e for e in run["results"] if e["ruleId"] == "MLS-ENV-002")
    # The provider is declared by the spec as a whole: the finding points at the mlstack:platform key.
    platform_line = PROJECT.stack_file("dev").read_text().splitlines().index("  mlstack:platform:") + 1
    assert region["locations"][0]["physicalLocation"]["region"]["startLine"] == platform_line
    assert any("suppressions" in e for e in run["results"])  # the shipped waivers, shown as suppressed


def test_findings_point_at_the_section_or_entry_that_declares_the_resource() -> None:
    lines = StackFileLines(PROJECT.stack_file("prod"))
    text = PROJECT.stack_file("prod").read_text().splitlines()
    bucket = next(r for r in plan_of("prod").resources if r.type == "aws:s3/bucket:Bucket")
    cluster = next(r for r in plan_of("prod").resources if r.type == "aws:eks/cluster:Cluster")
    rule = RULES_BY_ID["MLS-S3-001"]
    assert text[lines.line_for(bucket.urn, rule) - 1].strip() == "storage:"
    assert text[lines.line_for(cluster.urn, rule) - 1].strip() == "cluster:"
    pool_urn = "urn:pulumi:prod::mlstack::mlstack:platform:Platform$mlstack:gpu:GpuPools$kubernetes:karpenter.sh/v1:NodePool::prod-gpu-serving"
    assert text[lines.line_for(pool_urn, rule) - 1].strip() == "- name: serving"
    assert text[lines.line_for(None, RULES_BY_ID["MLS-COST-001"]) - 1].strip() == "budgets:"


def test_junit_and_markdown(tmp_path: Path, project: Path, eu_only: Path) -> None:
    junit = tmp_path / "check.xml"
    _invoke(
        "check",
        "--all",
        "--project-dir",
        str(project),
        "--config",
        str(eu_only),
        "-f",
        "junit",
        "-o",
        str(junit),
    )
    suites = ET.parse(junit).getroot()
    assert suites.get("tests") == str(3 * len(gate_rules()))
    failing = [c.get("name") for c in suites.iter("testcase") if c.find("failure") is not None]
    assert failing and all(name.startswith("MLS-ENV-002") for name in failing)
    skipped = [c.get("name") for c in suites.iter("testcase") if c.find("skipped") is not None]
    assert any(name.startswith("MLS-IAM-006") for name in skipped)  # prod's waived partner trust

    result = _invoke(
        "check", "--all", "--project-dir", str(project), "--config", str(eu_only), "-f", "markdown"
    )
    assert result.exit_code == 1
    assert result.output.startswith("### mlstack check: ❌")
    assert "| dev |" in result.output and "`MLS-ENV-002`" in result.output
    assert len(result.output) < 65536 and result.output.count("\n| ") <= MARKDOWN_MAX_ROWS + 10


def test_table_to_file(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    result = _invoke("check", "prod", "--project-dir", str(ROOT), "-o", str(out))
    assert result.exit_code == 0
    assert "PASS prod" in out.read_text() and "waived" in out.read_text()
