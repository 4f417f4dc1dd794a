"""The EKS cluster, its system node group, managed add-ons and the Kubernetes provider."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.environment import Environment
from components.iam import platform_role, pod_identity_trust, service_trust
from components.options import child, stateful
from mlstack.catalog import eks_addon_versions
from mlstack.spec.cluster import ClusterSpec

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
STORAGE_CLASS_NAME = "gp3-encrypted"
_MANAGED = "arn:aws:iam::aws:policy/"
# Add-ons the nodes need in order to join (networking, identity) go on before the node group; the others
# schedule pods and would sit degraded until nodes exist, so they follow it.
_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
_AFTER_NODES = ("coredns", "aws-ebs-csi-driver")
# Add-on configuration (validated by EKS against the add-on's schema). VPC CNI enforces NetworkPolicies only
# when asked: the value is the string "true", as in the chart the add-on is built from
# (aws/amazon-vpc-cni-k8s@v1.20.4:charts/aws-vpc-cni/values.yaml `enableNetworkPolicy: "false"`, rendered
# into --enable-network-policy); EKS docs cni-network-policy-configure. Without it every policy is inert.
ADDON_CONFIGURATION: dict[str, dict[str, Any]] = {"vpc-cni": {"enableNetworkPolicy": "true"}}
# The spec's capacity types as the EKS API spells them.
_CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT"}
# The system node group keeps platform pods only: its taint keeps every pod off it that does not tolerate it
# (team pods never do: team namespaces get no toleration and admission adds none), and platform charts add
# SYSTEM_PLACEMENT. CriticalAddonsOnly is the key Karpenter's chart already tolerates
# (aws/karpenter-provider-aws@v1.14.1:charts/karpenter/values.yaml `tolerations`).
SYSTEM_NODE_LABEL = {"mlstack.io/node-role": "system"}
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}
SYSTEM_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}


# CoreDNS must run on the system nodes before anything else (the Kubernetes provider waits for it). Upstream's
# manifest tolerates CriticalAddonsOnly (coredns/deployment kubernetes/coredns.yaml.sed), and it is stated here
# rather than assumed of EKS's defaults. The add-on's schema (`aws eks describe-addon-configuration
# --addon-name coredns`) cannot be read offline; a top-level `tolerations` list is what published configurations
# of the add-on use. Check it against the schema of the pinned version before the first deploy.
ADDON_CONFIGURATION["coredns"] = {"tolerations": [dict(SYSTEM_TOLERATION)]}


def system_placement() -> dict[str, Any]:
    """Pod spec fields (Helm values of most charts spell them the same) that put a platform pod on system nodes."""
    return {"nodeSelector": dict(SYSTEM_NODE_LABEL), "tolerations": [dict(SYSTEM_TOLERATION)]}


def eks_cluster_name(env: Environment) -> str:
    """The EKS cluster's name, known before the cluster exists so that subnets can carry discovery tags."""
    return env.resource_name("eks")


@dataclass(frozen=True)
class ClusterArgs:
    """Inputs of the Cluster component.

    ``cluster_key_arn`` envelope-encrypts Kubernetes secrets; ``logs_key_arn`` encrypts the control-plane
    log group; ``boundary_arn`` bounds every role created here.
    """

    env: Environment
    spec: ClusterSpec
    private_subnet_ids: pulumi.Input[Sequence[str]]
    cluster_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]


