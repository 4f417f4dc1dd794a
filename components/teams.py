"""Team tenancy: namespace, quotas, network policy, RBAC, Kueue queues and IAM roles per team.

The Kubernetes objects and IAM documents are built by plain functions (``*_manifest``, ``*_trust``,
``*_statements``) so that they can be read and tested without an engine; the component only creates them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.cluster import Cluster, system_placement
from components.compute import ARCH_LABEL, ARM64_TAINT
from components.environment import Environment
from components.helm import chart_source
from components.iam import POLICY_VERSION, platform_role, pod_identity_trust, policy_document, team_tags
from components.inference import INTERCEPTOR_POD_LABELS, INTERCEPTOR_PORT, KEDA_NAMESPACE
from components.options import child
from components.registry import PullThrough, Registry
from components.storage import ObjectStore
from mlstack.spec.compute import CpuPoolSpec
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.teams import HumanAccessSpec, TeamSpec

KUEUE_CHART = "kueue"
KUEUE_CHART_REPO = "oci://registry.k8s.io/kueue/charts"
KUEUE_VERSION = "0.19.2"  # matches the CRDs in shared/crds; v1beta2 is their storage version
KUEUE_API = "kueue.x-k8s.io/v1beta2"
KUEUE_NAMESPACE = "kueue-system"
# The released chart's controller image (shared/charts/release-values/kueue-0.19.2.yaml), pulled through the cache.
KUEUE_IMAGE = "registry.k8s.io/kueue/kueue"
COHORT = "mlstack"
# CPU and memory are admitted through flavors that select an architecture only (amd64 `default`, and `arm64`
# with a Graviton pool): Kueue must cover every resource a workload requests, but only GPUs decide which GPU
# pool a workload lands on (resource_flavor_manifests).
DEFAULT_FLAVOR = "default"
ARM64_FLAVOR = "arm64"
LOCAL_QUEUE = "default"
WORKLOAD_SERVICE_ACCOUNT = "workload"
GPU_RESOURCE = "nvidia.com/gpu"
# Advertised by the AWS EFA device plugin on EFA pools; requested by multi-node training pods.
EFA_RESOURCE = "vpc.amazonaws.com/efa"
POOL_LABEL = "mlstack.io/pool"
NAME_LABEL = "kubernetes.io/metadata.name"
# Namespaces of the platform's shared services (Argo, Metaflow, Qdrant, monitoring) that team pods may call.
SHARED_SERVICE_NAMESPACES = ("argo", "metaflow", "qdrant", "monitoring")
# The EKS Pod Identity agent listens on this link-local address on every node.
POD_IDENTITY_AGENT = "169.254.170.23/32"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
DATA_BUCKETS = ("datasets", "artifacts", "models")


@dataclass(frozen=True)
class TeamsArgs:
    """Inputs of Teams. Everything it touches arrives here explicitly; nothing is looked up."""

    env: Environment
    spec: list[TeamSpec]
    gpu_pools: list[GpuPoolSpec]
    boundary_arn: pulumi.Input[str]
    k8s_provider: kubernetes.Provider
    cluster: Cluster
    storage: ObjectStore
    registry: Registry
    platform_admins: HumanAccessSpec | None = None
    shared_service_namespaces: Sequence[str] = SHARED_SERVICE_NAMESPACES
    cpu_pools: Sequence[CpuPoolSpec] = ()
    """The CPU pools: an arm64 pool adds Kueue's arm64 flavor (components/compute.py)."""
    kueue_after: Sequence[pulumi.Resource] = ()
    """What Kueue's release waits for: the JobSet release, so that Kueue's JobSet integration finds its CRD."""


