"""GPU pool secure defaults and shape on the recorded plans of every shipped stack."""

from __future__ import annotations

from components.gpu import GPU_TAINT
from mlstack.catalog import gpu_catalog
from mlstack.plan.recorder import Plan
from tests.plans import PROJECT, policy_json


def _objects(plan: Plan, kind: str) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in plan.resources if r.inputs.get("kind") == kind}


def test_one_nodeclass_and_nodepool_per_declared_pool(stack_plan: Plan) -> None:
    pools = {p.name: p for p in PROJECT.load(stack_plan.stack)[1].gpu_pools}
    assert set(_objects(stack_plan, "NodePool")) == set(pools) == set(_objects(stack_plan, "EC2NodeClass"))


def test_every_nodepool_is_tainted_labelled_and_capped(stack_plan: Plan) -> None:
    pools = {p.name: p for p in PROJECT.load(stack_plan.stack)[1].gpu_pools}
    for name, pool in _objects(stack_plan, "NodePool").items():
        spec = pool["spec"]
        assert GPU_TAINT in spec["template"]["spec"]["taints"]
        labels = spec["template"]["metadata"]["labels"]
        assert labels["mlstack.io/pool"] == name
        assert labels["mlstack.io/workload-class"] == pools[name].workload_class
        assert int(spec["limits"]["nvidia.com/gpu"]) == pools[name].max_gpus
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
        types = next(
            r
            for r in spec["template"]["spec"]["requirements"]
            if r["key"] == "node.kubernetes.io/instance-type"
        )
        assert types["values"] and all(gpu_catalog().is_gpu_type(t) for t in types["values"])


def test_nodeclasses_are_imdsv2_encrypted_al2023(stack_plan: Plan) -> None:
    for node_class in _objects(stack_plan, "EC2NodeClass").values():
        spec = node_class["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["amiSelectorTerms"][0]["alias"].startswith("al2023@")
        assert all(m["ebs"]["encrypted"] is True for m in spec["blockDeviceMappings"])
        assert spec["tags"]["environment"] == stack_plan.stack  # cost allocation reaches GPU instances


def test_custom_resources_wait_for_the_karpenter_release(stack_plan: Plan) -> None:
    (karpenter,) = [
        r for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "karpenter"
    ]
    assert karpenter.inputs["version"]
    for resource in stack_plan.resources:
        if resource.inputs.get("kind") in ("NodePool", "EC2NodeClass"):
            assert karpenter.urn in resource.dependencies, resource.name


def test_helm_charts_are_pinned_and_tolerate_the_gpu_taint(stack_plan: Plan) -> None:
    releases = {r.inputs["chart"]: r.inputs for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release")}
    assert {"karpenter", "nvidia-device-plugin"} <= set(releases)
    gpu_charts = {
        r.inputs["chart"] for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if "-gpu" in r.parent
    }
    for chart, release in releases.items():
        assert release["version"] and release["repositoryOpts"]["repo"], chart
        if chart in gpu_charts - {"karpenter"}:
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in release[
                "values"
            ]["tolerations"]


def test_controller_policy_is_scoped_by_tags(stack_plan: Plan) -> None:
    policy = next(p for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy") if "controller" in p.name)
    statements = policy_json(policy.inputs["policy"])["Statement"]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions
        mutating = [
            a for a in actions if a.startswith(("ec2:Run", "ec2:Create", "ec2:Terminate", "ec2:Delete"))
        ]
        if mutating and statement["Sid"] != "UseSharedLaunchInputs":
            assert "Condition" in statement, statement["Sid"]
    associations = stack_plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    karpenter = [a for a in associations if a.inputs["serviceAccount"] == "karpenter"]
    assert len(karpenter) == 1


def test_interruption_queue_receives_the_four_event_kinds(stack_plan: Plan) -> None:
    (queue,) = stack_plan.by_type("aws:sqs/queue:Queue")
    targets = stack_plan.by_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(stack_plan.by_type("aws:cloudwatch/eventRule:EventRule")) == 4
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    (access,) = [
        a for a in stack_plan.by_type("aws:eks/accessEntry:AccessEntry") if a.inputs["type"] == "EC2_LINUX"
    ]
    assert access.inputs["principalArn"].endswith("role/" + f"{stack_plan.stack}-karpenter-node")
