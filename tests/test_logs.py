"""Pod and node logs (components/logs.py): groups, agent role, team access, chart values, spec."""

from __future__ import annotations

import fnmatch
import itertools
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.logs import (
    LOGS_NAMESPACE,
    RELEASE_NAME,
    SERVICE_ACCOUNT,
    fluent_bit_values,
    log_group_names,
)
from mlstack.plan.recorder import RecordedResource
from mlstack.simulate.helm import charts_directory, helm_binary
from mlstack.spec.loader import SpecError, load_spec
from mlstack.spec.logs import LogsSpec
from tests.plans import PROJECT, ROOT, plan_of, policy_json

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
KEY = "aws:kms/key:Key"


def _named(stack: str, type_: str, name: str) -> RecordedResource:
    (found,) = [r for r in plan_of(stack).by_type(type_) if r.name == name]
    return found


def _stack_groups(stack: str) -> list[RecordedResource]:
    return [r for r in plan_of(stack).by_type(LOG_GROUP) if r.name.startswith(f"{stack}-logs-")]


@pytest.mark.parametrize(("stack", "days"), [("dev", 14), ("staging", 30), ("prod", 90)])
def test_every_group_is_encrypted_with_the_logs_key_and_kept_per_tier(stack: str, days: int) -> None:
    logs_key = _named(stack, KEY, f"{stack}-keys-logs")
    _, spec = PROJECT.load(stack)
    groups = _stack_groups(stack)
    assert len(groups) == 2 + len(spec.teams)
    for group in groups:
        assert group.inputs["kmsKeyId"] == logs_key.outputs["arn"], group.name
        assert group.inputs["retentionInDays"] == days, group.name
        # Staging and prod keep the groups when the stack is destroyed (stateful).
        assert group.protect is spec.protect_stateful
        assert group.retain_on_delete is spec.protect_stateful


def test_team_groups_carry_the_team_cost_center() -> None:
    _, spec = PROJECT.load("dev")
    for team in spec.teams:
        group = _named("dev", LOG_GROUP, f"dev-logs-team-{team.name}")
        assert group.inputs["name"] == f"/mlstack/dev/pods/teams/{team.name}"
        assert group.inputs["tags"] == {"team-cost-center": team.cost_center, "team": team.name}


def test_the_agent_writes_only_to_the_stacks_pod_and_node_groups() -> None:
    document = policy_json(_named("dev", ROLE_POLICY, "dev-logs-agent-write").inputs["policy"])
    (statement,) = document["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    arn = "arn:aws:logs:us-east-1:111122223333:log-group:"
    assert statement["Resource"] == [
        f"{arn}/mlstack/dev/pods/*",
        f"{arn}/mlstack/dev/nodes",
        f"{arn}/mlstack/dev/nodes:*",
    ]
    # Every group of the component is covered (IAM wildcards match across ':'), and no other group of the plan.
    for group in plan_of("dev").by_type(LOG_GROUP):
        covered = any(
            fnmatch.fnmatchcase(target, pattern)
            for pattern in statement["Resource"]
            for target in (group.outputs["arn"], f"{group.outputs['arn']}:log-stream:node-1")
        )
        assert covered is group.name.startswith("dev-logs-"), group.name


def test_team_groups_are_chained_so_the_agent_waits_for_all_through_the_last() -> None:
    _, spec = PROJECT.load("prod")
    names = [f"prod-logs-team-{team.name}" for team in spec.teams]
    for earlier, later in itertools.pairwise(names):
        assert any(dep.endswith(f"::{earlier}") for dep in _named("prod", LOG_GROUP, later).dependencies)
    release = _named("prod", "kubernetes:helm.sh/v3:Release", "prod-logs-fluent-bit")
    assert any(dep.endswith(f"::{names[-1]}") for dep in release.dependencies)


def test_the_agent_role_trusts_only_its_service_account_and_is_bounded() -> None:
    role = _named("dev", ROLE, "dev-logs-agent")
    trust = policy_json(role.inputs["assumeRolePolicy"])
    equals = trust["Statement"][0]["Condition"]["StringEquals"]
    assert equals["aws:RequestTag/kubernetes-namespace"] == LOGS_NAMESPACE
    assert equals["aws:RequestTag/kubernetes-service-account"] == SERVICE_ACCOUNT
    assert role.inputs["permissionsBoundary"]
    (association,) = [
        r
        for r in plan_of("dev").by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.name == "dev-logs-agent-identity"
    ]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        LOGS_NAMESPACE,
        SERVICE_ACCOUNT,
    )