class Teams(pulumi.ComponentResource):
    """Every team's namespace, quotas, network isolation, RBAC, Kueue queues and IAM roles, plus Kueue itself
    and the platform-admin role (the only cluster-admin).

    Outputs: ``platform_admin_role_arn``, ``human_role_arns`` and ``workload_role_arns`` (team -> ARN),
    ``namespaces`` (team names). Attribute ``namespace_ready`` maps each team to what a workload in its
    namespace must wait for.
    """

    platform_admin_role_arn: pulumi.Output[str]
    human_role_arns: pulumi.Output[dict[str, str]]
    workload_role_arns: pulumi.Output[dict[str, str]]
    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TeamsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:teams:Teams", name, None, opts)
        env = args.env
        self._args = args
        k8s = args.k8s_provider

        kueue_chart, kueue_repository = chart_source(KUEUE_CHART_REPO, KUEUE_CHART)
        self.kueue = kubernetes.helm.v3.Release(
            f"{name}-kueue",
            name="kueue",
            # kubernetes-sigs/kueue@v0.19.2:charts/kueue/README.md: helm install kueue oci://registry.k8s.io/kueue/charts/kueue
            chart=kueue_chart,
            version=KUEUE_VERSION,
            namespace=KUEUE_NAMESPACE,
            create_namespace=True,
            repository_opts=kueue_repository,
            values=kueue_values(hardened=env.tier.hardened, pull_through=args.registry.pull_through),
            atomic=True,
            opts=child(self, provider=k8s, depends_on=list(args.kueue_after)),
        )
        # Kueue's chart installs fail-closed mutating webhooks for Deployments, StatefulSets and Jobs in every
        # namespace but kube-system and kueue-system (kubernetes-sigs/kueue@v0.19.2:charts/kueue/templates/
        # webhook/webhook.yaml); such an object created while Kueue's pods start is refused
        # (kubernetes-sigs/kueue#5244). Workloads of other components wait for the release: admission_ready.
        self.admission_ready: list[pulumi.Resource] = [self.kueue]
        after_kueue = child(self, provider=k8s, depends_on=[self.kueue])
        arm64 = any(pool.arch == "arm64" for pool in args.cpu_pools)
        for flavor in resource_flavor_manifests(args.gpu_pools, arm64=arm64):
            kubernetes.apiextensions.CustomResource(
                f"{name}-flavor-{flavor['metadata']['name']}", **_custom(flavor), opts=after_kueue
            )

        self.platform_admin_role = platform_role(
            self,
            f"{name}-platform-admin",
            env=env,
            role_suffix="platform-admin",
            boundary_arn=args.boundary_arn,
            assume_role_policy=json.dumps(platform_admin_trust(env, args.platform_admins), sort_keys=True),
            description=f"Cluster-admin of {env.name}: the only role with AmazonEKSClusterAdminPolicy.",
        )
        aws.iam.RolePolicy(
            f"{name}-platform-admin-cluster",
            role=self.platform_admin_role.name,
            policy=policy_document(cluster_reader_statements(args.cluster.cluster_arn)),
            opts=child(self),
        )
        args.cluster.access_entry(
            f"{name}-platform-admin-access",
            principal_arn=self.platform_admin_role.arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            parent=self,
        )

        pool_sizes = {pool.name: pool.max_gpus for pool in args.gpu_pools}
        self.namespace_ready: dict[str, list[pulumi.Resource]] = {}
        human_arns: dict[str, pulumi.Output[str]] = {}
        # The roles themselves, for grants other components make (Logs.grant_team_read).
        self.human_roles: dict[str, aws.iam.Role] = {}
        self.workload_roles: dict[str, aws.iam.Role] = {}
        workload_arns: dict[str, pulumi.Output[str]] = {}
        for team in args.spec:
            prefix = f"{name}-{team.name}"
            namespace = kubernetes.core.v1.Namespace(
                f"{prefix}-namespace", **_typed(namespace_manifest(env, team)), opts=child(self, provider=k8s)
            )
            in_namespace = child(self, provider=k8s, depends_on=[namespace])
            quota = kubernetes.core.v1.ResourceQuota(
                f"{prefix}-quota", **_typed(resource_quota_manifest(team)), opts=in_namespace
            )
            limits = kubernetes.core.v1.LimitRange(
                f"{prefix}-limits", **_typed(limit_range_manifest(team)), opts=in_namespace
            )
            policies = [
                kubernetes.networking.v1.NetworkPolicy(
                    f"{prefix}-netpol-{policy['metadata']['name']}", **_typed(policy), opts=in_namespace
                )
                for policy in network_policy_manifests(team, args.shared_service_namespaces)
            ]
            # Admission applies quota and limits only to pods created after them, and a pod that starts
            # before the default-deny policy is briefly reachable: workloads wait for all of them, and for
            # nothing else of the team (a dependency on the component would grow with every team).
            self.namespace_ready[team.name] = [namespace, quota, limits, *policies, self.kueue]
            kubernetes.rbac.v1.Role(f"{prefix}-role", **_typed(role_manifest(team)), opts=in_namespace)
            kubernetes.rbac.v1.RoleBinding(
                f"{prefix}-rolebinding", **_typed(role_binding_manifest(team)), opts=in_namespace
            )
            kubernetes.core.v1.ServiceAccount(
                f"{prefix}-workload-sa", **_typed(service_account_manifest(team)), opts=in_namespace
            )
            with_kueue = child(self, provider=k8s, depends_on=[namespace, self.kueue])
            kubernetes.apiextensions.CustomResource(
                f"{prefix}-clusterqueue",
                **_custom(
                    cluster_queue_manifest(
                        team, team.pool_quotas(pool_sizes), efa_per_gpu(args.gpu_pools), arm64=arm64
                    )
                ),
                opts=with_kueue,
            )
            kubernetes.apiextensions.CustomResource(
                f"{prefix}-localqueue", **_custom(local_queue_manifest(team)), opts=with_kueue
            )

            workload = platform_role(
                self,
                f"{prefix}-workload",
                env=env,
                role_suffix=f"team-{team.name}-workload",
                boundary_arn=args.boundary_arn,
                assume_role_policy=pod_identity_trust(
                    env, namespace=team.name, service_account=WORKLOAD_SERVICE_ACCOUNT
                ),
                tags=team_tags(team.name, team.cost_center),
                description=f"Pods of team {team.name} (service account {WORKLOAD_SERVICE_ACCOUNT}) in {env.name}.",
            )
            self._grant_team_data(team, workload)
            args.cluster.pod_identity(
                f"{prefix}-workload-identity",
                namespace=team.name,
                service_account=WORKLOAD_SERVICE_ACCOUNT,
                role=workload,
                parent=self,
            )
            workload_arns[team.name] = workload.arn
            self.workload_roles[team.name] = workload

            if team.human_access is not None:
                human = platform_role(
                    self,
                    f"{prefix}-human",
                    env=env,
                    role_suffix=f"team-{team.name}-human",
                    boundary_arn=args.boundary_arn,
                    assume_role_policy=json.dumps(human_trust(env, team.human_access), sort_keys=True),
                    tags=team_tags(team.name, team.cost_center),
                    description=f"People of team {team.name} in {env.name}; Kubernetes group {team.group}.",
                )
                aws.iam.RolePolicy(
                    f"{prefix}-human-cluster",
                    role=human.name,
                    policy=policy_document(cluster_reader_statements(args.cluster.cluster_arn)),
                    opts=child(self),
                )
                self._grant_team_data(team, human)
                # Cluster.access_entry always attaches an EKS access policy; a team's rights come from the
                # Role bound to its group instead, so this entry only maps the role to the group.
                aws.eks.AccessEntry(
                    f"{prefix}-human-access",
                    cluster_name=args.cluster.cluster_name,
                    principal_arn=human.arn,
                    kubernetes_groups=[team.group],
                    type="STANDARD",
                    opts=child(self),
                )
                human_arns[team.name] = human.arn
                self.human_roles[team.name] = human

        self.platform_admin_role_arn = self.platform_admin_role.arn
        self.human_role_arns = pulumi.Output.all(**human_arns) if human_arns else pulumi.Output.from_input({})
        self.workload_role_arns = (
            pulumi.Output.all(**workload_arns) if workload_arns else pulumi.Output.from_input({})
        )
        self.namespaces = pulumi.Output.from_input([team.name for team in args.spec])
        self.register_outputs(
            {
                "platform_admin_role_arn": self.platform_admin_role_arn,
                "human_role_arns": self.human_role_arns,
                "workload_role_arns": self.workload_role_arns,
                "namespaces": self.namespaces,
            }
        )

    def _grant_team_data(self, team: TeamSpec, role: aws.iam.Role) -> None:
        """Read and write on the team's own prefix of every data bucket, and image pulls; nothing else."""
        buckets = self._args.storage.buckets
        for purpose in DATA_BUCKETS:
            if purpose in buckets:  # an environment may declare fewer buckets; there is nothing to grant then
                buckets[purpose].grant_read(role, prefix=f"{team.name}/")
                buckets[purpose].grant_write(role, prefix=f"{team.name}/")
        self._args.registry.grant_pull(role)


