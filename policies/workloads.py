"""Kubernetes rules on what the platform installs in the cluster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, resource_rule, stack_context

STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_CSI = "ebs.csi.aws.com"


@resource_rule(
    "MLS-K8S-001",
    types=[STORAGE_CLASS],
    title="EBS storage classes encrypt volumes",
    why="Persistent volumes hold notebooks, checkpoints and vector indexes; an unencrypted class makes every "
    "claim on it unencrypted.",
    severity=Severity.HIGH,
    remediation="Set parameters.encrypted 'true' (and kmsKeyId) on every ebs.csi.aws.com StorageClass.",
)
def storage_class_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    parameters = args.props.get("parameters") or {}
    if args.props.get("provisioner") == EBS_CSI and str(parameters.get("encrypted")).lower() != "true":
        yield "parameters.encrypted is not 'true'"


@resource_rule(
    "MLS-K8S-002",
    types=[STORAGE_CLASS],
    title="Storage classes in staging and prod retain volumes",
    why="With reclaimPolicy Delete, deleting a claim (or a namespace) deletes the disk and its data at once.",
    severity=Severity.MEDIUM,
    remediation="Set reclaimPolicy Retain for hardened tiers.",
)
def storage_class_retains(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and args.props.get("reclaimPolicy", "Delete") != "Retain":
        yield f"reclaimPolicy is {args.props.get('reclaimPolicy', 'Delete (default)')}"


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


@resource_rule(
    "MLS-K8S-003",
    types=[HELM_RELEASE],
    title="Helm releases pin a chart version from a named repository",
    why="An unpinned chart upgrades on the next deployment after upstream publishes; every controller the "
    "platform installs (Karpenter, device plugin) must change only through a reviewed version bump.",
    severity=Severity.MEDIUM,
    remediation="Set version to an exact chart version and repository_opts.repo to the chart repository.",
)
def helm_release_pinned(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    version = str(args.props.get("version") or "")
    if not version or any(c in version for c in "^~*x><") or version == "latest":
        yield f"chart {args.props.get('chart')} version is {version or 'unset'}, not an exact version"
    if not (args.props.get("repositoryOpts") or {}).get("repo"):
        yield f"chart {args.props.get('chart')} has no repositoryOpts.repo"
