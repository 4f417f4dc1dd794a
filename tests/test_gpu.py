"""GPU pool secure defaults and shape on the recorded plans of every shipped stack."""

from __future__ import annotations

import json

from components.gpu import GPU_TAINT
from mlstack.catalog import gpu_catalog
from mlstack.plan.recorder import Plan
from tests.plans import PROJECT, policy_json


def _objects(plan: Plan, kind: str) -> dict[str, dict]:
    """The GpuPools component's objects of ``kind`` (CPU pools are tests/test_compute.py's)."""
    return {
        r.inputs["metadata"]["name"]: r.inputs
        for r in plan.resources
        if r.inputs.get("kind") == kind and "$mlstack:gpu:GpuPools$" in r.urn
    }


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
        r for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "karpenter"
    ]
    assert karpenter.inputs["version"]
    for resource in stack_plan.resources:
        if resource.inputs.get("kind") in ("NodePool", "EC2NodeClass"):
            assert karpenter.urn in resource.dependencies, resource.name


def test_helm_charts_are_pinned_and_tolerate_the_gpu_taint(stack_plan: Plan) -> None:
    releases = {r.inputs["name"]: r.inputs for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release")}
    assert {"karpenter", "nvidia-device-plugin"} <= set(releases)
    gpu_charts = {
        r.inputs["name"] for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if "-gpu" in r.parent
    }
    for chart, release in releases.items():
        assert release["version"], chart
        assert release["chart"].startswith("oci://") or release["repositoryOpts"]["repo"], chart
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


def test_interruption_queue_receives_the_five_official_event_kinds(stack_plan: Plan) -> None:
    (queue,) = stack_plan.by_type("aws:sqs/queue:Queue")
    targets = stack_plan.by_type("aws:cloudwatch/eventTarget:EventTarget")
    rules = stack_plan.by_type("aws:cloudwatch/eventRule:EventRule")
    # aws/karpenter-provider-aws@v1.14.1 getting-started cloudformation.yaml: five rules into the queue.
    assert {json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules} == {
        "AWS Health Event",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Capacity Reservation Instance Interruption Warning",
    }
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    (access,) = [
        a for a in stack_plan.by_type("aws:eks/accessEntry:AccessEntry") if a.inputs["type"] == "EC2_LINUX"
    ]
    assert access.inputs["principalArn"].endswith("role/" + f"{stack_plan.stack}-karpenter-node")


def test_karpenter_chart_is_named_as_an_oci_reference(stack_plan: Plan) -> None:
    """An oci:// registry in repositoryOpts.repo makes the provider fetch index.yaml, which fails on install."""
    (karpenter,) = [
        r for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "karpenter"
    ]
    assert karpenter.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert not (karpenter.inputs.get("repositoryOpts") or {}).get("repo")


def _controller_statements(plan: Plan) -> dict[str, dict]:
    policy = next(p for p in plan.by_type("aws:iam/rolePolicy:RolePolicy") if "controller-policy" in p.name)
    return {s["Sid"]: s for s in policy_json(policy.inputs["policy"])["Statement"]}


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_controller_may_launch_from_its_own_launch_templates(stack_plan: Plan) -> None:
    """RunInstances/CreateFleet on an existing launch template are decided on its tags (aws:ResourceTag), so
    statements conditioned only on aws:RequestTag never allow it (official AllowScopedEC2LaunchTemplateAccessActions)."""
    cluster = f"{stack_plan.stack}-eks"
    allowed = [
        s
        for s in _controller_statements(stack_plan).values()
        if {"ec2:RunInstances", "ec2:CreateFleet"} <= set(_actions(s))
        and any(
            ":launch-template/*" in r
            for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        )
        and s.get("Condition", {})
        .get("StringEquals", {})
        .get(f"aws:ResourceTag/kubernetes.io/cluster/{cluster}")
        == "owned"
    ]
    assert allowed, "no statement lets the controller launch from the launch templates it tagged"
    for statement in allowed:
        assert not any(k.startswith("aws:RequestTag") for c in statement["Condition"].values() for k in c)


def test_controller_has_the_official_read_actions(stack_plan: Plan) -> None:
    actions = {a for s in _controller_statements(stack_plan).values() for a in _actions(s)}
    # instancestatus_controller.go (health checks) and instanceprofile.go ListProfiles (garbage collection).
    assert {"ec2:DescribeInstanceStatus", "iam:ListInstanceProfiles"} <= actions


def test_gpu_node_ami_is_pinned_outside_dev(stack_plan: Plan) -> None:
    """al2023@latest drifts every GPU node on each AMI release (karpenter.k8s.aws_ec2nodeclasses.yaml: "not
    recommended for production"); staging and prod run an amazon-eks-ami release that exists for 1.34."""
    _, spec = PROJECT.load(stack_plan.stack)
    aliases = {
        n["spec"]["amiSelectorTerms"][0]["alias"] for n in _objects(stack_plan, "EC2NodeClass").values()
    }
    assert aliases == {f"al2023@{spec.cluster.gpu_node_ami}"}
    if spec.tier.hardened:
        assert aliases == {"al2023@v20260714"}


def _chart_values(package: str) -> dict:
    import tarfile
    from pathlib import Path

    import yaml

    from tests.plans import ROOT

    charts = next(
        p / "shared" / "charts" for p in (ROOT, *ROOT.parents) if (p / "shared" / "charts").is_dir()
    )
    with tarfile.open(charts / package) as archive:
        member = next(m for m in archive.getmembers() if Path(m.name).parts[1:] == ("values.yaml",))
        handle = archive.extractfile(member)
        assert handle is not None
        return yaml.safe_load(handle.read())


def test_efa_plugin_values_exist_in_the_chart_and_cover_every_pool_type() -> None:
    """v0.5.6 has no affinity value (its template builds one from supportedInstanceLabels), so a passed affinity
    was silently ignored and the plugin ran on any EFA-capable type of its own list."""
    from components.gpu import EFA_LABEL, efa_plugin_values
    from mlstack.spec.gpu import GpuPoolSpec

    pool = GpuPoolSpec(
        name="train", workload_class="training", instance_types=["p5", "p4d"], max_gpus=16, efa=True
    )
    values = efa_plugin_values([pool])
    assert set(values) <= set(_chart_values("aws-efa-k8s-device-plugin-v0.5.6.tgz"))
    assert values["nodeSelector"] == {EFA_LABEL: "true"}
    assert values["supportedInstanceLabels"]["values"] == sorted(t.name for t in pool.resolved_types())
