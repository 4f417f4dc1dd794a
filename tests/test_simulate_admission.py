"""Admission in the deploy simulation: LimitRanger, resource validation, ResourceQuota, PDBs, Pod Security.

Each reviewed defect (rt-cluster rows 3 and 5) is put back into a copy of a shipped plan and must be flagged on
the resource to fix; the shipped stacks are clean once the issue 15/16 fixes land.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate.admission import namespace_levels
from mlstack.simulate.framework import World
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.pod_security import violations
from mlstack.simulate.pods import pod_templates
from tests.simulation import findings, mutable_plan, resource, world_of

LIMITS, QUOTA, PDB, PSA = "MLS-SIM-ADM-001", "MLS-SIM-ADM-002", "MLS-SIM-ADM-003", "MLS-SIM-ADM-004"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LIMIT_RANGE = "kubernetes:core/v1:LimitRange"
QUOTA_TYPE = "kubernetes:core/v1:ResourceQuota"


def _containers(deployment: RecordedResource) -> list[dict[str, Any]]:
    return list(deployment.inputs["spec"]["template"]["spec"]["containers"])


def _serving_with_cpu_limits(plan: Plan, name: str) -> RecordedResource:
    """The serving Deployment with every container's CPU limit equal to its request (row 5's fix)."""
    deployment = resource(plan, DEPLOYMENT, name)
    spec = deployment.inputs["spec"]["template"]["spec"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        container["resources"].setdefault("limits", {})["cpu"] = container["resources"]["requests"]["cpu"]
    return deployment


@pytest.mark.parametrize(("stack", "endpoint", "team"), [("prod", "chat", "search"), ("prod", "ranker", "recsys"),
                                                        ("staging", "chat", "search"), ("dev", "chat", "search")])  # fmt: skip
def test_row5_a_default_cpu_limit_below_the_serving_request_rejects_the_pods(stack, endpoint, team):
    # rt-cluster row 5: the serving container requests cpu = 3 x GPUs with no CPU limit; the team LimitRange's
    # default limit (cpu "1") is injected, so request > limit and the API rejects every pod.
    plan = mutable_plan(stack)
    deployment = resource(plan, DEPLOYMENT, f"-{endpoint}-deployment")
    server = next(c for c in _containers(deployment) if c["name"] == "server")
    server["resources"]["requests"]["cpu"] = "3"
    server["resources"].get("limits", {}).pop("cpu", None)
    limit_range = resource(plan, LIMIT_RANGE, f"-{team}-limits")
    container_limits = next(
        item for item in limit_range.inputs["spec"]["limits"] if item["type"] == "Container"
    )
    container_limits["default"]["cpu"] = "1"
    found = [f for f in findings(world_of(stack, plan), LIMITS) if f.urn == deployment.urn]
    assert len(found) == 1
    assert "cpu request 3000m must be less than or equal to cpu limit 1000m" in found[0].message
    assert f"LimitRange {team}/team-limits" in found[0].message


def test_row5_fix_explicit_cpu_limits_pass():
    plan = mutable_plan("prod")
    _serving_with_cpu_limits(plan, "-chat-deployment")
    _serving_with_cpu_limits(plan, "-ranker-deployment")
    assert findings(world_of("prod", plan), LIMITS) == []


def test_limit_range_defaults_are_injected_and_bounds_enforced():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    server = next(c for c in _containers(deployment) if c["name"] == "server")
    del server["resources"]["requests"]["memory"], server["resources"]["limits"]["memory"]
    limit_range = resource(plan, LIMIT_RANGE, "-search-limits")
    limit_range.inputs["spec"]["limits"].append(
        {"type": "Container", "max": {"memory": "1Gi"}, "maxLimitRequestRatio": {"cpu": "1"}}
    )
    world = world_of("prod", plan)
    chat = next(p for p in pod_templates(world) if p.item.urn == deployment.urn)
    server_after = next(c for c in chat.spec["containers"] if c["name"] == "server")
    # The team default (2Gi limit, 512Mi request) is injected where the container set no memory.
    assert server_after["resources"]["limits"]["memory"] == "2Gi"
    assert server_after["resources"]["requests"]["memory"] == "512Mi"
    message = " ".join(f.message for f in findings(world, LIMITS) if f.urn == deployment.urn)
    assert "maximum memory is 1024Mi" in message


def test_limit_request_ratio_is_enforced():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    server = next(c for c in _containers(deployment) if c["name"] == "server")
    server["resources"]["limits"]["cpu"] = str(int(float(server["resources"]["requests"]["cpu"])) * 4)
    limit_range = resource(plan, LIMIT_RANGE, "-search-limits")
    limit_range.inputs["spec"]["limits"].append({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}})
    found = [f for f in findings(world_of("prod", plan), LIMITS) if f.urn == deployment.urn]
    assert found and "limit/request ratio 4.00 exceeds 2.0" in found[0].message


def test_an_extended_resource_request_must_equal_its_limit():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    server = next(c for c in _containers(deployment) if c["name"] == "server")
    server["resources"]["limits"]["nvidia.com/gpu"] = "4"
    found = [f for f in findings(world_of("prod", plan), LIMITS) if f.urn == deployment.urn]
    assert found and "nvidia.com/gpu request must equal its limit" in found[0].message


def test_quota_is_checked_at_maximum_replicas():
    plan = mutable_plan("prod")
    _serving_with_cpu_limits(plan, "-chat-deployment")
    quota = resource(plan, QUOTA_TYPE, "-search-quota")
    quota.inputs["spec"]["hard"]["requests.nvidia.com/gpu"] = "2"
    found = findings(world_of("prod", plan), QUOTA)
    assert [f.urn for f in found] == [quota.urn]
    assert "requests.nvidia.com/gpu at maximum replicas" in found[0].message
    assert "over the hard limit 2" in found[0].message


def test_a_quota_on_cpu_limits_rejects_containers_without_one():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    _containers(deployment)[0]["resources"]["limits"].pop("cpu")
    # LimitRanger would inject the default limit: take the default away so the container really has none.
    limit_range = resource(plan, LIMIT_RANGE, "-search-limits")
    next(i for i in limit_range.inputs["spec"]["limits"] if i["type"] == "Container")["default"].pop("cpu")
    resource(plan, QUOTA_TYPE, "-search-quota").inputs["spec"]["hard"]["limits.cpu"] = "1000"
    found = [f for f in findings(world_of("prod", plan), QUOTA) if f.urn == deployment.urn]
    assert found and "must specify limits.cpu for container" in found[0].message


def test_row3_a_pdb_with_min_available_and_the_chart_default_max_unavailable_is_rejected():
    # rt-cluster row 3: interceptor.pdb.minAvailable is set, the chart default maxUnavailable: 1 stays, and the
    # template renders both: the API server rejects the PDB and the keda-add-ons-http release fails.
    plan = mutable_plan("dev")
    release = resource(plan, RELEASE_TYPE, "http-addon")
    release.inputs["values"]["interceptor"]["pdb"] = {"enabled": True, "minAvailable": 1}
    found = findings(world_of("dev", plan), PDB)
    assert [f.urn for f in found] == [release.urn]
    assert "minAvailable and maxUnavailable cannot be both set" in found[0].message
    assert "keda-add-ons-http-interceptor" in found[0].message


def test_row3_fix_clearing_the_chart_default_passes():
    plan = mutable_plan("dev")
    release = resource(plan, RELEASE_TYPE, "http-addon")
    release.inputs["values"]["interceptor"]["pdb"] = {
        "enabled": True,
        "minAvailable": 1,
        "maxUnavailable": None,
    }
    assert findings(world_of("dev", plan), PDB) == []


def test_a_pdb_over_100_percent_is_rejected():
    plan = mutable_plan("prod")
    budget = resource(plan, "kubernetes:policy/v1:PodDisruptionBudget", "-chat-pdb")
    budget.inputs["spec"] = {**budget.inputs["spec"], "maxUnavailable": "150%"}
    found = [f for f in findings(world_of("prod", plan), PDB) if f.urn == budget.urn]
    assert found and "must not be greater than 100%" in found[0].message


def test_pod_security_restricted_namespace_rejects_a_root_pod():
    """The metaflow namespace enforces baseline since its migration runs as root (components/orchestrator.py);
    qdrant still enforces restricted, and its snapshot CronJob's pods are admitted there."""
    plan = mutable_plan("dev")
    snapshots = resource(plan, "kubernetes:batch/v1:CronJob", "vectordb-snapshots")
    assert snapshots.inputs["metadata"]["namespace"] == "qdrant"
    assert findings(world_of("dev", plan), PSA) == []
    spec = snapshots.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    spec["securityContext"] = {}
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        container["securityContext"] = {"runAsUser": 0}
    found = findings(world_of("dev", plan), PSA)
    assert [f.urn for f in found] == [snapshots.urn]
    assert 'violate PodSecurity "restricted:v1.34"' in found[0].message
    assert "runAsUser=0" in found[0].message and "allowPrivilegeEscalation" in found[0].message


