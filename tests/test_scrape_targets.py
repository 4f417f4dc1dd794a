"""What the metrics stack scrapes beyond the first targets: the Argo Workflows controller, Qdrant (behind its API key
and TLS), the KEDA HTTP add-on's interceptor, scaler and operator; MLS-SIM-MON-003 (every monitor mlstack creates
reaches a target), and the Qdrant scrape exemption of MLS-SIM-NET-003. Each defect is put back into a copy of a
shipped plan."""

from __future__ import annotations

from typing import Any

import pytest

from components.observability import monitor_manifest, qdrant_target, scrape_targets
from components.vectordb import qdrant_dns_names, qdrant_network_policy
from mlstack.promql import metric_catalog
from mlstack.simulate.metrics import scrapes
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, mutable_plan, resource, world_of

MON3 = "MLS-SIM-MON-003"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"


def _scrape(stack: str, name: str) -> Any:
    return next(s for s in scrapes(world_of(stack)) if s.monitor.name == name)


# --- which targets, from the spec ---------------------------------------------------------------------------


def test_the_new_targets_follow_the_spec() -> None:
    _, spec = PROJECT.load("dev")
    names = {t.name for t in scrape_targets(spec)}
    assert {
        "argo-workflows-controller",
        "qdrant",
        "keda-http-interceptor",
        "keda-http-scaler",
        "keda-http-operator",
    } <= names
    no_argo = spec.model_copy(
        update={"orchestrator": spec.orchestrator.model_copy(update={"argo_workflows": False})}
    )
    assert "argo-workflows-controller" not in {t.name for t in scrape_targets(no_argo)}
    pgvector = spec.model_copy(
        update={"vector_db": spec.vector_db.model_copy(update={"engine": "aurora-pgvector"})}
    )
    assert "qdrant" not in {t.name for t in scrape_targets(pgvector)}
    warm = spec.model_copy(
        update={
            "inference": spec.inference.model_copy(
                update={
                    "endpoints": [e.model_copy(update={"min_replicas": 1}) for e in spec.inference.endpoints]
                }
            )
        }
    )
    assert not {"keda-http-interceptor", "keda-http-scaler"} & {t.name for t in scrape_targets(warm)}


def test_the_metaflow_service_has_no_monitor_because_it_exports_nothing() -> None:
    """Netflix/metaflow-service@v2.4.13 has no metrics endpoint: no exporter, no monitor, documented."""
    exporters, _ = metric_catalog()
    assert not [e for e in exporters if "metaflow" in e]
    for stack in ("dev", "staging", "prod"):
        assert not [s for s in scrapes(world_of(stack)) if "metaflow" in s.monitor.name]
    docs = (PROJECT.root / "docs" / "observability.md").read_text(encoding="utf-8")
    assert "**Metaflow metadata service**: not scraped" in docs


# --- Argo Workflows -----------------------------------------------------------------------------------------


def test_argo_controller_serves_metrics_and_its_service_is_scraped() -> None:
    release = resource(plan_of("dev"), "kubernetes:helm.sh/v3:Release", "orchestrator-argo")
    assert release.inputs["values"]["controller"]["metricsConfig"] == {"enabled": True}
    scrape = _scrape("dev", "argo-workflows-controller")
    # The workflows' own namespace label (the team's) must survive the scrape: WorkflowsFailing groups by it.
    assert scrape.monitor.obj["spec"]["endpoints"][0]["honorLabels"] is True
    # The chart's Service port "metrics" 8080 targets the controller container's 9090 (values.yaml
    # controller.metricsConfig.port), rendered by real Helm from the plan's values.
    assert [(pod.label.split(" (")[0], port) for pod, port in scrape.targets] == [
        ("Deployment argo/argo-workflows-workflow-controller", 9090)
    ]


# --- Qdrant -------------------------------------------------------------------------------------------------


def test_qdrant_monitor_sends_the_read_only_key_and_verifies_the_qdrant_ca() -> None:
    _, spec = PROJECT.load("dev")
    ns = spec.vector_db.namespace
    manifest = monitor_manifest(qdrant_target(ns), "monitoring")
    assert manifest["kind"] == "PodMonitor"
    # In Qdrant's namespace: a monitor's Secret references resolve in its own namespace.
    assert manifest["metadata"]["namespace"] == ns
    endpoint = manifest["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "http" and endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "qdrant-api-key", "key": "read-only-api-key"},
    }
    tls = endpoint["tlsConfig"]
    assert tls["ca"] == {"secret": {"name": "qdrant-tls", "key": "ca.crt"}}
    assert "insecureSkipVerify" not in tls
    assert tls["serverName"] in qdrant_dns_names(spec.vector_db)


def test_the_qdrant_monitor_in_the_plan_waits_for_the_namespace_and_secrets_it_uses() -> None:
    plan = plan_of("dev")
    monitor = resource(plan, POD_MONITOR, "metrics-qdrant")
    needed = {
        r.urn
        for r in plan.resources
        if "mlstack:vectordb:VectorDb" in r.urn
        and (
            r.type == "kubernetes:core/v1:Namespace"
            or (r.type == SECRET and r.name.endswith(("-api-key-secret", "-tls-secret")))
        )
    }
    assert len(needed) == 3 and needed <= set(monitor.dependencies)