def _typed(manifest: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a typed Kubernetes resource: the manifest without apiVersion and kind, top-level keys in
    snake_case (nested keys stay as the API spells them)."""
    return {
        re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value
        for key, value in manifest.items()
        if key not in ("apiVersion", "kind")
    }


def _custom(manifest: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a CustomResource: apiVersion and kind stay, the rest goes through as is."""
    return {
        "api_version": manifest["apiVersion"],
        "kind": manifest["kind"],
        "metadata": manifest["metadata"],
        "spec": manifest["spec"],
    }


def kueue_values(*, hardened: bool, pull_through: PullThrough) -> dict[str, Any]:
    """Helm values of Kueue: two controller replicas where an outage would stall every team's queue; the
    controller image through the environment's registry.k8s.io cache; the controller on the system nodes.

    The chart's manager configuration stays as released. It already gives what multi-node jobs need: its
    integrations include ``jobset.x-k8s.io/jobset`` (charts/kueue/values.yaml
    `managerConfig.controllerManagerConfigYaml`), so Kueue admits a JobSet as one Workload with a PodSet per
    replicated job, all of its quota or none; and v1beta2 turns waitForPodsReady on by default with a 30-minute
    timeout (apis/config/v1beta2/defaults.go ``DefaultWaitForPodsReadyTimeout``), so a gang whose pods do not
    all start (Karpenter found no capacity for every node) is evicted and requeued instead of holding its GPUs.
    Kueue sets the integration up when the JobSet CRD appears (pkg/controller/jobframework/setup.go
    ``WaitForAPI``); the Kueue release still waits for JobSet's (``TeamsArgs.kueue_after``)."""
    return {
        "controllerManager": {
            "replicas": 2 if hardened else 1,
            "manager": {
                # kubernetes-sigs/kueue@v0.19.2:charts/kueue/values.yaml `controllerManager.manager.image.repository`
                # (templates/manager/manager.yaml: image is "<repository>:<tag | default appVersion>"). The tag
                # stays the released chart's v0.19.2 (shared/charts/release-values/kueue-0.19.2.yaml).
                "image": {"repository": pull_through.image(KUEUE_IMAGE)},
                "resources": {
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                    "limits": {"memory": "1Gi"},
                },
            },
            # charts/kueue/values.yaml `controllerManager.nodeSelector`, `.tolerations`: on the system nodes.
            **system_placement(),
        },
        "enablePrometheus": False,
    }


def namespace_manifest(env: Environment, team: TeamSpec) -> dict[str, Any]:
    """The team's namespace, labelled with what cost reports and policies select on."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": team.name,
            "labels": {
                "mlstack.io/team": team.name,
                "mlstack.io/environment": env.name,
                "cost-center": team.cost_center,
                # Pod Security Admission: no privileged pods, host namespaces or host paths in team namespaces.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def resource_quota_manifest(team: TeamSpec) -> dict[str, Any]:
    """Hard caps of the namespace. GPUs are capped at nominal quota plus what Kueue may let the team borrow."""
    memory = f"{team.memory_quota_gib}Gi"
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "team-quota", "namespace": team.name},
        "spec": {
            "hard": {
                f"requests.{GPU_RESOURCE}": str(team.gpu_quota + team.gpu_borrowing_limit),
                "requests.cpu": str(team.cpu_quota),
                "requests.memory": memory,
                "limits.memory": memory,
                "persistentvolumeclaims": str(team.pvc_count),
                "requests.storage": f"{team.storage_quota_gib}Gi",
            }
        },
    }


def limit_range_manifest(team: TeamSpec) -> dict[str, Any]:
    """Defaults for containers that state no requests or limits (the quota would refuse them otherwise), and
    the largest volume one claim may ask for."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "team-limits", "namespace": team.name},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                    "default": {"cpu": "1", "memory": "2Gi"},
                },
                {
                    "type": "PersistentVolumeClaim",
                    "min": {"storage": "1Gi"},
                    "max": {"storage": f"{team.max_pvc_gib}Gi"},
                },
            ]
        },
    }


