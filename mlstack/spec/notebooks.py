"""Notebooks section of the environment spec: JupyterHub with OIDC sign-in and one profile per team and pool."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.orchestrator import ChartVersion, ContainerImage, HttpsUrl
from mlstack.spec.registry import REGISTRY_ALIASES
from mlstack.spec.secrets import SecretsManagerName

# An IdP group name as it appears in the groups claim (Okta, Entra ID, Keycloak and Cognito names fit).
IdpGroup = Annotated[str, StringConstraints(pattern=r"^[\w .:@/+=,-]{1,128}$")]
# Where the browser comes back after the IdP: https, or http on the laptop's own port-forward.
CallbackUrl = Annotated[
    str,
    StringConstraints(pattern=r"^(https://[A-Za-z0-9.-]+(:\d+)?|http://(localhost|127\.0\.0\.1)(:\d+)?)/[\w./-]*$"),
]
ClaimName = Annotated[str, StringConstraints(pattern=r"^[\w:.-]{1,64}$")]


class NotebookSsoSpec(StrictModel):
    """OIDC sign-in through OAuthenticator's GenericOAuthenticator (oauthenticator 17.4.0, in the hub image of
    chart 4.4.0). The client id and secret live in a Kubernetes Secret of the hub's namespace that External Secrets
    Operator syncs from Secrets Manager (``client_secret_id``), as for Argo's SSO, so they never pass through config
    or state.

    IAM Identity Center cannot be this IdP directly: its customer managed applications sign users in over SAML
    2.0 only (https://docs.aws.amazon.com/singlesignon/latest/userguide/customermanagedapps.html). Use the
    company IdP's OIDC endpoints, or an Amazon Cognito user pool that federates to Identity Center over SAML
    and serves OIDC to the hub (docs/components/notebooks.md)."""

    authorize_url: HttpsUrl = Field(description="The IdP's OAuth 2.0 authorization endpoint, https only.")
    token_url: HttpsUrl = Field(description="The IdP's token endpoint, https only.")
    userdata_url: HttpsUrl | None = Field(
        default=None,
        description="The IdP's OIDC userinfo endpoint; required unless userdata_from_id_token. Default: none.",
    )
    userdata_from_id_token: bool = Field(
        default=False,
        description="Read the user's claims (name, groups) from the ID token instead of the userinfo endpoint; "
        "Cognito puts cognito:groups only in its tokens. Default: off.",
    )
    oauth_callback_url: CallbackUrl = Field(
        default="http://localhost:8000/hub/oauth_callback",
        description="The hub's OAuth callback as the browser sees it, registered with the IdP. The hub is "
        "reached through a port-forward on the laptop, hence localhost. Default: "
        "http://localhost:8000/hub/oauth_callback.",
    )
    client_secret_name: DnsLabel = Field(
        default="jupyterhub-oidc",
        description="Kubernetes Secret in the hub's namespace with keys client-id and client-secret. "
        "Default: jupyterhub-oidc.",
    )
    client_secret_id: SecretsManagerName | None = Field(
        default=None,
        description="AWS Secrets Manager secret (its name) holding the client as JSON keys client-id and "
        "client-secret; External Secrets Operator copies it into client_secret_name (external_secrets). "
        "Default: mlstack/<environment>/sso/jupyterhub.",
    )
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[\w:.-]{1,64}$")]] = Field(
        default_factory=lambda: ["openid", "email", "groups"],
        description="OAuth scopes the hub requests. Default: openid, email and groups (the claim that maps users "
        "to teams).",
    )
    username_claim: ClaimName = Field(
        default="email", description="Claim that becomes the JupyterHub user name. Default: email."
    )
    groups_claim: ClaimName = Field(
        default="groups",
        description="Claim listing the user's IdP groups (cognito:groups for Cognito). Default: groups.",
    )
    admin_groups: list[IdpGroup] = Field(
        default_factory=list,
        description="IdP groups whose members are JupyterHub admins. JupyterHub 5.5's admin role has every "
        "permission, including access to every user's server in every team namespace (admin_access is deprecated "
        "since JupyterHub 2.0), so an admin crosses team boundaries. Default: none.",
    )
    login_service: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="company SSO", description="Name on the login button. Default: company SSO."
    )

    @model_validator(mode="after")
    def _one_userdata_source(self) -> NotebookSsoSpec:
        # oauthenticator 17.4.0 oauth2.py `_validate_userdata_url`: both at once is refused by the hub at start.
        if self.userdata_url and self.userdata_from_id_token:
            raise ValueError("set userdata_url or userdata_from_id_token, not both")
        if not self.userdata_url and not self.userdata_from_id_token:
            raise ValueError("set userdata_url (the IdP's userinfo endpoint) or userdata_from_id_token: true")
        if not self.oauth_callback_url.endswith("/hub/oauth_callback"):
            raise ValueError(
                f"oauth_callback_url {self.oauth_callback_url!r} must end in /hub/oauth_callback, the hub's "
                "callback path"
            )
        return self


class ServerSizeSpec(StrictModel):
    """What one notebook server gets: requested and limited alike (the team's LimitRange would otherwise inject
    its default limit of 1 core, below a larger request, and the pod would be rejected)."""

    cpu: float = Field(gt=0, le=192, description="CPU cores, request and limit (KubeSpawner cpu_guarantee, cpu_limit).")
    memory_gib: int = Field(
        ge=1, le=2048, description="Memory in GiB, request and limit (KubeSpawner mem_guarantee, mem_limit)."
    )


class NotebooksSpec(StrictModel):
    """JupyterHub for the teams: sign-in through the IdP, a profile per team and per pool, every server in its
    team's namespace with its team's service account, quota, LimitRange and NetworkPolicies. Default: off."""

    enabled: bool = Field(
        default=False,
        description="Install JupyterHub (needs sso and at least one team). Default: off.",
    )
    namespace: DnsLabel = Field(
        default="jupyterhub", description="Namespace of the hub and its proxy. Default: jupyterhub."
    )
    chart_version: ChartVersion = Field(
        default="4.4.0",
        description="Pinned version of the jupyterhub Helm chart (jupyterhub/zero-to-jupyterhub-k8s). "
        "Default: 4.4.0 (JupyterHub 5.5.0).",
    )
    sso: NotebookSsoSpec | None = Field(
        default=None, description="OIDC sign-in; required when enabled. Default: none."
    )
    team_groups: dict[DnsLabel, IdpGroup] = Field(
        default_factory=dict,
        description="IdP group of each team: its members may sign in and see that team's profiles. Default: "
        "the team's Kubernetes group (kubernetes_group, or team-<name>) for every team.",
    )
    # zero-to-jupyterhub-k8s@4.4.0 jupyterhub/values.yaml `singleuser.image` (k8s-singleuser-sample, tag set by
    # chartpress to the chart version: shared/charts/release-values/jupyterhub-4.4.0.yaml).
    image: ContainerImage = Field(
        default="quay.io/jupyterhub/k8s-singleuser-sample:4.4.0",
        description="Image of the notebook servers, pulled through the registry's pull-through cache for its "
        "registry. Default: quay.io/jupyterhub/k8s-singleuser-sample:4.4.0 (the chart's own).",
    )
    cpu_pools: list[DnsLabel] | None = Field(
        default=None,
        description="CPU pools that get a CPU profile per team. Default: every amd64 CPU pool (the default "
        "image's arm64 build is not verified).",
    )
    gpu_pools: list[DnsLabel] | None = Field(
        default=None,
        description="GPU pools that get a GPU profile per team: one whole GPU, or one time-slice on a pool with "
        "sharing. Default: every pool whose workload_class is notebook.",
    )
    cpu_server: ServerSizeSpec = Field(
        default_factory=lambda: ServerSizeSpec(cpu=1, memory_gib=4),
        description="Size of a CPU server. Default: 1 core, 4 GiB.",
    )
    gpu_server: ServerSizeSpec = Field(
        default_factory=lambda: ServerSizeSpec(cpu=2, memory_gib=12),
        description="CPU and memory of a GPU server beside its GPU. Default: 2 cores, 12 GiB (the smallest g5 "
        "and g6 sizes have 4 vCPUs and 16 GiB, part of which the kubelet and the node's DaemonSets keep).",
    )
    home_gib: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Home volume of each user in each team namespace, on the cluster's encrypted gp3 "
        "StorageClass. Default: 10 GiB.",
    )
    cull_idle_minutes: int | None = Field(
        default=None,
        ge=10,
        le=7 * 24 * 60,
        description="Stop a server after this many minutes without activity (jupyterhub-idle-culler --timeout). "
        "Default: 30 in dev, 60 in staging and prod.",
    )
    cull_max_age_hours: int = Field(
        default=0,
        ge=0,
        le=24 * 30,
        description="Stop a server this many hours after it started, active or not; 0 never does. Default: 0.",
    )

    def cull_minutes(self, hardened: bool) -> int:
        """The idle timeout in minutes: the declared one, or 30 in dev and 60 in staging and prod."""
        if self.cull_idle_minutes is not None:
            return self.cull_idle_minutes
        return 60 if hardened else 30

    @model_validator(mode="after")
    def _sso_when_enabled(self) -> NotebooksSpec:
        if self.enabled and self.sso is None:
            raise ValueError(
                "JupyterHub needs sign-in through the IdP: add notebooks.sso (docs/components/notebooks.md)"
            )
        return self


def notebook_problems(spec: Any) -> list[tuple[str, str]]:
    """Cross-section rules of ``notebooks`` over a PlatformSpec: teams, pools and images it names exist, and every
    profile fits the quota of each team it is offered to."""
    nb: NotebooksSpec = spec.notebooks
    if not nb.enabled:
        return []
    problems: list[tuple[str, str]] = []
    teams = {team.name: team for team in spec.teams}
    if not teams:
        problems.append(("notebooks.enabled", "JupyterHub serves teams: declare at least one team or turn it off"))
    if nb.namespace in teams:
        problems.append(
            (
                "notebooks.namespace",
                f"'{nb.namespace}' is a team's namespace; the hub needs its own (default jupyterhub)",
            )
        )
    for team in nb.team_groups:
        if team not in teams:
            problems.append(
                (f"notebooks.team_groups.{team}", f"'{team}' is not a declared team; declared: {sorted(teams)}")
            )
    cpu_pools = {pool.name: pool for pool in spec.cpu_pools}
    for i, name in enumerate(nb.cpu_pools or []):
        if name not in cpu_pools:
            problems.append(
                (f"notebooks.cpu_pools.{i}", f"'{name}' is not a CPU pool; declared: {sorted(cpu_pools) or 'none'}")
            )
    gpu_pools = {pool.name: pool for pool in spec.gpu_pools}
    for i, name in enumerate(nb.gpu_pools or []):
        if name not in gpu_pools:
            problems.append(
                (f"notebooks.gpu_pools.{i}", f"'{name}' is not a GPU pool; declared: {sorted(gpu_pools) or 'none'}")
            )
    if not notebook_cpu_pools(spec) and not notebook_gpu_pools(spec):
        problems.append(
            (
                "notebooks.cpu_pools",
                "no pool to offer: add an amd64 CPU pool, list pools in notebooks.cpu_pools or gpu_pools, or add a "
                "GPU pool with workload_class notebook",
            )
        )
    for i, team in enumerate(spec.teams):
        if nb.home_gib > team.max_pvc_gib:
            problems.append(
                (
                    "notebooks.home_gib",
                    f"{nb.home_gib} GiB is over team '{team.name}''s max_pvc_gib ({team.max_pvc_gib}); lower it",
                )
            )
        sizes = [("cpu_server", nb.cpu_server)] if notebook_cpu_pools(spec) else []
        if notebook_gpu_pools(spec):
            sizes.append(("gpu_server", nb.gpu_server))
        for field, size in sizes:
            if size.cpu > team.cpu_quota or size.memory_gib > team.memory_quota_gib:
                problems.append(
                    (
                        f"notebooks.{field}",
                        f"{size.cpu} cores and {size.memory_gib} GiB do not fit team '{team.name}''s quota "
                        f"(teams.{i}: cpu_quota {team.cpu_quota}, memory_quota_gib {team.memory_quota_gib})",
                    )
                )
    registry = nb.image.split("/", 1)[0]
    cached = {cache.upstream_url for cache in spec.registry.pull_through_caches}
    # components/notebooks.py pulls the hub, the proxy and the servers through the caches of their registries.
    needed = {"quay.io": "the hub and proxy images", REGISTRY_ALIASES.get(registry, registry): "notebooks.image"}
    problems += [
        (
            "registry.pull_through_caches",
            f"no cache rule for {upstream}, which {what} is pulled from; add that upstream to the list",
        )
        for upstream, what in sorted(needed.items())
        if upstream not in cached
    ]
    return problems


def notebook_cpu_pools(spec: Any) -> list[Any]:
    """The CPU pools with a notebook profile: the declared ones, or every amd64 pool."""
    nb: NotebooksSpec = spec.notebooks
    if nb.cpu_pools is not None:
        return [pool for pool in spec.cpu_pools if pool.name in nb.cpu_pools]
    return [pool for pool in spec.cpu_pools if pool.arch == "amd64"]


def notebook_gpu_pools(spec: Any) -> list[Any]:
    """The GPU pools with a notebook profile: the declared ones, or every pool of workload class notebook."""
    nb: NotebooksSpec = spec.notebooks
    if nb.gpu_pools is not None:
        return [pool for pool in spec.gpu_pools if pool.name in nb.gpu_pools]
    return [pool for pool in spec.gpu_pools if pool.workload_class == "notebook"]
