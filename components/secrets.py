"""External Secrets Operator: copies each SSO client's id and secret from AWS Secrets Manager into the Kubernetes
Secret its app (JupyterHub, Grafana, the Argo server) reads, before the app's release starts.

Why: those Secrets live in namespaces the stack itself creates, so nobody can create them before the first
``pulumi up``; the apps' pods could not start and the first deploy failed. With the operator, the platform team
stores the client in Secrets Manager beforehand and the first ``up`` works. The value never passes through the
stack file or Pulumi state: only the operator's pod reads it, through its Pod Identity role.

Design, least privilege first:

- One namespaced ``SecretStore`` per app namespace, no ``ClusterSecretStore``: the operator runs with the cluster
  store, cluster external secret and push reconcilers off (chart ``process*`` values), and only the CRDs it serves
  are installed, so no namespace can reach a store defined elsewhere, and nothing writes back to AWS.
- The operator's IAM role may ``secretsmanager:GetSecretValue`` on exactly the configured secrets (the only call
  the provider makes to read a ``remoteRef`` with a ``property``), and ``kms:Decrypt`` through Secrets Manager on
  the customer managed key, if one is named. Nothing else.
- The chart's aggregation into the built-in view/edit/admin ClusterRoles is off, so a team whose people hold
  ``edit`` in their namespace cannot create a SecretStore there and read the SSO secrets through the operator.
- No admission webhook, no cert-controller (see ``operator_values``).

The CRDs come from ``components/data/crds/external-secrets.yaml`` (vendored by scripts/vendor_eso_crds.py from the
pinned tag), not from the chart, whose package has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes
import yaml

from components.cluster import Cluster, system_placement
from components.environment import Environment
from components.helm import chart_source
from components.iam import platform_role, pod_identity_trust, policy_document
from components.options import child
from components.registry import PullThrough
from components.workloads import namespace
from mlstack.spec.secrets import CLIENT_KEYS, ExternalSecretsSpec, SsoClient

# external-secrets/external-secrets@helm-chart-2.9.0:deploy/charts/external-secrets (README: `helm repo add
# external-secrets https://charts.external-secrets.io`); shared/charts/external-secrets-2.9.0.tgz.
OPERATOR_CHART = "external-secrets"
OPERATOR_CHART_REPO = "https://charts.external-secrets.io"
OPERATOR_VERSION = "2.9.0"
# The chart's values.yaml `image.repository`; the tag defaults to the appVersion, v2.9.0 (_helpers.tpl
# "external-secrets.image"). Upstream publishes to ghcr.io only (Makefile IMAGE_REGISTRY ?= ghcr.io).
OPERATOR_IMAGE = "ghcr.io/external-secrets/external-secrets"
RELEASE_NAME = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
CRDS_FILE = Path(__file__).resolve().parent / "data" / "crds" / "external-secrets.yaml"
# The API version the vendored CRDs serve (v1beta1 is in them with served: false).
API_VERSION = "external-secrets.io/v1"
# What the Secrets Manager provider calls to read a remoteRef (providers/v1/aws/secretsmanager/secretsmanager.go
# @v2.9.0: GetSecret -> fetch -> constructSecretValue -> GetSecretValue; DescribeSecret only with
# metadataPolicy Fetch, which we never set; Validate retrieves credentials and calls no API).
READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# The operator pod's labels (templates/deployment.yaml selector: external-secrets.selectorLabels).
POD_LABELS = {"app.kubernetes.io/name": "external-secrets", "app.kubernetes.io/instance": RELEASE_NAME}
POD_IDENTITY_AGENT = "169.254.170.23/32"


@cache
def vendored_crds() -> tuple[dict[str, Any], ...]:
    """The CRDs the operator needs, unedited from upstream (scripts/vendor_eso_crds.py)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = CRDS_FILE.read_text(encoding="utf-8")
    return tuple(d for d in yaml.load_all(text, Loader=loader) if d)


def secret_arn(env: Environment, secret_id: str) -> str:
    """The ARN pattern of a secret named ``secret_id``: Secrets Manager appends a hyphen and six random characters
    to every secret's ARN (Secrets Manager user guide auth-and-access_examples.html / reference_iam-permissions:
    "use a wildcard ... -??????"), so ``-??????`` matches that secret and not ``<name>-suffix``-named others."""
    return env.arn("secretsmanager", f"secret:{secret_id}-??????")