def test_the_root_metaflow_migration_would_be_rejected_under_restricted():
    """The shipped migrate-db init container runs as root (waived for MLS-K8S-012): admitted only because the
    metaflow namespace enforces baseline."""
    plan = mutable_plan("dev")
    namespace = resource(plan, "kubernetes:core/v1:Namespace", "orchestrator-metaflow-ns")
    namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    services = [r for r in plan.by_type("kubernetes:apps/v1:StatefulSet") if "metaflow-metadata" in r.name]
    found = findings(world_of("dev", plan), PSA)
    assert sorted(f.urn for f in found) == sorted(r.urn for r in services) and len(services) == 2
    assert all("runAsUser=0 is forbidden" in f.message for f in found)


def test_pod_security_baseline_team_namespace_rejects_host_network_but_not_missing_seccomp():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    spec = deployment.inputs["spec"]["template"]["spec"]
    spec.pop("securityContext", None)
    world = world_of("prod", plan)
    assert [f for f in findings(world, PSA) if f.urn == deployment.urn] == []  # baseline needs no seccomp
    spec["hostNetwork"] = True
    found = [f for f in findings(world_of("prod", plan), PSA) if f.urn == deployment.urn]
    assert (
        found
        and 'violate PodSecurity "baseline:v1.34"' in found[0].message
        and "hostNetwork" in found[0].message
    )


