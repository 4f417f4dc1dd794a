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


def _grafana(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``grafana`` values of a kube-prometheus-stack release that runs its Grafana subchart, or None. The subchart
    is on unless ``grafana.enabled`` is false (kube-prometheus-stack 88.5.3 values.yaml `grafana.enabled: true`)."""
    if str(props.get("chart", "")).rsplit("/", 1)[-1] != METRICS_CHART:
        return None
    grafana = (props.get("values") or {}).get("grafana") or {}
    if grafana.get("enabled", True) in (False, "false"):
        return None
    return grafana


def _ini(grafana: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    return ((grafana.get("grafana.ini") or {}).get(section)) or {}


def _on(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _off(value: Any) -> bool:
    return value is False or str(value).lower() == "false"


@resource_rule(
    "MLS-OBS-003",
    types=[RELEASE],
    title="Grafana admits no anonymous users and no password on its HTTP API",
    why="Grafana shows every team's workloads, spend and endpoint traffic. Anonymous access would hand that to "
    "anyone who reaches the pod; basic auth accepts a password on every API call, which brute-force protection "
    "of the login form does not cover, and the chart's generated admin password would be a standing credential.",
    severity=Severity.HIGH,
    remediation="Keep the Metrics component's grafana.ini ([auth.anonymous] enabled = false, [auth.basic] "
    "enabled = false); sign in through metrics.grafana.sso.",
)
def grafana_no_anonymous_or_basic_auth(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    grafana = _grafana(args.props)
    if grafana is None:
        return
    # Grafana's own defaults (conf/defaults.ini): anonymous off, basic auth on.
    if not _off(_ini(grafana, "auth.anonymous").get("enabled", False)):
        yield "grafana.ini [auth.anonymous] enabled is not false"
    if not _off(_ini(grafana, "auth.basic").get("enabled", True)):
        yield "grafana.ini [auth.basic] enabled is not false"


@resource_rule(
    "MLS-OBS-004",
    types=[RELEASE],
    title="Grafana's login form is off when single sign-on is on",
    why="With the IdP signing people in, the login form only serves local passwords (the chart's admin user): a "
    "second way in that skips the IdP's MFA and offboarding. With basic auth and the form off, Grafana registers "
    "no password client at all (grafana/grafana pkg/services/authn/authnimpl/service.go).",
    severity=Severity.HIGH,
    remediation="Keep [auth] disable_login_form = true, which the Metrics component sets with metrics.grafana.sso.",
)
def grafana_login_form_off_with_sso(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    grafana = _grafana(args.props)
    if grafana is None or not _on(_ini(grafana, "auth.generic_oauth").get("enabled", False)):
        return
    if not _on(_ini(grafana, "auth").get("disable_login_form", False)):
        yield "grafana.ini [auth.generic_oauth] is on but [auth] disable_login_form is not true"


@resource_rule(
    "MLS-OBS-005",
    types=[RELEASE],
    title="Grafana signs people in through the platform's IdP in staging and prod",
    why="Staging and prod dashboards show production traffic and spend: who sees them is decided by the IdP's "
    "groups (Admin for the admin group, Viewer for the rest), not by a shared password.",
    severity=Severity.HIGH,
    remediation="Add metrics.grafana.sso to the stack file (docs/observability.md, \"Grafana\"), or set "
    "metrics.grafana.enabled: false.",
)
def grafana_sso_in_hardened_tiers(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    grafana = _grafana(args.props)
    if grafana is None or not stack_context().hardened:
        return
    oauth = _ini(grafana, "auth.generic_oauth")
    if not _on(oauth.get("enabled", False)):
        yield "grafana.ini [auth.generic_oauth] is not enabled"
    elif not _on(oauth.get("use_pkce", False)):
        yield "grafana.ini [auth.generic_oauth] use_pkce is not true"


@resource_rule(
    "MLS-OBS-006",
    types=[RELEASE],
    title="Grafana's OAuth client secret is not in the chart values",
    why="Helm values are stored in the Pulumi state and in the release's own Secret, readable by whoever reads "
    "either; the client secret belongs in the Kubernetes Secret that External Secrets Operator syncs from "
    "Secrets Manager (or the platform team creates), read by Grafana through an environment variable.",
    severity=Severity.HIGH,
    remediation="Put client-id and client-secret in the Secrets Manager secret metrics.grafana.sso.client_secret_id "
    "(synced into the Secret client_secret_name); the Metrics component reads them with envValueFrom.",
)
def grafana_client_secret_not_in_values(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    grafana = _grafana(args.props)
    if grafana is None:
        return
    if _ini(grafana, "auth.generic_oauth").get("client_secret"):
        yield "grafana.ini [auth.generic_oauth] client_secret is set in the values"
    env = grafana.get("env") or {}
    if env.get("GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"):
        yield "grafana env GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET is set in the values"
