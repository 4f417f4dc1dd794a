"""Metaflow's Sensors and the guardrail that keeps them from running as root (components/events.py
``sensor_policy_manifests``): the policy's CEL evaluated on the Sensor Metaflow 2.19.39 really compiles, and the
binding's action in the plan (Deny by default, Warn and Audit with the named opt-out)."""

from __future__ import annotations

import copy
import json
import types
from typing import Any

import pytest

from components.compute import TEAM_NAMESPACE_LABEL
from components.events import (
    EVENT_NAME,
    EVENT_SOURCE,
    SENSOR_POLICY,
    SENSOR_SERVICE_ACCOUNT,
    sensor_policy_manifests,
)
from mlstack.spec.loader import SPEC_KEY
from mlstack.spec.orchestrator import ArgoEventsSpec
from tests.plans import PROJECT, plan_of, plan_with_sections

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"


def _admits(sensor: dict[str, Any]) -> bool:
    """The policy evaluated as the API server does (cel-python): each variable in order under ``variables``, then
    the validation, over the Sensor as the unstructured object the admission plugin hands to CEL."""
    import celpy

    policy, _ = sensor_policy_manifests(deny=True)
    env = celpy.Environment()
    # The API server always sends metadata; the hand-written Sensors of these tests may leave it out.
    activation: dict[str, Any] = {"object": celpy.json_to_cel({"metadata": {"name": "s"}, **sensor})}
    # Any false match condition skips the policy: the request is admitted without validation.
    for condition in policy["spec"]["matchConditions"]:
        if not env.program(env.compile(condition["expression"])).evaluate(activation):
            return True
    values: dict[str, Any] = {}
    for variable in policy["spec"]["variables"]:
        program = env.program(env.compile(variable["expression"]))
        values[variable["name"]] = program.evaluate({**activation, "variables": celpy.celtypes.MapType(values)})
    (validation,) = policy["spec"]["validations"]
    program = env.program(env.compile(validation["expression"]))
    return bool(program.evaluate({**activation, "variables": celpy.celtypes.MapType(values)}))


