"""Karpenter and one NodePool per declared GPU pool, with the NVIDIA device plugin."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes
import yaml

from components.cluster import Cluster, eks_cluster_name
from components.cluster import node_role as node_role_for
from components.environment import Environment
from components.helm import chart_source
from components.iam import platform_role, pod_identity_trust, policy_document
from components.options import child
from components.registry import PullThrough
from mlstack.spec.gpu import GpuPoolSpec

# An OCI chart: components.helm.chart_source puts the whole oci:// reference in `chart`.
KARPENTER_CHART = ("oci://public.ecr.aws/karpenter", "karpenter", "1.14.1")
DEVICE_PLUGIN_CHART = ("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.17.1")
DCGM_EXPORTER_CHART = ("https://nvidia.github.io/dcgm-exporter/helm-charts", "dcgm-exporter", "4.1.1")
# The charts' image repositories (nvidia-device-plugin 0.17.1 and dcgm-exporter 4.1.1 values.yaml
# `image.repository`); their tags are kept (device plugin: "v" + appVersion; dcgm-exporter: values `image.tag`).
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin"
DCGM_EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter"
EFA_PLUGIN_CHART = ("https://aws.github.io/eks-charts", "aws-efa-k8s-device-plugin", "v0.5.6")
# The released chart's controller image and digest (shared/charts/release-values/karpenter-1.14.1.yaml, which
# upstream's hack/release/common.sh writes into values.yaml); the image is pulled through the ECR Public cache.
KARPENTER_IMAGE = "public.ecr.aws/karpenter/controller"
KARPENTER_IMAGE_TAG = "1.14.1"
KARPENTER_IMAGE_DIGEST = "sha256:723130949e4cab989461ff07d1be4cd781d63515432494641b33c235f300ae23"
KARPENTER_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
POOL_LABEL = "mlstack.io/pool"
WORKLOAD_CLASS_LABEL = "mlstack.io/workload-class"
EFA_LABEL = "mlstack.io/efa"
# The device plugin picks a per-node sharing config by this label (see its config.map values).
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
# AL2023 with Karpenter picks the NVIDIA variant of the EKS AMI on GPU instance types by itself; the version
# is the environment's cluster.gpu_node_ami (a pinned release outside dev).
AMI_FAMILY = "al2023"
_INTERRUPTION_EVENTS = {
    "health": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    # aws/karpenter-provider-aws@v1.14.1:website/.../getting-started-with-karpenter/cloudformation.yaml
    # (CapacityReservationInterruptionRule): capacity-block nodes are drained before the reservation ends.
    "capacity-reservation": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
_GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}


@dataclass(frozen=True)
class GpuPoolsArgs:
    """Inputs of GpuPools: the declared pools, the cluster they run in, and the boundary for its roles."""

    env: Environment
    spec: list[GpuPoolSpec]
    cluster: Cluster
    boundary_arn: pulumi.Input[str]
    pull_through: PullThrough
    """The registry's pull-through caches: chart images are pulled through them."""
    ami_version: str = "latest"
    """amazon-eks-ami release of the nodes (``vYYYYMMDD``) or ``latest``; from ``cluster.gpu_node_ami``."""


