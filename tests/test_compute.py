"""CPU pools, system-node isolation, JobSet and Kueue's gang admission, over the recorded plans and the deploy
simulation (real Helm over the packaged charts)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cluster import SYSTEM_TAINT, SYSTEM_TOLERATION
from components.compute import (
    ARM64_TAINT,
    JOBSET_API,
    JOBSET_IMAGE,
    JOBSET_IMAGE_TAG,
    SYSTEM_TAINT_POLICY,
    node_pool_spec,
    system_taint_policy_manifests,
)
from components.environment import Environment
from components.orchestrator import metaflow_config
from components.teams import LOCAL_QUEUE, cluster_queue_manifest, resource_flavor_manifests
from mlstack.cost import default_prices, estimate
from mlstack.plan.recorder import Plan
from mlstack.simulate import capacity
from mlstack.simulate.crds import CrdSource
from mlstack.simulate.helm import charts_directory
from mlstack.simulate.objects import containers, of_kind, workloads
from mlstack.simulate.schema import validate
from mlstack.spec import PlatformSpec
from mlstack.spec.base import Tier
from mlstack.spec.compute import CpuPoolSpec, cpu_instance_table, default_cpu_pools
from mlstack.spec.loader import SpecError, load_spec
from mlstack.spec.teams import TeamSpec
from tests.k8s_schema import validate_object
from tests.plans import PROJECT
from tests.simulation import world_of

STACKS = ["dev", "staging", "prod"]
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHARTS = charts_directory(Path(__file__).parent)


def _pool(**fields: Any) -> CpuPoolSpec:
    base: dict[str, Any] = {"name": "cpu", "arch": "amd64", "instance_types": ["m7i.large"], "max_vcpu": 8}
    return CpuPoolSpec.model_validate({**base, **fields})


def _spec_data(stack: str) -> dict[str, Any]:
    _, spec = PROJECT.load(stack)
    return spec.model_dump(mode="json", exclude={"cpu_pools"})


# --- spec ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", list(Tier))
def test_every_tier_gets_an_x86_and_a_graviton_pool(tier: Tier) -> None:
    pools = [CpuPoolSpec.model_validate(p) for p in default_cpu_pools(tier)]
    assert [(p.name, p.arch) for p in pools] == [("cpu", "amd64"), ("cpu-arm", "arm64")]
    # dev buys Spot only and small; the hardened tiers fall back to On-Demand.
    assert {p.capacity_type for p in pools} == ({"spot"} if tier is Tier.DEV else {"spot-preferred"})
    assert pools[0].max_vcpu == {Tier.DEV: 16, Tier.STAGING: 64, Tier.PROD: 256}[tier]


def test_a_stack_file_without_cpu_pools_gets_the_defaults_and_an_empty_list_none() -> None:
    data = _spec_data("dev")
    assert [p.name for p in PlatformSpec.model_validate(data).cpu_pools] == ["cpu", "cpu-arm"]
    # Notebooks need a pool to offer (the spec says so), so this stack file runs without them.
    without = {key: value for key, value in data.items() if key != "notebooks"}
    assert PlatformSpec.model_validate({**without, "cpu_pools": []}).cpu_pools == []


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"instance_types": ["m7g.large"]}, "instance_types.0", "is arm64, but the pool's arch is amd64"),
        ({"instance_types": ["g5.xlarge"]}, "instance_types.0", "not a CPU instance type"),
        ({"instance_types": ["m9z.large"]}, "instance_types.0", "not a CPU instance type"),
        ({"instance_types": ["m7i.large", "m7i.large"]}, "instance_types", "twice"),
    ],
)
def test_bad_cpu_pools_are_refused_with_the_field(fields: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ValueError) as error:
        _pool(**fields)
    assert path in str(error.value) and words in str(error.value)


def test_a_cpu_pool_may_not_reuse_a_gpu_pool_name() -> None:
    data = _spec_data("dev")
    gpu = data["gpu_pools"][0]["name"]
    clash = {"name": gpu, "arch": "amd64", "instance_types": ["m7i.large"], "max_vcpu": 8}
    with pytest.raises(ValueError, match=r"cpu_pools\.0\.name"):
        PlatformSpec.model_validate({**data, "cpu_pools": [clash]})


def test_memory_limit_follows_the_largest_memory_per_vcpu() -> None:
    table = cpu_instance_table()
    pool = _pool(instance_types=["m7i.large", "r7i.large"], max_vcpu=10)
    per_vcpu = max(table[t]["memory_mib"] / table[t]["vcpu"] for t in pool.instance_types)
    assert pool.memory_limit_gib() == int(10 * per_vcpu // 1024) == 80  # r7i: 8 GiB per vCPU


# --- NodePools and node classes ----------------------------------------------------------------------------------
def test_node_pool_spec_is_valid_against_karpenters_crd() -> None:
    for pool in (_pool(), _pool(name="arm", arch="arm64", instance_types=["m7g.large"])):
        manifest = {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": pool.name},
            "spec": node_pool_spec(pool),
        }
        assert not validate_object(manifest, "1.34")
    arm = node_pool_spec(_pool(name="arm", arch="arm64", instance_types=["m7g.large"]))
    assert arm["template"]["spec"]["taints"] == [ARM64_TAINT]
    assert "taints" not in node_pool_spec(_pool())["template"]["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_cpu_pool_is_planned_bounded_and_locked_down(stack: str, plans: dict[str, Plan]) -> None:
    plan = plans[stack]
    _, spec = PROJECT.load(stack)
    pools = {r.inputs["metadata"]["name"]: r for r in plan.by_type(NODE_POOL)}
    classes = {r.inputs["metadata"]["name"]: r for r in plan.by_type(NODE_CLASS)}
    for declared in spec.cpu_pools:
        pool, node_class = pools[declared.name], classes[declared.name]
        assert not validate_object(pool.inputs, spec.cluster.kubernetes_version)
        assert pool.inputs["spec"]["limits"] == {
            "cpu": str(declared.max_vcpu),
            "memory": f"{declared.memory_limit_gib()}Gi",
        }
        requirements = {
            r["key"]: r["values"] for r in pool.inputs["spec"]["template"]["spec"]["requirements"]
        }
        assert requirements["kubernetes.io/arch"] == [declared.arch]
        assert requirements["node.kubernetes.io/instance-type"] == sorted(declared.instance_types)
        metadata = node_class.inputs["spec"]["metadataOptions"]
        assert (metadata["httpTokens"], metadata["httpPutResponseHopLimit"]) == ("required", 1.0)
        assert all(m["ebs"]["encrypted"] for m in node_class.inputs["spec"]["blockDeviceMappings"])


@pytest.mark.parametrize("stack", STACKS)
def test_system_nodes_are_tainted(stack: str, plans: dict[str, Plan]) -> None:
    (group,) = plans[stack].by_type(NODE_GROUP)
    assert group.inputs["taints"] == [
        {"key": SYSTEM_TAINT["key"], "value": SYSTEM_TAINT["value"], "effect": "NO_SCHEDULE"}
    ]


# --- capacity: platform pods on the system nodes, team pods never ------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_platform_pod_runs_on_the_system_nodes_at_idle(stack: str) -> None:
    world = world_of(stack)
    outcome = capacity.idle(world)
    assert not outcome.pending
    team_namespaces = {team.name for team in world.spec.teams}
    for node in outcome.nodes:
        on_system = not node.source.karpenter
        for pod, _ in node.pods:
            if pod.kind == "DaemonSet":
                continue
            platform = pod.item.namespace not in team_namespaces
            # Platform pods stay on the system nodes (nothing of the platform wakes a CPU pool); team pods
            # (inference endpoints) never land there.
            assert platform == on_system, f"{pod.item.label} on {node.name} ({node.source.label})"


def test_a_team_pod_cannot_land_on_system_nodes_but_fits_a_cpu_pool() -> None:
    world = world_of("dev")
    sources = capacity.node_sources(world)
    (system,) = [s for s in sources if not s.karpenter]
    assert {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"} in system.taints
    cpu = next(s for s in sources if s.label == "NodePool cpu")
    arm = next(s for s in sources if s.label == "NodePool cpu-arm")
    assert not cpu.taints and cpu.types and all(t.arch == "amd64" for t in cpu.types)
    assert arm.taints == [ARM64_TAINT] and all(t.arch == "arm64" for t in arm.types)
    # The toleration platform charts get matches the taint; nothing else does.
    assert capacity._tolerates([SYSTEM_TOLERATION], system.taints[0])
    assert not capacity._tolerates([], system.taints[0])


# --- admission: team pods may not tolerate the system taint -------------------------------------------------------
def _admits(pod_spec: dict[str, Any]) -> bool:
    """The policy's CEL expression evaluated as the API server does, on a pod with ``pod_spec`` (cel-python)."""
    import celpy

    policy, _ = system_taint_policy_manifests()
    (validation,) = policy["spec"]["validations"]
    env = celpy.Environment()
    program = env.program(env.compile(validation["expression"]))
    return bool(program.evaluate({"object": celpy.json_to_cel({"spec": pod_spec})}))


