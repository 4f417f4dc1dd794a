"""Compliant and non-compliant cases of the Grafana rules (policies/observability.py MLS-OBS-003 to 006), merged
into tests/test_policies.py CASES. Dev runs Grafana with the chart's admin user; staging and prod with SSO."""

from __future__ import annotations

from tests.policy_cases import Case, bad, del_path, ok, set_path

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
GRAFANA_INI = "values|grafana|grafana.ini"

GRAFANA_CASES: dict[str, list[Case]] = {
    "MLS-OBS-003": [
        ok("dev"),
        ok("prod"),
        # No Grafana, nothing to sign in to.
        ok(
            "dev",
            "grafana off",
            target_type=HELM_RELEASE,
            target_name="kube-prometheus",
            mutate=set_path("values|grafana", {"enabled": False}),
        ),
        bad(
            "dev",
            "anonymous viewers",
            HELM_RELEASE,
            set_path(f"{GRAFANA_INI}|auth.anonymous|enabled", True),
            name="kube-prometheus",
        ),
        # Grafana's default is basic auth on: leaving the key out is not compliant.
        bad(
            "prod",
            "basic auth by default",
            HELM_RELEASE,
            del_path(f"{GRAFANA_INI}|auth.basic"),
            name="kube-prometheus",
        ),
    ],
    "MLS-OBS-004": [
        # Dev signs in with the chart's admin password: no SSO, so the form stays.
        ok("dev"),
        ok("prod"),
        bad(
            "prod",
            "login form beside SSO",
            HELM_RELEASE,
            del_path(f"{GRAFANA_INI}|auth"),
            name="kube-prometheus",
        ),
        bad(
            "dev",
            "SSO added, form kept",
            HELM_RELEASE,
            set_path(f"{GRAFANA_INI}|auth.generic_oauth", {"enabled": True}),
            name="kube-prometheus",
        ),
    ],
    "MLS-OBS-005": [
        ok("staging"),
        ok("prod"),
        # Dev is not a hardened tier.
        ok("dev"),
        bad(
            "staging",
            "no SSO",
            HELM_RELEASE,
            del_path(f"{GRAFANA_INI}|auth.generic_oauth"),
            name="kube-prometheus",
        ),
        bad(
            "prod",
            "no PKCE",
            HELM_RELEASE,
            set_path(f"{GRAFANA_INI}|auth.generic_oauth|use_pkce", False),
            name="kube-prometheus",
        ),
    ],
    "MLS-OBS-006": [
        ok("dev"),
        ok("prod"),
        bad(
            "prod",
            "secret in grafana.ini",
            HELM_RELEASE,
            set_path(f"{GRAFANA_INI}|auth.generic_oauth|client_secret", "s3cr3t"),
            name="kube-prometheus",
        ),
        bad(
            "staging",
            "secret as a plain env value",
            HELM_RELEASE,
            set_path("values|grafana|env", {"GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": "s3cr3t"}),
            name="kube-prometheus",
        ),
    ],
}
