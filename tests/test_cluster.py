"""Cluster secure defaults on the recorded plans of every shipped stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cluster import CONTROL_PLANE_LOG_TYPES
from mlstack.catalog import EKS_ADDONS, eks_addon_versions
from mlstack.plan.recorder import Plan
from tests.plans import PROJECT


def _cluster(plan: Plan) -> dict:
    (cluster,) = plan.by_type("aws:eks/cluster:Cluster")
    return cluster.inputs


def test_endpoint_is_private_and_never_open_to_the_world(stack_plan: Plan) -> None:
    vpc = _cluster(stack_plan)["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    if vpc["endpointPublicAccess"]:
        assert vpc["publicAccessCidrs"] and "0.0.0.0/0" not in vpc["publicAccessCidrs"]
    if stack_plan.stack == "prod":
        assert vpc["endpointPublicAccess"] is False


def test_secrets_are_encrypted_with_the_rotating_cluster_key(stack_plan: Plan) -> None:
    encryption = _cluster(stack_plan)["encryptionConfig"]
    key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-cluster"))
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True


def test_control_plane_logging_and_api_authentication(stack_plan: Plan) -> None:
    cluster = _cluster(stack_plan)
    assert set(cluster["enabledClusterLogTypes"]) >= set(CONTROL_PLANE_LOG_TYPES)
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["version"] == PROJECT.load(stack_plan.stack)[1].cluster.kubernetes_version
    log_group = next(
        g
        for g in stack_plan.by_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].startswith("/aws/eks/")
    )
    assert log_group.inputs["name"] == f"/aws/eks/{cluster['name']}/cluster" and log_group.inputs["kmsKeyId"]


def test_addons_are_pinned_from_the_table(stack_plan: Plan) -> None:
    version = _cluster(stack_plan)["version"]
    addons = {
        a.inputs["addonName"]: a.inputs["addonVersion"] for a in stack_plan.by_type("aws:eks/addon:Addon")
    }
    assert addons == {name: eks_addon_versions()[version][name] for name in EKS_ADDONS}
    (ebs,) = [
        a for a in stack_plan.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"
    ]
    assert ebs.inputs["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"


def test_no_launch_template_allows_imdsv1_or_ssh(stack_plan: Plan) -> None:
    templates = stack_plan.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required" and metadata["httpPutResponseHopLimit"] == 1
        assert "keyName" not in template.inputs
        for mapping in template.inputs["blockDeviceMappings"]:
            assert mapping["ebs"]["encrypted"] == "true" and mapping["ebs"]["volumeType"] == "gp3"


def test_system_node_group_uses_the_hardened_template(stack_plan: Plan) -> None:
    spec = PROJECT.load(stack_plan.stack)[1].cluster.system_nodes
    (group,) = stack_plan.by_type("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["launchTemplate"]["id"].startswith("lt-")
    assert "remoteAccess" not in group.inputs
    expected_capacity = {"on-demand": "ON_DEMAND", "spot": "SPOT"}[spec.capacity_type]
    assert group.inputs["capacityType"] == expected_capacity
    assert group.inputs["instanceTypes"] == spec.instance_types
    assert group.inputs["scalingConfig"]["desiredSize"] == spec.desired_size


def test_system_node_group_can_be_replaced_without_a_name_collision(stack_plan: Plan) -> None:
    (group,) = stack_plan.by_type("aws:eks/nodeGroup:NodeGroup")
    # Changing instance or capacity types replaces the group, new before old: only a prefix lets both exist.
    assert "nodeGroupName" not in group.inputs
    assert group.inputs["nodeGroupNamePrefix"] == f"{stack_plan.stack}-system-"
    assert not group.delete_before_replace


def test_only_dev_runs_spot_system_nodes(stack_plan: Plan) -> None:
    (group,) = stack_plan.by_type("aws:eks/nodeGroup:NodeGroup")
    hardened = stack_plan.stack != "dev"
    assert group.inputs["capacityType"] == ("ON_DEMAND" if hardened else "SPOT")
    if not hardened:
        assert len(set(group.inputs["instanceTypes"])) >= 2


def test_system_root_volume_follows_the_spec(stack_plan: Plan) -> None:
    spec = PROJECT.load(stack_plan.stack)[1].cluster.system_nodes
    (template,) = [
        t
        for t in stack_plan.by_type("aws:ec2/launchTemplate:LaunchTemplate")
        if t.name.endswith("system-nodes")
    ]
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == spec.root_volume_gb


def test_every_role_carries_the_permission_boundary(stack_plan: Plan) -> None:
    (boundary,) = stack_plan.by_type("aws:iam/policy:Policy")
    for role in stack_plan.by_type("aws:iam/role:Role"):
        assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"], role.name


def test_default_storage_class_is_encrypted_gp3(stack_plan: Plan) -> None:
    (storage_class,) = stack_plan.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert (
        storage_class.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    assert storage_class.inputs["parameters"]["type"] == "gp3"
    hardened = stack_plan.stack != "dev"
    assert storage_class.inputs["reclaimPolicy"] == ("Retain" if hardened else "Delete")


def test_kubernetes_provider_uses_short_lived_tokens(stack_plan: Plan) -> None:
    (provider,) = stack_plan.by_type("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    user = kubeconfig["users"][0]["user"]
    assert "token" not in user and user["exec"]["command"] == "aws"
    assert user["exec"]["args"][:2] == ["eks", "get-token"]
    for resource in stack_plan.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.split("::")[-2] == provider.name, resource.name


def test_audit_log_groups_outlive_a_destroy_in_hardened_tiers(stack_plan: Plan) -> None:
    hardened = PROJECT.load(stack_plan.stack)[1].tier.hardened
    groups = stack_plan.by_type("aws:cloudwatch/logGroup:LogGroup")
    assert {g.name for g in groups} >= {
        f"{stack_plan.stack}-cluster-control-plane-logs",
        f"{stack_plan.stack}-network-flow-logs",
    }
    for group in groups:
        assert (group.protect, group.retain_on_delete) == (hardened, hardened), group.urn


def test_vpc_cni_enforces_network_policies(stack_plan: Plan) -> None:
    """Off by default: every NetworkPolicy of the stack would be accepted and ignored. The add-on's value is the
    string "true" (aws/amazon-vpc-cni-k8s@v1.20.4:charts/aws-vpc-cni/values.yaml)."""
    (cni,) = [a for a in stack_plan.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


# -- System node capacity (rt-cluster row 7) -----------------------------------------------------------------
# Allocatable of the system node types the stacks use, as Karpenter publishes it (EC2 DescribeInstanceTypes,
# kubelet reservations of the EKS AMI): aws/karpenter-provider-aws@v1.14.1:website/content/en/docs/reference/
# instance-types.md. Pods = ENIs x (IPv4 per ENI - 1) + 2 (awslabs/amazon-eks-ami@v20260714:nodeadm/internal/
# kubelet/eni_max_pods.go with instance-info.jsonl: t3/t3a.medium 3 x 6, m7i.large 3 x 10, m7i.xlarge 4 x 15).
ALLOCATABLE = {  # type: (millicores, MiB, pods)
    "t3a.medium": (1930, 3246, 17),
    "t3.medium": (1930, 3246, 17),
    "m7i.large": (1930, 6903, 29),
    "m7i.xlarge": (3920, 14162, 58),
}
# Pods of the EKS managed add-ons, which the plan does not render: (replicas, millicores, MiB) per Deployment and
# per node for DaemonSets.
EKS_ADDON_DEPLOYMENTS = {
    # Two replicas (EKS docs, managing-coredns); requests of coredns/deployment kubernetes/coredns.yaml.sed.
    "coredns": (2, 100, 70),
    # kubernetes-sigs/aws-ebs-csi-driver@v1.50.1 chart: controller.replicaCount 2; the plugin and 4 sidecars
    # (no snapshotter without the snapshot CRDs) each request controller.resources, 10m / 40Mi.
    "ebs-csi-controller": (2, 50, 200),
}
EKS_ADDON_DAEMONS_PER_NODE = {
    "aws-node": (25, 0),  # aws/amazon-vpc-cni-k8s@v1.20.4 chart resources.requests.cpu 25m
    "kube-proxy": (100, 0),  # EKS's kube-proxy DaemonSet; not in a public chart (counted at 100m to be safe)
    "eks-pod-identity-agent": (0, 0),  # aws/eks-pod-identity-agent chart: resources {}
    "ebs-csi-node": (30, 120),  # 3 containers x node.resources 10m / 40Mi
}


def _millicores(value: Any) -> int:
    text = str(value)
    return int(float(text[:-1])) if text.endswith("m") else int(float(text) * 1000)


def _mebibytes(value: Any) -> int:
    text = str(value)
    for suffix, factor in (("Gi", 1024), ("Mi", 1), ("Ki", 1 / 1024)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text) / 2**20)


def _on_gpu_nodes_only(pod: dict[str, Any]) -> bool:
    if "mlstack.io/pool" in (pod.get("nodeSelector") or {}):
        return True
    return "mlstack.io/pool" in json.dumps(pod.get("affinity") or {})


def _system_demand(stack: str) -> tuple[int, int, int, int, int, int]:
    """(pods, millicores, MiB) of what must run on system nodes, then the per-node daemons (pods, m, MiB)."""
    from mlstack.simulate.objects import chart_objects
    from tests.plans import plan_of
    from tests.simulation import world_of

    workloads: list[tuple[dict[str, Any], str]] = [(o.obj, o.release) for o in chart_objects(world_of(stack))]
    workloads += [
        ({**r.inputs, "kind": r.type.rsplit(":", 1)[-1]}, "")
        for r in plan_of(stack).resources
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
    ]
    minimum = {  # replicas a chart's own ScaledObject keeps (the HTTP add-on's interceptor)
        o["spec"]["scaleTargetRef"]["name"]: int(o["spec"].get("minReplicaCount", 0))
        for o, _ in workloads
        if o.get("kind") == "ScaledObject"
    }
    pods = cpu = memory = daemon_pods = daemon_cpu = daemon_memory = 0
    for obj, _ in workloads:
        if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        if _on_gpu_nodes_only(pod):
            continue
        requests = [c.get("resources", {}).get("requests", {}) for c in pod["containers"]]
        m = sum(_millicores(r.get("cpu", 0)) for r in requests)
        mib = sum(_mebibytes(r.get("memory", 0)) for r in requests)
        if obj["kind"] == "DaemonSet":
            daemon_pods, daemon_cpu, daemon_memory = daemon_pods + 1, daemon_cpu + m, daemon_memory + mib
            continue
        replicas = max(int(obj["spec"].get("replicas", 1)), minimum.get(obj["metadata"]["name"], 0))
        pods, cpu, memory = pods + replicas, cpu + replicas * m, memory + replicas * mib
    for replicas, m, mib in EKS_ADDON_DEPLOYMENTS.values():
        pods, cpu, memory = pods + replicas, cpu + replicas * m, memory + replicas * mib
    for m, mib in EKS_ADDON_DAEMONS_PER_NODE.values():
        daemon_pods, daemon_cpu, daemon_memory = daemon_pods + 1, daemon_cpu + m, daemon_memory + mib
    return pods, cpu, memory, daemon_pods, daemon_cpu, daemon_memory


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_system_nodes_hold_every_platform_pod(stack: str) -> None:
    """Nothing adds system capacity (no cluster-autoscaler; every Karpenter pool is GPU-only and tainted), so
    the group at min_size must hold every chart's and component's pods with the add-ons' daemons, on the
    smallest listed type, within 90% of allocatable CPU and memory. Numbers: docs/cost.md."""
    _, spec = PROJECT.load(stack)
    nodes = spec.cluster.system_nodes
    cpu_per_node, memory_per_node, pods_per_node = min(ALLOCATABLE[t] for t in nodes.instance_types)
    pods, cpu, memory, daemon_pods, daemon_cpu, daemon_memory = _system_demand(stack)
    n = nodes.min_size
    assert pods + n * daemon_pods <= n * pods_per_node, (stack, pods, daemon_pods, n * pods_per_node)
    assert cpu + n * daemon_cpu <= 0.9 * n * cpu_per_node, (stack, cpu, daemon_cpu, n * cpu_per_node)
    assert memory + n * daemon_memory <= 0.9 * n * memory_per_node, (stack, memory, n * memory_per_node)
