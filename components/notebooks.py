"""JupyterHub for the teams: the zero-to-jupyterhub chart with OIDC sign-in, a profile per team and per pool,
and every notebook server in its team's namespace under the team's quota, policies and Pod Identity role.

Versions read for every value here (the hub image of chart 4.4.0, zero-to-jupyterhub-k8s@4.4.0
``images/hub/requirements.txt``): jupyterhub 5.5.0, jupyterhub-kubespawner 7.0.0, oauthenticator 17.4.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import system_placement
from components.environment import Environment
from components.gpu import GPU_TAINT, POOL_LABEL
from components.helm import chart_source
from components.options import child
from components.rbac import bound_role, group_subject, service_account_subject
from components.registry import PullThrough
from components.secrets import ExternalSecrets
from components.teams import GPU_RESOURCE, LOCAL_QUEUE, NAME_LABEL, WORKLOAD_SERVICE_ACCOUNT
from components.workloads import namespace
from mlstack.spec.compute import CpuPoolSpec
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.notebooks import NotebooksSpec, ServerSizeSpec
from mlstack.spec.teams import TeamSpec

JUPYTERHUB_CHART = "jupyterhub"
JUPYTERHUB_REPOSITORY = "https://hub.jupyter.org/helm-chart/"
JUPYTERHUB_RELEASE = "jupyterhub"
# Images of the pods the chart renders with the values below (zero-to-jupyterhub-k8s@4.4.0 jupyterhub/values.yaml:
# `hub.image.name`, tag set by chartpress to 4.4.0; `proxy.chp.image`, tag 5.2.0). Both on quay.io.
HUB_IMAGE = "quay.io/jupyterhub/k8s-hub"
PROXY_IMAGE = "quay.io/jupyterhub/configurable-http-proxy"
# Names the chart gives its objects with release name jupyterhub and fullnameOverride "" (templates/
# _helpers-names.tpl): the hub's Service, ServiceAccount and port, the proxy's public Service.
HUB_SERVICE = "hub"
HUB_SERVICE_ACCOUNT = "hub"
HUB_PORT = 8081
PROXY_PUBLIC_SERVICE = "proxy-public"
PROXY_HTTP_PORT = 8000  # the chp container's http port (templates/proxy/deployment.yaml)
# KubeSpawner's default port and component label of a notebook server (kubespawner@7.0.0 spawner.py `port`
# default 8888, `component_label` default "singleuser-server").
SERVER_PORT = 8888
SERVER_LABELS = {"component": "singleuser-server", "app": "jupyterhub", "release": JUPYTERHUB_RELEASE}
HUB_LABELS = {"component": "hub", "app": "jupyterhub", "release": JUPYTERHUB_RELEASE}
PROXY_LABELS = {"component": "proxy", "app": "jupyterhub", "release": JUPYTERHUB_RELEASE}
TEAM_LABEL = "mlstack.io/team"
# Kueue's queue label (kubernetes-sigs/kueue@v0.19.2 pkg/controller/constants `QueueLabel`).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Karpenter's pod annotation against voluntary disruption (kubernetes-sigs/karpenter@v1.14.1 pkg/apis/v1/labels.go
# `DoNotDisruptAnnotationKey`).
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
# Where the laptop reaches the hub: a port-forward to the proxy's Service (docs/guides/notebooks.md).
LOCAL_PORT = 8000
PROFILES_MODULE = Path(__file__).resolve().parent / "jupyterhub_profiles.py"
# The chart mounts hub.extraFiles at their mountPath; jupyterhub_config.py puts its own directory on sys.path.
PROFILES_MOUNT = "/usr/local/etc/jupyterhub/mlstack_profiles.py"
GIB = 1024**3


@dataclass(frozen=True)
class JupyterHubArgs:
    """Inputs of JupyterHub."""

    env: Environment
    spec: NotebooksSpec
    teams: Sequence[TeamSpec]
    cpu_pools: Sequence[CpuPoolSpec]
    """The CPU pools that get a CPU profile (``notebook_cpu_pools``)."""
    gpu_pools: Sequence[GpuPoolSpec]
    """The GPU pools that get a GPU profile (``notebook_gpu_pools``)."""
    pull_through: PullThrough
    k8s_provider: k8s.Provider
    storage_class_name: pulumi.Input[str]
    """The cluster's encrypted gp3 StorageClass (``Cluster.storage_class_name``): home volumes and the hub's
    database."""
    team_namespaces: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team, what its namespaced objects wait for (``Teams.namespace_ready``)."""
    admission_ready: Sequence[pulumi.Resource] = ()
    """What every workload waits for (``Teams.admission_ready``: Kueue's fail-closed webhooks)."""
    gpu_pool_sizes: Mapping[str, int] = field(default_factory=dict)
    """``max_gpus`` of every GPU pool, as ``Teams`` splits each team's ``gpu_quota`` over them
    (``TeamSpec.pool_quotas``): a team gets no GPU profile on a pool where its share and its borrowing limit are
    both 0. Empty: no such filter."""
    sso_secrets: ExternalSecrets | None = None
    """The operator that syncs the hub's OIDC client Secret from Secrets Manager (``Platform.external_secrets``);
    None: the platform team creates the Secret by hand (``external_secrets.enabled: false``)."""