def network_policy_manifests(team: TeamSpec, shared_namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Deny everything, then allow DNS, traffic inside the namespace, calls to the shared services and to
    scale-to-zero endpoints (through the KEDA HTTP interceptor), the Pod Identity agent and (unless the team opted
    out) HTTPS to AWS APIs and the internet."""

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": team.name},
            "spec": {"podSelector": {}, **spec},
        }

    policies = [
        policy("default-deny", {"policyTypes": ["Ingress", "Egress"]}),
        policy(
            "allow-dns",
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        policy(
            "allow-same-namespace",
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
        policy(
            "allow-pod-identity-agent",
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                        "ports": [{"protocol": "TCP", "port": 80}],
                    }
                ],
            },
        ),
    ]
    # Callers of a scale-to-zero endpoint reach it through its ExternalName alias, i.e. the KEDA HTTP add-on's
    # interceptor pods in namespace keda (pod labels and proxy port from
    # kedacore/charts@c4b92e9:http-add-on/templates/interceptor/deployment.yaml and values.yaml
    # interceptor.proxy.port). Policies see the pod port, not the Service port.
    policies.append(
        policy(
            "allow-endpoint-interceptor",
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {NAME_LABEL: KEDA_NAMESPACE}},
                                "podSelector": {"matchLabels": INTERCEPTOR_POD_LABELS},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": INTERCEPTOR_PORT}],
                    }
                ],
            },
        )
    )
    if shared_namespaces:
        policies.append(
            policy(
                "allow-shared-services",
                {
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchExpressions": [
                                            {
                                                "key": NAME_LABEL,
                                                "operator": "In",
                                                "values": list(shared_namespaces),
                                            }
                                        ]
                                    }
                                }
                            ]
                        }
                    ],
                },
            )
        )
    if team.allow_https_egress:
        policies.append(
            policy(
                "allow-https-egress",
                {
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                            "ports": [{"protocol": "TCP", "port": 443}],
                        }
                    ],
                },
            )
        )
    return policies


# Members run and debug their own workloads; quotas, limits, policies and RBAC stay read-only for them.
_TEAM_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["events", "resourcequotas", "limitranges", "serviceaccounts"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "replicasets"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs", "cronjobs"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflows", "workflowtemplates", "cronworkflows"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["kueue.x-k8s.io"],
        "resources": ["localqueues", "workloads"],
        "verbs": ["get", "list", "watch"],
    },
    # Metaflow's @parallel run from a laptop (`--with kubernetes`) creates, watches and on kill deletes a JobSet
    # (metaflow/plugins/kubernetes/kubernetes_jobsets.py).
    {
        "apiGroups": ["jobset.x-k8s.io"],
        "resources": ["jobsets"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
]


def role_manifest(team: TeamSpec) -> dict[str, Any]:
    """What the team's group may do in its namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "team-member", "namespace": team.name},
        "rules": _TEAM_RULES,
    }