def operator_statements(
    env: Environment, clients: Sequence[SsoClient], kms_key_arn: str | None
) -> list[dict[str, Any]]:
    """The operator role's policy: read exactly the SSO clients' secrets, and decrypt them through Secrets Manager
    when a customer managed key encrypts them."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadOnlyTheSsoClientSecrets",
            "Effect": "Allow",
            "Action": list(READ_ACTIONS),
            "Resource": sorted({secret_arn(env, c.secret_id) for c in clients}),
        }
    ]
    if kms_key_arn is not None:
        statements.append(
            {
                # Secrets Manager decrypts for the caller with kms:ViaService secretsmanager.<region>
                # (user guide security-encryption.html); the key cannot be used directly.
                "Sid": "DecryptTheSsoSecretsThroughSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"}
                },
            }
        )
    return statements


def operator_values(spec: ExternalSecretsSpec, pull_through: PullThrough | None) -> dict[str, Any]:
    """Helm values of external-secrets 2.9.0 (keys from its values.yaml and templates/deployment.yaml, rbac.yaml).

    - ``installCRDs: false``: the published package's CRD templates, generated at release time by
      hack/helm.generate.sh, are each wrapped in ``if .Values.installCRDs``; ours come from the vendored file first.
    - ``process*: false``: the deployment template turns each into ``--enable-...-reconciler=false``
      (cluster store, cluster external secret, cluster push secret, push secret); the chart's RBAC then leaves out
      their rules (processClusterGenerator only trims RBAC: cmd/controller/root.go starts no generator
      controller, only the GeneratorState one, whose CRD is vendored).
    - ``webhook.create``/``certController.create: false``: the webhook only validates ExternalSecret/SecretStore
      objects, which only this stack writes (and the deploy simulation checks against the same CRD schemas); it is
      fail-closed by default (``webhook.failurePolicy: Fail``), so every store would need to wait for it, and it
      needs the cert-controller, a second Deployment with cluster-wide CRD and webhook write rights. The CRDs
      have no conversion webhook (v1 only served), so nothing calls it.
    - ``rbac.aggregateTo*: false``: no rights on ExternalSecrets/SecretStores for the built-in roles (teams).
    - ``rbac.serviceAccountTokenCreate: false``: only for SecretStores authenticating with a service account
      token (auth.jwt); ours use the operator's own Pod Identity credentials.
    - Runs as the chart's non-root user 1000 (securityContext defaults: read-only root, all capabilities
      dropped, RuntimeDefault seccomp), on the system nodes.
    """
    repository = pull_through.image(OPERATOR_IMAGE) if pull_through is not None else OPERATOR_IMAGE
    return {
        "installCRDs": False,
        "processClusterExternalSecret": False,
        "processClusterPushSecret": False,
        "processClusterStore": False,
        "processPushSecret": False,
        "processClusterGenerator": False,
        "image": {"repository": repository},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "rbac": {
            "serviceAccountTokenCreate": False,
            "servicebindings": {"create": False},
            "aggregateToView": False,
            "aggregateToEdit": False,
            "aggregateToAdmin": False,
        },
        "webhook": {"create": False},
        "certController": {"create": False},
        # A handful of ExternalSecrets refreshed hourly: the controller idles (upstream's commented example is
        # 10m/32Mi); the limit leaves room for the informer caches of Secrets it manages.
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        **system_placement(),
    }


def network_policy_manifest(ns: str) -> dict[str, Any]:
    """The operator talks to the API server, DNS, the Pod Identity agent and Secrets Manager (HTTPS); it serves
    nothing anyone needs (metrics are not scraped), so no ingress."""
    return {
        "metadata": {"name": "external-secrets", "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": dict(POD_LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {
                    "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
                # Secrets Manager (regional endpoint or its VPC endpoint) and the cluster's private API endpoint.
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def secret_store_manifest(client: SsoClient, region: str) -> dict[str, Any]:
    """A SecretStore in the app's namespace (vendored CRD: spec.provider.aws.service/region are required; no
    ``auth``, so the provider uses the SDK's default credential chain, the operator's Pod Identity role:
    providers/v1/aws/auth/auth.go@v2.9.0 ``New`` -> ``config.LoadDefaultConfig`` when no auth is set)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "SecretStore",
        "metadata": {"name": f"{client.app}-sso", "namespace": client.namespace},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": region}}},
    }


