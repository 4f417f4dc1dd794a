"""The monthly cost estimate: arithmetic on a hand-computed plan, price coverage of the shipped stacks, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlstack.catalog import gpu_catalog
from mlstack.cli import app
from mlstack.cost import (
    CostModelError,
    PriceTable,
    default_prices,
    estimate,
)
from mlstack.plan.recorder import Plan
from mlstack.spec import PlatformSpec
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from tests.estimates import PlanBuilder
from tests.plans import PROJECT, ROOT, STACKS, plan_of

SPEC: dict[str, Any] = {
    "environment": "t",
    "tier": "dev",
    "account_id": "111122223333",
    "region": "us-east-1",
    "owner": "ml-platform@example.com",
    "cost_center": "ml-1",
    "gpu_pools": [
        {"name": "gpu-a", "workload_class": "inference", "instance_types": ["g5"], "max_gpus": 8},
        {"name": "gpu-b", "workload_class": "notebook", "instance_types": ["g6"], "max_gpus": 2},
    ],
    "teams": [{"name": "search", "cost_center": "s-1", "gpu_quota": 2}],
    "inference": {
        # No github cache here: KEDA's images take the named opt-out, as the shipped stacks do.
        "keda_images_through_cache": False,
        "prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
        "endpoints": [
            {
                "name": "chat",
                "team": "search",
                "gpu_pool": "gpu-a",
                "runtime": "vllm",
                "model": "s3://t-111122223333-us-east-1-models/search/llama/1/",
                "image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/t/serving:vllm-0.11.0",
                "min_replicas": 1,
                "max_replicas": 3,
            }
        ],
    },
    "storage": {"expected_gb": {"datasets": 1000, "artifacts": 10}},
    "cost": {"spot_discount_percent": 50, "nat_processed_gb_per_month": 100},
    "budgets": {"monthly_limit_usd": 500, "notify_emails": ["a@example.com"]},
    # No docker-hub cache here: Qdrant's image takes the named opt-out, as the shipped stacks do.
    "vector_db": {"qdrant_image_through_cache": False},
    # No github cache here: OpenCost's images take the named opt-out, as the shipped stacks do.
    "metrics": {"opencost": {"images_through_cache": False}},
}


def _hand_plan() -> Plan:
    """Every priced resource family once or twice; expected costs are worked out by hand below."""
    p = PlanBuilder()
    network = p.component("mlstack:network:Network", "t-network")
    for zone in ("a", "b"):
        p.add("aws:ec2/eip:Eip", f"t-network-eip-{zone}", network)
        p.add("aws:ec2/natGateway:NatGateway", f"t-network-nat-{zone}", network)
    p.add(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "t-network-ecr-api",
        network,
        {"vpcEndpointType": "Interface", "subnetIds": ["subnet-1", "subnet-2"]},
    )
    p.add("aws:ec2/vpcEndpoint:VpcEndpoint", "t-network-s3", network, {"vpcEndpointType": "Gateway"})
    p.add("aws:cloudwatch/logGroup:LogGroup", "t-network-flow-logs", network)
    cluster = p.component("mlstack:cluster:Cluster", "t-cluster")
    p.add("aws:eks/cluster:Cluster", "t-cluster-eks", cluster)
    p.add(
        "aws:eks/nodeGroup:NodeGroup",
        "t-cluster-system",
        cluster,
        {
            "instanceTypes": ["t3.medium"],
            "scalingConfig": {"minSize": 1.0, "desiredSize": 1.0, "maxSize": 3.0},
            "diskSize": 20.0,
        },
    )
    gpu = p.component("mlstack:gpu:GpuPools", "t-gpu")
    p.add(
        "kubernetes:karpenter.sh/v1:NodePool",
        "t-gpu-gpu-a",
        gpu,
        {
            "metadata": {"name": "gpu-a"},
            "spec": {
                "limits": {"nvidia.com/gpu": "8"},
                "template": {
                    "spec": {
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["g5.xlarge", "g5.12xlarge"],
                            },
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        ]
                    }
                },
            },
        },
    )
    p.add(
        "kubernetes:karpenter.sh/v1:NodePool",
        "t-gpu-gpu-b",
        gpu,
        {
            "metadata": {"name": "gpu-b"},
            "spec": {
                "limits": {"nvidia.com/gpu": 2.0},
                "template": {
                    "spec": {
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["g6.xlarge"],
                            },
                            {
                                "key": "karpenter.sh/capacity-type",
                                "operator": "In",
                                "values": ["spot", "on-demand"],
                            },
                        ]
                    }
                },
            },
        },
    )
    keys = p.component("mlstack:keys:EncryptionKeys", "t-keys")
    for purpose in ("data", "logs", "registry"):
        p.add("aws:kms/key:Key", f"t-keys-{purpose}", keys)
        p.add("aws:kms/alias:Alias", f"t-keys-{purpose}-alias", keys)
    orchestrator = p.component("mlstack:orchestrator:Orchestrator", "t-orchestrator")
    p.add(
        "aws:rds/instance:Instance",
        "t-orchestrator-db",
        orchestrator,
        {"instanceClass": "db.t4g.micro", "multiAz": False, "allocatedStorage": 20.0},
    )
    vectordb = p.component("mlstack:vectordb:VectorDb", "t-vectordb")
    aurora = p.add(
        "aws:rds/cluster:Cluster",
        "t-vectordb-aurora",
        vectordb,
        {"serverlessv2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 4.0}},
    )
    p.add(
        "aws:rds/clusterInstance:ClusterInstance",
        "t-vectordb-aurora-1",
        vectordb,
        {"instanceClass": "db.serverless"},
        data={"clusterIdentifier": [aurora]},
    )
    inference = p.component("mlstack:inference:Inference", "t-inference")
    p.add(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "t-inference-chat",
        inference,
        {"productionVariants": [{"instanceType": "ml.g5.xlarge", "initialInstanceCount": 1.0}]},
    )
    storage = p.component("mlstack:storage:ObjectStore", "t-storage")
    p.add("aws:s3/bucket:Bucket", "t-storage-datasets", storage)
    p.add("aws:s3/bucket:Bucket", "t-storage-models", storage)
    return p.plan()


# (component, item) -> (idle, peak), worked out from prices.yaml (us-east-1, 730 hours a month).
EXPECTED = {
    ("t-network", "public IPv4 address"): (2 * 0.005 * 730, 2 * 0.005 * 730),  # 7.30
    ("t-network", "NAT gateway"): (2 * 0.045 * 730, 2 * 0.045 * 730),  # 65.70
    ("t-network", "NAT data processing"): (100 * 0.045, 100 * 0.045),  # 4.50
    ("t-network", "interface endpoints"): (2 * 0.01 * 730, 2 * 0.01 * 730),  # 14.60, gateway endpoint free
    ("t-cluster", "EKS control plane"): (73.0, 73.0),
    ("t-cluster", "node group t-cluster-system"): (1 * 0.0416 * 730, 3 * 0.0416 * 730),  # 30.368 / 91.104
    ("t-cluster", "node group t-cluster-system volumes"): (1 * 20 * 0.08, 3 * 20 * 0.08),  # 1.60 / 4.80
    # idle: one g5.xlarge for chat's min_replicas; peak: 8 GPUs at g5.12xlarge's 5.672/4 = 1.418 per GPU-hour.
    ("t-gpu", "GPU pool gpu-a (on-demand)"): (1.006 * 730, 8 * (5.672 / 4) * 730),  # 734.38 / 8281.12
    # spot-preferred priced as Spot at the stack's 50% discount; no endpoint, so zero idle.
    ("t-gpu", "GPU pool gpu-b (spot-preferred)"): (0.0, 2 * 0.8048 * 0.5 * 730),  # 587.504
    ("t-keys", "KMS key"): (3.0, 3.0),
    ("t-orchestrator", "RDS t-orchestrator-db"): (0.016 * 730, 0.016 * 730),  # 11.68
    ("t-orchestrator", "RDS t-orchestrator-db storage"): (20 * 0.115, 20 * 0.115),  # 2.30
    ("t-vectordb", "Aurora t-vectordb-aurora"): (0.5 * 0.12 * 730, 4 * 0.12 * 730),  # 43.80 / 350.40
    ("t-inference", "SageMaker t-inference-chat"): (1 * 1.408 * 730, 3 * 1.408 * 730),  # 1027.84 / 3083.52
    ("t-storage", "S3 datasets"): (1000 * 0.023, 1000 * 0.023),  # 23.00
    ("t-storage", "S3 models"): (0.0, 0.0),  # no declared volume: 0
}


@pytest.fixture(scope="module")
def hand_estimate():
    return estimate(_hand_plan(), PlatformSpec.model_validate(SPEC))


def test_hand_computed_plan_line_by_line(hand_estimate) -> None:
    got = {(line.component, line.item): (line.idle, line.peak) for line in hand_estimate.lines}
    assert set(got) == set(EXPECTED)
    for key, (idle, peak) in EXPECTED.items():
        assert got[key] == pytest.approx((idle, peak)), key


def test_hand_computed_totals(hand_estimate) -> None:
    assert hand_estimate.idle == pytest.approx(sum(idle for idle, _ in EXPECTED.values()))
    assert hand_estimate.peak == pytest.approx(sum(peak for _, peak in EXPECTED.values()))
    assert hand_estimate.idle == pytest.approx(2043.068)
    assert hand_estimate.by_component()["t-cluster"] == pytest.approx((73 + 30.368 + 1.6, 73 + 91.104 + 4.8))


def test_gpu_hour_per_pool(hand_estimate) -> None:
    by_pool = {gpu.pool: gpu for gpu in hand_estimate.gpu_hours}
    assert (by_pool["gpu-a"].cheapest_type, by_pool["gpu-a"].dearest_type) == ("g5.xlarge", "g5.12xlarge")
    assert (by_pool["gpu-a"].cheapest, by_pool["gpu-a"].dearest) == pytest.approx((1.006, 1.418))
    assert by_pool["gpu-b"].cheapest == pytest.approx(0.4024)


def test_every_assumption_is_stated(hand_estimate) -> None:
    text = "\n".join(hand_estimate.assumptions)
    assert "50% discount" in text and "cost.spot_discount_percent" in text
    assert "100 GB" in text and "cost.nat_processed_gb_per_month" in text
    assert "no artifacts bucket in the plan, so its 10 GB are not priced" in text
    assert "1 x aws:cloudwatch/logGroup:LogGroup" in text
    assert hand_estimate.not_priced == {"aws:cloudwatch/logGroup:LogGroup": 1}


def _node_group_plan(capacity: str, types: list[str]) -> Plan:
    p = PlanBuilder()
    cluster = p.component("mlstack:cluster:Cluster", "t-cluster")
    p.add(
        "aws:eks/nodeGroup:NodeGroup",
        "t-cluster-system",
        cluster,
        {
            "capacityType": capacity,
            "instanceTypes": types,
            "scalingConfig": {"minSize": 1.0, "desiredSize": 1.0, "maxSize": 2.0},
        },
    )
    return p.plan()


def test_spot_node_group_is_priced_at_the_discount_on_its_dearest_type() -> None:
    result = estimate(
        _node_group_plan("SPOT", ["t3a.medium", "t3.medium"]), PlatformSpec.model_validate(SPEC)
    )
    nodes, volumes = result.lines
    # t3.medium (0.0416/h) is dearer than t3a.medium (0.0376/h); SPEC's Spot discount is 50%.
    assert (nodes.idle, nodes.peak) == pytest.approx((0.0416 * 0.5 * 730, 2 * 0.0416 * 0.5 * 730))  # 15.184
    assert nodes.basis == "1..2 x t3.medium Spot (50% off)"
    # No diskSize recorded: the spec's root volume (default 50 GiB) at gp3's 0.08 per GB-month.
    assert (volumes.idle, volumes.peak) == pytest.approx((50 * 0.08, 2 * 50 * 0.08))
    assert any("Spot node groups run the dearest" in a for a in result.assumptions)


def test_on_demand_node_group_is_priced_at_its_first_type() -> None:
    result = estimate(
        _node_group_plan("ON_DEMAND", ["t3a.medium", "t3.medium"]), PlatformSpec.model_validate(SPEC)
    )
    nodes = result.lines[0]
    assert (nodes.idle, nodes.peak) == pytest.approx((0.0376 * 730, 2 * 0.0376 * 730))  # 27.448
    assert nodes.basis == "1..2 x t3a.medium On-Demand"
    assert not any("Spot node groups" in a for a in result.assumptions)


@pytest.mark.parametrize(
    ("capacity", "types"), [("ON_DEMAND", ["x9.huge"]), ("SPOT", ["t3.medium", "x9.huge"])]
)
def test_missing_price_is_an_error_naming_the_type(capacity: str, types: list[str]) -> None:
    with pytest.raises(CostModelError, match=r"'ec2:x9\.huge' in us-east-1"):
        estimate(_node_group_plan(capacity, types), PlatformSpec.model_validate(SPEC))


def test_dev_idles_at_three_spot_system_nodes() -> None:
    """Dev's floor: EKS, one NAT gateway, the metadata database and the three Spot system nodes that hold its
    platform pods (docs/cost.md, "System node capacity"), plus pod and node logs ($5.14 for 10 GB kept 14 days),
    the alert topic's key ($1), the access host ($3.71), the deploy runner's assumed build minutes ($3.00),
    JupyterHub's 1 GiB database volume ($0.08), and the Spot CPU node the deploy simulation keeps up for the teams' event buses and webhooks ($33.43): $224.33."""
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec)
    assert result.idle == pytest.approx(224.33, abs=0.01)
    (nodes,) = [line for line in result.lines if line.item == "node group dev-cluster-system"]
    assert "Spot" in nodes.basis


# m7i.large On-Demand $0.1008/h (prices.yaml) x 730 h, plus the EC2NodeClass's 50 GiB gp3 root volume at $0.08.
M7I_LARGE_MONTH = 0.1008 * 730
CPU_ROOT_VOLUME = 50 * 0.08


def test_dev_prices_the_cpu_node_the_simulation_keeps_up_at_idle() -> None:
    """Dev's team EventBus and webhook pods live in team namespaces, which the tainted system nodes refuse: the
    capacity simulation launches one m7i.large in the Spot-only 'cpu' pool for them, and the estimate prices
    exactly that node, at the Spot discount, on its own line (docs/cost.md, "CPU pools at idle")."""
    from mlstack.simulate import capacity
    from tests.simulation import world_of

    _, spec = PROJECT.load("dev")
    world = world_of("dev")
    simulated = [n for n in capacity.idle(world).nodes if n.source.karpenter]
    assert [(n.source.label, n.type.name) for n in simulated] == [("NodePool cpu", "m7i.large")]
    held = {(pod.namespace, pod.kind) for pod, _ in simulated[0].pods if pod.kind != "DaemonSet"}
    assert held == {(team, kind) for team in ("search", "recsys") for kind in ("StatefulSet", "Deployment")}

    result = estimate(world.plan, spec, world=world)
    (line,) = [line for line in result.lines if line.item == "CPU pool cpu idle nodes"]
    spot = 1 - spec.cost.spot_discount_percent / 100
    assert line.idle == pytest.approx(M7I_LARGE_MONTH * spot + CPU_ROOT_VOLUME)  # 29.43 + 4.00
    assert line.peak == 0.0  # inside the pool's vCPU limit, priced on the pool's own line
    assert line.component == "dev-compute" and "1 x m7i.large Spot (60% off)" in line.basis
    (pool,) = [line for line in result.lines if line.item == "CPU pool cpu (spot)"]
    assert pool.idle == 0.0 and "idle nodes line" in pool.basis
    assert not [line for line in result.lines if line.item == "CPU pool cpu-arm idle nodes"]


def test_an_on_demand_cpu_pool_prices_its_idle_node_on_demand() -> None:
    from tests.plans import plan_with_sections

    _, spec = PROJECT.load("dev")
    pools = [{**pool.model_dump(), "capacity_type": "on-demand"} for pool in spec.cpu_pools]
    plan = plan_with_sections("dev", cpu_pools=pools)
    on_demand = spec.model_copy(
        update={"cpu_pools": [p.model_copy(update={"capacity_type": "on-demand"}) for p in spec.cpu_pools]}
    )
    (line,) = [line for line in estimate(plan, on_demand).lines if line.item == "CPU pool cpu idle nodes"]
    assert line.idle == pytest.approx(M7I_LARGE_MONTH + CPU_ROOT_VOLUME)
    assert "On-Demand" in line.basis


def test_without_team_pods_off_the_system_nodes_cpu_pools_cost_nothing_idle() -> None:
    """Argo Events off: nothing of dev needs a CPU node at idle, so no idle-nodes line and no team share."""
    from tests.plans import plan_with_sections

    config, spec = PROJECT.load("dev")
    orchestrator = config.values[SPEC_KEY]["orchestrator"]
    quiet = {**orchestrator, "argo_events": {"enabled": False}}
    plan = plan_with_sections("dev", orchestrator=quiet)
    off = spec.model_copy(
        update={
            "orchestrator": spec.orchestrator.model_copy(
                update={"argo_events": spec.orchestrator.argo_events.model_copy(update={"enabled": False})}
            )
        }
    )
    result = estimate(plan, off)
    assert not [line for line in result.lines if line.item.endswith("idle nodes")]
    assert all(not any("idle node" in b for b in team.basis) for team in result.teams)
    assert result.idle == pytest.approx(224.33 - M7I_LARGE_MONTH * 0.4 - CPU_ROOT_VOLUME, abs=0.01)


def test_teams_share_the_idle_cpu_node_by_their_pods_requests() -> None:
    """search and recsys run the same bus and webhook on dev's one idle CPU node: half of it each, at idle and at
    peak (the pods run whatever the load); the platform's pods there (none in dev) would stay shared."""
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec)
    node = M7I_LARGE_MONTH * 0.4 + CPU_ROOT_VOLUME
    teams = {team.team: team for team in result.teams}
    for name in ("search", "recsys"):
        assert teams[name].idle == pytest.approx(node / 2), name
        assert "50% of a cpu idle node (m7i.large)" in teams[name].basis
    dearest = {gpu.pool: gpu.dearest for gpu in result.gpu_hours}
    sizes = {pool.name: pool.max_gpus for pool in spec.gpu_pools}
    for team in spec.teams:
        quotas = {pool: gpus for pool, gpus in team.pool_quotas(sizes).items() if gpus}
        gpus = sum(n * dearest[pool] * 730 for pool, n in quotas.items())
        gpus += team.gpu_borrowing_limit * max(dearest[pool] for pool in quotas) * 730
        assert teams[team.name].peak == pytest.approx(gpus + node / 2), team.name


