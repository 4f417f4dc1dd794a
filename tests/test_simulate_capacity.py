"""Scheduling and capacity in the deploy simulation: node supply, allocatable, taints, affinity, spread, limits.

rt-cluster row 7 is put back into copies of the dev and staging plans (one t3a.medium for every platform pod;
three Qdrant replicas with required hostname anti-affinity on two nodes) and must be flagged.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate import quantity
from mlstack.simulate.capacity import (
    NODE_GROUP_TYPE,
    ZONE,
    Node,
    NodeStorage,
    instance_types,
    karpenter_allocatable,
    node_sources,
)
from mlstack.simulate.capacity import _spread_problem as spread_problem
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.pods import pod_templates
from tests.simulation import findings, mutable_plan, resource, world_of

IDLE, PEAK, HOME = "MLS-SIM-CAP-001", "MLS-SIM-CAP-002", "MLS-SIM-CAP-003"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _serving_admissible(plan: Plan) -> None:
    """Give serving containers a CPU limit (rt-cluster row 5's fix) so their pods reach the scheduler."""
    for item in plan.resources:
        if item.type == DEPLOYMENT and item.name.endswith(("-chat-deployment", "-ranker-deployment")):
            spec = item.inputs["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                container["resources"].setdefault("limits", {})["cpu"] = container["resources"]["requests"][
                    "cpu"
                ]


def _node_group(plan: Plan) -> RecordedResource:
    return resource(plan, NODE_GROUP_TYPE)


def test_node_model_reproduces_karpenter_published_allocatable_for_every_type():
    # Two upstream sources must agree: nodeadm's formulas (amazon-eks-ami@81fec2e) applied to the table, and
    # Karpenter v1.14.1's generated instance-types reference. A drift in either shows here.
    mismatched = {}
    for name, itype in instance_types().items():
        allocatable = itype.allocatable()
        # Karpenter's reference is computed for its default AL2023 root volume (20Gi, no instance store policy).
        storage = NodeStorage().allocatable(itype)
        mine = {
            "cpu": quantity.show("cpu", allocatable["cpu"]),
            "memory": quantity.show("memory", allocatable["memory"]),
            "pods": str(itype.max_pods),
            "ephemeral-storage": quantity.show("ephemeral-storage", storage),
        }
        theirs = dict(karpenter_allocatable()[name])
        theirs["ephemeral-storage"] = quantity.show(
            "ephemeral-storage", quantity.parse(theirs.get("ephemeral-storage", "0"))
        )
        if mine != theirs:
            mismatched[name] = (mine, theirs)
    assert mismatched == {}
    assert len(instance_types()) > 100


def test_row7_numbers_from_upstream():
    # The review's t3a.medium figures were "from memory"; from the table: 3 ENIs x 6 IPv4 -> 3 x 5 + 2 = 17 pods,
    # 2 vCPU - 70m kube-reserved = 1930m, 4096Mi - 308Mi VM overhead - 442Mi reserved - 100Mi eviction = 3246Mi.
    t3a = instance_types()["t3a.medium"]
    assert (t3a.enis, t3a.ipv4_per_eni, t3a.max_pods) == (3, 6, 17)
    assert t3a.kube_reserved_cpu_millis == 70 and t3a.kube_reserved_memory_mib == 442
    assert t3a.allocatable()["cpu"] == Fraction(193, 100)
    assert t3a.allocatable()["memory"] == 3246 * 2**20


def test_row7_dev_one_small_system_node_cannot_hold_the_platform():
    plan = mutable_plan("dev")
    group = _node_group(plan)
    group.inputs["instanceTypes"] = ["t3a.medium", "t3.medium"]
    group.inputs["scalingConfig"] = {**group.inputs["scalingConfig"], "desiredSize": 1.0, "minSize": 1.0}
    found = findings(world_of("dev", plan), IDLE)
    assert found, "one t3a.medium cannot hold every platform pod"
    assert all("stay Pending at idle" in f.message for f in found)
    assert any("insufficient cpu" in f.message or "insufficient pods" in f.message for f in found)
    # The GPU pools cannot absorb them: their taint is named.
    assert any("untolerated taint nvidia.com/gpu=true:NoSchedule" in f.message for f in found)
    keda = resource(plan, RELEASE_TYPE, "inference-keda")
    assert keda.urn in {f.urn for f in found}


def test_row7_dev_enough_system_nodes_clear_the_idle_check():
    plan = mutable_plan("dev")
    group = _node_group(plan)
    group.inputs["instanceTypes"] = ["t3a.large"]
    group.inputs["scalingConfig"] = {**group.inputs["scalingConfig"], "desiredSize": 3.0}
    assert findings(world_of("dev", plan), IDLE) == []


def test_row7_staging_three_qdrant_replicas_with_hostname_anti_affinity_on_two_nodes():
    plan = mutable_plan("staging")
    group = _node_group(plan)
    group.inputs["scalingConfig"] = {**group.inputs["scalingConfig"], "desiredSize": 2.0}
    qdrant = resource(plan, RELEASE_TYPE, "qdrant")
    selector = {"matchLabels": {"app.kubernetes.io/instance": "qdrant", "app.kubernetes.io/name": "qdrant"}}
    qdrant.inputs["values"]["replicaCount"] = 3.0
    qdrant.inputs["values"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    found = [f for f in findings(world_of("staging", plan), IDLE) if f.urn == qdrant.urn]
    assert len(found) == 1
    assert "1 of 3 replicas of StatefulSet qdrant/qdrant" in found[0].message
    assert "required pod anti-affinity on kubernetes.io/hostname" in found[0].message
    group.inputs["scalingConfig"] = {**group.inputs["scalingConfig"], "desiredSize": 3.0}
    assert [f for f in findings(world_of("staging", plan), IDLE) if f.urn == qdrant.urn] == []


def test_prod_fits_at_idle_and_at_peak_once_serving_pods_are_admitted():
    plan = mutable_plan("prod")
    _serving_admissible(plan)
    assert findings(world_of("prod", plan), IDLE, PEAK, HOME) == []


def test_peak_beyond_the_pool_gpu_limit_stays_pending():
    plan = mutable_plan("prod")
    _serving_admissible(plan)
    pool = resource(plan, "kubernetes:karpenter.sh/v1:NodePool", "-serving-nodepool")
    pool.inputs["spec"]["limits"] = {"nvidia.com/gpu": "2"}
    found = findings(world_of("prod", plan), PEAK)
    assert found and all("stay Pending at peak" in f.message for f in found)
    assert any("NodePool serving: limit nvidia.com/gpu=2 reached" in f.message for f in found)


def test_a_pod_that_tolerates_no_gpu_taint_can_never_run_on_a_gpu_pool():
    plan = mutable_plan("prod")
    _serving_admissible(plan)
    chat = resource(plan, DEPLOYMENT, "-chat-deployment")
    chat.inputs["spec"]["template"]["spec"]["tolerations"] = []
    found = [f for f in findings(world_of("prod", plan), HOME) if f.urn == chat.urn]
    assert found and "can never be scheduled" in found[0].message
    assert "NodePool serving: untolerated taint nvidia.com/gpu=true:NoSchedule" in found[0].message


def test_a_node_selector_no_source_offers_is_never_scheduled():
    plan = mutable_plan("prod")
    metaflow = resource(plan, "kubernetes:apps/v1:StatefulSet", "orchestrator-search-metaflow-metadata")
    metaflow.inputs["spec"]["template"]["spec"]["nodeSelector"] = {"mlstack.io/node-role": "nowhere"}
    found = [f for f in findings(world_of("prod", plan), HOME) if f.urn == metaflow.urn]
    assert found and "nodeSelector mlstack.io/node-role=nowhere" in found[0].message


def test_a_pod_larger_than_every_type_of_its_pool_is_never_scheduled():
    plan = mutable_plan("prod")
    _serving_admissible(plan)
    chat = resource(plan, DEPLOYMENT, "-chat-deployment")
    server = next(c for c in chat.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "server")
    server["resources"]["requests"]["memory"] = server["resources"]["limits"]["memory"] = "4000Gi"
    found = [f for f in findings(world_of("prod", plan), HOME) if f.urn == chat.urn]
    assert found and "insufficient memory" in found[0].message and "largest type" in found[0].message


def test_daemonsets_consume_capacity_on_every_matching_node():
    plan = mutable_plan("staging")
    world = world_of("staging", plan)
    templates = pod_templates(world)
    dcgm = next(p for p in templates if p.kind == "DaemonSet" and "dcgm" in p.item.name)
    # The GPU DaemonSets select GPU pools only: none lands on the system nodes.
    system = next(s for s in node_sources(world) if not s.karpenter)
    from mlstack.simulate.capacity import idle

    nodes = [n for n in idle(world).nodes if n.source is system]
    assert nodes and all(dcgm not in [p for p, _ in n.pods] for n in nodes)
    # A DaemonSet that tolerates everything and needs most of a node leaves no room for the platform.
    metaflow = resource(plan, "kubernetes:apps/v1:StatefulSet", "orchestrator-search-metaflow-metadata")
    template = metaflow.inputs["spec"]["template"]
    metaflow.inputs["kind"] = "DaemonSet"
    template["spec"]["tolerations"] = [{"operator": "Exists"}]
    for container in template["spec"]["containers"]:
        container["resources"]["requests"]["cpu"] = "1500m"
    found = findings(world_of("staging", plan), IDLE)
    assert any("insufficient cpu" in f.message for f in found)


def test_topology_spread_do_not_schedule_counts_skew_per_domain():
    world = world_of("prod")
    metaflow = next(p for p in pod_templates(world) if p.item.name == "metaflow-metadata-search")
    metaflow.spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": metaflow.labels},
        }
    ]
    source = next(s for s in node_sources(world) if not s.karpenter)
    itype = source.types[0]
    node_a = Node("a", source, itype, "us-east-1a", itype.allocatable())
    assert spread_problem(metaflow, metaflow.labels, node_a, {ZONE: {"us-east-1a": 1, "us-east-1b": 0}})
    assert not spread_problem(metaflow, metaflow.labels, node_a, {ZONE: {"us-east-1a": 0, "us-east-1b": 1}})