def external_secret_manifest(client: SsoClient, refresh_minutes: int) -> dict[str, Any]:
    """The ExternalSecret that writes the app's Secret with keys client-id and client-secret, each the same-named
    JSON property of the Secrets Manager secret (vendored CRD: data[].secretKey, data[].remoteRef.key/property,
    target.name, target.creationPolicy Owner: the operator owns the Secret and deletes it with the
    ExternalSecret)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": client.secret_name, "namespace": client.namespace},
        "spec": {
            "refreshInterval": f"{refresh_minutes}m",
            "secretStoreRef": {"kind": "SecretStore", "name": f"{client.app}-sso"},
            "target": {"name": client.secret_name, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": key, "remoteRef": {"key": client.secret_id, "property": key}}
                for key in CLIENT_KEYS
            ],
        },
    }


@dataclass(frozen=True)
class ExternalSecretsArgs:
    """Inputs of ExternalSecrets. ``clients`` are every SSO client the stack runs (``synced_sso_clients``): the
    role is built for exactly those secrets."""

    env: Environment
    spec: ExternalSecretsSpec
    clients: Sequence[SsoClient]
    boundary_arn: pulumi.Input[str]
    cluster: Cluster
    k8s_provider: kubernetes.Provider
    pull_through: PullThrough
    after: Sequence[pulumi.Resource] = ()
    """What the operator's release waits for (``Teams.admission_ready``: Kueue's fail-closed webhooks)."""


class ExternalSecrets(pulumi.ComponentResource):
    """External Secrets Operator in its own restricted namespace, on the system nodes, with a Pod Identity role
    that reads only the SSO clients' Secrets Manager secrets. ``sync_client`` creates an app's SecretStore and
    ExternalSecret; the app's release waits for them.

    Outputs: ``role_arn``, ``namespace``.
    """

    role_arn: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:secrets:ExternalSecrets", name, None, opts)
        env, spec = args.env, args.spec
        self._env = env
        self._spec = spec
        self._provider = args.k8s_provider
        self._clients = {client.app: client for client in args.clients}
        ns = namespace(self, f"{name}-ns", spec.namespace, args.k8s_provider, "secrets")
        self.crds = [
            kubernetes.apiextensions.v1.CustomResourceDefinition(
                f"{name}-crd-{crd['spec']['names']['plural']}",
                metadata=crd["metadata"],
                spec=crd["spec"],
                opts=child(self, provider=args.k8s_provider),
            )
            for crd in vendored_crds()
        ]
        self.role = platform_role(
            self,
            f"{name}-operator",
            env=env,
            role_suffix="external-secrets",
            boundary_arn=args.boundary_arn,
            assume_role_policy=pod_identity_trust(
                env, namespace=spec.namespace, service_account=SERVICE_ACCOUNT
            ),
            description=f"External Secrets Operator in {env.name}: reads only the SSO clients' secrets.",
        )
        policy = aws.iam.RolePolicy(
            f"{name}-operator-read",
            role=self.role.name,
            policy=policy_document(operator_statements(env, args.clients, spec.kms_key_arn)),
            opts=child(self),
        )
        association = args.cluster.pod_identity(
            f"{name}-operator-identity",
            namespace=spec.namespace,
            service_account=SERVICE_ACCOUNT,
            role=self.role,
            parent=self,
        )
        chart, repository = chart_source(OPERATOR_CHART_REPO, OPERATOR_CHART)
        self.release = kubernetes.helm.v3.Release(
            f"{name}-operator",
            name=RELEASE_NAME,
            chart=chart,
            version=OPERATOR_VERSION,
            namespace=ns.metadata.name,
            create_namespace=False,
            repository_opts=repository,
            # The opt-out external_secrets.image_through_cache: false pulls from ghcr.io.
            values=operator_values(spec, args.pull_through if spec.image_through_cache else None),
            atomic=True,
            cleanup_on_fail=True,
            # The CRDs exist before the controller's informers start; its credentials before its first read.
            opts=child(
                self,
                provider=args.k8s_provider,
                depends_on=[ns, *self.crds, policy, association, *args.after],
            ),
        )
        kubernetes.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            **network_policy_manifest(spec.namespace),
            opts=child(self, provider=args.k8s_provider, depends_on=[ns]),
        )
        self.role_arn = self.role.arn
        self.namespace = pulumi.Output.from_input(spec.namespace)
        self.register_outputs({"role_arn": self.role_arn, "namespace": self.namespace})

    def sync_client(
        self, logical_name: str, app: str, after: Sequence[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """Create app ``app``'s SecretStore and ExternalSecret in its namespace (``after``: what creates that
        namespace) and return what the app's release must wait for. ``logical_name`` prefixes the two resources
        (``f"{component}-sso"``)."""
        client = self._clients.get(app)
        if client is None:
            raise ValueError(f"SSO client {app!r} is not among the clients the operator's role was built for")
        # The release waits for the CRDs, so waiting for it orders both after the CRDs and the operator.
        opts = child(self, provider=self._provider, depends_on=[*after, self.release])
        store_manifest = secret_store_manifest(client, self._env.region)
        store = kubernetes.apiextensions.CustomResource(
            f"{logical_name}-store",
            api_version=store_manifest["apiVersion"],
            kind=store_manifest["kind"],
            metadata=store_manifest["metadata"],
            spec=store_manifest["spec"],
            opts=opts,
        )
        secret_manifest = external_secret_manifest(client, self._spec.refresh_minutes)
        external = kubernetes.apiextensions.CustomResource(
            f"{logical_name}-secret",
            api_version=secret_manifest["apiVersion"],
            kind=secret_manifest["kind"],
            metadata=secret_manifest["metadata"],
            spec=secret_manifest["spec"],
            opts=child(self, provider=self._provider, depends_on=[*after, store]),
        )
        return [store, external]
