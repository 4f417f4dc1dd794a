"""External Secrets section of the environment spec: the operator that copies the SSO clients' id and secret from
AWS Secrets Manager into the Kubernetes Secrets JupyterHub, Grafana and the Argo server read.

The platform team stores each client in Secrets Manager before the first deploy (by hand or from its IdP
automation), as a JSON object with the keys ``client-id`` and ``client-secret``. mlstack never holds the value: not
in the stack file, not in Pulumi state; only the operator's pod reads it, at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints

from mlstack.spec.base import DnsLabel, StrictModel

if TYPE_CHECKING:
    from mlstack.spec import PlatformSpec

# Secrets Manager's secret name characters (API reference CreateSecret, Name: "letters, numbers, and the
# following characters: /_+=.@-"; 1 to 512 characters). A name, never an ARN: the IAM grant appends the random
# suffix Secrets Manager adds to every ARN.
SecretsManagerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]
KmsKeyArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]{36}$")
]

# The two keys of the Secrets Manager secret (a JSON object) and of the Kubernetes Secret each app reads.
CLIENT_KEYS = ("client-id", "client-secret")


class ExternalSecretsSpec(StrictModel):
    """External Secrets Operator (chart external-secrets 2.9.0), installed only when at least one SSO client is
    configured (``notebooks.sso``, ``metrics.grafana.sso``, ``orchestrator.sso``). It syncs each client's
    Secrets Manager secret into the Kubernetes Secret its app reads, before the app's release starts, so the
    first ``pulumi up`` works. Its role may read only those secrets."""

    enabled: bool = Field(
        default=True,
        description="Sync the SSO clients' Kubernetes Secrets from Secrets Manager with External Secrets Operator. "
        "Off: the platform team creates each Secret by hand in the app's namespace, which the stack creates, so "
        "the first deploy fails until it exists. Default: on.",
    )
    namespace: DnsLabel = Field(
        default="external-secrets", description="Namespace of the operator. Default: external-secrets."
    )
    image_through_cache: bool = Field(
        default=True,
        description="Pull the operator's image (ghcr.io/external-secrets/external-secrets, the chart's default and "
        "the only registry upstream publishes to) through the registry's github pull-through cache, which then "
        "must exist (ECR needs GitHub credentials for ghcr.io). Off is a named opt-out: the pod pulls from "
        "ghcr.io directly, unscanned. Default: on.",
    )
    kms_key_arn: KmsKeyArn | None = Field(
        default=None,
        description="Customer managed KMS key that encrypts the SSO secrets, if not the AWS managed key "
        "aws/secretsmanager; the operator then may kms:Decrypt with it through Secrets Manager only. Default: none "
        "(the secrets use the AWS managed key aws/secretsmanager, whose key policy AWS maintains; the operator's "
        "role then holds no KMS permission).",
    )
    refresh_minutes: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="How often the operator re-reads each secret (the ExternalSecret's refreshInterval), so that a "
        "rotated client secret reaches the Kubernetes Secret; the app picks it up on its next restart. "
        "Default: 60.",
    )


@dataclass(frozen=True)
class SsoClient:
    """One app's OIDC client: the Kubernetes Secret its release reads and the Secrets Manager secret behind it."""

    app: str
    namespace: str
    secret_name: str
    secret_id: str
    field_path: str
    """Where ``client_secret_id`` is set in the stack file (for messages)."""


def default_secret_id(environment: str, app: str) -> str:
    """``mlstack/<environment>/sso/<app>``: the documented default of every ``client_secret_id``."""
    return f"mlstack/{environment}/sso/{app}"


def sso_clients(spec: PlatformSpec) -> list[SsoClient]:
    """Every SSO client the environment runs, in a fixed order (hub, Grafana, Argo server)."""
    env = spec.environment
    clients = []
    notebooks = spec.notebooks
    if notebooks.enabled and notebooks.sso is not None:
        sso = notebooks.sso
        clients.append(
            SsoClient(
                "jupyterhub",
                notebooks.namespace,
                sso.client_secret_name,
                sso.client_secret_id or default_secret_id(env, "jupyterhub"),
                "notebooks.sso.client_secret_id",
            )
        )
    metrics = spec.metrics
    if metrics.runs_grafana and metrics.grafana.sso is not None:
        grafana_sso = metrics.grafana.sso
        clients.append(
            SsoClient(
                "grafana",
                metrics.namespace,
                grafana_sso.client_secret_name,
                grafana_sso.client_secret_id or default_secret_id(env, "grafana"),
                "metrics.grafana.sso.client_secret_id",
            )
        )
    orchestrator = spec.orchestrator
    if orchestrator.argo_workflows and orchestrator.sso is not None:
        argo_sso = orchestrator.sso
        clients.append(
            SsoClient(
                "argo-server",
                orchestrator.argo_namespace,
                argo_sso.client_secret_name,
                argo_sso.client_secret_id or default_secret_id(env, "argo-server"),
                "orchestrator.sso.client_secret_id",
            )
        )
    return clients


def synced_sso_clients(spec: PlatformSpec) -> list[SsoClient]:
    """The clients the operator syncs: all of them when it is on, none when off."""
    return sso_clients(spec) if spec.external_secrets.enabled else []


def secrets_problems(spec: PlatformSpec) -> list[tuple[str, str]]:
    """Two SSO clients cannot share one Secrets Manager secret (each app has its own client)."""
    problems = []
    seen: dict[str, str] = {}
    for client in sso_clients(spec):
        if client.secret_id in seen:
            problems.append(
                (
                    client.field_path,
                    f"{client.secret_id!r} is already the secret of {seen[client.secret_id]}; give each app's OIDC "
                    "client its own secret",
                )
            )
        seen.setdefault(client.secret_id, client.field_path)
    return problems
