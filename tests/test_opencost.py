"""OpenCost (components/cost_allocation.py): its node prices are prices.yaml's, it queries and is scraped by the
platform's Prometheus, and its images and pod follow the platform's rules."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cost_allocation import (
    CSV_COLUMNS,
    CSV_PATH,
    DEFAULT_CPU_HOURLY,
    DEFAULT_RAM_GIB_HOURLY,
    NODE_ID_FIELD,
    OPENCOST_EXPORTER,
    PRICING_CONFIGMAP,
    PRICING_KEY,
    gpu_hourly_rate,
    launchable_instance_types,
    node_prices,
)
from mlstack.cost import CostModelError, default_prices, estimate
from mlstack.plan.recorder import Plan
from mlstack.promql import metric_catalog, metric_names
from mlstack.simulate.metrics import scrapes
from mlstack.simulate.objects import chart_objects
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from mlstack.spec.observability import in_cluster_prometheus_url
from tests.plans import PROJECT, plan_of, plan_with_sections
from tests.simulation import findings, mutable_plan, resource, world_of

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
GITHUB_CACHE = {
    "upstream": "github",
    "credential_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/github-AbCdEf",
}


def _price_rows(plan: Plan) -> list[dict[str, str]]:
    (config_map,) = [
        r
        for r in plan.by_type(CONFIG_MAP)
        if (r.inputs.get("metadata") or {}).get("name") == PRICING_CONFIGMAP
    ]
    text = config_map.inputs["data"][PRICING_KEY]
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    # csvprovider.go decodes with the price struct's header, in this order.
    assert tuple(header) == CSV_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def _launchable_from_plan(plan: Plan) -> set[str]:
    """What the planned node groups and NodePools may launch, read from the plan (not from the spec)."""
    types: set[str] = set()
    for group in plan.by_type(NODE_GROUP):
        types.update(group.inputs.get("instanceTypes") or [])
    for pool in plan.by_type(NODE_POOL):
        requirements = (
            ((pool.inputs.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements")
        )
        for requirement in requirements or []:
            if requirement.get("key") == INSTANCE_TYPE and requirement.get("operator") == "In":
                types.update(requirement.get("values") or [])
    return types


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_type_the_pools_can_launch_has_its_prices_yaml_row(stack: str) -> None:
    _, spec = PROJECT.load(stack)
    plan = plan_of(stack)
    rows = _price_rows(plan)
    by_type = {row["InstanceID"]: row for row in rows}
    assert len(by_type) == len(rows), "one row per instance type"
    launchable = _launchable_from_plan(plan)
    assert launchable and any(t.startswith(("g", "p")) for t in launchable)
    prices = default_prices()
    for instance_type in sorted(launchable):
        row = by_type[instance_type]
        assert row["AssetClass"] == "node"
        # NodeValueFromMapField reads the label; the key is "<region label>,<value>".
        assert row["InstanceIDField"] == NODE_ID_FIELD
        assert row["Region"] == spec.region
        assert row["InstanceType"] == instance_type
        assert float(row["MarketPriceHourly"]) == prices.hourly(f"ec2:{instance_type}", spec.region)
    # Nothing priced that no node can be.
    assert set(by_type) == launchable


def _values(plan: Plan) -> dict[str, Any]:
    return resource(plan, RELEASE, "opencost").inputs["values"]


def test_opencost_queries_the_platforms_prometheus_and_runs_on_the_system_nodes() -> None:
    _, spec = PROJECT.load("dev")
    values = _values(plan_of("dev"))
    opencost = values["opencost"]
    internal = opencost["prometheus"]["internal"]
    url = in_cluster_prometheus_url(spec.metrics)
    assert url == f"http://{internal['serviceName']}.{internal['namespaceName']}.svc:{int(internal['port'])}"
    assert opencost["nodeSelector"] == {"mlstack.io/node-role": "system"}
    assert opencost["tolerations"]
    assert opencost["ui"]["enabled"] is False
    assert opencost["ui"]["ingress"]["enabled"] is False
    assert opencost["exporter"]["extraEnv"]["CSV_PATH"] == CSV_PATH
    assert opencost["exporter"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["podSecurityContext"]["runAsNonRoot"] is True


def _rendered(stack: str, kind: str, name: str) -> dict[str, Any]:
    (obj,) = [
        o.obj for o in chart_objects(world_of(stack)) if o.kind == kind and o.obj["metadata"]["name"] == name
    ]
    return obj


def test_the_rendered_pod_reads_the_price_list_with_the_csv_provider() -> None:
    deployment = _rendered("dev", "Deployment", "opencost")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "opencost"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["USE_CUSTOM_PROVIDER"] == "true" and env["USE_CSV_PROVIDER"] == "true"
    assert (
        env["PROMETHEUS_SERVER_ENDPOINT"]
        == "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
    )
    # The CSV path is inside a read-only mount of the price ConfigMap.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    directory, _, key = env["CSV_PATH"].rpartition("/")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[directory]]["configMap"]["name"] == PRICING_CONFIGMAP
    assert key == PRICING_KEY
    # The custom-pricing ConfigMap (the CPU:RAM:GPU split) is the one OpenCost watches.
    pricing = _rendered("dev", "ConfigMap", env["PRICING_CONFIGMAP_NAME"])
    assert float(pricing["data"]["GPU"]) > 0 and float(pricing["data"]["RAM"]) > 0
    # The chart's image, unchanged but for the registry.
    assert container["image"].startswith("ghcr.io/opencost/opencost:1.120.1@sha256:")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_prometheus_scrapes_opencost(stack: str) -> None:
    ours = [s for s in scrapes(world_of(stack)) if s.exporter == OPENCOST_EXPORTER]
    assert len(ours) == 1
    assert ours[0].targets, ours[0].problem
    (endpoint,) = ours[0].monitor.obj["spec"]["endpoints"]
    # The workload's namespace label must survive the scrape for per-team sums.
    assert endpoint["honorLabels"] is True


def test_with_a_github_cache_the_images_come_through_it() -> None:
    config, _ = PROJECT.load("dev")
    registry = copy.deepcopy(config.values[SPEC_KEY]["registry"])
    registry["pull_through_caches"].append(GITHUB_CACHE)
    plan = plan_with_sections("dev", registry=registry, metrics={"opencost": {"ui": True}})
    opencost = _values(plan)["opencost"]
    host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
    assert opencost["exporter"]["image"]["registry"].startswith(host)
    assert opencost["ui"]["image"]["registry"] == opencost["exporter"]["image"]["registry"]


def test_images_through_a_missing_cache_are_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(PROJECT.stack_file("dev").read_text())
    document["config"][SPEC_KEY]["metrics"]["opencost"]["images_through_cache"] = True
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert "registry.pull_through_caches" in message and "metrics.opencost.images_through_cache" in message


def test_no_opencost_without_the_metrics_stack_or_when_opted_out() -> None:
    off = plan_with_sections("dev", metrics={"opencost": {"enabled": False, "images_through_cache": False}})
    assert not [r for r in off.by_type(RELEASE) if r.name.endswith("-opencost")]
    assert [r for r in plan_of("dev").by_type(RELEASE) if r.name.endswith("-opencost")]


def test_opencost_reaches_prometheus_only_through_the_metrics_namespace_rule() -> None:
    """The metrics namespace admits its own pods; without that rule OpenCost's queries are refused
    (MLS-SIM-NET-002 on the PROMETHEUS_SERVER_ENDPOINT flow)."""
    netpol = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    assert findings(world_of("dev"), "MLS-SIM-NET-002") == []
    plan = mutable_plan("dev")
    plan.resources.remove(resource(plan, netpol, "metrics-netpol-0"))
    found = findings(world_of("dev", plan), "MLS-SIM-NET-002")
    assert any("PROMETHEUS_SERVER_ENDPOINT" in f.message and "opencost" in f.message for f in found), [
        f.message for f in found
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_spend_dashboard_reads_only_metrics_this_stack_scrapes(stack: str) -> None:
    exporters, _ = metric_catalog()
    scraped = {s.exporter for s in scrapes(world_of(stack)) if s.targets}
    produced = set().union(*(exporters.get(e, frozenset()) for e in scraped))
    board = json.loads((PROJECT.root / "components" / "data" / "dashboards" / "spend.json").read_text())
    for panel in board["panels"]:
        for target in panel["targets"]:
            assert metric_names(target["expr"]) <= produced, target["expr"]


def test_mlstack_cost_says_what_opencost_requests_on_the_system_nodes() -> None:
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec)
    (line,) = [a for a in result.assumptions if a.startswith("OpenCost:")]
    assert "requests 0.05 vCPU and 256 MiB on the system nodes" in line
    assert not [item for item in result.lines if "opencost" in item.item.lower()]


def test_a_launchable_type_without_a_price_is_an_error_naming_it() -> None:
    _, spec = PROJECT.load("dev")
    table = default_prices()
    missing = launchable_instance_types(spec)[0]
    without = dataclasses.replace(
        table, prices={k: v for k, v in table.prices.items() if k != (f"ec2:{missing}", spec.region)}
    )
    with pytest.raises(CostModelError, match=f"ec2:{missing}"):
        node_prices(spec, without)


def test_the_ui_addresses_output_names_opencosts_api_and_only_an_enabled_ui() -> None:
    addresses = plan_of("dev").outputs["ui_addresses"]
    assert addresses["opencost"] == {
        "in_cluster": "http://opencost.monitoring.svc:9003",
        "laptop": "http://localhost:9003",
        "port_forward": "kubectl -n monitoring port-forward svc/opencost 9003:9003",
    }
    assert "opencost-ui" not in addresses
    with_ui = plan_with_sections("dev", metrics={"opencost": {"ui": True, "images_through_cache": False}})
    assert with_ui.outputs["ui_addresses"]["opencost-ui"]["port_forward"].endswith("svc/opencost 9090:9090")
    # The rendered Service serves both ports under the names the chart gives them.
    (service,) = [
        o.obj
        for o in chart_objects(world_of("dev", with_ui))
        if o.kind == "Service" and o.obj["metadata"]["name"] == "opencost"
    ]
    assert {(p["name"], int(p["port"])) for p in service["spec"]["ports"]} == {
        ("http", 9003),
        ("http-ui", 9090),
    }


def _as_opencost_stores_it(monthly: str) -> float:
    """providerconfig.go ``UpdateFromMap``: the ConfigMap's CPU, RAM, GPU and storage figures are per month;
    OpenCost keeps ``fmt.Sprintf("%f", val/730)`` as the hourly rate."""
    return float(f"{float(monthly) / 730:f}")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_pricing_configmap_carries_monthly_figures_that_opencost_turns_into_the_intended_rates(
    stack: str,
) -> None:
    """OpenCost divides the ConfigMap's figures by 730: the CPU, RAM and GPU rates it then keeps are the ones the
    split is computed with, and persistent volumes (the list has no ``pv`` rows, so OpenCost prices every volume
    at the ``storage`` rate) cost gp3's price, not the chart's default ``storage: 0.25`` per GiB-month, which
    Helm's merge of the costModel map would otherwise leave in place."""
    _, spec = PROJECT.load(stack)
    deployment = _rendered(stack, "Deployment", "opencost")
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "opencost"
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    data = _rendered(stack, "ConfigMap", env["PRICING_CONFIGMAP_NAME"])["data"]
    assert _as_opencost_stores_it(data["CPU"]) == DEFAULT_CPU_HOURLY
    assert _as_opencost_stores_it(data["RAM"]) == DEFAULT_RAM_GIB_HOURLY
    assert _as_opencost_stores_it(data["GPU"]) == gpu_hourly_rate(spec)
    table = default_prices()
    gp3 = table.get("ebs.gp3", spec.region)
    assert gp3.unit == "gb_month"
    # Six decimals of an hourly rate: within half a millionth of a dollar per GiB-hour.
    assert _as_opencost_stores_it(data["storage"]) == pytest.approx(gp3.usd / 730, abs=5e-7)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_node_price_survives_the_class_matchs_six_decimals(stack: str) -> None:
    """csvprovider.go prices a node by the exact key (region, instance type) as written, else by the class match
    (region, instance type, ``node``), which it writes back with Go's ``%f``: six decimals (and older versions
    let the class match override the exact one). A price with more decimals would reach
    ``node_total_hourly_cost`` rounded on that path, no longer equal to prices.yaml's."""
    prices = default_prices()
    _, spec = PROJECT.load(stack)
    for row in _price_rows(plan_of(stack)):
        listed = prices.hourly(f"ec2:{row['InstanceType']}", spec.region)
        assert float(f"{float(row['MarketPriceHourly']):f}") == listed, row


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_opencosts_copies_of_kube_state_metrics_series_are_dropped_at_the_scrape(stack: str) -> None:
    """OpenCost serves its own kube_node_labels, kube_pod_container_resource_requests, ... by default; scraped with
    honorLabels, a second series per node would break the GPU dashboard's join on kube_node_labels and double
    the queue dashboard's GPU requests. Its ServiceMonitor drops every kube-state-metrics series the platform
    reads and keeps OpenCost's own."""
    exporters, _ = metric_catalog()
    ours = [s for s in scrapes(world_of(stack)) if s.exporter == OPENCOST_EXPORTER]
    (endpoint,) = ours[0].monitor.obj["spec"]["endpoints"]
    drops = [r for r in endpoint["metricRelabelings"] if r["action"] == "drop"]
    assert [r["sourceLabels"] for r in drops] == [["__name__"]]

    def dropped(name: str) -> bool:  # Prometheus anchors relabel regexes at both ends.
        return any(re.fullmatch(r["regex"], name) for r in drops)

    assert "kube_node_labels" in exporters["kube-state-metrics"]
    for name in exporters["kube-state-metrics"]:
        assert dropped(name), name
    for name in exporters[OPENCOST_EXPORTER]:
        assert not dropped(name), name