def test_a_world_of_another_plan_is_refused() -> None:
    from tests.simulation import world_of

    _, spec = PROJECT.load("dev")
    with pytest.raises(ValueError, match="another plan"):
        estimate(_hand_plan(), spec, world=world_of("dev"))


@pytest.mark.xfail(
    strict=True,
    reason="dev idles at $224.33, over its $150 target: three Spot system nodes are the least that hold dev's "
    "platform pods, and the teams' Argo Events bus and webhook keep one Spot m7i.large up in the CPU pool "
    "(docs/cost.md, Dev's idle cost); reaching $150 needs a cut outside the cluster (network or database) and "
    "Argo Events off or its team pods elsewhere, a decision for the platform lead",
)
def test_dev_idles_within_its_target() -> None:
    _, spec = PROJECT.load("dev")
    assert estimate(plan_of("dev"), spec).idle <= 150.0


def test_a_region_without_prices_is_an_error_not_zero() -> None:
    p = PlanBuilder()
    p.add("aws:eks/cluster:Cluster", "t-eks", p.component("mlstack:cluster:Cluster", "t-cluster"))
    # Endpoints name their region's bucket and registry; without them the spec is valid in any region.
    spec = PlatformSpec.model_validate({**SPEC, "region": "eu-west-1", "inference": {"endpoints": []}})
    with pytest.raises(CostModelError, match=r"'eks\.cluster' in eu-west-1"):
        estimate(p.plan(), spec)