class JupyterHub(pulumi.ComponentResource):
    """JupyterHub (pinned chart, images through the quay.io cache, hub and proxy on the system nodes, no public
    Service) with GenericOAuthenticator sign-in; users see the profiles of the teams whose IdP group they are in,
    and each server starts in its team's namespace as the team's ``workload`` service account (its Pod Identity
    role), on the profile's pool, with a home volume on the encrypted gp3 class. In every team namespace the hub
    gets exactly the rights KubeSpawner uses, and a NetworkPolicy lets the proxy and the hub reach the servers
    and the servers reach the hub API; nothing else crosses namespaces.

    Outputs: ``namespace``, ``url`` (where a laptop opens the hub through its port-forward),
    ``port_forward`` (the command).
    """

    namespace: pulumi.Output[str]
    url: pulumi.Output[str]
    port_forward: pulumi.Output[str]

    def __init__(self, name: str, args: JupyterHubArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:notebooks:JupyterHub", name, None, opts)
        spec, provider = args.spec, args.k8s_provider
        ns = namespace(self, f"{name}-ns", spec.namespace, provider, "notebooks")
        chart, repository = chart_source(JUPYTERHUB_REPOSITORY, JUPYTERHUB_CHART)
        # The hub reads its OIDC client from this Secret at start: the release waits until the operator has it.
        synced = (
            args.sso_secrets.sync_client(f"{name}-sso", "jupyterhub", after=[ns])
            if args.sso_secrets is not None
            else []
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=JUPYTERHUB_RELEASE,
            chart=chart,
            version=spec.chart_version,
            repository_opts=repository,
            namespace=ns.metadata.name,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            values=jupyterhub_values(
                spec,
                teams=args.teams,
                cpu_pools=args.cpu_pools,
                gpu_pools=args.gpu_pools,
                pull_through=args.pull_through,
                storage_class=args.storage_class_name,
                hardened=args.env.tier.hardened,
                gpu_pool_sizes=args.gpu_pool_sizes,
            ),
            opts=child(self, provider=provider, depends_on=[ns, *synced, *args.admission_ready]),
        )
        for team in args.teams:
            self._team(name, team, args)
        self._port_forward(name, args, ns)
        self.namespace = pulumi.Output.from_input(spec.namespace)
        self.url = pulumi.Output.from_input(f"http://localhost:{LOCAL_PORT}")
        self.port_forward = pulumi.Output.from_input(port_forward_command(spec))
        self.register_outputs({"namespace": self.namespace, "url": self.url, "port_forward": self.port_forward})

    def _team(self, name: str, team: TeamSpec, args: JupyterHubArgs) -> None:
        prefix = f"{name}-{team.name}"
        ready = list(args.team_namespaces.get(team.name, ()))
        in_namespace = child(self, provider=args.k8s_provider, depends_on=ready)
        bound_role(
            self,
            f"{prefix}-spawner-role",
            binding_name=f"{prefix}-spawner-binding",
            metadata=_meta("jupyterhub-spawner", team.name),
            rules=spawner_rules(),
            subjects=[service_account_subject(HUB_SERVICE_ACCOUNT, args.spec.namespace)],
            provider=args.k8s_provider,
            role_opts=in_namespace,
            binding_after=ready,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-servers-netpol",
            metadata=_meta("jupyterhub-servers", team.name),
            spec=server_network_policy(args.spec),
            opts=in_namespace,
        )

    def _port_forward(self, name: str, args: JupyterHubArgs, ns: k8s.core.v1.Namespace) -> None:
        """Team members may port-forward to the proxy (and see the pods and Service it takes), nothing else in the
        hub's namespace."""
        spec = args.spec
        bound_role(
            self,
            f"{name}-users-role",
            binding_name=f"{name}-users-binding",
            metadata=_meta("jupyterhub-users", spec.namespace),
            rules=port_forward_rules(),
            subjects=[group_subject(team.group) for team in args.teams],
            provider=args.k8s_provider,
            role_opts=child(self, provider=args.k8s_provider, depends_on=[ns]),
            binding_after=[ns],
        )


def _meta(name: str, ns: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ns,
        "labels": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": "jupyterhub",
            "app.kubernetes.io/managed-by": "mlstack",
        },
    }