def _metaflow_sensor(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The Sensor Metaflow 2.19.39 registers for a flow with one @trigger(event=...), compiled by Metaflow's own
    ``ArgoWorkflows._compile_sensor`` with this platform's Argo Events settings, as the JSON it sends."""
    argo = pytest.importorskip("metaflow.plugins.argo.argo_workflows")
    settings = {
        "ARGO_EVENTS_EVENT": EVENT_NAME,
        "ARGO_EVENTS_EVENT_SOURCE": EVENT_SOURCE,
        "ARGO_EVENTS_SERVICE_ACCOUNT": SENSOR_SERVICE_ACCOUNT,
        "ARGO_EVENTS_SENSOR_NAMESPACE": "search",
    }
    for key, value in settings.items():
        monkeypatch.setattr(argo, key, value)
    flow = types.SimpleNamespace(
        name="helloflow",
        triggers=[{"name": "data-ready", "type": "event", "sanitized_name": "data_ready", "parameters": {}}],
        parameters={},
        trigger_options={},
        _base_labels={},
        _base_annotations={},
    )
    return json.loads(str(argo.ArgoWorkflows._compile_sensor(flow)))


def test_the_sensor_metaflow_registers_sets_no_user_and_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = _metaflow_sensor(monkeypatch)
    template = sensor["spec"]["template"]
    # What Metaflow sends: a container with a name and resources (its securityContext a JSON null), no pod context.
    assert template["serviceAccountName"] == SENSOR_SERVICE_ACCOUNT
    assert template["container"]["securityContext"] is None and "securityContext" not in template
    assert not _admits(sensor)


def test_a_sensor_made_non_root_is_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = _metaflow_sensor(monkeypatch)
    sensor["spec"]["template"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 65532}
    assert _admits(sensor)
    container = copy.deepcopy(sensor)
    del container["spec"]["template"]["securityContext"]
    container["spec"]["template"]["container"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 9731}
    assert _admits(container)


@pytest.mark.parametrize(
    ("pod", "container", "admitted"),
    [
        ({"runAsNonRoot": True, "runAsUser": 1000}, None, True),
        (None, {"runAsNonRoot": True, "runAsUser": 1000}, True),
        ({"runAsNonRoot": True}, {"runAsUser": 1000}, True),
        # runAsNonRoot alone: the scratch image has no USER, so the kubelet would refuse to start it.
        ({"runAsNonRoot": True}, None, False),
        # A user without runAsNonRoot is not what Pod Security's restricted level accepts either.
        ({"runAsUser": 1000}, None, False),
        # The container's settings override the pod's.
        ({"runAsNonRoot": True, "runAsUser": 1000}, {"runAsNonRoot": False}, False),
        ({"runAsNonRoot": True, "runAsUser": 1000}, {"runAsUser": 0}, False),
        ({"runAsNonRoot": False, "runAsUser": 1000}, {"runAsNonRoot": True}, True),
        (None, None, False),
    ],
)
def test_effective_security_context(pod: Any, container: Any, admitted: bool) -> None:
    template: dict[str, Any] = {"container": {"name": "main", "securityContext": container}}
    if pod is not None:
        template["securityContext"] = pod
    assert _admits({"spec": {"template": template}}) is admitted


def test_a_root_sensor_being_deleted_may_lose_its_finalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller removes its finalizer from a deleted Sensor with an UPDATE; a root Sensor admitted before the
    policy must not hang in Terminating. Until it is deleted, the same Sensor's updates stay refused."""
    sensor = _metaflow_sensor(monkeypatch)
    sensor["metadata"]["finalizers"] = ["sensor-controller"]
    assert not _admits(sensor)
    sensor["metadata"]["deletionTimestamp"] = "2026-11-30T23:00:00Z"
    del sensor["metadata"]["finalizers"]
    assert _admits(sensor)


def test_a_sensor_without_a_template_is_refused() -> None:
    assert not _admits({"spec": {"dependencies": []}})
    assert not _admits({"spec": {"template": None}})


def test_the_policy_matches_sensors_in_team_namespaces_only() -> None:
    policy, binding = sensor_policy_manifests(deny=True)
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["apiVersions"], rule["resources"]) == (["argoproj.io"], ["v1alpha1"], ["sensors"])
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    team_namespaces = {"matchExpressions": [{"key": TEAM_NAMESPACE_LABEL, "operator": "Exists"}]}
    assert policy["spec"]["matchConstraints"]["namespaceSelector"] == team_namespaces
    assert binding["spec"]["matchResources"]["namespaceSelector"] == team_namespaces
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert sensor_policy_manifests(deny=False)[1]["spec"]["validationActions"] == ["Warn", "Audit"]


def _binding_actions(plan: Any) -> list[str]:
    (binding,) = [r for r in plan.by_type(BINDING) if r.inputs["metadata"]["name"] == SENSOR_POLICY]
    (policy,) = [r for r in plan.by_type(POLICY) if r.inputs["metadata"]["name"] == SENSOR_POLICY]
    assert policy.inputs["spec"]["validations"][0]["expression"]
    return list(binding.inputs["spec"]["validationActions"])


def test_root_sensors_are_refused_unless_the_stack_opts_out() -> None:
    assert ArgoEventsSpec().allow_root_sensors is False
    config, spec = PROJECT.load("dev")
    # Dev takes the named opt-out (stacks/Pulumi.dev.yaml): warned and audited, not refused.
    assert spec.orchestrator.argo_events.allow_root_sensors is True
    assert _binding_actions(plan_of("dev")) == ["Warn", "Audit"]
    orchestrator = copy.deepcopy(config.values[SPEC_KEY]["orchestrator"])
    orchestrator["argo_events"]["allow_root_sensors"] = False
    assert _binding_actions(plan_with_sections("dev", orchestrator=orchestrator)) == ["Deny"]


def test_no_policy_without_argo_events() -> None:
    plan = plan_of("prod")
    assert not [r for r in plan.by_type(POLICY) if r.inputs["metadata"]["name"] == SENSOR_POLICY]