class GpuPools(pulumi.ComponentResource):
    """Karpenter and one NodePool per declared GPU pool, with the NVIDIA device plugin.

    Every pool is tainted ``nvidia.com/gpu=true:NoSchedule``, labelled with its name and workload class,
    capped at ``max_gpus`` and scaled to zero when idle.

    Outputs: ``karpenter_node_role_arn``, ``karpenter_controller_role_arn``, ``interruption_queue_name``,
    ``node_pool_names``. Attribute ``pool_ready`` maps each pool to what a workload on it must wait for.
    """

    karpenter_node_role_arn: pulumi.Output[str]
    karpenter_controller_role_arn: pulumi.Output[str]
    interruption_queue_name: pulumi.Output[str]
    node_pool_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: GpuPoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:gpu:GpuPools", name, None, opts)
        self._name = name
        self._pull_through = args.pull_through
        env, cluster = args.env, args.cluster
        k8s = cluster.k8s_provider

        self.node_role = node_role = node_role_for(
            self,
            f"{name}-node",
            env=env,
            role_suffix="karpenter-node",
            boundary_arn=args.boundary_arn,
            description="GPU nodes launched by Karpenter",
        )
        # A profile made here means the controller never needs iam:CreateInstanceProfile.
        profile = aws.iam.InstanceProfile(
            f"{name}-node-profile",
            name=env.resource_name("karpenter-node"),
            role=node_role.name,
            opts=child(self),
        )
        # EC2_LINUX entries let nodes join; EKS grants them the node permissions without aws-auth.
        aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=cluster.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=child(self),
        )

        queue = self._interruption_queue(env)
        controller_role = platform_role(
            self,
            f"{name}-controller-role",
            env=env,
            role_suffix="karpenter-controller",
            boundary_arn=args.boundary_arn,
            assume_role_policy=pod_identity_trust(env),
            description="Karpenter controller, through Pod Identity",
        )
        aws.iam.RolePolicy(
            f"{name}-controller-policy",
            role=controller_role.id,
            policy=policy_document(
                _controller_statements(env, cluster, queue.arn, node_role.arn, profile.arn)
            ),
            opts=child(self),
        )
        identity = cluster.pod_identity(
            f"{name}-karpenter",
            namespace=KARPENTER_NAMESPACE,
            service_account=KARPENTER_SERVICE_ACCOUNT,
            role=controller_role,
            parent=self,
        )
        # Helm installs the chart's CRDs, so every NodePool and EC2NodeClass waits for this release.
        karpenter = _helm_release(
            self,
            f"{name}-karpenter",
            KARPENTER_CHART,
            namespace=KARPENTER_NAMESPACE,
            values={
                "settings": {"clusterName": cluster.cluster_name, "interruptionQueue": queue.name},
                "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
                "replicas": 2 if env.tier.hardened else 1,
                # Karpenter must never run on a node it may remove.
                "nodeSelector": {"mlstack.io/node-role": "system"},
                "controller": {
                    # aws/karpenter-provider-aws@v1.14.1:charts/karpenter/values.yaml `controller.resources`
                    # (default none). Karpenter's getting-started guide installs it with a 1Gi memory limit; a
                    # limit keeps a leak from starving the system nodes it shares (MLS-K8S-015).
                    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
                    "image": karpenter_image(args.pull_through),
                },
            },
            depends_on=[identity],
            provider=k8s,
        )

        self._ami_alias = f"{AMI_FAMILY}@{args.ami_version}"
        # What the CPU pools (components/compute.py) share with these: the controller release whose CRDs their
        # node classes need, the instance profile and the AMI alias.
        self.karpenter = karpenter
        self.instance_profile = profile
        self.ami_alias = self._ami_alias
        node_pools = {pool.name: self._pool(env, pool, cluster, profile, karpenter) for pool in args.spec}
        device_plugin = self._device_plugins(args.spec, k8s) if args.spec else None
        # What a GPU workload on a pool waits for: the pool itself and the plugin that advertises its GPUs.
        # Depending on these few resources, not on the whole component, keeps every endpoint's dependency
        # list constant in size however many pools and teams the environment has.
        self.pool_ready: dict[str, list[pulumi.Resource]] = {
            pool: [node_pool, *([device_plugin] if device_plugin else [])]
            for pool, node_pool in node_pools.items()
        }

        self.karpenter_node_role_arn = node_role.arn
        self.karpenter_controller_role_arn = controller_role.arn
        self.interruption_queue_name = queue.name
        self.node_pool_names = pulumi.Output.from_input([pool.name for pool in args.spec])
        self.register_outputs(
            {
                "karpenter_node_role_arn": self.karpenter_node_role_arn,
                "karpenter_controller_role_arn": self.karpenter_controller_role_arn,
                "interruption_queue_name": self.interruption_queue_name,
                "node_pool_names": self.node_pool_names,
            }
        )

    def _interruption_queue(self, env: Environment) -> aws.sqs.Queue:
        """Spot interruptions, rebalance hints and health events reach Karpenter before the node dies."""
        name = self._name
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=env.resource_name("karpenter-interruptions"),
            message_retention_seconds=300,  # a stale interruption notice is useless
            sqs_managed_sse_enabled=True,
            opts=child(self),
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions-policy",
            queue_url=queue.url,
            policy=policy_document(
                [
                    {
                        "Sid": "EventBridgeDelivers",
                        "Effect": "Allow",
                        "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                        "Action": "sqs:SendMessage",
                        "Resource": queue.arn,
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": queue.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ]
            ),
            opts=child(self),
        )
        for event, pattern in _INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                name=env.resource_name("karpenter", event),
                description=f"Karpenter interruption handling: {pattern['detail-type'][0]}",
                event_pattern=json.dumps(pattern, sort_keys=True),
                opts=child(self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}", rule=rule.name, target_id="karpenter", arn=queue.arn, opts=child(self)
            )
        return queue

    def _pool(
        self,
        env: Environment,
        pool: GpuPoolSpec,
        cluster: Cluster,
        profile: aws.iam.InstanceProfile,
        karpenter: kubernetes.helm.v3.Release,
    ) -> kubernetes.apiextensions.CustomResource:
        name = f"{self._name}-{pool.name}"
        node_class = ec2_node_class_spec(
            env,
            cluster,
            ami_alias=self._ami_alias,
            instance_profile=profile.name,
            volume_gib=pool.volume_gib,
            pool=pool.name,
        )
        if pool.efa:
            # Collective traffic over EFA needs the nodes close together: one cluster placement group.
            group = aws.ec2.PlacementGroup(
                f"{name}-placement",
                name=env.resource_name("gpu", pool.name),
                strategy="cluster",
                opts=child(self),
            )
            node_class["placementGroupSelector"] = {"name": group.name}
        node_class_resource = kubernetes.apiextensions.CustomResource(
            f"{name}-nodeclass",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": pool.name},
            spec=node_class,
            opts=child(self, provider=cluster.k8s_provider, depends_on=[karpenter]),
        )
        labels = {POOL_LABEL: pool.name, WORKLOAD_CLASS_LABEL: pool.workload_class}
        if pool.sharing is not None:
            labels[DEVICE_PLUGIN_CONFIG_LABEL] = pool.name
        if pool.efa:
            labels[EFA_LABEL] = "true"
        capacity = {"spot": ["spot"], "on-demand": ["on-demand"], "spot-preferred": ["spot", "on-demand"]}
        return kubernetes.apiextensions.CustomResource(
            f"{name}-nodepool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": pool.name},
            spec={
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeClassRef": {
                            "group": "karpenter.k8s.aws",
                            "kind": "EC2NodeClass",
                            "name": pool.name,
                        },
                        "taints": [GPU_TAINT],
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": sorted(t.name for t in pool.resolved_types()),
                            },
                            # With both allowed Karpenter launches spot first and falls back to on-demand.
                            {
                                "key": "karpenter.sh/capacity-type",
                                "operator": "In",
                                "values": capacity[pool.capacity_type],
                            },
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                        ],
                        # Nodes are replaced monthly so that AMI patches land even on busy pools.
                        "expireAfter": "720h",
                    },
                },
                "limits": {"nvidia.com/gpu": str(pool.max_gpus)},
                "disruption": {
                    "consolidationPolicy": "WhenEmptyOrUnderutilized",
                    "consolidateAfter": f"{pool.consolidate_after_minutes}m",
                    "budgets": [{"nodes": "10%"}],
                },
            },
            opts=child(self, provider=cluster.k8s_provider, depends_on=[karpenter, node_class_resource]),
        )

    def _device_plugins(
        self, pools: list[GpuPoolSpec], k8s: kubernetes.Provider
    ) -> kubernetes.helm.v3.Release:
        """The NVIDIA device plugin (returned), plus the DCGM exporter and EFA plugin on the pools that ask."""
        name = self._name
        on_pools = _pool_affinity([p.name for p in pools])
        shared = {p.name: _sharing_config(p) for p in pools if p.sharing is not None}
        plugin_values: dict[str, Any] = {
            "tolerations": [_GPU_TOLERATION],
            "affinity": on_pools,
            **device_plugin_hardening(),
            **_mirrored(self._pull_through, DEVICE_PLUGIN_IMAGE),
        }
        if shared:
            plugin_values["config"] = {
                "map": {"default": _sharing_config(None), **shared},
                "default": "default",
            }
        device_plugin = _helm_release(
            self,
            f"{name}-device-plugin",
            DEVICE_PLUGIN_CHART,
            namespace="nvidia-device-plugin",
            values=plugin_values,
            provider=k8s,
        )
        measured = [p.name for p in pools if p.dcgm_exporter]
        if measured:
            _helm_release(
                self,
                f"{name}-dcgm-exporter",
                DCGM_EXPORTER_CHART,
                namespace="nvidia-dcgm-exporter",
                values={
                    "tolerations": [_GPU_TOLERATION],
                    "affinity": _pool_affinity(measured),
                    **dcgm_exporter_hardening(),
                    **_mirrored(self._pull_through, DCGM_EXPORTER_IMAGE),
                    # No chart ServiceMonitor: the metrics stack scrapes the exporter with its own, which keeps the
                    # workload's pod and namespace labels (components/observability.py scrape_targets).
                    "serviceMonitor": {"enabled": False},
                },
                provider=k8s,
            )
        efa_pools = [p for p in pools if p.efa]
        if efa_pools:
            # Pods request vpc.amazonaws.com/efa; Karpenter then attaches the type's EFA interfaces.
            _helm_release(
                self,
                f"{name}-efa-plugin",
                EFA_PLUGIN_CHART,
                namespace="kube-system",
                values=efa_plugin_values(efa_pools),
                provider=k8s,
            )
        return device_plugin