def test_an_instance_type_outside_the_table_cannot_be_evaluated():
    plan = mutable_plan("prod")
    group = _node_group(plan)
    group.inputs["instanceTypes"] = ["x9.huge"]
    found = [f for f in findings(world_of("prod", plan), IDLE) if f.urn == group.urn]
    assert found and "cannot evaluate" in found[0].message and "x9.huge" in found[0].message


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_fit(stack):
    assert findings(world_of(stack), IDLE, PEAK, HOME) == []


def test_eks_addon_pods_take_their_share_of_every_node():
    """The EKS managed add-ons' pods were missing from the model: their DaemonSets (vpc-cni, kube-proxy, EBS
    CSI node, Pod Identity agent) land on every node, GPU nodes included (they tolerate every taint), and
    CoreDNS and the EBS CSI controller run two replicas each on the system nodes."""
    from mlstack.simulate.capacity import idle

    world = world_of("dev")
    outcome = idle(world)
    placed: dict[str, int] = {}
    for node in outcome.nodes:
        names = [pod.item.name for pod, _ in node.pods]
        for name in ("aws-node", "kube-proxy", "ebs-csi-node", "eks-pod-identity-agent"):
            assert names.count(name) == 1, (node.name, names)
        for name in ("coredns", "ebs-csi-controller"):
            placed[name] = placed.get(name, 0) + names.count(name)
    assert placed == {"coredns": 2, "ebs-csi-controller": 2}
    assert findings(world, IDLE, PEAK, HOME) == []


