"""Metrics: does every Prometheus query the platform depends on name metrics that Prometheus actually scrapes?

``MLS-SIM-MON-003``: every monitor mlstack creates selects a target and the NetworkPolicies let the Prometheus pods
scrape each one.

``MLS-SIM-MON-001``: each KEDA ``prometheus`` trigger (a warm endpoint's autoscaling) queries the platform's
Prometheus, and every metric its query names is exported by a target that a PodMonitor or ServiceMonitor of the
plan selects, on a port the target declares, and the NetworkPolicies let the Prometheus pods reach that port.

The queries are parsed with ``promql-parser`` (a binding of the Rust ``promql-parser`` crate, the GreptimeDB
parser of the Prometheus grammar); the metric names are those of every vector selector in the parse tree. Which
exporter produces which metric is the table ``mlstack/data/metrics.yaml`` (each exporter with its upstream
source); a monitor names its exporter with the label ``mlstack.io/exporter``, or is one of the chart's monitors
listed there.

Not modelled: the Prometheus ``serviceMonitorSelector``/``podMonitorSelector`` (mlstack sets them to select every
monitor in every namespace, components/observability.py), relabelling that drops targets, and scrape failures
at run time (a target down, a wrong path).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pulumi_policy import Severity

from mlstack.promql import BadQuery, metric_catalog, metric_names
from mlstack.simulate.framework import SimResult, World, derived, sim_check, unique
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.network import PROMETHEUS_POD_LABELS, Pod, Source, Unknown, evaluate, network
from mlstack.simulate.objects import all_objects, label_selector_matches

EXPORTER_LABEL = "mlstack.io/exporter"
MONITOR_KINDS = ("PodMonitor", "ServiceMonitor")


@dataclass(frozen=True)
class Scrape:
    """One monitor's targets: the pods it selects with the port number of each, and the exporter it names."""

    monitor: KubeObject
    exporter: str
    targets: tuple[tuple[Pod, int], ...]
    # Why the monitor selects nothing, when it does not.
    problem: str = ""


def _namespaces(spec: Mapping[str, Any], own: str) -> list[str] | None:
    """The namespaces a monitor looks in; None for every namespace (``namespaceSelector.any``)."""
    selector = spec.get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    return [str(n) for n in selector.get("matchNames") or []] or [own]


@derived
def scrapes(world: World) -> list[Scrape]:
    """Every PodMonitor and ServiceMonitor of the plan (ours and the charts') with the pods it scrapes."""
    net = network(world)
    _, chart_monitors = metric_catalog()
    services = [item for item in all_objects(world) if item.kind == "Service"]
    real_pods = [p for p in net.pods if not p.any_port]
    found = []
    for item in all_objects(world):
        if item.kind not in MONITOR_KINDS:
            continue
        spec = item.obj.get("spec") or {}
        labels = (item.obj.get("metadata") or {}).get("labels") or {}
        exporter = str(labels.get(EXPORTER_LABEL) or chart_monitors.get(item.name, ""))
        namespaces = _namespaces(spec, item.namespace)
        selector = spec.get("selector") or {}
        targets: list[tuple[Pod, int]] = []
        problems: list[str] = []
        if item.kind == "PodMonitor":
            pods = [
                p
                for p in real_pods
                if (namespaces is None or p.namespace in namespaces) and label_selector_matches(selector, p.labels)
            ]
            for endpoint in spec.get("podMetricsEndpoints") or []:
                for pod in pods:
                    number = _pod_port(pod, endpoint)
                    if number is None:
                        problems.append(f"{pod.label} declares no port {endpoint.get('port') or endpoint.get('portNumber')}")
                    else:
                        targets.append((pod, number))
            if not pods:
                problems.append(f"no pod in {namespaces or 'any namespace'} matches its selector {selector}")
        else:
            matched = [
                s
                for s in services
                if (namespaces is None or s.namespace in namespaces)
                and label_selector_matches(selector, (s.obj.get("metadata") or {}).get("labels") or {})
            ]
            if not matched:
                problems.append(f"no Service in {namespaces or 'any namespace'} matches its selector {selector}")
            for service in matched:
                for endpoint in spec.get("endpoints") or []:
                    targets += _service_targets(net.pods, service, endpoint, problems)
        found.append(Scrape(item, exporter, tuple(targets), "; ".join(problems) if not targets else ""))
    return found


def _pod_port(pod: Pod, endpoint: Mapping[str, Any]) -> int | None:
    if endpoint.get("port"):
        return pod.named_port(str(endpoint["port"]), "TCP")
    number = endpoint.get("portNumber")
    if number is not None and any(p.number == int(number) for p in pod.ports):
        return int(number)
    return None