def port_forward_command(spec: NotebooksSpec) -> str:
    """The port-forward a laptop runs (through the access host's tunnel) to open the hub on localhost."""
    return f"kubectl -n {spec.namespace} port-forward svc/{PROXY_PUBLIC_SERVICE} {LOCAL_PORT}:80"


def ui_address(spec: NotebooksSpec) -> dict[str, str]:
    """The hub's entry in the ``ui_addresses`` stack output: in-cluster URL, laptop URL, port-forward."""
    return {
        "in_cluster": f"http://{PROXY_PUBLIC_SERVICE}.{spec.namespace}.svc.cluster.local",
        "laptop": f"http://localhost:{LOCAL_PORT}",
        "port_forward": port_forward_command(spec),
    }


def spawner_rules() -> list[dict[str, Any]]:
    """What the hub's service account may do in a team namespace: exactly the calls KubeSpawner 7.0.0 makes there
    (jupyterhub/kubespawner@7.0.0 kubespawner/spawner.py and reflector.py) with internal_ssl and services_enabled
    off, as here:

    - pods: the per-namespace PodReflector lists and watches (``list_namespaced_pod`` with a watch),
      ``create_namespaced_pod``, ``delete_namespaced_pod``; get for the reflector's resync;
    - persistentvolumeclaims: ``create_namespaced_persistent_volume_claim``, ``read_...`` (the 403/409 paths of
      ``_make_create_pvc_request`` and ``_check_pvc_exists``), ``delete_...`` (``delete_forever``);
    - events: the EventReflector lists and watches pod events for the spawn progress page.

    Not granted (the chart's own hub Role has them in its namespace): secrets and services, which KubeSpawner
    creates only with internal_ssl or services_enabled.
    """
    return [
        {"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
        {"api_groups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "create", "delete"]},
        {"api_groups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    ]


def port_forward_rules() -> list[dict[str, Any]]:
    """``kubectl port-forward svc/proxy-public``: kubectl reads the Service and picks a pod behind it
    (get services, list pods), then opens the stream on pods/portforward. kubectl 1.31 and later open it as a
    WebSocket, an HTTP GET the API server authorizes as ``get`` (and, from Kubernetes 1.35, also as ``create``);
    the SPDY fallback is a POST, ``create`` (kubernetes/enhancements KEP-4006, "synthetic RBAC create
    authorization check"). Both verbs, so neither path is refused."""
    return [
        {
            "api_groups": [""],
            "resources": ["services"],
            "resource_names": [PROXY_PUBLIC_SERVICE],
            "verbs": ["get"],
        },
        {"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"api_groups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
    ]


def server_network_policy(spec: NotebooksSpec) -> dict[str, Any]:
    """In a team namespace, on the notebook servers only: the proxy and the hub may connect to the server port (the
    proxy routes the user's browser, the hub checks the server is up), and the server may call the hub API. The
    team's default-deny and its other policies still apply to everything else."""
    hub_namespace = {"namespaceSelector": {"matchLabels": {NAME_LABEL: spec.namespace}}}
    return {
        "podSelector": {"matchLabels": dict(SERVER_LABELS)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {**hub_namespace, "podSelector": {"matchLabels": dict(PROXY_LABELS)}},
                    {**hub_namespace, "podSelector": {"matchLabels": dict(HUB_LABELS)}},
                ],
                "ports": [{"protocol": "TCP", "port": SERVER_PORT}],
            }
        ],
        "egress": [
            {
                "to": [{**hub_namespace, "podSelector": {"matchLabels": dict(HUB_LABELS)}}],
                "ports": [{"protocol": "TCP", "port": HUB_PORT}],
            }
        ],
    }


def _team_servers_peer(teams: Sequence[TeamSpec]) -> dict[str, Any]:
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": NAME_LABEL, "operator": "In", "values": sorted(team.name for team in teams)}
            ]
        },
        "podSelector": {"matchLabels": dict(SERVER_LABELS)},
    }


