"""The metrics stack: spec tier defaults, chart values, the monitors, the operator-made Prometheus pods the
simulation adds, the cost of its volumes, and MLS-SIM-MON-001 (each KEDA Prometheus trigger's metrics are
scraped and reachable), with each defect put back into a copy of a shipped plan."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.observability import monitor_manifest, scrape_targets
from mlstack.cost import estimate
from mlstack.promql import BadQuery, metric_catalog, metric_names
from mlstack.simulate.metrics import scrapes
from mlstack.simulate.objects import chart_objects
from mlstack.spec.observability import in_cluster_prometheus_url
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, mutable_plan, resource, world_of

MON = "MLS-SIM-MON-001"
RELEASE = "kubernetes:helm.sh/v3:Release"
SCALER = "kubernetes:keda.sh/v1alpha1:ScaledObject"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _release(stack: str) -> Any:
    return resource(plan_of(stack), RELEASE, "kube-prometheus-stack")


# --- spec ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "storage", "retention", "replicas"),
    [("dev", "ephemeral", 2, 1), ("staging", "persistent", 15, 1), ("prod", "persistent", 30, 2)],
)
def test_tier_defaults(stack: str, storage: str, retention: int, replicas: int) -> None:
    _, spec = PROJECT.load(stack)
    assert spec.metrics.enabled
    assert (spec.metrics.storage, spec.metrics.retention_days, spec.metrics.prometheus_replicas) == (
        storage,
        retention,
        replicas,
    )
    assert in_cluster_prometheus_url(spec.metrics) == (
        "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    )


# --- chart values -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_chart_image_comes_through_a_cache(stack: str) -> None:
    """Every container the chart renders (and the Prometheus pods the operator makes) pulls from the account's
    ECR: the operator, config reloader, Prometheus, kube-state-metrics, node exporter and Grafana's sidecars; Grafana
    itself only where its named opt-out (metrics.grafana.image_through_cache) is not set, which every shipped stack
    sets until a docker-hub cache exists."""
    _, spec = PROJECT.load(stack)
    host = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com/"
    images = [
        container["image"]
        for item in chart_objects(world_of(stack))
        if item.release == "kube-prometheus-stack" and item.kind in ("Deployment", "DaemonSet", "StatefulSet")
        for container in [
            *item.obj["spec"]["template"]["spec"].get("initContainers", []),
            *item.obj["spec"]["template"]["spec"]["containers"],
        ]
    ]
    assert len(images) >= 6, images
    assert not spec.metrics.grafana.image_through_cache
    assert [i for i in images if not i.startswith(host)] == ["docker.io/grafana/grafana:13.2.0"], images


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_container_has_requests_and_a_memory_limit(stack: str) -> None:
    for item in chart_objects(world_of(stack)):
        if item.release != "kube-prometheus-stack" or item.kind not in ("Deployment", "DaemonSet", "StatefulSet"):
            continue
        for container in item.obj["spec"]["template"]["spec"]["containers"]:
            resources = container.get("resources") or {}
            assert {"cpu", "memory"} <= set(resources.get("requests") or {}), (item.label, container["name"])
            assert "memory" in (resources.get("limits") or {}), (item.label, container["name"])


def test_dev_keeps_metrics_on_a_bounded_empty_dir() -> None:
    values = _release("dev").inputs["values"]["prometheus"]["prometheusSpec"]
    assert values["storageSpec"] == {"emptyDir": {"sizeLimit": "5Gi"}}
    assert values["retention"] == "2d"
    assert "persistentVolumeClaimRetentionPolicy" not in values


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_hardened_tiers_keep_metrics_on_retained_encrypted_volumes(stack: str) -> None:
    release = _release(stack)
    values = release.inputs["values"]["prometheus"]["prometheusSpec"]
    claim = values["storageSpec"]["volumeClaimTemplate"]["spec"]
    # The cluster's encrypted gp3 class (components/cluster.py STORAGE_CLASS_NAME), an Output at plan time.
    assert claim["storageClassName"] is not None
    assert values["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    # Size-based retention below the volume, so Prometheus deletes old blocks before the disk fills.
    size_gib = int(claim["resources"]["requests"]["storage"].removesuffix("Gi"))
    assert int(values["retentionSize"].removesuffix("MiB")) < size_gib * 1024
    assert release.protect is True


def test_the_cluster_storage_class_is_encrypted_and_retains_volumes_in_hardened_tiers() -> None:
    storage_class = resource(plan_of("prod"), "kubernetes:storage.k8s.io/v1:StorageClass", "gp3")
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    assert storage_class.inputs["reclaimPolicy"] == "Retain"


def test_the_webhook_and_grafanas_test_pod_are_off_so_no_job_or_hook_pulls_from_outside() -> None:
    values = _release("dev").inputs["values"]
    assert values["prometheusOperator"]["admissionWebhooks"] == {"enabled": False}
    assert values["grafana"]["testFramework"] == {"enabled": False}
    kinds = {(i.kind, i.name) for i in chart_objects(world_of("dev")) if i.release == "kube-prometheus-stack"}
    assert not any(kind == "Job" for kind, _ in kinds), kinds


def test_the_operator_made_prometheus_is_counted_with_its_reloader() -> None:
    """The simulation sees the StatefulSet the operator creates (pods on the system nodes: capacity)."""
    made = [
        i
        for i in chart_objects(world_of("prod"))
        if i.kind == "StatefulSet" and i.name == "prometheus-kube-prometheus-stack-prometheus"
    ]
    assert len(made) == 1
    spec = made[0].obj["spec"]
    assert spec["replicas"] == 2
    containers = {c["name"]: c for c in spec["template"]["spec"]["containers"]}
    assert containers["prometheus"]["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert containers["config-reloader"]["resources"]["requests"] == {"cpu": "10m", "memory": "32Mi"}
    assert spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "100Gi"


# --- monitors -----------------------------------------------------------------------------------------------


def test_monitors_follow_the_spec() -> None:
    _, spec = PROJECT.load("staging")
    names = {t.name for t in scrape_targets(spec)}
    assert {"karpenter", "kueue", "dcgm-exporter", "keda-operator"} <= names
    assert {f"endpoint-{e.team}-{e.name}" for e in spec.inference.endpoints if e.backend == "kubernetes"} <= names
    dev = copy.deepcopy(PROJECT.load("dev")[1])
    no_dcgm = dev.model_copy(
        update={"gpu_pools": [p.model_copy(update={"dcgm_exporter": False}) for p in dev.gpu_pools]}
    )
    assert "dcgm-exporter" not in {t.name for t in scrape_targets(no_dcgm)}


def test_kueue_monitor_authenticates_like_the_charts_own() -> None:
    _, spec = PROJECT.load("dev")
    kueue = next(t for t in scrape_targets(spec) if t.name == "kueue")
    endpoint = monitor_manifest(kueue, "monitoring")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_monitor_mlstack_creates_selects_a_target(stack: str) -> None:
    ours = [s for s in scrapes(world_of(stack)) if "mlstack.io/exporter" in (s.monitor.obj["metadata"].get("labels") or {})]
    assert ours
    assert all(s.targets for s in ours), [(s.monitor.name, s.problem) for s in ours if not s.targets]
    exporters, _ = metric_catalog()
    assert all(s.exporter in exporters for s in ours)


# --- PromQL ---------------------------------------------------------------------------------------------------


def test_metric_names_come_from_the_parse_tree() -> None:
    query = 'sum(rate(vllm:request_success_total{namespace="a"}[1m])) / sum(vllm:num_requests_running) > bool 0'
    assert metric_names(query) == {"vllm:request_success_total", "vllm:num_requests_running"}
    assert metric_names('{__name__="up", job="x"}') == {"up"}
    with pytest.raises(BadQuery):
        metric_names("sum(vllm:num_requests_running{namespace=})")


# --- MLS-SIM-MON-001 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_shipped_triggers_query_scraped_metrics(stack: str) -> None:
    assert [s for s in plan_of(stack).by_type(SCALER)]
    assert findings(world_of(stack), MON) == []


def test_an_unscraped_endpoint_is_a_finding_on_its_scaler() -> None:
    plan = mutable_plan("prod")
    plan.resources.remove(resource(plan, POD_MONITOR, "endpoint-search-chat"))
    scaler = resource(plan, SCALER, "chat")
    found = findings(world_of("prod", plan), MON)
    assert found and all(f.urn == scaler.urn for f in found)
    assert "no monitor scrapes its exporter (vllm)" in found[0].message


def test_a_metric_no_exporter_produces_is_a_finding() -> None:
    plan = mutable_plan("prod")
    scaler = resource(plan, SCALER, "chat")
    scaler.inputs["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm:requests_in_flight)"
    found = findings(world_of("prod", plan), MON)
    assert [f.message for f in found] == [
        "ScaledObject search/chat queries vllm:requests_in_flight, but no exporter in mlstack/data/metrics.yaml "
        "produces it"
    ]


def test_a_query_that_does_not_parse_is_a_finding() -> None:
    plan = mutable_plan("prod")
    scaler = resource(plan, SCALER, "chat")
    scaler.inputs["spec"]["triggers"][0]["metadata"]["query"] = "sum(vllm:num_requests_running{"
    found = findings(world_of("prod", plan), MON)
    assert len(found) == 1 and "does not parse" in found[0].message


def test_a_scrape_the_endpoint_policy_refuses_is_a_finding_on_that_policy() -> None:
    """The endpoint's NetworkPolicy admits only its own namespace: Prometheus (in monitoring) cannot scrape."""
    plan = mutable_plan("prod")
    policy = resource(plan, NETPOL, "inference-chat-netpol")
    policy.inputs["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]
    found = findings(world_of("prod", plan), MON)
    assert found and all(f.urn == policy.urn for f in found)
    assert "refuse the scrape of Deployment search/chat port 8000/TCP" in found[0].message


def test_a_prometheus_outside_the_plan_cannot_be_evaluated() -> None:
    plan = mutable_plan("prod")
    scaler = resource(plan, SCALER, "chat")
    scaler.inputs["spec"]["triggers"][0]["metadata"]["serverAddress"] = "http://prometheus.example.com:9090"
    found = findings(world_of("prod", plan), MON)
    assert len(found) == 1 and found[0].message.startswith("cannot evaluate ScaledObject search/chat")


# --- cost ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "monthly"), [("dev", None), ("staging", 50 * 0.08), ("prod", 2 * 100 * 0.08)])
def test_prometheus_volumes_are_priced_per_replica(stack: str, monthly: float | None) -> None:
    """gp3 at $0.08 per GB-month in us-east-1 (mlstack/data/prices.yaml ebs.gp3): one volume per replica, idle
    and peak alike; dev's emptyDir adds nothing."""
    _, spec = PROJECT.load(stack)
    lines = [line for line in estimate(plan_of(stack), spec).lines if line.item == "Prometheus volumes"]
    if monthly is None:
        assert lines == []
    else:
        assert [(round(line.idle, 2), round(line.peak, 2)) for line in lines] == [(monthly, monthly)]


# --- alerts -------------------------------------------------------------------------------------------------

ALERT_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def test_every_committed_alert_parses_names_catalogued_metrics_and_links_its_runbook() -> None:
    from components.observability import alert_groups

    exporters, _ = metric_catalog()
    catalogued = set().union(*exporters.values())
    docs = (PROJECT.root / "docs" / "observability.md").read_text(encoding="utf-8").lower()
    groups = alert_groups()
    assert {g["name"] for g in groups} == {
        "mlstack-gpu",
        "mlstack-endpoints",
        "mlstack-capacity",
        "mlstack-kueue",
        "mlstack-karpenter",
        "mlstack-autoscaling",
        "mlstack-workflows",
        "mlstack-vectordb",
        "mlstack-scale-from-zero",
    }
    for group in groups:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names and names <= catalogued, (rule["alert"], names - catalogued)
            url = rule["annotations"]["runbook_url"]
            assert url.startswith("https://github.com/mlstack/mlstack/blob/main/docs/observability.md#")
            anchor = url.rsplit("#", 1)[1]
            assert f"### {rule['alert']}".lower() in docs and anchor == rule["alert"].lower(), rule["alert"]


def test_rules_without_a_scraped_exporter_are_left_out() -> None:
    """Dev serves no Triton endpoint: its error-ratio rule (nv_inference_*) would watch nothing."""
    plan = plan_of("dev")
    endpoints = resource(plan, ALERT_RULE, "rules-mlstack-endpoints")
    alerts = {r["alert"] for g in endpoints.inputs["spec"]["groups"] for r in g["rules"]}
    assert "EndpointErrorRatioHigh" not in alerts
    assert {"EndpointLatencyP95High", "EndpointQueueBacklog"} <= alerts


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_alert_rules_query_scraped_metrics(stack: str) -> None:
    assert plan_of(stack).by_type(ALERT_RULE)
    assert findings(world_of(stack), "MLS-SIM-MON-002") == []


def test_an_alert_on_an_unscraped_exporter_is_a_finding() -> None:
    plan = mutable_plan("prod")
    plan.resources.remove(resource(plan, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "dcgm-exporter"))
    rule = resource(plan, ALERT_RULE, "rules-mlstack-gpu")
    found = findings(world_of("prod", plan), "MLS-SIM-MON-002")
    assert [f.urn for f in found] == [rule.urn]
    assert "queries DCGM_FI_DEV_GPU_UTIL, but no monitor scrapes its exporter (dcgm)" in found[0].message


def test_an_alert_that_does_not_parse_is_a_finding() -> None:
    plan = mutable_plan("dev")
    rule = resource(plan, ALERT_RULE, "rules-mlstack-capacity")
    rule.inputs["spec"]["groups"][0]["rules"][0]["expr"] = "sum by (namespace (kube_pod_status_unschedulable)"
    found = findings(world_of("dev", plan), "MLS-SIM-MON-002")
    assert len(found) == 1 and "does not parse" in found[0].message


def test_alertmanager_sends_to_the_topic_with_its_own_role() -> None:
    plan = plan_of("prod")
    values = _release("prod").inputs["values"]["alertmanager"]
    receiver = next(r for r in values["config"]["receivers"] if r["name"] == "sns")
    (sns,) = receiver["sns_configs"]
    assert sns["sigv4"] == {"region": "us-east-1"}
    assert "access_key" not in sns["sigv4"] and "secret_key" not in sns["sigv4"]
    assert values["config"]["route"]["receiver"] == "sns"
    identity = resource(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "alertmanager")
    assert (identity.inputs["namespace"], identity.inputs["serviceAccount"]) == (
        "monitoring",
        "kube-prometheus-stack-alertmanager",
    )
    grant = resource(plan, "aws:iam/rolePolicy:RolePolicy", "publish")
    statements = json.loads(grant.inputs["policy"])["Statement"]
    assert statements[0]["Action"] == "sns:Publish"
    assert statements[1]["Condition"] == {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}


def test_topic_is_encrypted_with_its_own_rotating_key_that_budgets_may_use() -> None:
    plan = plan_of("prod")
    key = resource(plan, "aws:kms/key:Key", "alerts-key")
    assert key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    budgets = next(s for s in policy["Statement"] if s.get("Sid") == "BudgetsPublishesAlerts")
    assert budgets["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert budgets["Condition"] == {"StringEquals": {"aws:SourceAccount": "333344445555"}}
    topic_policy = json.loads(resource(plan, "aws:sns/topicPolicy:TopicPolicy", "alerts").inputs["policy"])
    assert topic_policy["Statement"][0]["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:budgets::333344445555:*"}


def test_budget_forecasts_go_to_the_alert_topic() -> None:
    budget = resource(plan_of("dev"), "aws:budgets/budget:Budget", "guardrails-budget")
    forecast = [n for n in budget.inputs["notifications"] if n["notificationType"] == "FORECASTED"]
    assert forecast and all(n["subscriberSnsTopicArns"] for n in forecast)


# --- dashboards ---------------------------------------------------------------------------------------------

DASHBOARDS = sorted((PROJECT.root / "components" / "data" / "dashboards").glob("*.json"))


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_dashboard_query_parses_and_names_catalogued_metrics(path: Any) -> None:
    exporters, _ = metric_catalog()
    catalogued = set().union(*exporters.values())
    board = json.loads(path.read_text(encoding="utf-8"))
    targets = [t for panel in board["panels"] for t in panel["targets"]]
    assert targets
    for target in targets:
        names = metric_names(target["expr"])
        assert names and names <= catalogued, (path.name, target["expr"], names - catalogued)


def test_dashboards_cover_what_the_issue_asks() -> None:
    titles = {
        json.loads(p.read_text(encoding="utf-8"))["uid"]: [panel["title"] for panel in json.loads(p.read_text())["panels"]]
        for p in DASHBOARDS
    }
    assert set(titles) == {"mlstack-gpus", "mlstack-endpoints", "mlstack-queues", "mlstack-nodes", "mlstack-spend"}
    assert any("latency" in t.lower() for t in titles["mlstack-endpoints"])
    assert any("cold starts" in t.lower() for t in titles["mlstack-endpoints"])
    assert any("spot" in t.lower() for t in titles["mlstack-nodes"])


def test_keda_reaches_prometheus_only_through_its_own_allow_rule() -> None:
    """The metrics namespace admits only its own pods; without the KEDA rule the warm endpoints' queries are
    refused (MLS-SIM-NET-002 on the KEDA trigger address)."""
    netpol = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    assert findings(world_of("prod"), "MLS-SIM-NET-002") == []
    plan = mutable_plan("prod")
    plan.resources.remove(resource(plan, netpol, "metrics-netpol-1"))
    found = findings(world_of("prod", plan), "MLS-SIM-NET-002")
    assert found and all("KEDA queries the prometheus trigger address" in f.message for f in found)
