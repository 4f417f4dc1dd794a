"""The EKS cluster, its system node group, managed add-ons and the Kubernetes provider."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.environment import Environment
from components.iam import platform_role, pod_identity_trust, policy_document, service_trust
from components.options import child, stateful
from mlstack.catalog import eks_addon_versions
from mlstack.pipeline_roles import pipeline_role_arn
from mlstack.spec.cluster import ClusterSpec

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# get/list/watch on every resource of every API group, Secrets included (EKS user guide,
# access-policy-permissions.html, AmazonEKSAdminViewPolicy): what a refresh of Helm releases (their state is in
# Secrets) and of every other object needs, and nothing that changes the cluster.
ADMIN_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"
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
# (a team pod that does is refused by components/compute.py's admission policy), and platform charts add
# SYSTEM_PLACEMENT. CriticalAddonsOnly is the key Karpenter's chart already tolerates
# (aws/karpenter-provider-aws@v1.14.1:charts/karpenter/values.yaml `tolerations`).
SYSTEM_NODE_LABEL = {"mlstack.io/node-role": "system"}
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}
SYSTEM_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}


# CoreDNS must run on the system nodes before anything else (the Kubernetes provider waits for it). Upstream's
# manifest tolerates CriticalAddonsOnly (coredns/deployment kubernetes/coredns.yaml.sed), and it is stated here
# rather than assumed of EKS's defaults. The add-on's schema (`aws eks describe-addon-configuration
# --addon-name coredns`) cannot be read offline; a top-level `tolerations` list is what published configurations
# of the add-on use. `mlstack preflight` (rule addon-configuration) validates it against the schema EKS publishes
# for the pinned version before a deploy.
# The other add-ons need no configuration to run on the tainted system nodes. Their upstream charts at the pinned
# versions: aws-ebs-csi-driver v1.50.1 controller tolerates CriticalAddonsOnly (Exists) and its node DaemonSet
# sets tolerateAllTaints (kubernetes-sigs/aws-ebs-csi-driver@v1.50.1:charts/aws-ebs-csi-driver/values.yaml);
# aws-node tolerates every taint (aws/amazon-vpc-cni-k8s@v1.20.4:charts/aws-vpc-cni/values.yaml `tolerations:
# - operator: Exists`), and so does the Pod Identity agent (aws/eks-pod-identity-agent@v0.1.37:
# charts/eks-pod-identity-agent/values.yaml; the add-on's v1.3.8 numbering has no matching repository tag).
# kube-proxy's add-on manifest is not published upstream: that it tolerates every taint is unverified here.
ADDON_CONFIGURATION["coredns"] = {"tolerations": [dict(SYSTEM_TOLERATION)]}
# The EBS CSI controller tolerates the system taint but selects no node, so the scheduler may put it on any node
# it fits, a team CPU node included, which then cannot be consolidated away while it runs there (the deploy
# simulation found it on dev's CPU pool next to the team event buses). `controller.nodeSelector` pins it to the
# system nodes (kubernetes-sigs/aws-ebs-csi-driver charts/aws-ebs-csi-driver/values.yaml `controller.nodeSelector`,
# read at 006340ee, which the add-on's configuration mirrors); `mlstack preflight` (rule addon-configuration)
# validates it against the schema EKS publishes for the pinned add-on version before a deploy.
ADDON_CONFIGURATION["aws-ebs-csi-driver"] = {"controller": {"nodeSelector": dict(SYSTEM_NODE_LABEL)}}


def imdsv2_only() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    """Instance metadata of every launch template the platform creates: IMDSv2 tokens required, hop limit 1, so
    a container on the instance cannot reach the instance's credentials (workloads use Pod Identity)."""
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=1,
    )


def encrypted_root_volume(size_gb: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
    """The root volume of an AL2023 instance (/dev/xvda): encrypted gp3, deleted with the instance."""
    return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
        device_name="/dev/xvda",
        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=size_gb,
            volume_type="gp3",
            encrypted="true",
            delete_on_termination="true",
        ),
    )