def _resources(size: ServerSizeSpec) -> dict[str, Any]:
    # KubeSpawner's cpu_guarantee is a float of cores, mem_guarantee/mem_limit a ByteSpecification (an int is
    # bytes); kubespawner@7.0.0 objects.py make_pod turns them into the container's requests and limits.
    # The CPU limit is explicit: without one the team's LimitRange injects its default (1 core), below the
    # request of any larger server, and the API server rejects the pod.
    memory = size.memory_gib * GIB
    cpu = float(size.cpu)
    return {"cpu_guarantee": cpu, "cpu_limit": cpu, "mem_guarantee": memory, "mem_limit": memory}


def team_profiles(
    spec: NotebooksSpec,
    team: TeamSpec,
    *,
    cpu_pools: Sequence[CpuPoolSpec],
    gpu_pools: Sequence[GpuPoolSpec],
    gpu_pool_sizes: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The KubeSpawner profiles of one team (kubespawner@7.0.0 ``profile_list`` entries): one per CPU pool, one
    per GPU pool (a whole GPU, or one time-slice on a pool with sharing) when the team has a GPU quota. Each
    starts the server in the team's namespace, as its workload service account, on the pool's nodes.

    With ``gpu_pool_sizes`` (every GPU pool's max_gpus), a pool where the team's Kueue share and borrowing limit
    are both 0 gets no profile: its ClusterQueue flavor for that pool has nominalQuota 0 and borrowingLimit 0
    (components/teams.py ``cluster_queue_manifest``), so Kueue would never admit the server and every spawn would
    end in KubeSpawner's start timeout."""
    common = {
        "namespace": team.name,
        "service_account": WORKLOAD_SERVICE_ACCOUNT,
        # The pod gets Pod Identity credentials (the agent's projected token), not a Kubernetes API token: the
        # workload account has no RBAC to use one for.
        "automount_service_account_token": False,
        # A server is a Kueue workload of the team's queue whether or not it says so: Kueue 0.19.2's pod
        # integration is on in the chart's default frameworks (charts/kueue/values.yaml), and its pod webhook
        # labels an unlabelled pod with the namespace's LocalQueue "default" when there is one (every team has
        # it), then gates it until the team's ClusterQueue admits it (kubernetes-sigs/kueue@v0.19.2
        # pkg/controller/jobs/pod/pod_webhook.go `Default`, "Local queue defaulting"). Saying so here keeps the
        # pod as the hub asks for it equal to the pod that runs, and lets the deploy simulation check the queue
        # (MLS-SIM-ADM-005).
        "extra_labels": {TEAM_LABEL: team.name, KUEUE_QUEUE_LABEL: LOCAL_QUEUE},
        # A server is a bare pod: nothing recreates it, and its kernels' state dies with it. The pools consolidate
        # WhenEmptyOrUnderutilized, and Karpenter 1.14.1 disrupts a node whose pods all count as disruptable; only
        # this annotation makes a running pod block voluntary disruption (kubernetes-sigs/karpenter@v1.14.1
        # pkg/utils/pod/scheduling.go `IsDisruptable`, pkg/controllers/state/statenode.go). The idle culler
        # (cull_idle_minutes) stops idle servers, so nodes still drain when nobody works on them.
        "extra_annotations": {DO_NOT_DISRUPT: "true"},
    }
    profiles: list[dict[str, Any]] = []
    cpu = spec.cpu_server
    for pool in cpu_pools:
        override: dict[str, Any] = {**common, **_resources(cpu), "node_selector": {POOL_LABEL: pool.name}}
        profiles.append(
            {
                "display_name": f"{team.name}: CPU ({pool.name}), {cpu.cpu:g} vCPU, {cpu.memory_gib} GiB",
                "slug": f"{team.name}-cpu-{pool.name}",
                "description": f"A CPU server on the {pool.name} pool, in namespace {team.name}.",
                "kubespawner_override": override,
            }
        )
    if team.gpu_quota + team.gpu_borrowing_limit == 0:
        return profiles
    gpu = spec.gpu_server
    shares = team.pool_quotas(dict(gpu_pool_sizes)) if gpu_pool_sizes else {}
    for gpu_pool in gpu_pools:
        if gpu_pool_sizes and shares.get(gpu_pool.name, 0) == 0 and team.gpu_borrowing_limit == 0:
            continue
        shared = gpu_pool.sharing is not None
        kind = f"GPU time-slice (1/{gpu_pool.sharing.replicas} of a GPU)" if gpu_pool.sharing else "one GPU"
        override = {
            **common,
            **_resources(gpu),
            # With time-slicing the device plugin advertises each GPU `replicas` times under the same resource
            # name (components/gpu.py _sharing_config), so one slice is one nvidia.com/gpu.
            "extra_resource_guarantees": {GPU_RESOURCE: "1"},
            "extra_resource_limits": {GPU_RESOURCE: "1"},
            "node_selector": {POOL_LABEL: gpu_pool.name},
            "tolerations": [{**GPU_TAINT, "operator": "Equal"}],
        }
        profiles.append(
            {
                "display_name": f"{team.name}: {kind} ({gpu_pool.name})",
                "slug": f"{team.name}-{'gpu-slice' if shared else 'gpu'}-{gpu_pool.name}",
                "description": f"{kind} on the {gpu_pool.name} pool, {gpu.cpu:g} vCPU and {gpu.memory_gib} GiB, "
                f"in namespace {team.name}.",
                "kubespawner_override": override,
            }
        )
    return profiles


def profile_data(
    spec: NotebooksSpec,
    teams: Sequence[TeamSpec],
    *,
    cpu_pools: Sequence[CpuPoolSpec],
    gpu_pools: Sequence[GpuPoolSpec],
    gpu_pool_sizes: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """What the hub's profile filter reads (``custom.mlstack.teams``): per team, its IdP group and its profiles."""
    return {
        team.name: {
            "group": team_group(spec, team),
            "profiles": team_profiles(
                spec, team, cpu_pools=cpu_pools, gpu_pools=gpu_pools, gpu_pool_sizes=gpu_pool_sizes
            ),
        }
        for team in teams
    }


def team_group(spec: NotebooksSpec, team: TeamSpec) -> str:
    """The team's IdP group: declared in notebooks.team_groups, or the team's Kubernetes group."""
    return spec.team_groups.get(team.name, team.group)


# hub.extraConfig runs inside jupyterhub_config.py, where `c` and z2jh's `get_config` are defined
# (zero-to-jupyterhub-k8s@4.4.0 jupyterhub/files/hub/jupyterhub_config.py, "execute hub.extraConfig entries").
EXTRA_CONFIG = (
    "import mlstack_profiles\n"
    'c.KubeSpawner.profile_list = mlstack_profiles.team_profile_list(get_config("custom.mlstack.teams"))\n'
)


def _sso_config(spec: NotebooksSpec, teams: Sequence[TeamSpec]) -> dict[str, Any]:
    """``hub.config.GenericOAuthenticator``: traits of oauthenticator 17.4.0 (oauthenticator/oauth2.py and
    generic.py). The client id and secret are not here: OAuthenticator reads OAUTH_CLIENT_ID and
    OAUTH_CLIENT_SECRET from the environment (``_client_id_default``, ``_client_secret_default``)."""
    sso = spec.sso
    assert sso is not None  # the spec refuses an enabled hub without sso
    config: dict[str, Any] = {
        "login_service": sso.login_service,
        "authorize_url": sso.authorize_url,
        "token_url": sso.token_url,
        "oauth_callback_url": sso.oauth_callback_url,
        "scope": list(sso.scopes),
        "username_claim": sso.username_claim,
        # JupyterHub groups follow the IdP's groups claim (in auth_state under "oauth_user") at every login and
        # token refresh; only members of a team group (or an admin group) may sign in.
        "manage_groups": True,
        "auth_state_groups_key": f"oauth_user.{sso.groups_claim}",
        "allowed_groups": sorted({team_group(spec, team) for team in teams}),
        "admin_groups": sorted(sso.admin_groups),
    }
    if sso.userdata_from_id_token:
        config["userdata_from_id_token"] = True
    else:
        config["userdata_url"] = sso.userdata_url
    return config


def jupyterhub_values(
    spec: NotebooksSpec,
    *,
    teams: Sequence[TeamSpec],
    cpu_pools: Sequence[CpuPoolSpec],
    gpu_pools: Sequence[GpuPoolSpec],
    pull_through: PullThrough,
    storage_class: pulumi.Input[str],
    hardened: bool,
    gpu_pool_sizes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Helm values of jupyterhub 4.4.0 (zero-to-jupyterhub-k8s@4.4.0 jupyterhub/values.yaml)."""
    assert spec.sso is not None
    secret = spec.sso.client_secret_name
    team_servers = _team_servers_peer(teams)
    placement = system_placement()
    return {
        "hub": {
            "image": {"name": pull_through.image(HUB_IMAGE)},
            "config": {
                "JupyterHub": {
                    "authenticator_class": "generic-oauth",  # oauthenticator 17.4.0 pyproject.toml entry point
                    # Servers live in the team namespaces, where the short name "hub" the chart sets
                    # (jupyterhub_config.py hub_connect_url) does not resolve; hub.config is applied after it.
                    "hub_connect_url": f"http://{HUB_SERVICE}.{spec.namespace}.svc.cluster.local:{HUB_PORT}",
                },
                "Authenticator": {
                    # Keeps the refresh token, so groups are re-read before each spawn (refresh_pre_spawn defaults
                    # to enable_auth_state in oauth2.py); the chart generates the CryptKeeper key.
                    "enable_auth_state": True,
                },
                "GenericOAuthenticator": _sso_config(spec, teams),
                "KubeSpawner": {
                    # Restricted Pod Security: the image's jovyan user (uid 1000, singleuser.uid), no privilege.
                    "pod_security_context": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "container_security_context": {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True},
                },
            },
            "extraEnv": {
                "OAUTH_CLIENT_ID": {"valueFrom": {"secretKeyRef": {"name": secret, "key": "client-id"}}},
                "OAUTH_CLIENT_SECRET": {"valueFrom": {"secretKeyRef": {"name": secret, "key": "client-secret"}}},
            },
            "extraFiles": {
                "mlstack-profiles": {"mountPath": PROFILES_MOUNT, "stringData": PROFILES_MODULE.read_text()}
            },
            "extraConfig": {"mlstack-profiles": EXTRA_CONFIG},
            "db": {
                "type": "sqlite-pvc",
                "pvc": {
                    "storage": "1Gi",
                    "storageClassName": storage_class,
                    # Staging and prod keep the hub's database when the release is uninstalled (Helm's
                    # resource-policy annotation); the users' home volumes are KubeSpawner's, never Helm's.
                    **({"annotations": {"helm.sh/resource-policy": "keep"}} if hardened else {}),
                },
            },
            "resources": _small("100m", "512Mi", "1Gi"),
            **placement,
            "networkPolicy": {
                "enabled": True,
                # Servers in the team namespaces call the hub API.
                "ingress": [{"from": [team_servers], "ports": [{"port": "http"}]}],
                # The hub talks to the Kubernetes API and the IdP (private and public addresses, HTTPS) and to the
                # servers it checks; the chart's rules cover its own namespace only, so the servers are explicit.
                "egress": [{"to": [team_servers], "ports": [{"port": SERVER_PORT, "protocol": "TCP"}]}],
                "egressAllowRules": {"cloudMetadataServer": False, "dnsPortsCloudMetadataServer": False},
            },
        },
        "proxy": {
            # No LoadBalancer: people reach the proxy through a port-forward over the access host's tunnel.
            "service": {"type": "ClusterIP"},
            "chp": {
                "image": {"name": pull_through.image(PROXY_IMAGE)},
                "resources": _small("50m", "128Mi", "256Mi"),
                **placement,
                "networkPolicy": {
                    "enabled": True,
                    # The chart opens http/https to every source by default (values.yaml
                    # `proxy.chp.networkPolicy.allowedIngressPorts`); nobody needs that here. The hub (API port)
                    # and labelled pods keep the chart's own rules, and people arrive through kubectl
                    # port-forward: containerd dials localhost inside the pod's network namespace
                    # (containerd/containerd internal/cri/server/sandbox_portforward_linux.go `portForward`,
                    # `dialLocalhost`, read at main, not at the AMI's version), so the connection never crosses the
                    # pod's veth, where the VPC CNI enforces NetworkPolicies.
                    "allowedIngressPorts": [],
                    # The proxy routes to the servers in the team namespaces and nowhere else outside its own.
                    "egress": [{"to": [team_servers], "ports": [{"port": SERVER_PORT, "protocol": "TCP"}]}],
                    "egressAllowRules": {
                        "cloudMetadataServer": False,
                        "dnsPortsCloudMetadataServer": False,
                        "nonPrivateIPs": False,
                        "privateIPs": False,
                    },
                },
            },
        },
        "singleuser": {
            "image": {
                "name": pull_through.image(spec.image.rsplit(":", 1)[0]),
                "tag": spec.image.rsplit(":", 1)[1],
            },
            # The privileged iptables init container is not needed: the team namespaces' default-deny egress
            # admits only HTTPS (443), DNS and the Pod Identity agent, so IMDS (169.254.169.254:80) is refused,
            # and the nodes' IMDSv2 hop limit of 1 stops a pod's token request anyway.
            "cloudMetadata": {"blockWithIptables": False},
            # The chart's singleuser policy selects servers in its own namespace, where none run; the team
            # namespaces carry mlstack's (server_network_policy).
            "networkPolicy": {"enabled": False},
            "storage": {
                "type": "dynamic",
                "capacity": f"{spec.home_gib}Gi",
                "dynamic": {"storageClass": storage_class},
            },
            # The profiles set the real sizes; this is what a server without a profile would get.
            "cpu": {"guarantee": float(spec.cpu_server.cpu), "limit": float(spec.cpu_server.cpu)},
            "memory": {"guarantee": spec.cpu_server.memory_gib * GIB, "limit": spec.cpu_server.memory_gib * GIB},
        },
        "custom": {
            "mlstack": {
                "teams": profile_data(
                    spec, teams, cpu_pools=cpu_pools, gpu_pools=gpu_pools, gpu_pool_sizes=gpu_pool_sizes
                ),
            }
        },
        "scheduling": {
            # Karpenter packs and consolidates the pools; the chart's own scheduler (two kube-scheduler pods on
            # the system nodes) and its placeholder pods would only compete with it.
            "userScheduler": {"enabled": False},
            "userPlaceholder": {"enabled": False},
            # No node is labelled hub.jupyter.org/node-purpose: no affinity to it (scheduling helpers).
            "corePods": {"nodeAffinity": {"matchNodePurpose": "ignore"}},
            "userPods": {"nodeAffinity": {"matchNodePurpose": "ignore"}},
        },
        # The image pullers are DaemonSets on every node (GPU nodes included) and a pre-install hook: the pools
        # scale from zero, so pre-pulling would hold nodes up and add a hook to every upgrade.
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "cull": {
            "enabled": True,
            "timeout": spec.cull_minutes(hardened) * 60,
            "every": 300,
            "maxAge": spec.cull_max_age_hours * 3600,
        },
    }


def _small(cpu: str, memory: str, limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}}