def test_price_entries_state_region_source_and_date() -> None:
    table = default_prices()
    for (item, region), price in table.prices.items():
        assert price.region == region and price.source and price.date[:2] == "20", item
        assert price.unit in {"hour", "month", "gb", "gb_month", "minute"}, item
        assert price.usd > 0, item


def test_duplicate_price_entry_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "mlstack" / "data" / "prices.yaml").read_text())
    document["entries"].append(document["entries"][0])
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(CostModelError, match="listed twice"):
        PriceTable.load(path)


# --- the shipped stacks --------------------------------------------------------------------------------------


def test_every_gpu_instance_type_has_a_price_in_every_stack_region() -> None:
    table = default_prices()
    regions = {PROJECT.load(stack)[1].region for stack in STACKS}
    missing = [
        f"ec2:{name} in {region}"
        for region in sorted(regions)
        for name in gpu_catalog().types
        if ("ec2:" + name, region) not in table.prices
    ]
    assert not missing


def test_every_instance_type_the_stacks_use_has_a_price() -> None:
    table = default_prices()
    for stack in STACKS:
        _, spec = PROJECT.load(stack)
        for name in spec.cluster.system_nodes.instance_types:
            assert (f"ec2:{name}", spec.region) in table.prices, (stack, name)
        for pool in spec.gpu_pools:
            for selector in pool.instance_types:
                for instance in gpu_catalog().expand(selector):
                    assert (f"ec2:{instance.name}", spec.region) in table.prices, (stack, instance.name)


