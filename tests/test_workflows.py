"""The GitOps pipelines shipped for teams who fork mlstack: valid, linted, pinned and least-privilege."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.plans import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed; run `make install`"
    return found


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "deploy.yml", "deploy-stack.yml", "drift.yml"}


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run([_tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_github_schema() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_pinned_actions(workflow: Path) -> None:
    document = yaml.safe_load(workflow.read_text())
    assert document.get("permissions") == {"contents": "read"}, "top-level permissions must be read-only"
    for name, job in document["jobs"].items():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", uses), f"{name}: {uses} is not pinned"
        granted = job.get("permissions", {})
        assert "write-all" not in str(granted)
        if "id-token" in granted:
            assert (
                any("configure-aws-credentials" in str(s.get("uses")) for s in job.get("steps", []))
                or "uses" in job
            )


def test_aws_access_is_oidc_only() -> None:
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "role-to-assume" in text


def test_prod_promotion_follows_staging() -> None:
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    assert deploy["jobs"]["staging"]["needs"] == "dev"
    assert deploy["jobs"]["prod"]["needs"] == "staging"
    stage = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy-stack.yml").read_text())
    steps = [s.get("name", s.get("uses", s.get("run"))) for s in stage["jobs"]["deploy"]["steps"]]
    assert steps.index("Preflight") < steps.index("pulumi up with the policy pack") < steps.index("Audit")
    assert stage["jobs"]["deploy"]["environment"] == "${{ inputs.stack }}"