def system_placement() -> dict[str, Any]:
    """Pod spec fields (Helm values of most charts spell them the same) that put a platform pod on system nodes."""
    return {"nodeSelector": dict(SYSTEM_NODE_LABEL), "tolerations": [dict(SYSTEM_TOLERATION)]}


def ebs_volume_key_statements(key_arn: pulumi.Input[str], region: str) -> list[dict[str, Any]]:
    """What the EBS CSI driver's role needs on the volumes' customer managed key, used by EC2 on its behalf
    (kms:ViaService ec2): the actions kubernetes-sigs/aws-ebs-csi-driver@v1.50.1 docs/install.md ("Encrypted EBS
    Volumes via KMS": Decrypt, GenerateDataKeyWithoutPlaintext, CreateGrant) lists, plus DescribeKey, which the EBS
    user guide's list adds (ebs-encryption-requirements.html, "Permissions for users"), and CreateGrant only for
    grants to an AWS resource, as that guide advises (kms:GrantIsForAWSResource)."""
    via = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return [
        {
            "Sid": "UseVolumeKeyThroughEc2",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
            "Resource": key_arn,
            "Condition": {"StringEquals": via},
        },
        {
            "Sid": "GrantVolumeKeyToEc2",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": key_arn,
            "Condition": {"StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


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
    # The platform KMS key that encrypts the gp3 StorageClass's volumes (the data key, whose policy lets EC2 use
    # it on the caller's behalf); the EBS CSI driver's role is granted its use.
    volume_key_arn: pulumi.Input[str]
    # Security groups outside the cluster that must reach the private API endpoint (the deploy runner, the
    # access host), by a short role name used in the rule's logical name. Default: none.
    api_clients: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


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
                # No implicit admin: whoever creates the cluster (a human on a laptop, or the pipeline's deploy
                # role) gets nothing from being the creator. The deploy role is an explicit access entry below,
                # so the entry exists whether or not the deploy role is the creator, and it cannot collide with
                # one EKS made itself (EKS API CreateAccessEntry: "You can't specify the same ARN in more than
                # one access entry"). EKS API CreateAccessConfigRequest.bootstrapClusterCreatorAdminPermissions
                # (default true); CloudFormation AWS::EKS::Cluster AccessConfig: "Update requires: Replacement",
                # so this is decided at creation and never flipped on a live cluster.
                bootstrap_cluster_creator_admin_permissions=False,
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
        # The volumes' key, through EC2 only: without it CreateVolume with the StorageClass's kmsKeyId fails and
        # every claim stays Pending.
        ebs_kms = aws.iam.RolePolicy(
            f"{name}-ebs-csi-kms",
            role=ebs_role.name,
            name="volume-key",
            policy=policy_document(ebs_volume_key_statements(args.volume_key_arn, env.region)),
            opts=child(self),
        )
        after = {
            "coredns": self._addon(env, "coredns", depends_on=[node_group]),
            "aws-ebs-csi-driver": self._addon(
                env,
                "aws-ebs-csi-driver",
                depends_on=[node_group, ebs_kms],
                pod_identity=[
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=ebs_role.arn, service_account="ebs-csi-controller-sa"
                    )
                ],
            ),
        }
        for i, principal in enumerate(spec.admin_principal_arns):
            self.access_entry(f"{name}-admin-{i}", principal_arn=principal, policy_arn=CLUSTER_ADMIN_POLICY)
        # The pipeline's deploy role (created by the account foundation, mlstack/pipeline_roles.py) runs every
        # `pulumi up`, which installs Karpenter and every chart through the Kubernetes API: cluster admin by
        # design, through an explicit entry, never through being the cluster's creator.
        self.deploy_role_arn = pipeline_role_arn(env.account_id, env.name, "deploy")
        _, deploy_admin = self._access_entry_with_policy(
            f"{name}-deploy-role",
            principal_arn=self.deploy_role_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            namespaces=None,
            owner=self,
        )

        # The preview role runs `pulumi preview` on pull requests and the nightly `pulumi preview --refresh
        # --expect-no-changes` (.github/workflows/drift.yml): it must read every object the stack manages, Helm
        # release Secrets included, and change none.
        self.preview_role_arn = pipeline_role_arn(env.account_id, env.name, "preview")
        self._access_entry_with_policy(
            f"{name}-preview-role",
            principal_arn=self.preview_role_arn,
            policy_arn=ADMIN_VIEW_POLICY,
            namespaces=None,
            owner=self,
        )

        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        # The deploy runner installs every chart through this API in the same `up` that creates the cluster: its
        # rule must exist before the provider is used, or the first chart times out on a blocked connection.
        api_rules = [
            self.allow_api_from(
                f"{name}-api-from-{client}",
                security_group_id=group,
                description=f"{client} to the private API endpoint",
            )
            for client, group in args.api_clients.items()
        ]

        self.k8s_provider = kubernetes.Provider(
            f"{name}-k8s",
            kubeconfig=_kubeconfig(self.cluster, env.region),
            enable_server_side_apply=True,
            # One edge here instead of one per chart: every workload needs a node and cluster DNS first, and
            # both lie on the unavoidable path of a cold deployment anyway. The deploy role's access policy
            # association is on it too: an entry without its policy authenticates but is authorized for
            # nothing, so a chart installed before the association exists fails with 401/403.
            opts=child(self, depends_on=[node_group, after["coredns"], deploy_admin, *api_rules]),
        )
        storage_class = kubernetes.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=STORAGE_CLASS_NAME,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            # kubernetes-sigs/aws-ebs-csi-driver@v1.50.1 docs/parameters.md: `encrypted` and `kmsKeyId` (the key's
            # full ARN; without it EBS uses the account's default aws/ebs key).
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": args.volume_key_arn,
                "csi.storage.k8s.io/fstype": "ext4",
            },
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
        entry, _ = self._access_entry_with_policy(
            name,
            principal_arn=principal_arn,
            policy_arn=policy_arn,
            namespaces=namespaces,
            owner=parent or self,
        )
        return entry

    def allow_api_from(
        self,
        name: str,
        *,
        security_group_id: pulumi.Input[str],
        description: str,
    ) -> aws.vpc.SecurityGroupIngressRule:
        """Let one security group reach the private API endpoint (HTTPS, 443) through the cluster security group.

        The private endpoint's network interfaces carry the cluster security group, which EKS creates and
        which admits only itself by default (EKS user guide, sec-group-reqs: "Default cluster security group"),
        so anything outside the cluster that talks to the API (the deploy runner, the access host) needs a rule
        here. ``name`` is the full logical name; the rule is the cluster's child because it lives and dies with
        the cluster security group.
        """
        return aws.vpc.SecurityGroupIngressRule(
            name,
            security_group_id=self.cluster_security_group_id,
            description=description,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            referenced_security_group_id=security_group_id,
            opts=child(self),
        )

    def _access_entry_with_policy(
        self,
        name: str,
        *,
        principal_arn: pulumi.Input[str],
        policy_arn: str,
        namespaces: Sequence[str] | None,
        owner: pulumi.Resource,
    ) -> tuple[aws.eks.AccessEntry, aws.eks.AccessPolicyAssociation]:
        entry = aws.eks.AccessEntry(
            name,
            cluster_name=self.cluster.name,
            principal_arn=principal_arn,
            type="STANDARD",
            opts=child(owner),
        )
        association = aws.eks.AccessPolicyAssociation(
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
        return entry, association

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
            metadata_options=imdsv2_only(),
            block_device_mappings=[encrypted_root_volume(nodes.root_volume_gb)],
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