def test_each_team_human_role_reads_only_its_own_group() -> None:
    _, spec = PROJECT.load("dev")
    humans = [t for t in spec.teams if t.human_access is not None]
    assert humans, "dev declares teams with human access"
    for team in humans:
        policy = _named("dev", ROLE_POLICY, f"dev-logs-read-{team.name}")
        assert policy.inputs["role"] == f"dev-team-{team.name}-human"
        read = next(
            s for s in policy_json(policy.inputs["policy"])["Statement"] if s["Sid"] == "ReadOwnTeamLogs"
        )
        own = _named("dev", LOG_GROUP, f"dev-logs-team-{team.name}").outputs["arn"]
        assert read["Resource"] == [own, f"{own}:*"]


def test_the_release_installs_the_pinned_chart_through_the_ecr_public_cache() -> None:
    release = _named("dev", "kubernetes:helm.sh/v3:Release", "dev-logs-fluent-bit")
    assert (release.inputs["chart"], release.inputs["version"]) == ("aws-for-fluent-bit", "0.2.0")
    assert release.inputs["name"] == RELEASE_NAME and release.inputs["namespace"] == LOGS_NAMESPACE
    image = release.inputs["values"]["image"]["repository"]
    assert image.startswith("111122223333.dkr.ecr.us-east-1.amazonaws.com/")
    assert image.endswith("/aws-observability/aws-for-fluent-bit")


def _rendered_config(values: dict[str, Any]) -> str:
    import json

    charts = charts_directory(ROOT)
    assert charts is not None, "the packaged charts (shared/charts) are needed"
    rendered = subprocess.run(
        [
            helm_binary(),
            "template",
            RELEASE_NAME,
            str(charts / "aws-for-fluent-bit-0.2.0.tgz"),
            "-n",
            LOGS_NAMESPACE,
            "--kube-version",
            "1.34",
            "-f",
            "/dev/stdin",
        ],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return rendered


def test_rendered_config_routes_each_team_to_its_own_group_only() -> None:
    _, spec = PROJECT.load("dev")
    from components.environment import Environment
    from components.registry import PullThrough

    env = Environment.from_spec(spec)
    names = log_group_names(env, [t.name for t in spec.teams])
    config = _rendered_config(
        fluent_bit_values(env, spec.logs, names, PullThrough.from_spec(env, spec.registry))
    )
    outputs = re.findall(
        r"\[OUTPUT\]\s+Name\s+(\S+)\s+Match\s+(\S+)\s+region\s+\S+\s+log_group_name\s+(\S+)", config
    )
    routes = {match: group for _, match, group in outputs}
    assert routes["kube.*"] == "/mlstack/dev/pods/platform"
    assert routes["node.*"] == "/mlstack/dev/nodes"
    for team in spec.teams:
        assert routes[f"team.{team.name}"] == f"/mlstack/dev/pods/teams/{team.name}"
        # The team's records leave the kube.* stream (KEEP false), so the platform group never has them.
        assert f"Rule $kubernetes['namespace_name'] ^{team.name}$ team.{team.name} false" in config
    assert {name for name, _, _ in outputs} == {"cloudwatch_logs"}
    assert "auto_create_group" not in config  # the plugin's default, false: groups come from the stack
    # The DaemonSet runs as the service account the Pod Identity association names.
    assert f"serviceAccountName: {SERVICE_ACCOUNT}" in config
    assert "fieldPath: spec.nodeName" in config  # HOST_NAME, which names the streams


def test_no_teams_no_rewrite_filter() -> None:
    _, spec = PROJECT.load("dev")
    from components.environment import Environment
    from components.registry import PullThrough

    env = Environment.from_spec(spec)
    values = fluent_bit_values(
        env, spec.logs, log_group_names(env, []), PullThrough.from_spec(env, spec.registry)
    )
    assert "additionalFilters" not in values


def test_logs_off_creates_nothing() -> None:
    from dataclasses import replace

    from mlstack.plan.recorder import run_program
    from mlstack.spec.loader import SPEC_KEY

    config, spec = PROJECT.load("dev")
    platform = {**config.values[SPEC_KEY], "logs": {"enabled": False}}
    config = replace(config, values={**config.values, SPEC_KEY: platform})
    plan = run_program(PROJECT.program, config, spec.model_copy(update={"logs": LogsSpec(enabled=False)}))
    assert not [r for r in plan.resources if r.name.startswith("dev-logs")]
    assert plan.by_type(LOG_GROUP), "the other log groups (flow logs, control plane) stay"


def test_a_retention_cloudwatch_refuses_is_an_error_naming_the_field(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    assert "\n    teams:" in text
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        text.replace("\n    teams:", "\n    logs:\n      retention_days: 10\n    teams:", 1), encoding="utf-8"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "logs.retention_days" in message and "does not accept 10 days" in message
