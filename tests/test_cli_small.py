"""Small CLI defects from the 2026-11-30 usability review (issue 18): --version, bootstrap's --region help,
and report tables that stay readable in an 80-column terminal."""

from __future__ import annotations

import io
import tomllib

import pytest
from rich.console import Console
from typer.testing import CliRunner

import mlstack
from mlstack.cli import app
from mlstack.live.report import Report, Result, Rule, Status, table
from tests.plans import ROOT

runner = CliRunner()


def test_version_flag_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.output == f"mlstack {version}\n" and mlstack.__version__ == version


def test_bootstrap_region_help_promises_no_stack_default() -> None:
    result = runner.invoke(app, ["bootstrap", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "--region" in line)
    assert "stack" not in line
    assert "AWS_REGION, else AWS_DEFAULT_REGION" in line


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def _assert_whole(lines: list[str], *names: str, width: int) -> None:
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    for name in names:
        assert any(name in line for line in lines), f"{name} is split or cut:\n" + "\n".join(lines)
    assert not any("…" in line for line in lines)


@pytest.mark.parametrize("width", [80, 100])
def test_check_table_keeps_names_and_arns_whole_in_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    result = runner.invoke(app, ["check", "prod", "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    _assert_whole(
        _lines(result.stdout),
        "prod-teams-research-human",
        "prod-orchestrator-research-metaflow-metadata",
        "arn:aws:iam::444455556666:role/research-visitors",
        width=width,
    )


@pytest.mark.parametrize("width", [80, 100])
def test_cost_table_keeps_item_names_whole_in_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    result = runner.invoke(app, ["cost", "dev", "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    _assert_whole(
        _lines(result.stdout),
        "RDS dev-orchestrator-metadata-db storage",
        "node group dev-cluster-system volumes",
        width=width,
    )


def test_live_report_table_keeps_subjects_and_commands_whole_at_80_columns() -> None:
    arn = "arn:aws:s3:::mlstack-pulumi-state-111122223333-ap-southeast-2"
    command = "aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA"
    report = Report(
        tool="preflight",
        title="preflight dev",
        rules=(Rule("backend", "state backend"),),
        results=(Result("backend", arn, Status.FAIL, "the bucket has no versioning", command),),
    )
    out = io.StringIO()
    Console(file=out, width=80, no_color=True).print(table(report))
    _assert_whole(_lines(out.getvalue()), arn, "--quota-code L-DB2E81BA", width=80)
    wide = io.StringIO()
    Console(file=wide, width=200, no_color=True).print(table(report))
    assert "remediation" in wide.getvalue()  # the side-by-side layout where it fits


@pytest.mark.parametrize(("env", "guess"), [("prd", "prod"), ("Dev", "dev"), ("stagin", "staging")])
def test_an_unknown_environment_gets_a_did_you_mean(env: str, guess: str) -> None:
    for command in (["validate", env], ["preflight", env]):
        result = runner.invoke(app, [*command, "--project-dir", str(ROOT)])
        assert result.exit_code == 2
        assert f"known environments: dev, prod, staging; did you mean {guess}?" in result.output