class Cluster(pulumi.ComponentResource):
    """The EKS cluster, its system node group, managed add-ons and the Kubernetes provider.

    Outputs: ``cluster_name``, ``cluster_endpoint``, ``cluster_arn``, ``cluster_security_group_id``,
    ``oidc_issuer_url``, ``node_role_arn``, ``storage_class_name``. Attribute ``k8s_provider`` is the
    Kubernetes provider every Kubernetes resource of the stack uses; it waits for the system nodes and CoreDNS,
    so a Helm release never starts its timeout before there is a node to schedule its pods on.
    """

    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    storage_class_name: pulumi.Output[str]
    k8s_provider: kubernetes.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:cluster:Cluster", name, None, opts)
        self._name = name
        env, spec = args.env, args.spec
        self.kubernetes_version = spec.kubernetes_version
        cluster_name = eks_cluster_name(env)

        cluster_role = platform_role(
            self,
            f"{name}-role",
            env=env,
            role_suffix="eks-cluster",
            boundary_arn=args.boundary_arn,
            assume_role_policy=service_trust("eks.amazonaws.com"),
            description="EKS control plane",
        )
        self._attach(cluster_role, "cluster-policy", "AmazonEKSClusterPolicy")

        # Created first and encrypted, so that EKS writes into it instead of making an unencrypted group.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            kms_key_id=args.logs_key_arn,
            retention_in_days=spec.control_plane_log_retention_days,
            # Audit evidence: in hardened tiers a destroy or a replace must not take the API audit log with it.
            opts=stateful(self, env),
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=spec.endpoint_public_access,
                # Without CIDRs EKS would default a public endpoint to 0.0.0.0/0; the spec never allows that.
                public_access_cidrs=[str(c) for c in spec.public_access_cidrs]
                if spec.endpoint_public_access
                else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.cluster_key_arn),
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            # protect=True only stops `pulumi destroy`; deletion protection also stops the console and the API.
            deletion_protection=args.env.tier.hardened,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The deploying identity installs Karpenter and the add-ons through the API right after
                # creation; every other admin is an explicit access entry.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            # Standard support only: extended support costs six times as much per cluster hour.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            opts=child(self, protect=env.protect_stateful, depends_on=[log_group]),
        )

        self.node_role = node_role(
            self,
            f"{name}-node",
            env=env,
            role_suffix="eks-system-node",
            boundary_arn=args.boundary_arn,
            description="EKS system node group instances",
        )

        before = [self._addon(env, addon) for addon in _BEFORE_NODES]
        node_group = self._system_nodes(args, before)
        ebs_role = platform_role(
            self,
            f"{name}-ebs-csi-role",
            env=env,
            role_suffix="ebs-csi-driver",
            boundary_arn=args.boundary_arn,
            assume_role_policy=pod_identity_trust(env),
            description="EBS CSI driver controller, through Pod Identity",
        )
        self._attach(ebs_role, "ebs-csi-policy", "service-role/AmazonEBSCSIDriverPolicy")
        after = {
            "coredns": self._addon(env, "coredns", depends_on=[node_group]),
            "aws-ebs-csi-driver": self._addon(
                env,
                "aws-ebs-csi-driver",
                depends_on=[node_group],
                pod_identity=[
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=ebs_role.arn, service_account="ebs-csi-controller-sa"
                    )
                ],
            ),
        }
        for i, principal in enumerate(spec.admin_principal_arns):
            self.access_entry(f"{name}-admin-{i}", principal_arn=principal, policy_arn=CLUSTER_ADMIN_POLICY)

        self.k8s_provider = kubernetes.Provider(
            f"{name}-k8s",
            kubeconfig=_kubeconfig(self.cluster, env.region),
            enable_server_side_apply=True,
            # One edge here instead of one per chart: every workload needs a node and cluster DNS first, and
            # both lie on the unavoidable path of a cold deployment anyway.
            opts=child(self, depends_on=[node_group, after["coredns"]]),
        )
        storage_class = kubernetes.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=STORAGE_CLASS_NAME,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            # Zonal volumes must be created where the pod lands, not where the claim happens to be made.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            # Hardened tiers keep a volume when its claim is deleted; data is never lost to a kubectl typo.
            reclaim_policy="Retain" if env.protect_stateful else "Delete",
            opts=child(self, provider=self.k8s_provider, depends_on=[after["aws-ebs-csi-driver"]]),
        )

        self.cluster_name = self.cluster.name
        self.cluster_endpoint = self.cluster.endpoint
        self.cluster_arn = self.cluster.arn
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer_url = self.cluster.identities.apply(_oidc_issuer)
        self.node_role_arn = self.node_role.arn
        self.storage_class_name = storage_class.metadata.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_endpoint": self.cluster_endpoint,
                "cluster_arn": self.cluster_arn,
                "cluster_security_group_id": self.cluster_security_group_id,
                "oidc_issuer_url": self.oidc_issuer_url,
                "node_role_arn": self.node_role_arn,
                "storage_class_name": self.storage_class_name,
            }
        )

    def pod_identity(
        self,
        name: str,
        *,
        namespace: str,
        service_account: str,
        role: aws.iam.Role,
        parent: pulumi.Resource | None = None,
    ) -> aws.eks.PodIdentityAssociation:
        """Let pods running as ``namespace/service_account`` assume ``role`` through EKS Pod Identity.

        ``parent`` is the component that owns the workload (it defaults to the cluster), so that the
        association lives and dies with it. The role must trust components.iam.pod_identity_trust.
        """
        return aws.eks.PodIdentityAssociation(
            name,  # the caller's full logical name, f"{component}-<role>"
            cluster_name=self.cluster.name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.arn,
            opts=child(parent or self),
        )

    def access_entry(
        self,
        name: str,
        *,
        principal_arn: pulumi.Input[str],
        policy_arn: str,
        namespaces: Sequence[str] | None = None,
        parent: pulumi.Resource | None = None,
    ) -> aws.eks.AccessEntry:
        """Grant an IAM principal an EKS access policy, cluster-wide or limited to ``namespaces``.

        ``name`` is the full logical name (``f"{component}-<role>"``); ``parent`` defaults to the cluster.
        """
        owner = parent or self
        entry = aws.eks.AccessEntry(
            name,
            cluster_name=self.cluster.name,
            principal_arn=principal_arn,
            type="STANDARD",
            opts=child(owner),
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-policy",
            cluster_name=self.cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=policy_arn,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                type="namespace" if namespaces else "cluster",
                namespaces=list(namespaces) if namespaces else None,
            ),
            opts=child(owner),
        )
        return entry

    def _attach(self, role: aws.iam.Role, suffix: str, managed_policy: str) -> None:
        aws.iam.RolePolicyAttachment(
            f"{self._name}-{suffix}",
            role=role.name,
            policy_arn=f"{_MANAGED}{managed_policy}",
            opts=child(self),
        )

    def _addon(
        self,
        env: Environment,
        addon: str,
        *,
        depends_on: Sequence[pulumi.Resource] = (),
        pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{self._name}-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=eks_addon_versions()[self.kubernetes_version][addon],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            configuration_values=(
                json.dumps(ADDON_CONFIGURATION[addon], sort_keys=True)
                if addon in ADDON_CONFIGURATION
                else None
            ),
            pod_identity_associations=pod_identity,
            opts=child(self, depends_on=list(depends_on)),
        )

    def _system_nodes(self, args: ClusterArgs, addons: Sequence[pulumi.Resource]) -> aws.eks.NodeGroup:
        env, nodes = args.env, args.spec.system_nodes
        template = aws.ec2.LaunchTemplate(
            f"{self._name}-system-nodes",
            name=env.resource_name("eks-system-nodes"),
            description="EKS system nodes: IMDSv2 only, encrypted gp3 root, no SSH key",
            # Hop limit 1 keeps pods off the node's credentials; workloads use Pod Identity instead.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=nodes.root_volume_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={**env.tags, "Name": env.resource_name("eks-system")}
                )
                for kind in ("instance", "volume")
            ],
            opts=child(self),
        )
        return aws.eks.NodeGroup(
            f"{self._name}-system",
            cluster_name=self.cluster.name,
            # A prefix, not a name: changing instance or capacity types replaces the group, and the engine
            # creates the new one before deleting the old, which a fixed name would make collide.
            node_group_name_prefix=f"{env.resource_name('system')}-",
            node_role_arn=self.node_role.arn,
            subnet_ids=args.private_subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type=_CAPACITY_TYPES[nodes.capacity_type],
            instance_types=list(nodes.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes.min_size, desired_size=nodes.desired_size, max_size=nodes.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            labels=dict(SYSTEM_NODE_LABEL),
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=SYSTEM_TAINT["key"], value=SYSTEM_TAINT["value"], effect="NO_SCHEDULE"
                )
            ],
            opts=child(self, depends_on=list(addons)),
        )


