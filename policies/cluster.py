"""EKS rules: encrypted secrets, private endpoint, audit logs, API access entries, pinned add-ons, node hardening
and On-Demand system capacity in hardened tiers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, Tier, as_list, resource_rule, stack_context

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")


@resource_rule(
    "MLS-EKS-001",
    types=[CLUSTER],
    title="Kubernetes secrets are envelope-encrypted with the cluster key",
    why="Without envelope encryption, anyone with etcd snapshots reads every secret of every team.",
    severity=Severity.HIGH,
    controls={"cis-eks": ["5.3.1"]},
    remediation="Set encryption_config with resources ['secrets'] and the cluster KMS key.",
)
def secrets_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    encryption = args.props.get("encryptionConfig") or {}
    if "secrets" not in as_list(encryption.get("resources")) or not (encryption.get("provider") or {}).get(
        "keyArn"
    ):
        yield "secrets are not encrypted with a KMS key"


@resource_rule(
    "MLS-EKS-002",
    types=[CLUSTER],
    title="The API endpoint is private, and never open to the internet",
    why="A public endpoint open to 0.0.0.0/0 exposes the control plane to credential stuffing and every future "
    "API server CVE; prod keeps it private.",
    severity=Severity.HIGH,
    controls={"cis-eks": ["5.4.1", "5.4.2"]},
    remediation="Set cluster.endpoint_public_access false (required in prod), or restrict public_access_cidrs.",
)
def endpoint_private(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    vpc = args.props.get("vpcConfig") or {}
    if vpc.get("endpointPrivateAccess") is not True:
        yield "endpointPrivateAccess is not true"
    if vpc.get("endpointPublicAccess") is False:
        return
    if stack_context().tier is Tier.PROD:
        yield "the public endpoint is enabled in prod"
    cidrs = as_list(vpc.get("publicAccessCidrs")) or ["0.0.0.0/0"]  # AWS's default when unset
    if "0.0.0.0/0" in cidrs:
        yield "the public endpoint accepts 0.0.0.0/0"


@resource_rule(
    "MLS-EKS-003",
    types=[CLUSTER],
    title="Control-plane audit logging is on",
    why="The api, audit and authenticator logs record who did what in the cluster; without them an incident "
    "cannot be reconstructed.",
    severity=Severity.MEDIUM,
    controls={"cis-eks": ["2.1.1"]},
    remediation="Set enabled_cluster_log_types to include api, audit and authenticator.",
)
def control_plane_logs(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    enabled = set(as_list(args.props.get("enabledClusterLogTypes")))
    missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
    if missing:
        yield f"log types {missing} are not enabled"


@resource_rule(
    "MLS-EKS-004",
    types=[CLUSTER],
    title="Cluster access uses EKS access entries only",
    why="The aws-auth ConfigMap is edited by hand and invisible to IAM; access entries are API-managed and "
    "auditable.",
    severity=Severity.MEDIUM,
    controls={"cis-eks": ["4.1.7"]},
    remediation="Set access_config.authentication_mode API.",
)
def access_entries_only(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    mode = (args.props.get("accessConfig") or {}).get("authenticationMode")
    if mode != "API":
        yield f"authenticationMode is {mode or 'CONFIG_MAP (default)'}"


@resource_rule(
    "MLS-EKS-005",
    types=[CLUSTER],
    title="Clusters in staging and prod have deletion protection",
    why="Pulumi's protect only guards against `pulumi destroy`; EKS deletion protection also stops a console "
    "click or an API call from deleting every workload at once.",
    severity=Severity.HIGH,
    remediation="Set deletion_protection=True on the cluster in hardened tiers.",
)
def cluster_deletion_protection(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and args.props.get("deletionProtection") is not True:
        yield "deletionProtection is not true"


def _version(text: Any) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return ()


@resource_rule(
    "MLS-EKS-006",
    types=[CLUSTER],
    title="The Kubernetes version is still in standard support",
    why="Versions past standard support cost six times more per hour in extended support and stop getting "
    "fixes.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["EKS.2"]},
    remediation="Upgrade cluster.kubernetes_version, or lower minKubernetesVersion after planning the upgrade.",
    config={
        "minKubernetesVersion": {
            "type": "string",
            "default": "1.32",
            "description": "Oldest Kubernetes minor version in standard support.",
        }
    },
)
def kubernetes_version_supported(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    minimum = str(config.get("minKubernetesVersion", "1.32"))
    version = args.props.get("version")
    if not version or _version(version) < _version(minimum):
        yield f"version {version or '(unset: whatever EKS picks)'} is older than {minimum}"


@resource_rule(
    "MLS-EKS-007",
    types=[ADDON],
    title="Add-ons are pinned to a version",
    why="An unpinned add-on changes with the next deployment after AWS publishes a new default; CNI or CSI "
    "upgrades must be reviewed.",
    severity=Severity.LOW,
    remediation="Set addon_version explicitly.",
)
def addon_pinned(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not args.props.get("addonVersion"):
        yield f"add-on {args.props.get('addonName')} has no addonVersion"


@resource_rule(
    "MLS-EKS-008",
    types=[NODE_GROUP],
    title="Node groups in staging and prod span several subnets",
    why="The system node group runs CoreDNS and the controllers; in one zone, a zone outage stops the "
    "cluster's control loops.",
    severity=Severity.HIGH,
    remediation="Give the node group the private subnets of every zone (network.az_count >= 2).",
)
def node_group_multi_az(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and len(as_list(args.props.get("subnetIds"))) < 2:
        yield "the node group has fewer than two subnets"


@resource_rule(
    "MLS-EKS-009",
    types=[NODE_GROUP],
    title="Node groups in staging and prod are On-Demand",
    why="The managed node group runs CoreDNS, Karpenter and the controllers; when Spot reclaims its nodes, "
    "name resolution and scaling stop until replacements join. Dev may opt out to save money.",
    severity=Severity.HIGH,
    remediation="Remove cluster.system_nodes.capacity_type (or set on-demand) in staging and prod.",
)
def node_group_on_demand(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    # AWS's default when capacityType is unset is ON_DEMAND.
    if stack_context().hardened and args.props.get("capacityType") == "SPOT":
        yield f"capacityType is SPOT in the {stack_context().tier} tier"


@resource_rule(
    "MLS-EC2-001",
    types=[LAUNCH_TEMPLATE],
    title="Launch templates require IMDSv2 with a hop limit of 1",
    why="IMDSv1 and a hop limit above 1 let any pod read the node role's credentials; pods get theirs from "
    "Pod Identity.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.8"]},
    remediation="Set metadata_options http_tokens required and http_put_response_hop_limit 1.",
)
def launch_template_imdsv2(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    options = args.props.get("metadataOptions") or {}
    if options.get("httpTokens") != "required":
        yield f"httpTokens is {options.get('httpTokens') or 'optional (default)'}"
    hops = options.get("httpPutResponseHopLimit")
    if hops is None or float(hops) > 1:
        yield f"httpPutResponseHopLimit is {hops if hops is not None else 'unset'}, not 1"


@resource_rule(
    "MLS-EC2-002",
    types=[LAUNCH_TEMPLATE],
    title="Launch templates encrypt their volumes",
    why="Node disks hold images, logs and scratch copies of data.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.3"]},
    remediation="Set encrypted 'true' on every block_device_mappings[].ebs.",
)
def launch_template_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    mappings = as_list(args.props.get("blockDeviceMappings"))
    if not mappings:
        yield "no block device mapping: the root volume follows the AMI's (unencrypted) default"
    for mapping in mappings:
        # pulumi-aws types LaunchTemplate's ebs.encrypted as a string ("true"/"false").
        if str((mapping.get("ebs") or {}).get("encrypted")).lower() != "true":
            yield f"volume {mapping.get('deviceName', '?')} is not encrypted"
