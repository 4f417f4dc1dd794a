"""Compliant and non-compliant cases of the Argo Events rules (policies/events.py), merged into
tests/test_policies.py CASES. Only dev turns orchestrator.argo_events on."""

from __future__ import annotations

from typing import Any

from tests.policy_cases import Case, bad, ok

EVENT_BUS = "kubernetes:argoproj.io/v1alpha1:EventBus"
EVENT_SOURCE = "kubernetes:argoproj.io/v1alpha1:EventSource"


def _nats_streaming(resource: Any) -> None:
    resource.inputs["spec"] = {"nats": {"native": {"replicas": 3.0}}}


def _bus_as_root(resource: Any) -> None:
    del resource.inputs["spec"]["jetstream"]["securityContext"]


def _reloader_unbounded(resource: Any) -> None:
    del resource.inputs["spec"]["jetstream"]["reloaderContainerTemplate"]["resources"]["limits"]


def _source_escalates(resource: Any) -> None:
    resource.inputs["spec"]["template"]["container"]["securityContext"]["allowPrivilegeEscalation"] = True


def _source_without_template(resource: Any) -> None:
    del resource.inputs["spec"]["template"]


EVENTS_CASES: dict[str, list[Case]] = {
    "MLS-EVT-001": [
        ok("dev"),
        bad("dev", "NATS Streaming bus", EVENT_BUS, _nats_streaming),
        bad("dev", "bus pods may run as root", EVENT_BUS, _bus_as_root),
        bad("dev", "reloader without a memory limit", EVENT_BUS, _reloader_unbounded),
    ],
    "MLS-EVT-002": [
        ok("dev"),
        bad("dev", "webhook container may escalate", EVENT_SOURCE, _source_escalates),
        bad("dev", "webhook without a pod template", EVENT_SOURCE, _source_without_template),
    ],
}
