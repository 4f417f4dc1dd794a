"""The GitOps pipelines shipped for teams who fork mlstack: valid, linted, pinned, bounded in time, least-privilege,
running where they can reach the cluster, and filing drift the way docs/gitops.md says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstack.pipeline_roles import deploy_runner_project_name
from tests.plans import ROOT

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
DRIFT_SCRIPT = ROOT / "scripts" / "drift-issue.sh"
BIN = Path(sys.executable).parent
# `uses: owner/repo[/path]@<full commit SHA> # vX.Y.Z`: the SHA is what runs, the comment is what Dependabot
# and a reviewer read.
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")
USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+)")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed; run `make install`"
    return found


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOW_DIR / name).read_text())
    return document


def _on(document: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    trigger: dict[str, Any] = document["on"] if "on" in document else document[True]
    return trigger


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "deploy.yml", "deploy-stack.yml", "drift.yml"}


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run([_tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_and_dependabot_match_their_schemas() -> None:
    for schema, files in (("vendor.github-workflows", WORKFLOWS), ("vendor.dependabot", [DEPENDABOT])):
        result = subprocess.run(
            [_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_job_has_a_timeout() -> None:
    result = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "custom.github-workflows-require-timeout",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for workflow in WORKFLOWS:
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            # A job that calls a reusable workflow cannot set one; the called workflow's jobs do.
            assert "uses" in job or isinstance(job.get("timeout-minutes"), int), f"{workflow.name}: {name}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_tag(workflow: Path) -> None:
    for number, line in enumerate(workflow.read_text().splitlines(), start=1):
        used = USES.match(line)
        if used is None or used.group(1).startswith("./"):
            continue
        assert PINNED.match(line), (
            f"{workflow.name}:{number}: `{line.strip()}` is not `@<40-hex sha> # vX.Y.Z`"
        )


def test_one_action_one_pin() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if match := PINNED.match(line):
                pins.setdefault(match.group(1), set()).add((match.group(2), match.group(3)))
    assert pins, "no pinned actions found"
    assert {action: pin for action, pin in pins.items() if len(pin) > 1} == {}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege(workflow: Path) -> None:
    document = yaml.safe_load(workflow.read_text())
    assert document.get("permissions") == {"contents": "read"}, "top-level permissions must be read-only"
    for name, job in document["jobs"].items():
        granted = job.get("permissions", {})
        assert "write-all" not in str(granted)
        steps = job.get("steps", [])
        if "id-token" in granted:
            assert any("configure-aws-credentials" in str(s.get("uses")) for s in steps) or "uses" in job, (
                name
            )
        for step in steps:
            if "actions/checkout" in str(step.get("uses")):
                assert step.get("with", {}).get("persist-credentials") is False, (
                    f"{name}: checkout keeps the token"
                )


def test_dependabot_keeps_actions_and_python_dependencies_current() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) >= {"github-actions", "pip"}
    assert all(u["directory"] == "/" for u in ecosystems.values())


def test_aws_access_is_oidc_only() -> None:
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "role-to-assume" in text


def _role_vars(job: dict[str, Any]) -> set[str]:
    return {
        str(step["with"]["role-to-assume"])
        for step in job.get("steps", [])
        if "configure-aws-credentials" in str(step.get("uses"))
    }


def test_pull_requests_preview_with_the_preview_role_only() -> None:
    text = (WORKFLOW_DIR / "pull-request.yml").read_text()
    assert "AWS_DEPLOY_ROLE_ARN" not in text and "AWS_AUDIT_ROLE_ARN" not in text
    preview = _load("pull-request.yml")["jobs"]["preview"]
    assert _role_vars(preview) == {"${{ vars.AWS_PREVIEW_ROLE_ARN }}"}
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    assert [s["with"]["command"] for s in preview["steps"] if "pulumi/actions" in str(s.get("uses"))] == [
        "preview"
    ]


def _runner_label(stack_expression: str) -> str:
    project = deploy_runner_project_name(stack_expression)
    return f"codebuild-{project}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"


def test_jobs_that_reach_the_cluster_run_on_the_in_vpc_runner() -> None:
    deploy = _load("deploy-stack.yml")["jobs"]["deploy"]
    assert deploy["runs-on"] == _runner_label("${{ inputs.stack }}")
    assert _role_vars(deploy) == {"${{ vars.AWS_DEPLOY_ROLE_ARN }}"}
    state = _load("drift.yml")["jobs"]["state"]
    assert state["runs-on"] == _runner_label("${{ matrix.stack }}")
    assert _role_vars(state) == {"${{ vars.AWS_PREVIEW_ROLE_ARN }}"}


def test_deploys_start_on_relevant_changes_or_by_hand() -> None:
    trigger = _on(_load("deploy.yml"))
    assert "workflow_dispatch" in trigger
    paths = trigger["push"]["paths"]
    for needed in (
        "components/**",
        "stacks/**",
        "policies/**",
        "mlstack/**",
        "__main__.py",
        "pyproject.toml",
    ):
        assert needed in paths
    assert not any(p.startswith("docs") for p in paths)


def test_prod_promotion_follows_staging() -> None:
    deploy = _load("deploy.yml")
    assert deploy["jobs"]["staging"]["needs"] == "dev"
    assert deploy["jobs"]["prod"]["needs"] == "staging"
    stage = _load("deploy-stack.yml")
    steps = [s.get("name", s.get("uses", s.get("run"))) for s in stage["jobs"]["deploy"]["steps"]]
    assert steps.index("Preflight") < steps.index("pulumi up with the policy pack") < steps.index("Audit")
    assert stage["jobs"]["deploy"]["environment"] == "${{ inputs.stack }}"


def _check_names(workflow: dict[str, Any]) -> set[str]:
    """The check names GitHub reports for a workflow's jobs: the job's name with ${{ matrix.* }} expanded for
    every matrix entry."""
    names = set()
    for job_id, job in workflow["jobs"].items():
        name = str(job.get("name", job_id))
        matrix = job.get("strategy", {}).get("matrix", {})
        if not matrix:
            names.add(name)
            continue
        [(key, values)] = matrix.items()
        names |= {name.replace(f"${{{{ matrix.{key} }}}}", str(v)) for v in values}
    return names


def test_documented_required_checks_are_the_checks_the_pull_request_workflow_reports() -> None:
    gitops = (ROOT / "docs" / "gitops.md").read_text()
    section = gitops.split("<!-- required-checks -->")[1]
    documented = set(re.findall(r"^- `([^`]+)`", section, flags=re.MULTILINE))
    assert documented == _check_names(_load("pull-request.yml"))


def test_sarif_upload_cannot_fail_the_policy_job() -> None:
    job = _load("pull-request.yml")["jobs"]["policy"]
    assert "continue-on-error" not in job
    [upload] = [s for s in job["steps"] if "upload-sarif" in str(s.get("uses"))]
    assert upload["continue-on-error"] is True
    assert upload["if"] == "always()"
    # The verdict is the check's own.
    assert any(s.get("if") == "steps.check.outcome == 'failure'" for s in job["steps"])


# --- the drift steps' shell, with fake tools -------------------------------------------------------------------

# How GitHub runs a `run:` step with the default shell on Linux (workflow syntax, "jobs.<job_id>.steps[*].shell":
# bash --noprofile --norc -eo pipefail {0}); `-c` instead of a script file.
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


def _fake(path: Path, exit_code: int, stderr: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/usr/bin/env bash\necho {stderr!r} >&2\nexit {exit_code}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("code", [0, 1, 2, 3, 7, 255])
@pytest.mark.parametrize(
    ("job", "step_id", "tool"),
    [("guardrails", "audit", ".venv/bin/mlstack"), ("state", "preview", "bin/pulumi")],
)
def test_check_steps_record_the_exit_code_instead_of_failing(
    tmp_path: Path, job: str, step_id: str, tool: str, code: int
) -> None:
    [step] = [s for s in _load("drift.yml")["jobs"][job]["steps"] if s.get("id") == step_id]
    _fake(tmp_path / tool, code, "error: something")
    output = tmp_path / "github_output"
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "STACK": "dev",
    }
    command = str(step["run"]).replace("${{ matrix.stack }}", "dev")
    result = subprocess.run([*GITHUB_BASH, command], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert output.read_text() == f"code={code}\n"
    errors = tmp_path / ("build/audit.err" if job == "guardrails" else "build/preview.err")
    assert "error: something" in errors.read_text()


# --- the drift filing script, against a fake `gh` ------------------------------------------------------------

FAKE_GH = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["GH_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[:2] == ["issue", "list"]:
        open_issues = json.loads(os.environ.get("FAKE_OPEN", "{{}}"))
        labels = [args[i + 1] for i, a in enumerate(args) if a == "--label"]
        numbers = [n for label, n in open_issues.items() if label in labels]
        jq = args[args.index("--jq") + 1]
        if numbers:
            print(numbers[0] if jq == ".[0].number" else "\\n".join(map(str, numbers)))
    elif args[:2] == ["issue", "create"]:
        body = open(args[args.index("--body-file") + 1]).read()
        with open(os.environ["GH_LOG"] + ".body", "w") as out:
            out.write(body)
    """
)