def test_shipped_stacks_are_priced_from_their_plans(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    result = estimate(stack_plan, spec)
    assert result.peak >= result.idle > 0
    nat = [line for line in result.lines if line.item == "NAT gateway"]
    gateways = len(stack_plan.by_type("aws:ec2/natGateway:NatGateway"))
    assert sum(line.idle for line in nat) == pytest.approx(gateways * 0.045 * 730)
    keys = len(stack_plan.by_type("aws:kms/key:Key"))
    assert sum(line.idle for line in result.lines if line.item == "KMS key") == pytest.approx(keys * 1.0)
    assert result.stack == stack_plan.stack


def test_spot_discount_comes_from_the_stack_file(tmp_path: Path) -> None:
    document = yaml.safe_load(PROJECT.stack_file("dev").read_text())
    document["config"][SPEC_KEY]["cost"] = {"spot_discount_percent": 95}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert "cost.spot_discount_percent" in str(error.value)


def test_cost_command_single_and_all() -> None:
    runner = CliRunner()
    single = runner.invoke(app, ["cost", "dev", "--project-dir", str(ROOT)])
    assert single.exit_code == 0, single.output
    assert "Assumptions:" in single.output and "total" in single.output
    compared = runner.invoke(app, ["cost", "--all", "--json", "--project-dir", str(ROOT)])
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.output)
    assert [row["stack"] for row in rows] == STACKS
    for row in rows:
        _, spec = PROJECT.load(row["stack"])
        assert row["idle"] == pytest.approx(round(estimate(plan_of(row["stack"]), spec).idle, 2))