@pytest.mark.parametrize(
    ("tolerations", "admitted"),
    [
        (None, True),
        ([], True),
        ([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], True),  # GPU pools
        ([ARM64_TAINT | {"operator": "Equal"}], True),  # Graviton pools
        ([SYSTEM_TOLERATION], False),
        ([{"key": "CriticalAddonsOnly", "operator": "Equal", "value": "true"}], False),
        ([{"operator": "Exists"}], False),  # no key: tolerates every taint
        ([{"key": "", "operator": "Exists"}], False),
    ],
)
def test_team_pods_tolerating_the_system_taint_are_refused(
    tolerations: list[dict[str, Any]] | None, admitted: bool
) -> None:
    assert _admits({} if tolerations is None else {"tolerations": tolerations}) is admitted


@pytest.mark.parametrize("stack", STACKS)
def test_the_system_taint_policy_binds_team_namespaces_and_admits_every_team_pod_we_plan(stack: str) -> None:
    world = world_of(stack)
    policies = {o.name: o.obj for o in of_kind(world, "ValidatingAdmissionPolicy")}
    bindings = {o.name: o.obj for o in of_kind(world, "ValidatingAdmissionPolicyBinding")}
    policy, binding = policies[SYSTEM_TAINT_POLICY], bindings[SYSTEM_TAINT_POLICY]
    assert not validate_object(policy, "1.34") and not validate_object(binding, "1.34")
    assert binding["spec"]["policyName"] == SYSTEM_TAINT_POLICY
    assert binding["spec"]["validationActions"] == ["Deny"]
    selector = binding["spec"]["matchResources"]["namespaceSelector"]
    assert selector == {"matchExpressions": [{"key": "mlstack.io/team", "operator": "Exists"}]}
    # Every team namespace carries the label, and every pod the platform puts there passes the policy.
    teams = {team.name for team in world.spec.teams}
    labelled = {
        o.name for o in of_kind(world, "Namespace") if "mlstack.io/team" in o.obj["metadata"]["labels"]
    }
    assert teams <= labelled
    team_pods = [spec for item, spec in workloads(world) if item.namespace in teams]
    assert team_pods and all(_admits(spec) for spec in team_pods)