def _service_targets(
    pods: list[Pod], service: KubeObject, endpoint: Mapping[str, Any], problems: list[str]
) -> list[tuple[Pod, int]]:
    """The pods behind a Service's named port (a ServiceMonitor endpoint's ``port`` is a Service port name)."""
    spec = service.obj.get("spec") or {}
    port = next((p for p in spec.get("ports") or [] if p.get("name") == endpoint.get("port")), None)
    if port is None:
        problems.append(f"Service {service.namespace}/{service.name} has no port named {endpoint.get('port')}")
        return []
    selector = spec.get("selector") or {}
    backends = [
        p
        for p in pods
        if not p.any_port and p.namespace == service.namespace and selector and all(
            p.labels.get(k) == str(v) for k, v in selector.items()
        )
    ]
    if not backends:
        problems.append(f"no pod of the plan backs Service {service.namespace}/{service.name}")
    targets = []
    for pod in backends:
        ref = port.get("targetPort", port.get("port"))
        number = pod.named_port(ref, "TCP") if isinstance(ref, str) else int(ref)
        if number is None:
            problems.append(f"{pod.label} declares no port named {ref}")
        else:
            targets.append((pod, number))
    return targets


def _prometheus_behind(world: World, address: str, namespace: str) -> list[Pod] | None:
    """The Prometheus pods a ``serverAddress`` reaches, or None when it is no Prometheus of the plan."""
    host = urlparse(address).hostname or ""
    parts = host.split(".")
    if len(parts) < 2 or not (len(parts) == 2 or parts[2] == "svc"):
        return None
    net = network(world)
    service = net.services.get((parts[1], parts[0]))
    if service is None:
        return None
    pods = [p for p in net.pods_of(service) if all(p.labels.get(k) == v for k, v in PROMETHEUS_POD_LABELS.items())]
    return pods or None