def test_cost_command_reports_a_missing_price(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text((ROOT / name).read_text())
    document = copy.deepcopy(yaml.safe_load(PROJECT.stack_file("dev").read_text()))
    document["config"]["aws:region"] = "ap-south-2"
    document["config"][SPEC_KEY]["region"] = "ap-south-2"
    document["config"][SPEC_KEY]["inference"] = {"endpoints": []}
    stacks = project / PROJECT.stacks_dir.relative_to(ROOT)
    stacks.mkdir(parents=True, exist_ok=True)
    (stacks / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(app, ["cost", "dev", "--project-dir", str(project)])
    assert result.exit_code == 2
    assert "no price for" in result.output and "ap-south-2" in result.output


def test_pod_logs_priced_from_the_stated_volume_and_retention() -> None:
    """10 GB a month at $0.50/GB ingested; kept 14 days in dev, i.e. 10 x 14 x 24 / 730 GB stored at $0.03."""
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec)
    lines = {line.item: line for line in result.lines if line.component == "dev-logs"}
    assert lines["log ingestion"].idle == pytest.approx(10 * 0.50)
    assert lines["log storage"].idle == pytest.approx(10 * 14 * 24 / 730 * 0.03)
    # The stack's own log groups are priced, so the usage-based note no longer counts them.
    # VPC flow logs, control plane, deploy runner (its build logs scale with the build minutes).
    assert result.not_priced.get("aws:cloudwatch/logGroup:LogGroup", 0) == 3


def test_pod_logs_follow_the_stated_volume() -> None:
    _, spec = PROJECT.load("dev")
    louder = spec.model_copy(
        update={"cost": spec.cost.model_copy(update={"logs_ingested_gb_per_month": 100.0})}
    )
    lines = {
        line.item: line for line in estimate(plan_of("dev"), louder).lines if line.component == "dev-logs"
    }
    assert lines["log ingestion"].peak == pytest.approx(50.0)


# --- per team (docs/cost.md, "Per team") ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod_estimate():
    _, spec = PROJECT.load("prod")
    return spec, estimate(plan_of("prod"), spec)


def test_team_idle_is_its_warm_endpoints(prod_estimate) -> None:
    _, result = prod_estimate
    teams = {team.team: team for team in result.teams}
    prices = default_prices()
    # recsys: ranker keeps 1 warm replica on the serving pool's cheapest one-GPU type, On-Demand.
    assert teams["recsys"].idle == pytest.approx(prices.monthly("ec2:g6.xlarge", "us-east-1"))
    # research: its SageMaker endpoint at its minimum, the same figure as the environment's line.
    (embedder,) = [
        line for line in result.lines if line.item.startswith("SageMaker") and "embedder" in line.item
    ]
    assert teams["research"].idle == pytest.approx(embedder.idle)


def test_team_peak_is_its_whole_quota_at_the_dearest_gpu_hour(prod_estimate) -> None:
    spec, result = prod_estimate
    dearest = {gpu.pool: gpu.dearest for gpu in result.gpu_hours}
    sizes = {pool.name: pool.max_gpus for pool in spec.gpu_pools}
    for team in spec.teams:
        quotas = {pool: gpus for pool, gpus in team.pool_quotas(sizes).items() if gpus}
        expected = sum(gpus * dearest[pool] * 730 for pool, gpus in quotas.items())
        expected += team.gpu_borrowing_limit * max(dearest[pool] for pool in quotas) * 730
        sagemaker = [e for e in spec.inference.endpoints if e.team == team.name and e.backend == "sagemaker"]
        for endpoint in sagemaker:
            (line,) = [
                line
                for line in result.lines
                if line.item.startswith("SageMaker") and endpoint.name in line.item
            ]
            expected += line.peak
        (got,) = [t for t in result.teams if t.team == team.name]
        assert got.peak == pytest.approx(expected), team.name
        assert got.budget == spec.budgets.team_limits_usd.get(team.name)


def test_cost_by_team_prints_each_team_against_its_budget() -> None:
    result = CliRunner().invoke(
        app, ["cost", "prod", "--by-team", "--project-dir", str(ROOT)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    for team, center in (("search", "search-2001"), ("recsys", "recsys-2002"), ("research", "research-2003")):
        assert team in result.output and center in result.output
    assert "$15,000" in result.output and "shared by every team" in result.output


def test_cost_json_carries_the_teams() -> None:
    result = CliRunner().invoke(app, ["cost", "prod", "--json", "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    (document,) = json.loads(result.output)
    assert {team["team"] for team in document["teams"]} == {"search", "recsys", "research"}


def test_cost_by_team_refuses_all_with_one_error_line() -> None:
    from tests.cli import assert_clean_failure

    result = CliRunner().invoke(app, ["cost", "--all", "--by-team", "--project-dir", str(ROOT)])
    assert_clean_failure(result, 2, "--by-team shows one environment")


def _event_source(plan: Plan, team: str) -> Any:
    (source,) = [
        r
        for r in plan.by_type("kubernetes:argoproj.io/v1alpha1:EventSource")
        if r.inputs["metadata"]["namespace"] == team
    ]
    return source


def test_scheduling_preferences_on_an_idle_cpu_node_are_stated() -> None:
    """The simulation ignores preferred affinities and ScheduleAnyway spreads, which Karpenter's default
    preferencePolicy Respect honours: a pod on a priced idle node that carries one is named."""
    from tests.simulation import mutable_plan, world_of

    _, spec = PROJECT.load("dev")
    plan = mutable_plan("dev")
    template = _event_source(plan, "search").inputs["spec"].setdefault("template", {})
    template["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100.0,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"eventsource-name": "metaflow-webhook"}},
                    },
                }
            ]
        }
    }
    result = estimate(plan, spec, world=world_of("dev", plan))
    (note,) = [a for a in result.assumptions if "scheduling preferences" in a]
    assert "search/metaflow-webhook-eventsource" in note and "recsys" not in note
    assert not [a for a in estimate(plan_of("dev"), spec).assumptions if "scheduling preferences" in a]


def test_pods_pending_at_idle_are_stated_not_priced() -> None:
    from tests.simulation import mutable_plan, world_of

    _, spec = PROJECT.load("dev")
    plan = mutable_plan("dev")
    template = _event_source(plan, "search").inputs["spec"].setdefault("template", {})
    # A pool no NodePool or node group has: the webhook can never be placed.
    template["nodeSelector"] = {"mlstack.io/pool": "nowhere"}
    result = estimate(plan, spec, world=world_of("dev", plan))
    (note,) = [a for a in result.assumptions if "Pending at idle" in a]
    assert "1 pods Pending" in note and "mlstack check dev" in note
    (line,) = [line for line in result.lines if line.item == "CPU pool cpu idle nodes"]
    assert line.idle == pytest.approx(M7I_LARGE_MONTH * 0.4 + CPU_ROOT_VOLUME)  # the other pods' one node


def test_releases_the_simulation_cannot_render_are_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Helm (or a chart), the simulation places no chart pods: the estimate says its idle CPU nodes may
    then be too few instead of pricing a short count silently."""
    from mlstack.simulate import helm
    from tests.simulation import world_of

    def unrendered(self: Any, release: Any) -> Any:
        return helm.RenderResult(release, (), "helm not found on PATH\nrun make install")

    monkeypatch.setattr(helm.Renderer, "render", unrendered)
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec, world=world_of("dev"))
    (note,) = [a for a in result.assumptions if "could not render" in a]
    releases = len(plan_of("dev").by_type("kubernetes:helm.sh/v3:Release"))
    assert f"could not render {releases} Helm releases" in note and "helm not found on PATH)" in note
    monkeypatch.undo()
    assert not [a for a in estimate(plan_of("dev"), spec).assumptions if "could not render" in a]