def role_binding_manifest(team: TeamSpec) -> dict[str, Any]:
    """Binds the team's Kubernetes group (mapped from its human role by an EKS access entry) to its Role."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "team-member-binding", "namespace": team.name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team-member"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team.group}],
    }


def service_account_manifest(team: TeamSpec) -> dict[str, Any]:
    """The service account that Pod Identity binds to the team's workload role."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": WORKLOAD_SERVICE_ACCOUNT, "namespace": team.name},
    }


def resource_flavor_manifests(pools: Sequence[GpuPoolSpec], *, arm64: bool = False) -> list[dict[str, Any]]:
    """One Kueue flavor per GPU pool (its node label and taint), the amd64 flavor for CPU and memory, and with
    a Graviton pool the arm64 flavor.

    The CPU flavors select by architecture, not by pool: a GPU pod's CPU and memory are admitted through the
    CPU group too, and an amd64 label agrees with its GPU pool's nodes where a pool label would contradict it.
    The amd64 flavor keeps the name ``default`` so that existing ClusterQueues keep their usage on upgrade."""
    flavors = [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": {"name": flavor_name(pool.name)},
            "spec": {
                "nodeLabels": {POOL_LABEL: pool.name},
                "tolerations": [
                    {"key": GPU_RESOURCE, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
                ],
            },
        }
        for pool in pools
    ]
    cpu_flavors: list[dict[str, Any]] = [
        {
            "apiVersion": KUEUE_API,
            "kind": "ResourceFlavor",
            "metadata": {"name": DEFAULT_FLAVOR},
            # GPU pools, the amd64 CPU pools and the system nodes are all amd64.
            "spec": {"nodeLabels": {ARCH_LABEL: "amd64"}},
        }
    ]
    if arm64:
        cpu_flavors.append(
            {
                "apiVersion": KUEUE_API,
                "kind": "ResourceFlavor",
                "metadata": {"name": ARM64_FLAVOR},
                # nodeTaints, not tolerations: Kueue then assigns this flavor only to workloads that already
                # tolerate the Graviton pools' taint (their images are multi-arch), and adds no toleration to
                # others (kubernetes-sigs/kueue@v0.19.2 kueue.x-k8s.io_resourceflavors.yaml spec.nodeTaints).
                "spec": {"nodeLabels": {ARCH_LABEL: "arm64"}, "nodeTaints": [dict(ARM64_TAINT)]},
            }
        )
    return [*cpu_flavors, *flavors]