def test_the_addon_table_was_read_for_the_pinned_versions():
    """An add-on upgrade (components/data/eks_addons.yaml) must come with a re-read of its pods."""
    from components.cluster import eks_addon_versions
    from mlstack.simulate.capacity import eks_addon_pods
    from tests.plans import PROJECT, STACKS

    table = eks_addon_pods()
    for stack in STACKS:
        version = str(PROJECT.load(stack)[1].cluster.kubernetes_version)
        pinned = eks_addon_versions()[version]
        assert {name: row["read_for"] for name, row in table.items()} == pinned, stack


def test_an_addon_version_the_table_was_not_read_for_is_reported_not_guessed():
    plan = mutable_plan("dev")
    coredns = resource(plan, "aws:eks/addon:Addon", "coredns")
    coredns.inputs["addonVersion"] = "v1.13.0-eksbuild.1"
    found = [f for f in findings(world_of("dev", plan), IDLE) if f.urn == coredns.urn]
    assert [f.message for f in found] == [
        "cannot evaluate capacity fully: EKS add-on coredns v1.13.0-eksbuild.1: its pods were read for "
        "v1.12.3-eksbuild.1 (mlstack/simulate/data/eks_addon_pods.yaml); re-read them for this version"
    ]


# --- ephemeral-storage ---------------------------------------------------------------------------------------