def test_qdrant_admits_only_the_prometheus_pods_and_only_on_the_rest_port() -> None:
    policy = qdrant_network_policy(["search"], ["monitoring"])
    scrape_rule = policy["ingress"][-1]
    assert scrape_rule["ports"] == [{"protocol": "TCP", "port": 6333}]
    assert scrape_rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert qdrant_network_policy(["search"])["ingress"] == policy["ingress"][:-1]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_monitors_reach_their_targets(stack: str) -> None:
    assert findings(world_of(stack), MON3) == []


def test_a_qdrant_policy_without_the_scrape_rule_is_a_finding_on_it() -> None:
    plan = mutable_plan("dev")
    policy = resource(plan, NETPOL, "vectordb-clients")
    policy.inputs["spec"]["ingress"] = policy.inputs["spec"]["ingress"][:-1]
    found = findings(world_of("dev", plan), MON3)
    assert found and all(f.urn == policy.urn for f in found)
    assert (
        "PodMonitor qdrant/qdrant: the NetworkPolicies refuse the scrape of StatefulSet qdrant/qdrant"
        in found[0].message
    )


def test_a_scrape_rule_wider_than_the_rest_port_is_a_forbidden_flow() -> None:
    """Prometheus may read /metrics on 6333; the gRPC port stays closed to it (MLS-SIM-NET-003)."""
    assert findings(world_of("dev"), "MLS-SIM-NET-003") == []
    plan = mutable_plan("dev")
    policy = resource(plan, NETPOL, "vectordb-clients")
    policy.inputs["spec"]["ingress"][-1]["ports"].append({"protocol": "TCP", "port": 6334.0})
    found = findings(world_of("dev", plan), "MLS-SIM-NET-003")
    assert found and "6334/TCP" in found[0].message and "prometheus" in found[0].message.lower()


# --- KEDA HTTP add-on ---------------------------------------------------------------------------------------


def test_the_interceptor_metrics_service_fronts_the_undeclared_port() -> None:
    service = resource(plan_of("dev"), SERVICE, "interceptor-metrics")
    spec = service.inputs["spec"]
    assert spec["selector"] == {
        "app.kubernetes.io/component": "interceptor",
        "app.kubernetes.io/name": "http-add-on",
    }
    assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [("metrics", 2223, 2223)]
    scrape = _scrape("dev", "keda-http-interceptor")
    assert [(pod.label.split(" (")[0], port) for pod, port in scrape.targets] == [
        ("Deployment keda/keda-add-ons-http-interceptor", 2223)
    ]


def test_the_interceptor_monitor_selects_only_the_metrics_service() -> None:
    """The chart's admin and proxy Services carry the interceptor's labels too; the monitor must not pick them."""
    world = world_of("dev")
    scrape = _scrape("dev", "keda-http-interceptor")
    selector = scrape.monitor.obj["spec"]["selector"]["matchLabels"]
    from mlstack.simulate.objects import all_objects, label_selector_matches

    matched = [
        o.name
        for o in all_objects(world)
        if o.kind == "Service"
        and label_selector_matches({"matchLabels": selector}, o.obj["metadata"].get("labels") or {})
    ]
    assert matched == ["keda-add-ons-http-interceptor-metrics"]


def test_operator_and_scaler_monitors_use_the_charts_services() -> None:
    scaler = _scrape("dev", "keda-http-scaler")
    assert [port for _, port in scaler.targets] == [2223]
    operator = _scrape("dev", "keda-http-operator")
    assert [port for _, port in operator.targets] == [8443]
    endpoint = operator.monitor.obj["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"insecureSkipVerify": True}


def test_a_monitor_that_selects_nothing_is_a_finding_on_it() -> None:
    plan = mutable_plan("dev")
    monitor = resource(plan, SERVICE_MONITOR, "keda-http-scaler")
    monitor.inputs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "nothing"
    found = findings(world_of("dev", plan), MON3)
    assert [f.urn for f in found] == [monitor.urn]
    assert "scrapes nothing: no Service" in found[0].message


# --- alerts on the new metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_new_alerts_are_installed_where_their_exporters_are_scraped(stack: str) -> None:
    rules = [
        r for r in plan_of(stack).resources if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
    ]
    alerts = {rule["alert"] for r in rules for g in r.inputs["spec"]["groups"] for rule in g["rules"]}
    _, spec = PROJECT.load(stack)
    scraped = {t.exporter for t in scrape_targets(spec)}
    assert ("WorkflowsFailing" in alerts) == ("argo-workflows" in scraped)
    assert ("QdrantReplicasNotActive" in alerts) == ("qdrant" in scraped)
    assert ("InterceptorsUnreachable" in alerts) == ("keda-http-scaler" in scraped)
    assert findings(world_of(stack), "MLS-SIM-MON-002") == []