def efa_per_gpu(pools: Sequence[GpuPoolSpec]) -> dict[str, float]:
    """EFA interfaces per GPU of each EFA pool: the most any of its types attaches, per GPU of that type."""
    return {
        pool.name: max(t.max_efa_interfaces / t.gpu_count for t in pool.resolved_types())
        for pool in pools
        if pool.efa
    }


def cluster_queue_manifest(
    team: TeamSpec, pool_quotas: dict[str, int], efa: dict[str, float] | None = None, *, arm64: bool = False
) -> dict[str, Any]:
    """The team's ClusterQueue: its nominal share per pool, what it may borrow in the cohort, and who may use it.

    Only the team's own namespace may submit to it. A team reclaims its nominal share from borrowers by
    preemption, so lending idle GPUs never costs the lender its guarantee.
    """
    resource_groups: list[dict[str, Any]] = [
        {
            # Kueue admits a workload only when its ClusterQueue covers every resource the workload requests
            # (kubernetes-sigs/kueue@v0.19.2:pkg/scheduler/flavorassigner/flavorassigner.go, "resource %s
            # unavailable in ClusterQueue"), and every Metaflow step requests ephemeral-storage (@kubernetes
            # disk, metaflow 2.19.39 kubernetes_decorator.py): so the group covers it too.
            "coveredResources": ["cpu", "memory", "ephemeral-storage"],
            "flavors": [
                {
                    "name": flavor,
                    "resources": [
                        {"name": "cpu", "nominalQuota": str(team.cpu_quota)},
                        {"name": "memory", "nominalQuota": f"{team.memory_quota_gib}Gi"},
                        {
                            "name": "ephemeral-storage",
                            "nominalQuota": f"{team.resolved_ephemeral_storage_quota_gib}Gi",
                        },
                    ],
                }
                # Kueue tries the flavors in order: amd64 first, Graviton for workloads that tolerate it when
                # the team's amd64 share is used up. Each flavor carries the team's whole CPU share; the
                # namespace ResourceQuota caps the sum of the team's requests at cpu_quota and memory_quota_gib.
                for flavor in (DEFAULT_FLAVOR, *([ARM64_FLAVOR] if arm64 else []))
            ],
        }
    ]
    efa = efa or {}

    def resources(pool: str, quota: int) -> list[dict[str, str]]:
        gpus = {
            "name": GPU_RESOURCE,
            "nominalQuota": str(quota),
            "borrowingLimit": str(team.gpu_borrowing_limit),
        }
        if not efa:
            return [gpus]
        # Kueue admits a workload only when the ClusterQueue covers every resource it requests
        # (kubernetes-sigs/kueue@v0.19.2:pkg/scheduler/flavorassigner/flavorassigner.go, "resource %s
        # unavailable in ClusterQueue"): multi-node training pods request vpc.amazonaws.com/efa. A flavor sits
        # in one resource group, so EFA joins the GPU group, with the interfaces that go with the GPUs.
        per_gpu = efa.get(pool, 0.0)
        return [
            gpus,
            {
                "name": EFA_RESOURCE,
                "nominalQuota": str(math.ceil(quota * per_gpu)),
                "borrowingLimit": str(math.ceil(team.gpu_borrowing_limit * per_gpu)),
            },
        ]

    if pool_quotas:
        resource_groups.append(
            {
                "coveredResources": [GPU_RESOURCE, *([EFA_RESOURCE] if efa else [])],
                "flavors": [
                    {"name": flavor_name(pool), "resources": resources(pool, quota)}
                    for pool, quota in pool_quotas.items()
                ],
            }
        )
    return {
        "apiVersion": KUEUE_API,
        "kind": "ClusterQueue",
        "metadata": {"name": cluster_queue_name(team)},
        "spec": {
            "cohortName": COHORT,
            "namespaceSelector": {"matchLabels": {NAME_LABEL: team.name}},
            "queueingStrategy": "BestEffortFIFO",
            "preemption": {
                "reclaimWithinCohort": "Any",
                "withinClusterQueue": "LowerPriority",
            },
            "resourceGroups": resource_groups,
        },
    }