GIB = 2**30
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def test_ephemeral_storage_follows_karpenters_formula_worked_example():
    """Karpenter v1.14.1 (pkg/providers/instancetype/types.go): capacity = the root volume (or the instance
    store's TotalSizeInGB in decimal GB under RAID0); allocatable = capacity - kubeReserved 1Gi
    (``kubeReservedResources``) - ceil(10% of capacity) (``evictionThreshold``). Its suite_test.go expects 1Gi
    kube-reserved and a ~2Gi threshold for the default 20Gi AL2023 volume; nodeadm (amazon-eks-ami@81fec2e)
    sets the same kubeReserved and evictionHard nodefs.available on the system nodes."""
    c6i, g5 = instance_types()["c6i.large"], instance_types()["g5.xlarge"]
    assert NodeStorage().capacity(c6i) == 20 * GIB
    assert NodeStorage().threshold(Fraction(20 * GIB)) == 2 * GIB
    assert NodeStorage().allocatable(c6i) == 17 * GIB  # Karpenter's published figure, also cross-checked above
    # The dev plan: the cpu pool's EC2NodeClass root volume is 50Gi -> 50 - 1 - 5 = 44Gi; the system node group's
    # launch template /dev/xvda is 30 GiB -> 30 - 1 - 3 = 26Gi.
    sources = {s.label: s for s in node_sources(world_of("dev"))}
    cpu = sources["NodePool cpu"]
    assert cpu.capacity(c6i)["ephemeral-storage"] == 50 * GIB
    assert cpu.allocatable(c6i)["ephemeral-storage"] == 44 * GIB
    system = next(s for s in sources.values() if not s.karpenter)
    assert system.allocatable(system.types[0])["ephemeral-storage"] == 26 * GIB
    # RAID0: g5.xlarge has 250 GB of NVMe -> 250e9 - 25e9 - 1Gi; a type without instance store keeps the volume.
    raid0 = NodeStorage(raid0=True)
    assert raid0.capacity(g5) == 250 * 10**9
    assert raid0.allocatable(g5) == 225 * 10**9 - GIB
    assert raid0.capacity(c6i) == 20 * GIB
    # An EC2NodeClass's kubelet overrides are applied as Karpenter applies them (and passes them to nodeadm).
    plan = mutable_plan("dev")
    node_class = resource(plan, NODE_CLASS, "cpu-nodeclass")
    node_class.inputs["spec"]["kubelet"] = {
        "kubeReserved": {"ephemeral-storage": "2Gi"},
        "systemReserved": {"ephemeral-storage": "3Gi"},
        "evictionHard": {"nodefs.available": "5%"},
    }
    cpu = next(s for s in node_sources(world_of("dev", plan)) if s.label == "NodePool cpu")
    assert cpu.allocatable(c6i)["ephemeral-storage"] == Fraction(50 * GIB - 2 * GIB - 3 * GIB - math.ceil(2.5 * GIB))


def _metaflow_scratch(plan: Plan, amount: str) -> RecordedResource:
    metaflow = resource(plan, "kubernetes:apps/v1:StatefulSet", "orchestrator-search-metaflow-metadata")
    spec = metaflow.inputs["spec"]["template"]["spec"]
    # An init container's request counts as the cpu and memory ones do (max of init, sum of regular).
    spec.setdefault("initContainers", []).append(
        {
            "name": "scratch",
            "image": spec["containers"][0]["image"],
            "resources": {
                "requests": {"ephemeral-storage": amount, "cpu": "10m", "memory": "16Mi"},
                "limits": {"ephemeral-storage": amount, "cpu": "10m", "memory": "16Mi"},
            },
        }
    )
    return metaflow


def test_a_pod_wanting_more_scratch_than_the_system_nodes_hold_stays_pending():
    plan = mutable_plan("dev")
    metaflow = _metaflow_scratch(plan, "40Gi")
    world = world_of("dev", plan)
    idle_found = [f for f in findings(world, IDLE) if f.urn == metaflow.urn]
    assert idle_found and "stay Pending at idle" in idle_found[0].message
    assert "insufficient ephemeral-storage (needs 40960Mi" in idle_found[0].message
    home = [f for f in findings(world, HOME) if f.urn == metaflow.urn]
    assert home and "can never be scheduled" in home[0].message
    assert "insufficient ephemeral-storage" in home[0].message and "26624Mi ephemeral-storage" in home[0].message
    # Within the 26Gi the system nodes offer (less what the add-ons and other pods ask), it fits.
    plan = mutable_plan("dev")
    metaflow = _metaflow_scratch(plan, "1Gi")
    assert [f for f in findings(world_of("dev", plan), IDLE, HOME) if f.urn == metaflow.urn] == []