def test_release_created_namespaces_are_privileged_and_labelled_ones_use_their_label():
    levels = namespace_levels(world_of("dev"))
    assert levels["qdrant"][0] == "restricted"
    assert levels["search"][0] == "baseline"
    assert all(level == "privileged" for ns, (level, _, _) in levels.items() if ns in ("keda",))


def test_pod_security_versioned_checks_follow_the_enforced_version():
    spec = {
        "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]},
        "containers": [{"name": "a"}],
    }
    assert violations(spec, "baseline", 32) == []  # allowed from 1.32
    assert violations(spec, "baseline", 31) == ["forbidden sysctls (net.ipv4.tcp_rmem)"]
    assert (
        violations({"containers": [{"name": "a", "securityContext": {"privileged": True}}]}, "privileged", 34)
        == []
    )


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pass_admission(stack):
    assert findings(world_of(stack), LIMITS, QUOTA, PDB, PSA, "MLS-SIM-ADM-005") == []


def test_init_containers_are_defaulted_and_pod_bounds_apply_to_the_effective_pod():
    plan = mutable_plan("prod")
    deployment = _serving_with_cpu_limits(plan, "-chat-deployment")
    loader = deployment.inputs["spec"]["template"]["spec"]["initContainers"][0]
    loader["resources"] = {}
    limit_range = resource(plan, LIMIT_RANGE, "-search-limits")
    limit_range.inputs["spec"]["limits"].append({"type": "Pod", "max": {"cpu": "2"}})
    world = world_of("prod", plan)
    chat = next(p for p in pod_templates(world) if p.item.urn == deployment.urn)
    loader_after = chat.spec["initContainers"][0]["resources"]
    assert loader_after["limits"]["cpu"] == "1" and loader_after["requests"]["memory"] == "512Mi"
    message = " ".join(f.message for f in findings(world, LIMITS) if f.urn == deployment.urn)
    assert "pod: LimitRange search/team-limits maximum cpu is 2000m" in message


KUEUE = "MLS-SIM-ADM-005"


def _with_efa_training_pool(stack: str, plan: Plan) -> World:
    world = world_of(stack, plan)
    pools = [p.model_copy(update={"efa": True}) if p.name == "training" else p for p in world.spec.gpu_pools]
    return World(plan, world.spec.model_copy(update={"gpu_pools": pools}), world.project_root)


def test_row17_an_efa_pool_behind_a_queue_that_does_not_cover_efa_is_inadmissible():
    # rt-cluster row 17: ClusterQueues cover only cpu/memory/nvidia.com/gpu, so a pod requesting
    # vpc.amazonaws.com/efa on an EFA pool is never admitted by Kueue.
    plan = mutable_plan("prod")
    found = findings(_with_efa_training_pool("prod", plan), KUEUE)
    queues = [r.urn for r in plan.resources if r.type == "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"]
    assert queues and sorted(f.urn for f in found) == sorted(queues)
    assert all("vpc.amazonaws.com/efa" in f.message and "NodePool training" in f.message for f in found)


def test_row17_fix_covering_efa_admits():
    plan = mutable_plan("prod")
    for queue in plan.resources:
        if queue.type == "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue":
            gpu_group = next(
                g for g in queue.inputs["spec"]["resourceGroups"] if "nvidia.com/gpu" in g["coveredResources"]
            )
            gpu_group["coveredResources"].append("vpc.amazonaws.com/efa")
            for flavor in gpu_group["flavors"]:
                flavor["resources"].append({"name": "vpc.amazonaws.com/efa", "nominalQuota": "32"})
    assert findings(_with_efa_training_pool("prod", plan), KUEUE) == []
    assert findings(world_of("prod"), KUEUE) == []  # no EFA pool: nothing to cover


def test_a_workload_on_a_queue_that_does_not_exist_is_flagged():
    plan = mutable_plan("dev")
    snapshots = resource(plan, "kubernetes:batch/v1:CronJob", "snapshot")
    template = snapshots.inputs["spec"]["jobTemplate"]["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("labels", {})["kueue.x-k8s.io/queue-name"] = "default"
    found = [f for f in findings(world_of("dev", plan), KUEUE) if f.urn == snapshots.urn]
    assert found and "no LocalQueue/ClusterQueue" in found[0].message