def _run_step(
    tmp_path: Path, job: str, code: int, report: str, errors: str, open_issues: dict[str, int]
) -> tuple[int, list[list[str]], str]:
    """Run the drift workflow's filing step of ``job`` for dev, as the workflow writes it, with a fake gh."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    gh = bindir / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(0o755)
    (tmp_path / "build").mkdir(exist_ok=True)
    outputs = {
        "guardrails": ("audit", "build/audit.md", "build/audit.err"),
        "state": ("preview", "build/preview.txt", "build/preview.err"),
    }
    step_id, report_path, errors_path = outputs[job]
    (tmp_path / report_path).write_text(report)
    (tmp_path / errors_path).write_text(errors)
    [step] = [
        s
        for s in _load("drift.yml")["jobs"][job]["steps"]
        if s.get("name") == "File the outcome once per environment"
    ]
    command = (
        str(step["run"])
        .replace("${{ matrix.stack }}", "dev")
        .replace(f"${{{{ steps.{step_id}.outputs.code }}}}", str(code))
        .replace("scripts/drift-issue.sh", str(DRIFT_SCRIPT))
    )
    log = tmp_path / "gh.log"
    log.write_text("")
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "GH_LOG": str(log),
        "FAKE_OPEN": json.dumps(open_issues),
        "RUN_URL": "https://github.com/o/r/actions/runs/1",
    }
    result = subprocess.run([*GITHUB_BASH, command], cwd=tmp_path, env=env, capture_output=True, text=True)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    body = (tmp_path / "gh.log.body").read_text() if (tmp_path / "gh.log.body").exists() else ""
    return result.returncode, calls, body


def _created(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[:2] == ["issue", "create"]]


def test_guardrail_drift_opens_one_labelled_issue(tmp_path: Path) -> None:
    code, calls, body = _run_step(tmp_path, "guardrails", 1, "| drift | bucket |\n", "", {})
    assert code == 0
    assert ["label", "create", "drift", "--force"] == calls[0][:4]
    [create] = _created(calls)
    labels = [create[i + 1] for i, a in enumerate(create) if a == "--label"]
    assert labels == ["drift", "env:dev", "guardrails-drift"]
    assert "| drift | bucket |" in body and "https://github.com/o/r/actions/runs/1" in body


def test_a_second_night_comments_instead_of_opening(tmp_path: Path) -> None:
    code, calls, _ = _run_step(tmp_path, "guardrails", 1, "report", "", {"guardrails-drift": 12})
    assert code == 0
    assert not _created(calls)
    assert ["issue", "comment", "12"] in [c[:3] for c in calls]


def test_a_clean_night_closes_the_environments_open_issues(tmp_path: Path) -> None:
    code, calls, _ = _run_step(
        tmp_path, "guardrails", 0, "", "", {"guardrails-drift": 12, "guardrails-broken": 13}
    )
    assert code == 0
    assert not _created(calls)
    assert {c[2] for c in calls if c[:2] == ["issue", "close"]} == {"12", "13"}


@pytest.mark.parametrize(
    ("code", "kind", "exit_code"),
    [(3, "guardrails-denied", 0), (2, "guardrails-broken", 1), (255, "guardrails-broken", 1)],
)
def test_audit_exit_codes_map_to_outcomes(tmp_path: Path, code: int, kind: str, exit_code: int) -> None:
    status, calls, body = _run_step(tmp_path, "guardrails", code, "", "error: no AWS credentials", {})
    assert status == exit_code
    [create] = _created(calls)
    assert kind in create
    assert "error: no AWS credentials" in body


@pytest.mark.parametrize(
    ("code", "errors", "kind", "exit_code"),
    [
        (7, "", "state-drift", 0),
        (255, "error: no changes were expected but changes were proposed", "state-drift", 0),
        (255, "error: failed to load checkpoint: AccessDenied", "state-broken", 1),
    ],
)
def test_preview_exit_codes_map_to_outcomes(
    tmp_path: Path, code: int, errors: str, kind: str, exit_code: int
) -> None:
    status, calls, _ = _run_step(tmp_path, "state", code, "~ aws:s3/bucket:Bucket update", errors, {})
    assert status == exit_code
    [create] = _created(calls)
    assert kind in create


def test_the_script_refuses_bad_arguments(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(DRIFT_SCRIPT), "nightly", "dev", "0", "a", "b"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "guardrails or state" in result.stderr


# --- the first deploy -----------------------------------------------------------------------------------------


def test_first_deploy_runs_outside_the_vpc_as_the_deploy_role_by_hand() -> None:
    workflow = _load("first-deploy.yml")
    inputs = _on(workflow)["workflow_dispatch"]["inputs"]
    assert set(_on(workflow)) == {"workflow_dispatch"}
    assert inputs["stack"]["options"] == ["dev", "staging", "prod"]
    assert inputs["step"]["options"] == ["connection", "runner"]
    [job] = workflow["jobs"].values()
    # The runner it creates cannot run it; the targets never include the cluster, so a GitHub-hosted runner can.
    assert job["runs-on"] == "ubuntu-24.04"
    assert job["environment"] == "${{ inputs.stack }}"
    assert _role_vars(job) == {"${{ vars.AWS_DEPLOY_ROLE_ARN }}"}
    assert workflow["concurrency"]["group"] == _load("deploy.yml")["concurrency"]["group"]


def test_first_deploy_passes_every_target_urn_as_one_argument(tmp_path: Path) -> None:
    urns = [
        "urn:pulumi:dev::mlstack::mlstack:platform:Platform$mlstack:deployer:DeployRunner::dev-deployer",
        "urn:pulumi:dev::mlstack::mlstack:platform:Platform$mlstack:network:Network$aws:ec2/vpc:Vpc::dev-vpc",
    ]
    mlstack = tmp_path / ".venv" / "bin" / "mlstack"
    mlstack.parent.mkdir(parents=True)
    mlstack.write_text("#!/usr/bin/env bash\nprintf '%s\\n' " + " ".join(f"'{u}'" for u in urns) + "\n")
    mlstack.chmod(0o755)
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.parent.mkdir()
    pulumi.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    pulumi.chmod(0o755)
    [step] = [
        s
        for s in _load("first-deploy.yml")["jobs"]["targeted-up"]["steps"]
        if "pulumi up" in str(s.get("run"))
    ]
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "STACK": "dev",
        "STEP": "runner",
    }
    result = subprocess.run(
        [*GITHUB_BASH, str(step["run"])], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    args = json.loads(result.stdout)
    assert args[:6] == ["up", "--stack", "dev", "--yes", "--non-interactive", "--policy-pack"]
    assert args[7:] == ["--target", urns[0], "--target", urns[1]]


def test_first_deploy_refuses_an_empty_target_list(tmp_path: Path) -> None:
    mlstack = tmp_path / ".venv" / "bin" / "mlstack"
    _fake(mlstack, 2, "error: stack dev has no deploy runner")
    [step] = [
        s
        for s in _load("first-deploy.yml")["jobs"]["targeted-up"]["steps"]
        if "pulumi up" in str(s.get("run"))
    ]
    env = {**os.environ, "STACK": "dev", "STEP": "runner"}
    result = subprocess.run(
        [*GITHUB_BASH, str(step["run"])], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "no targets for dev (runner)" in result.stdout