def test_a_pool_whose_root_volume_is_too_small_leaves_the_pod_pending_until_raid0():
    plan = mutable_plan("prod")
    _serving_admissible(plan)
    chat = resource(plan, DEPLOYMENT, "-chat-deployment")
    server = next(c for c in chat.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "server")
    server["resources"]["requests"]["ephemeral-storage"] = "400Gi"
    world = world_of("prod", plan)
    home = [f for f in findings(world, HOME) if f.urn == chat.urn]
    assert home and "NodePool serving: insufficient ephemeral-storage" in home[0].message
    idle_found = [f for f in findings(world, IDLE) if f.urn == chat.urn]
    assert idle_found and "no instance type large enough: insufficient ephemeral-storage" in idle_found[0].message
    # Instance store as ephemeral-storage (RAID0) gives the types with enough NVMe the room.
    pool = resource(plan, "kubernetes:karpenter.sh/v1:NodePool", "-serving-nodepool")
    node_class_name = pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"]
    node_class = next(
        r for r in plan.resources if r.type == NODE_CLASS and r.inputs["metadata"]["name"] == node_class_name
    )
    node_class.inputs["spec"]["instanceStorePolicy"] = "RAID0"
    assert [f for f in findings(world_of("prod", plan), IDLE, HOME) if f.urn == chat.urn] == []


def test_node_group_scratch_comes_from_its_launch_template_else_disk_size():
    plan = mutable_plan("dev")
    group = _node_group(plan)
    template = resource(plan, "aws:ec2/launchTemplate:LaunchTemplate", "-system-nodes")
    template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] = 100.0
    system = next(s for s in node_sources(world_of("dev", plan)) if not s.karpenter)
    assert system.allocatable(system.types[0])["ephemeral-storage"] == 89 * GIB  # 100 - 1 - 10
    # Without a launch template, EKS gives the group diskSize GiB (20 by default).
    del group.inputs["launchTemplate"]
    group.inputs["diskSize"] = 40.0
    system = next(s for s in node_sources(world_of("dev", plan)) if not s.karpenter)
    assert system.allocatable(system.types[0])["ephemeral-storage"] == 35 * GIB  # 40 - 1 - 4
    # Another AMI type than AL2023 is not nodeadm's: reported, not guessed.
    group.inputs["amiType"] = "BOTTLEROCKET_x86_64"
    found = [f for f in findings(world_of("dev", plan), IDLE) if f.urn == group.urn]
    assert any("modelled for AL2023 AMI types only" in f.message for f in found)


def test_a_node_pool_without_its_node_class_cannot_be_evaluated():
    plan = mutable_plan("dev")
    pool = resource(plan, "kubernetes:karpenter.sh/v1:NodePool", "cpu-nodepool")
    pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"] = "missing"
    found = [f for f in findings(world_of("dev", plan), IDLE) if f.urn == pool.urn]
    assert any("EC2NodeClass 'missing' is not in the plan" in f.message for f in found)


def test_the_ebs_csi_controller_is_pinned_to_the_system_nodes_by_the_add_on_configuration() -> None:
    """The controller tolerates the system taint but selects no node, so it floated onto a team CPU node; the
    add-on's configuration (controller.nodeSelector) pins it, and the simulation reads that configuration."""
    import json as _json

    from mlstack.simulate.capacity import addon_templates

    world = world_of("dev")
    (addon,) = [a for a in world.resources("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"]
    assert _json.loads(addon.inputs["configurationValues"]) == {
        "controller": {"nodeSelector": {"mlstack.io/node-role": "system"}}
    }
    controller = next(t for t in addon_templates(world) if t.item.name == "ebs-csi-controller")
    assert controller.spec["nodeSelector"] == {"mlstack.io/node-role": "system"}
    node = next(t for t in addon_templates(world) if t.item.name == "ebs-csi-node")
    assert "nodeSelector" not in node.spec