# --- Kueue: flavors by architecture, gang admission of JobSets ---------------------------------------------------
def test_cpu_flavors_select_by_architecture_and_graviton_is_opt_in() -> None:
    flavors = {f["metadata"]["name"]: f["spec"] for f in resource_flavor_manifests([], arm64=True)}
    assert flavors["default"] == {"nodeLabels": {"kubernetes.io/arch": "amd64"}}
    # nodeTaints, not tolerations: only workloads that tolerate Graviton get the flavor; Kueue adds nothing.
    assert flavors["arm64"] == {"nodeLabels": {"kubernetes.io/arch": "arm64"}, "nodeTaints": [ARM64_TAINT]}
    for name, spec in flavors.items():
        manifest = {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ResourceFlavor",
            "metadata": {"name": name},
            "spec": spec,
        }
        assert not validate_object(manifest, "1.34")
    assert [f["metadata"]["name"] for f in resource_flavor_manifests([])] == ["default"]


def test_cluster_queue_offers_amd64_then_arm64_for_cpu() -> None:
    team = TeamSpec.model_validate(
        {"name": "t", "cost_center": "t-1", "cpu_quota": 16, "memory_quota_gib": 64, "gpu_quota": 0}
    )
    manifest = cluster_queue_manifest(team, {}, arm64=True)
    (group,) = manifest["spec"]["resourceGroups"]
    assert group["coveredResources"] == ["cpu", "memory", "ephemeral-storage"]
    assert [f["name"] for f in group["flavors"]] == ["default", "arm64"]
    assert not validate_object(manifest, "1.34")