_NODE_POLICIES = (
    ("worker", "AmazonEKSWorkerNodePolicy"),
    ("cni", "AmazonEKS_CNI_Policy"),
    ("ecr", "AmazonEC2ContainerRegistryPullOnly"),
    # Session Manager replaces SSH: shell access is audited and needs no open port or key.
    ("ssm", "AmazonSSMManagedInstanceCore"),
)


def node_role(
    parent: pulumi.Resource,
    logical_prefix: str,
    *,
    env: Environment,
    role_suffix: str,
    boundary_arn: pulumi.Input[str],
    description: str,
) -> aws.iam.Role:
    """An EC2 role for EKS nodes under the boundary, with the managed policies a node needs to join and pull."""
    role = platform_role(
        parent,
        f"{logical_prefix}-role",
        env=env,
        role_suffix=role_suffix,
        boundary_arn=boundary_arn,
        assume_role_policy=service_trust("ec2.amazonaws.com"),
        description=description,
    )
    for suffix, policy in _NODE_POLICIES:
        aws.iam.RolePolicyAttachment(
            f"{logical_prefix}-{suffix}", role=role.name, policy_arn=f"{_MANAGED}{policy}", opts=child(parent)
        )
    return role


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    oidcs = identities[0].oidcs or []
    return oidcs[0].issuer or "" if oidcs else ""


def _kubeconfig(cluster: aws.eks.Cluster, region: str) -> pulumi.Output[str]:
    """A kubeconfig that authenticates with short-lived tokens from ``aws eks get-token``, never a stored key."""
    return pulumi.Output.json_dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "eks",
                    "cluster": {
                        "server": cluster.endpoint,
                        "certificate-authority-data": cluster.certificate_authority.data,
                    },
                }
            ],
            "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "aws"}}],
            "current-context": "eks",
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster.name, "--region", region],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )
