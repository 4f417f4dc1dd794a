"""Metrics stack rules: Prometheus keeps a bounded history, on a retained persistent volume in staging and prod."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, resource_rule, stack_context

RELEASE = "kubernetes:helm.sh/v3:Release"
METRICS_CHART = "kube-prometheus-stack"


def _prometheus_spec(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``prometheus.prometheusSpec`` of a kube-prometheus-stack release, or None for any other release."""
    if str(props.get("chart", "")).rsplit("/", 1)[-1] != METRICS_CHART:
        return None
    values = props.get("values") or {}
    return ((values.get("prometheus") or {}).get("prometheusSpec")) or {}


@resource_rule(
    "MLS-OBS-001",
    types=[RELEASE],
    title="Prometheus retention is bounded by time and by size",
    why="Without retentionSize a busy Prometheus fills its volume and stops ingesting (and KEDA's queries and "
    "every alert with it); without retention it keeps the chart default, which no tier chose.",
    severity=Severity.MEDIUM,
    remediation="Set metrics.retention_days and metrics.storage_gb in the stack file (the Metrics component "
    "sets prometheusSpec.retention and retentionSize from them).",
)
def prometheus_retention_bounded(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    spec = _prometheus_spec(args.props)
    if spec is None:
        return
    for key in ("retention", "retentionSize"):
        if not spec.get(key):
            yield f"prometheus.prometheusSpec.{key} is not set"


@resource_rule(
    "MLS-OBS-002",
    types=[RELEASE],
    title="Prometheus keeps its data on a persistent volume in staging and prod",
    why="An emptyDir loses every metric when the pod moves (a node drain, a Spot reclaim): alerts with a `for` "
    "window restart, and history needed to investigate an incident is gone. The volume comes from the "
    "cluster's encrypted gp3 StorageClass, retained when its claim is deleted.",
    severity=Severity.MEDIUM,
    remediation="Remove metrics.storage from the stack file (the hardened tiers default to persistent).",
)
def prometheus_persistent(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    spec = _prometheus_spec(args.props)
    if spec is None or not stack_context().hardened:
        return
    storage = spec.get("storageSpec") or {}
    if not storage.get("volumeClaimTemplate"):
        yield "prometheus.prometheusSpec.storageSpec has no volumeClaimTemplate"
    elif (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted") != "Retain":
        yield "persistentVolumeClaimRetentionPolicy.whenDeleted is not Retain: deleting the release deletes the data"