@pytest.mark.skipif(CHARTS is None, reason="no shared/charts")
def test_kueue_chart_default_config_manages_jobsets() -> None:
    # kueue_values() leaves managerConfig alone: the released default must include the JobSet integration.
    assert CHARTS is not None
    with tarfile.open(CHARTS / "kueue-0.19.2.tgz") as archive:
        member = archive.extractfile("kueue/values.yaml")
        assert member is not None
        values = yaml.safe_load(member.read())
    config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]
    assert "pod" in config["integrations"]["frameworks"]  # Argo's step pods


@pytest.mark.parametrize("stack", STACKS)
def test_kueue_rendered_config_keeps_the_jobset_integration(stack: str) -> None:
    world = world_of(stack)
    (config_map,) = [
        item
        for item in of_kind(world, "ConfigMap")
        if item.release == "kueue" and item.name.endswith("manager-config")
    ]
    config = yaml.safe_load(config_map.obj["data"]["controller_manager_config.yaml"])
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]


@pytest.mark.parametrize("stack", STACKS)
def test_metaflow_steps_and_jobsets_queue_on_the_teams_local_queue(
    stack: str, plans: dict[str, Plan]
) -> None:
    config = metaflow_config(
        "search",
        _env(stack),
        cost_center="c-1",
        bucket="b",
        service_url="http://x",
        argo_ui_url="",
        step_image="i",
    )
    labels = dict(pair.split("=", 1) for pair in config["METAFLOW_KUBERNETES_LABELS"].split(","))
    assert labels["kueue.x-k8s.io/queue-name"] == LOCAL_QUEUE
    local_queues = {
        r.inputs["metadata"]["name"]
        for r in plans[stack].by_type("kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")
    }
    assert local_queues == {LOCAL_QUEUE}


def _env(stack: str) -> Environment:
    return Environment.from_spec(PROJECT.load(stack)[1])


# --- JobSet ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_jobset_installs_from_its_oci_chart_through_the_cache_before_kueue(
    stack: str, plans: dict[str, Plan]
) -> None:
    plan = plans[stack]
    releases = {r.inputs["name"]: r for r in plan.by_type(RELEASE)}
    jobset, kueue = releases["jobset"], releases["kueue"]
    assert jobset.inputs["chart"] == "oci://registry.k8s.io/jobset/charts/jobset"
    assert jobset.inputs["version"] == "0.12.0"
    assert jobset.urn in kueue.dependencies
    world = world_of(stack)
    registry = f"{world.spec.account_id}.dkr.ecr.{world.spec.region}.amazonaws.com/"
    images = [
        c["image"] for item, spec in workloads(world) if item.release == "jobset" for c in containers(spec)
    ]
    assert images == [f"{registry}k8s/{JOBSET_IMAGE.removeprefix('registry.k8s.io/')}:{JOBSET_IMAGE_TAG}"]