def cluster_queue_name(team: TeamSpec) -> str:
    """Cluster-scoped, so prefixed: a bare team name would read like its namespace."""
    return f"team-{team.name}"


def flavor_name(pool: str) -> str:
    """The Kueue flavor of a GPU pool."""
    return f"pool-{pool}"


def local_queue_manifest(team: TeamSpec) -> dict[str, Any]:
    """The queue team members submit to (label kueue.x-k8s.io/queue-name: default)."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {"name": LOCAL_QUEUE, "namespace": team.name},
        "spec": {"clusterQueue": cluster_queue_name(team)},
    }


def human_trust(env: Environment, access: HumanAccessSpec) -> dict[str, Any]:
    """Trust policy of a human role: Identity Center permission sets of this account, and named principals
    with a recent MFA sign-in. Nothing else can assume it."""
    statements: list[dict[str, Any]] = []
    if access.sso_permission_sets:
        statements.append(
            {
                "Sid": "IdentityCenterPermissionSets",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{env.account_id}:root"},
                "Action": "sts:AssumeRole",
                # The account root only names the account; the condition narrows it to the permission sets' roles.
                "Condition": {
                    "ArnLike": {
                        "aws:PrincipalArn": [
                            f"arn:aws:iam::{env.account_id}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_{name}_*"
                            for name in access.sso_permission_sets
                        ]
                    }
                },
            }
        )
    if access.mfa_principals:
        statements.append(
            {
                "Sid": "NamedPrincipalsWithMfa",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(access.mfa_principals)},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": str(access.max_mfa_age_seconds)},
                },
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def platform_admin_trust(env: Environment, access: HumanAccessSpec | None) -> dict[str, Any]:
    """Trust policy of the platform-admin role: the declared admins, or by default any principal of this
    account that its own IAM policy lets assume the role, and only with MFA."""
    if access is not None:
        return human_trust(env, access)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AccountPrincipalsWithMfa",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{env.account_id}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
                },
            }
        ],
    }


def cluster_reader_statements(cluster_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Enough to build a kubeconfig for this one cluster; what the role may do inside is Kubernetes RBAC's job."""
    return [
        {
            "Sid": "DescribeTheCluster",
            "Effect": "Allow",
            "Action": ["eks:DescribeCluster"],
            "Resource": cluster_arn,
        }
    ]