@sim_check(
    "MLS-SIM-MON-001",
    title="Prometheus triggers query metrics that a scraped target exports",
    why=(
        "A warm endpoint scales on a PromQL query. If no monitor scrapes the runtime that exports the metric, or "
        "the NetworkPolicies drop the scrape, the query returns nothing, KEDA keeps the minimum replicas "
        "(ignoreNullValues) and the endpoint never scales out: requests queue while GPUs are available"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Scrape the exporter (a PodMonitor or ServiceMonitor labelled mlstack.io/exporter, "
        "components/observability.py scrape_targets), add the metric to mlstack/data/metrics.yaml when its "
        "exporter produces it, or allow the Prometheus pods to reach the target's port"
    ),
    subjects=("keda.sh/v1alpha1:ScaledObject", "monitoring.coreos.com/v1:PodMonitor", "monitoring.coreos.com/v1:ServiceMonitor"),
)
def triggers_query_scraped_metrics(world: World) -> SimResult:
    return unique(_trigger_findings(world))


@sim_check(
    "MLS-SIM-MON-002",
    title="Alert rules query metrics that a scraped target exports",
    why=(
        "An alert whose metric nobody scrapes never fires: an idle GPU, a slow endpoint or a stuck queue goes "
        "unnoticed while the rule looks healthy. Each of mlstack's PrometheusRules must parse, name only "
        "metrics an exporter produces (mlstack/data/metrics.yaml), and that exporter must be scraped over flows "
        "the NetworkPolicies allow"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Fix the expression in components/data/alerts, scrape the exporter it needs (components/observability.py "
        "scrape_targets), or allow the Prometheus pods to reach the target's port"
    ),
    subjects=("monitoring.coreos.com/v1:PrometheusRule",),
)
def alert_rules_query_scraped_metrics(world: World) -> SimResult:
    return unique(_rule_findings(world))


@sim_check(
    "MLS-SIM-MON-003",
    title="Every monitor mlstack creates scrapes a target Prometheus can reach",
    why=(
        "A PodMonitor or ServiceMonitor that selects nothing, or whose targets the NetworkPolicies hide from "
        "Prometheus, leaves its exporter's metrics missing: dashboards go blank and alerts on them never fire, "
        "whether or not a query names them today"
    ),
    severity=Severity.MEDIUM,
    remediation=(
        "Fix the monitor's selector, port or namespace (components/observability.py scrape_targets), or admit the "
        "Prometheus pods in the target's NetworkPolicy on the scraped port"
    ),
    subjects=("monitoring.coreos.com/v1:PodMonitor", "monitoring.coreos.com/v1:ServiceMonitor"),
)
def monitors_reach_their_targets(world: World) -> SimResult:
    return unique(_monitor_findings(world))


def _monitor_findings(world: World) -> Iterator[tuple[str, str | None]]:
    net = network(world)
    prometheus = [p for p in net.pods if all(p.labels.get(k) == v for k, v in PROMETHEUS_POD_LABELS.items())]
    for scrape in scrapes(world):
        labels = (scrape.monitor.obj.get("metadata") or {}).get("labels") or {}
        if labels.get("app.kubernetes.io/managed-by") != "mlstack":
            continue
        where = f"{scrape.monitor.kind} {scrape.monitor.namespace}/{scrape.monitor.name}"
        if not prometheus:
            yield f"{where}: no Prometheus of the plan scrapes it", scrape.monitor.urn
            continue
        if not scrape.targets:
            yield f"{where} scrapes nothing: {scrape.problem}", scrape.monitor.urn
            continue
        for pod, port in scrape.targets:
            for server in prometheus:
                try:
                    verdict = evaluate(net, Source(pod=server), pod, port, "TCP")
                except Unknown as unknown:
                    yield f"{where}: cannot evaluate the scrape of {pod.label}: {unknown}", scrape.monitor.urn
                    continue
                if not verdict.allowed:
                    blockers = ", ".join(sorted(p.label for p in verdict.isolating))
                    yield (
                        f"{where}: the NetworkPolicies refuse the scrape of {pod.label} port {port}/TCP from "
                        f"{server.label} on {verdict.direction} ({blockers})",
                        next((p.urn for p in verdict.isolating), scrape.monitor.urn),
                    )


def _rule_findings(world: World) -> Iterator[tuple[str, str | None]]:
    exporters, _ = metric_catalog()
    prometheus = [
        p
        for p in network(world).pods
        if all(p.labels.get(k) == v for k, v in PROMETHEUS_POD_LABELS.items())
    ]
    for item in all_objects(world):
        labels = (item.obj.get("metadata") or {}).get("labels") or {}
        if item.kind != "PrometheusRule" or labels.get("app.kubernetes.io/managed-by") != "mlstack":
            continue
        if not prometheus:
            yield f"PrometheusRule {item.namespace}/{item.name}: no Prometheus of the plan evaluates it", item.urn
            continue
        for group in (item.obj.get("spec") or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                where = f"rule {rule.get('alert') or rule.get('record')} of PrometheusRule {item.namespace}/{item.name}"
                try:
                    names = metric_names(str(rule.get("expr", "")))
                except BadQuery as error:
                    yield f"{where}: its expression does not parse ({error})", item.urn
                    continue
                yield from _metric_findings(world, where, item.urn, names, prometheus, exporters)


def _trigger_findings(world: World) -> Iterator[tuple[str, str | None]]:
    exporters, _ = metric_catalog()
    for item in all_objects(world):
        if item.kind != "ScaledObject":
            continue
        for trigger in (item.obj.get("spec") or {}).get("triggers") or []:
            if trigger.get("type") != "prometheus":
                continue
            meta = trigger.get("metadata") or {}
            where = f"ScaledObject {item.namespace}/{item.name}"
            try:
                names = metric_names(str(meta.get("query", "")))
            except BadQuery as error:
                yield f"{where}: its Prometheus query does not parse ({error})", item.urn
                continue
            address = str(meta.get("serverAddress", ""))
            prometheus = _prometheus_behind(world, address, item.namespace)
            if prometheus is None:
                yield (
                    f"cannot evaluate {where}: its serverAddress {address} is no Prometheus of the plan, so what it "
                    "scrapes is unknown",
                    item.urn,
                )
                continue
            yield from _metric_findings(world, where, item.urn, names, prometheus, exporters)


def _metric_findings(
    world: World,
    where: str,
    urn: str | None,
    names: set[str],
    prometheus: list[Pod],
    exporters: Mapping[str, frozenset[str]],
) -> Iterator[tuple[str, str | None]]:
    net = network(world)
    for name in sorted(names):
        producers = [s for s in scrapes(world) if name in exporters.get(s.exporter, frozenset())]
        live = [s for s in producers if s.targets]
        if not live:
            known = sorted(e for e, metrics in exporters.items() if name in metrics)
            detail = (
                f"no monitor scrapes its exporter ({', '.join(known)})"
                if known
                else "no exporter in mlstack/data/metrics.yaml produces it"
            )
            broken = "; ".join(f"{s.monitor.kind} {s.monitor.namespace}/{s.monitor.name}: {s.problem}" for s in producers)
            yield f"{where} queries {name}, but {detail}" + (f" ({broken})" if broken else ""), urn
            continue
        for scrape in live:
            for pod, port in scrape.targets:
                for server in prometheus:
                    try:
                        verdict = evaluate(net, Source(pod=server), pod, port, "TCP")
                    except Unknown as unknown:
                        yield f"{where}: cannot evaluate the scrape of {pod.label}: {unknown}", urn
                        continue
                    if not verdict.allowed:
                        blockers = ", ".join(sorted(p.label for p in verdict.isolating))
                        yield (
                            f"{where} queries {name}, but the NetworkPolicies refuse the scrape of {pod.label} port "
                            f"{port}/TCP from {server.label} on {verdict.direction} ({blockers})",
                            next((p.urn for p in verdict.isolating), urn),
                        )