@pytest.mark.skipif(CHARTS is None, reason="no shared/charts")
def test_jobset_tag_is_the_released_charts_and_its_crd_serves_metaflows_version() -> None:
    assert CHARTS is not None
    released = yaml.safe_load((CHARTS / "release-values" / "jobset-0.12.0.yaml").read_text())
    assert (released["image"]["repository"], released["image"]["tag"]) == (JOBSET_IMAGE, JOBSET_IMAGE_TAG)
    with tarfile.open(CHARTS / "jobset-0.12.0.tgz") as archive:
        crds = [m for m in archive.getmembers() if m.name.startswith("jobset/crds/")]
        (crd,) = [yaml.safe_load(archive.extractfile(m).read()) for m in crds]  # type: ignore[union-attr]
    served = {f"{crd['spec']['group']}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}
    assert JOBSET_API in served
    metaflow_config = pytest.importorskip("metaflow.metaflow_config")
    group, version = metaflow_config.KUBERNETES_JOBSET_GROUP, metaflow_config.KUBERNETES_JOBSET_VERSION
    assert f"{group}/{version}" == JOBSET_API


# --- cost --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_cpu_pools_cost_nothing_idle_and_their_vcpu_limit_at_peak(stack: str, plans: dict[str, Plan]) -> None:
    _, spec = PROJECT.load(stack)
    result = estimate(plans[stack], spec)
    lines = {line.item: line for line in result.lines if line.item.startswith("CPU pool ")}
    table = cpu_instance_table()
    for pool in spec.cpu_pools:
        (line,) = [v for k, v in lines.items() if k.startswith(f"CPU pool {pool.name} (")]
        assert line.idle == 0
        spot = pool.capacity_type != "on-demand"
        factor = (1 - spec.cost.spot_discount_percent / 100) if spot else 1.0
        prices = default_prices()
        per_vcpu = max(
            prices.monthly(f"ec2:{t}", spec.region) * factor / table[t]["vcpu"] for t in pool.instance_types
        )
        assert line.peak == pytest.approx(pool.max_vcpu * per_vcpu)


# --- bad input ---------------------------------------------------------------------------------------------------
def test_a_bad_cpu_pool_in_a_stack_file_is_one_message_with_file_and_field(tmp_path: Path) -> None:
    text = PROJECT.stack_file("dev").read_text(encoding="utf-8")
    pools = (
        "    cpu_pools:\n"
        "      - name: cpu\n"
        "        arch: amd64\n"
        "        instance_types: [m7g.large]\n"
        "        max_vcpu: 8\n"
    )
    assert "    gpu_pools:\n" in text
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text.replace("    gpu_pools:\n", pools + "    gpu_pools:\n", 1), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message
    assert "cpu_pools.0.instance_types.0" in message and "set arch: arm64" in message
    assert "Traceback" not in message


# --- Metaflow's JobSet against the JobSet we install -------------------------------------------------------------
class _KubernetesSdk:
    """What Metaflow's KubernetesJobSet asks of its client: ``get()`` returns the kubernetes SDK's client module."""

    def get(self) -> Any:
        return pytest.importorskip("kubernetes").client


def _jobset_crd() -> dict[str, Any]:
    assert CHARTS is not None
    with tarfile.open(CHARTS / "jobset-0.12.0.tgz") as archive:
        (member,) = [m for m in archive.getmembers() if m.name.startswith("jobset/crds/")]
        handle = archive.extractfile(member)
        assert handle is not None
        crd: dict[str, Any] = yaml.safe_load(handle.read())
    return crd


@pytest.mark.skipif(CHARTS is None, reason="no shared/charts")
def test_metaflows_parallel_jobset_is_valid_for_jobset_0_12_and_queues_whole() -> None:
    jobsets = pytest.importorskip("metaflow.plugins.kubernetes.kubernetes_jobsets")
    config = metaflow_config(
        "search",
        _env("dev"),
        cost_center="c-1",
        bucket="b",
        service_url="http://x",
        argo_ui_url="",
        step_image="i",
    )
    labels = dict(pair.split("=", 1) for pair in config["METAFLOW_KUBERNETES_LABELS"].split(","))
    # The arguments Metaflow's runtime passes (plugins/kubernetes/kubernetes.py create_jobset), for an
    # @kubernetes(gpu=8, extended_resources={"vpc.amazonaws.com/efa": "32"}) @parallel step with num_parallel=2.
    jobset = jobsets.KubernetesJobSet(
        _KubernetesSdk(),
        name="js-abc123",
        namespace="search",
        num_parallel=2,
        service_account="workflows",
        node_selector={"mlstack.io/pool": "train-efa"},
        image="i",
        image_pull_policy=None,
        image_pull_secrets=[],
        command=["python", "flow.py"],
        cpu="16",
        memory="65536",
        disk="10240",
        gpu="8",
        gpu_vendor="nvidia",
        timeout_in_seconds=3600,
        retries=0,
        step_name="train",
        subdomain="js-abc123",
        tolerations=[],
        use_tmpfs=False,
        tmpfs_tempdir=True,
        tmpfs_size=None,
        tmpfs_path="/metaflow_temp",
        persistent_volume_claims=None,
        shared_memory=None,
        port=None,
        qos="Burstable",
        extended_resources={"vpc.amazonaws.com/efa": "32"},
        security_context=None,
    )
    jobset.control.replicas(1)
    jobset.worker.replicas(1)
    jobset.labels(labels)
    manifest = pytest.importorskip("kubernetes").client.ApiClient().sanitize_for_serialization(jobset.dump())
    assert manifest["apiVersion"] == JOBSET_API
    # Kueue reads the queue from the JobSet's own labels (kueue v0.19.2 docs tasks/run/jobsets.md).
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == LOCAL_QUEUE
    problems = validate(manifest, "1.34", [CrdSource(_jobset_crd())], {})
    assert not problems, problems
    for replicated in manifest["spec"]["replicatedJobs"]:
        (container,) = replicated["template"]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["vpc.amazonaws.com/efa"] == "32"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