def ec2_node_class_spec(
    env: Environment,
    cluster: Cluster,
    *,
    ami_alias: str,
    instance_profile: pulumi.Input[str],
    volume_gib: int,
    pool: str,
) -> dict[str, Any]:
    """The EC2NodeClass spec every pool shares: the AMI alias, the cluster's subnets and security group, IMDSv2
    with one hop, an encrypted gp3 root volume, and the environment's cost tags."""
    return {
        "amiSelectorTerms": [{"alias": ami_alias}],
        "instanceProfile": instance_profile,
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster.cluster_name}}],
        "securityGroupSelectorTerms": [{"id": cluster.cluster_security_group_id}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{volume_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        # Instances Karpenter launches do not get the provider's default tags, so cost tags go here.
        "tags": {**env.tags, POOL_LABEL: pool},
    }


def _helm_release(
    parent: pulumi.Resource,
    logical_name: str,
    chart: tuple[str, str, str],
    *,
    namespace: str,
    values: dict[str, Any],
    provider: kubernetes.Provider,
    depends_on: list[pulumi.Resource] | None = None,
) -> kubernetes.helm.v3.Release:
    repository, chart_name, version = chart
    reference, repository_opts = chart_source(repository, chart_name)
    return kubernetes.helm.v3.Release(
        logical_name,
        name=chart_name,
        chart=reference,
        version=version,
        namespace=namespace,
        create_namespace=namespace != "kube-system",
        repository_opts=repository_opts,
        values=values,
        atomic=True,
        opts=child(parent, provider=provider, depends_on=depends_on),
    )


def _mirrored(pull_through: PullThrough, public_repository: str) -> dict[str, Any]:
    """``image.repository`` of a chart whose image the stack mirrors (registry.nvidia_images_mirrored), else
    nothing: both NVIDIA charts render ``<image.repository>:<tag>``, and the mirror keeps the tag."""
    mirror = pull_through.mirror(public_repository)
    return {"image": {"repository": mirror}} if mirror is not None else {}


def device_plugin_hardening() -> dict[str, Any]:
    """Resources of the NVIDIA device plugin's containers (NVIDIA/k8s-device-plugin@v0.17.1:
    deployments/helm/nvidia-device-plugin/values.yaml `resources`, default none; the templates apply it to the
    plugin and to the MPS control daemon's containers).

    The chart's own security context stays: with ``migStrategy: none`` and the default device list strategy
    its helper "nvidia-device-plugin.securityContext" (templates/_helpers.tpl) renders
    ``allowPrivilegeEscalation: false`` and drops every capability. The plugin still runs as root: it serves
    its gRPC socket from the kubelet's root-owned /var/lib/kubelet/device-plugins (a hostPath in
    templates/daemonset-device-plugin.yml), the kubelet's device plugin contract. The chart also always renders
    a privileged MPS control daemon DaemonSet (templates/daemonset-mps-control-daemon.yml, gated only on
    ``devicePlugin.enabled``), which no value removes; it is scheduled only on nodes labelled
    ``nvidia.com/mps.capable=true``, which GPU feature discovery sets only under an MPS sharing config
    (internal/lm/nvml.go newSharingLabeler). mlstack offers time-slicing only and installs no GPU feature
    discovery, so it never runs. Both are waived in policies/waivers.yaml.
    """
    return {
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }


def dcgm_exporter_hardening() -> dict[str, Any]:
    """Security context and resources of the DCGM exporter (NVIDIA/dcgm-exporter@4.2.3-4.1.1, chart 4.1.1:
    deployment/values.yaml `securityContext`, `resources`, `extraEnv`).

    The chart's default adds SYS_ADMIN, which the exporter only needs for profiling (DCP) metrics: the image's
    entrypoint (docker/dcgm-exporter-entrypoint.sh) sets cap_sys_admin on the binary when it can and only warns
    when it cannot, and the exporter then skips DCP fields (pkg/cmd/app.go fillConfigMetricGroups sets
    CollectDCP false; internal/pkg/counters/counter_config.go fieldIsSupported). So no capability is added: the
    three DCP gauges of the chart's default counter list (DCGM_FI_PROF_GR_ENGINE_ACTIVE, _PIPE_TENSOR_ACTIVE,
    _DRAM_ACTIVE) are not exported; the device metrics (utilisation, memory, power, temperature, XID errors)
    are. ``NO_SETCAP`` skips the entrypoint's setcap attempt. It still runs as uid 0: the entrypoint runs
    ``ldconfig`` (which writes /etc/ld.so.cache) under ``set -e`` before starting the exporter, and the chart
    has no value to replace the entrypoint. Waived in policies/waivers.yaml.
    """
    return {
        "securityContext": {
            "runAsNonRoot": False,
            "runAsUser": 0,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "extraEnv": [{"name": "NO_SETCAP", "value": "1"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }


def karpenter_image(pull_through: PullThrough) -> dict[str, str]:
    """Karpenter's controller image through the environment's ECR Public cache, same tag and digest.

    aws/karpenter-provider-aws@v1.14.1:charts/karpenter/values.yaml `controller.image.repository`, `.tag`,
    `.digest`; templates/_helpers.tpl "karpenter.controller.image" renders "<repository>:<tag>@<digest>". The
    digest names the image's content, so it is the same through the cache (ECR keeps upstream digests)."""
    return {
        "repository": pull_through.image(KARPENTER_IMAGE),
        "tag": KARPENTER_IMAGE_TAG,
        "digest": KARPENTER_IMAGE_DIGEST,
    }


def efa_plugin_values(efa_pools: list[GpuPoolSpec]) -> dict[str, Any]:
    """Values of the EFA device plugin chart, placing it on the EFA pools' nodes only.

    The chart (aws/eks-charts@2ce9790:stable/aws-efa-k8s-device-plugin, v0.5.6) has no ``affinity`` value: its
    DaemonSet template builds the node affinity from ``supportedInstanceLabels`` (a fixed list of EFA types that
    misses some of ours) and adds ``nodeSelector``. So the pools' EFA types replace that list, and the label
    the EFA pools carry narrows it to their nodes.
    """
    types = sorted({t.name for pool in efa_pools for t in pool.resolved_types()})
    return {
        "tolerations": [_GPU_TOLERATION],
        "nodeSelector": {EFA_LABEL: "true"},
        "supportedInstanceLabels": {"keys": ["node.kubernetes.io/instance-type"], "values": types},
    }


def _pool_affinity(pools: list[str]) -> dict[str, Any]:
    """Run only on nodes of the given pools (the charts' defaults expect GPU feature discovery labels)."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": sorted(pools)}]}
                ]
            }
        }
    }


def _sharing_config(pool: GpuPoolSpec | None) -> str:
    """The device plugin's config file for a pool: whole GPUs or time-sliced replicas (the spec refuses MIG)."""
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if pool is not None and pool.sharing is not None and pool.sharing.mode == "time-slicing":
        config["sharing"] = {
            "timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": pool.sharing.replicas}]}
        }
    return yaml.safe_dump(config, sort_keys=True)


def _controller_statements(
    env: Environment,
    cluster: Cluster,
    queue_arn: pulumi.Output[str],
    node_role_arn: pulumi.Output[str],
    profile_arn: pulumi.Output[str],
) -> list[dict[str, Any]]:
    """Karpenter's controller policy, scoped by the tags Karpenter puts on what it creates."""
    region, account = env.region, env.account_id
    # Condition keys must be plain strings, so the name comes from the naming rule, not the cluster output.
    cluster_name = eks_cluster_name(env)
    owned = f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}"
    owned_resource = f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}"
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    launched = [
        f"arn:aws:ec2:{region}:{account}:{kind}/*"
        for kind in (
            "fleet",
            "instance",
            "volume",
            "network-interface",
            "launch-template",
            "spot-instances-request",
        )
    ]
    return [
        {
            "Sid": "ReadOnlyDiscovery",
            "Effect": "Allow",
            # Describe calls support no resource-level scoping; they are read-only and fenced to the region.
            "Action": [
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                # Instance-status health checks; without it Karpenter logs an error and turns them off
                # (v1.14.1:pkg/controllers/interruption/instancestatus_controller.go).
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
                "ec2:DescribeCapacityReservations",
            ],
            "Resource": "*",
            "Condition": in_region,
        },
        {
            "Sid": "UseSharedLaunchInputs",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                f"arn:aws:ec2:{region}::image/*",
                f"arn:aws:ec2:{region}::snapshot/*",
                f"arn:aws:ec2:{region}:{account}:security-group/*",
                f"arn:aws:ec2:{region}:{account}:subnet/*",
                f"arn:aws:ec2:{region}:{account}:placement-group/*",
                f"arn:aws:ec2:{region}:{account}:capacity-reservation/*",
            ],
        },
        {
            "Sid": "LaunchOnlyTaggedForThisCluster",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Resource": launched,
            "Condition": {
                "StringEquals": {owned: "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            # RunInstances and CreateFleet against a launch template Karpenter made earlier: the template
            # exists, so its own tags (aws:ResourceTag) are evaluated, not the request's. Official statement
            # AllowScopedEC2LaunchTemplateAccessActions (cloudformation.yaml at v1.14.1); without it the node
            # class validation's dry-run CreateFleet fails and no GPU node launches.
            "Sid": "LaunchFromOwnLaunchTemplates",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": f"arn:aws:ec2:{region}:{account}:launch-template/*",
            "Condition": {
                "StringEquals": {owned_resource: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "TagOnlyAtLaunch",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": launched,
            "Condition": {
                "StringEquals": {
                    owned: "owned",
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "TagOwnNodeClaims",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"arn:aws:ec2:{region}:{account}:instance/*",
            "Condition": {
                "StringEquals": {owned_resource: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "DeleteOnlyOwn",
            "Effect": "Allow",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Resource": [
                f"arn:aws:ec2:{region}:{account}:instance/*",
                f"arn:aws:ec2:{region}:{account}:launch-template/*",
            ],
            "Condition": {
                "StringEquals": {owned_resource: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "PassOnlyTheNodeRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": node_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "ReadTheNodeProfile",
            "Effect": "Allow",
            "Action": "iam:GetInstanceProfile",
            "Resource": profile_arn,
        },
        {
            # Instance-profile garbage collection lists profiles under Karpenter's path
            # (v1.14.1:pkg/providers/instanceprofile/instanceprofile.go ListProfiles); official
            # AllowUnscopedInstanceProfileListAction, read-only.
            "Sid": "ListInstanceProfiles",
            "Effect": "Allow",
            "Action": "iam:ListInstanceProfiles",
            "Resource": "*",
        },
        {
            "Sid": "ReadInterruptions",
            "Effect": "Allow",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": queue_arn,
        },
        {
            "Sid": "ResolveAmis",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": f"arn:aws:ssm:{region}::parameter/aws/service/*",
        },
        {
            "Sid": "PriceInstances",
            "Effect": "Allow",
            # The Pricing API has no resources to scope to.
            "Action": "pricing:GetProducts",
            "Resource": "*",
        },
        {
            "Sid": "DescribeOwnCluster",
            "Effect": "Allow",
            "Action": "eks:DescribeCluster",
            "Resource": cluster.cluster_arn,
        },
    ]
