"""Argo Events rules on the plan's EventBus and EventSource objects (components/events.py): buses the controller
secures itself, and locked-down pods for what the controller builds from them.

The controller builds the pods from these objects at run time (argoproj/argo-events@v1.9.10
pkg/reconciler/eventbus/installer/jetstream.go, pkg/reconciler/eventsource/resource.go), so the pack's workload
rules, which read pod templates, never see them; these rules read the fields the controller copies into the pods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, resource_rule, stack_context

EVENT_BUS = "kubernetes:argoproj.io/v1alpha1:EventBus"
EVENT_SOURCE = "kubernetes:argoproj.io/v1alpha1:EventSource"
# JetStreamBus's container templates (pkg/apis/events/v1alpha1/jetstream_eventbus.go): NATS, config reloader,
# metrics exporter.
_BUS_CONTAINERS = ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _locked_down(where: str, pod: Mapping[str, Any], containers: Mapping[str, Any]) -> Iterator[str]:
    """A pod security context that runs as non-root, and containers that cannot escalate and have a memory
    limit (what MLS-K8S-012, -013 and -015 ask of the platform's own pods)."""
    if _mapping(pod).get("runAsNonRoot") is not True:
        yield f"{where}: securityContext.runAsNonRoot is not true"
    for name, template in containers.items():
        template = _mapping(template)
        context = _mapping(template.get("securityContext"))
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: {name}.securityContext.allowPrivilegeEscalation is not false"
        if not _mapping(_mapping(template.get("resources")).get("limits")).get("memory"):
            yield f"{where}: {name}.resources.limits.memory is not set"


@resource_rule(
    "MLS-EVT-001",
    types=[EVENT_BUS],
    title="Event buses are controller-secured JetStream buses of locked-down pods",
    why="For a native JetStream bus the Argo Events controller generates the NATS credentials, TLS certificates "
    "and the store's encryption key itself; the NATS Streaming bus has no TLS and is deprecated, and Kafka or an "
    "exotic JetStream bus carry whatever auth the author configured. In hardened tiers a one-server bus loses "
    "the events in flight whenever its pod moves. Its pods run with the bus's security context and templates.",
    severity=Severity.HIGH,
    remediation="Use spec.jetstream (components/events.py event_bus_spec) with a non-root securityContext, each "
    "container template with allowPrivilegeEscalation false and a memory limit, and 3 or more replicas in "
    "staging and prod (orchestrator.argo_events.eventbus_replicas).",
)
def event_bus_secured(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    spec = _mapping(args.props.get("spec"))
    others = sorted(k for k in ("nats", "kafka", "jetstreamExotic") if k in spec)
    if others or "jetstream" not in spec:
        yield f"the bus is {', '.join(others) or 'of no kind'}, not a native jetstream bus"
        return
    jetstream = _mapping(spec.get("jetstream"))
    yield from _locked_down(
        "spec.jetstream",
        _mapping(jetstream.get("securityContext")),
        {name: jetstream.get(name) for name in _BUS_CONTAINERS},
    )
    # JetStreamBus.GetReplicas: 3 when unset.
    replicas = jetstream.get("replicas")
    servers = 3 if replicas is None else int(replicas) if isinstance(replicas, (int, float)) else 0
    if stack_context().hardened and servers < 3:
        yield f"spec.jetstream.replicas is {servers}; the {stack_context().tier} tier needs at least 3"


@resource_rule(
    "MLS-EVT-002",
    types=[EVENT_SOURCE],
    title="Event sources run locked-down pods",
    why="An EventSource becomes a Deployment whose pod takes its security context and container settings "
    "from spec.template; a webhook source listens for anyone its namespace admits.",
    severity=Severity.HIGH,
    remediation="Set spec.template.securityContext.runAsNonRoot true and spec.template.container with "
    "allowPrivilegeEscalation false and a memory limit (components/events.py webhook_event_source_spec).",
)
def event_source_locked_down(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    template = _mapping(_mapping(args.props.get("spec")).get("template"))
    yield from _locked_down(
        "spec.template", _mapping(template.get("securityContext")), {"container": template.get("container")}
    )
