"""Argo Events for Metaflow triggers: the spec, the plan's objects, the Metaflow config, and what the deploy
simulation sees of the pods the Argo Events controller builds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.events import (
    EVENT_BUS,
    EVENT_NAME,
    EVENT_SOURCE,
    SENSOR_SERVICE_ACCOUNT,
    WEBHOOK_PORT,
    argo_events_values,
    metaflow_event_settings,
    webhook_url,
)
from components.registry import PullThrough
from mlstack.check.engine import evaluate
from mlstack.cost import estimate
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.operators import argo_events_objects
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from mlstack.spec.orchestrator import ArgoEventsSpec, OrchestratorSpec
from policies.catalog import RULES_BY_ID
from policies.framework import PLATFORM_CONFIG_KEY
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, mutable_plan, world_of

CUSTOM = "kubernetes:argoproj.io/v1alpha1:"
ECR = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
DEV = yaml.safe_load(PROJECT.stack_file("dev").read_text())


def _of(plan: Plan, kind: str) -> list[RecordedResource]:
    return [r for r in plan.resources if r.type == f"{CUSTOM}{kind}"]


def _named(plan: Plan, type_: str, name: str, namespace: str) -> RecordedResource:
    (found,) = [
        r
        for r in plan.by_type(type_)
        if (r.inputs.get("metadata") or {}).get("name") == name
        and (r.inputs.get("metadata") or {}).get("namespace") == namespace
    ]
    return found


# --- spec ---------------------------------------------------------------------------------------------------


def test_argo_events_is_off_by_default_and_needs_metaflow_on_argo() -> None:
    assert ArgoEventsSpec().enabled is False
    assert OrchestratorSpec().argo_events.enabled is False
    with pytest.raises(ValueError, match="argo_events triggers Metaflow flows deployed on Argo Workflows"):
        OrchestratorSpec(metaflow=False, argo_events=ArgoEventsSpec(enabled=True))
    with pytest.raises(ValueError, match=r"Input should be 1, 3 or 5"):
        ArgoEventsSpec(eventbus_replicas=2)  # type: ignore[arg-type]


def _dev_with(tmp_path: Path, events: dict[str, Any]) -> Path:
    document = copy.deepcopy(DEV)
    document["config"][SPEC_KEY]["orchestrator"]["argo_events"] = events
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_nats_images_through_a_cache_that_does_not_exist_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_dev_with(tmp_path, {"enabled": True}))
    [problem] = caught.value.problems
    assert problem.path == "registry.pull_through_caches"
    assert "registry-1.docker.io" in problem.message and "nats_images_through_cache: false" in problem.message
    # The named opt-out loads.
    load_spec(_dev_with(tmp_path, {"enabled": True, "nats_images_through_cache": False}))


# --- the plan -----------------------------------------------------------------------------------------------


def test_the_controller_chart_is_pinned_through_the_cache_restricted_and_on_the_system_nodes() -> None:
    plan = plan_of("dev")
    spec = PROJECT.load("dev")[1].orchestrator.argo_events
    (release,) = [r for r in plan.by_type("kubernetes:helm.sh/v3:Release") if r.name == "dev-events-release"]
    assert release.inputs["chart"] == "argo-events"
    assert release.inputs["version"] == spec.chart_version == "2.4.22"
    assert release.inputs["repositoryOpts"]["repo"] == "https://argoproj.github.io/argo-helm"
    values = release.inputs["values"]
    assert values["global"]["image"]["repository"] == f"{ECR}/quay/argoproj/argo-events"
    assert values["global"]["securityContext"]["runAsNonRoot"] is True
    controller = values["controller"]
    assert controller["containerSecurityContext"]["allowPrivilegeEscalation"] is False
    assert controller["resources"]["limits"]["memory"]
    assert controller["tolerations"] and controller["nodeSelector"], "a platform pod goes to the system nodes"
    assert values["crds"] == {"install": True, "keep": True}


def test_nats_images_come_through_the_docker_hub_cache_unless_opted_out() -> None:
    through = argo_events_values(
        hardened=True,
        pull_through=PullThrough(
            host=ECR, prefixes={"quay.io": "quay", "registry-1.docker.io": "docker-hub"}
        ),
        nats_through_cache=True,
    )
    [version] = through["configs"]["jetstream"]["versions"]
    assert version["natsImage"] == f"{ECR}/docker-hub/library/nats:2.10.10"
    assert version["configReloaderImage"] == f"{ECR}/docker-hub/natsio/nats-server-config-reloader:0.14.0"
    assert version["metricsExporterImage"] == f"{ECR}/docker-hub/natsio/prometheus-nats-exporter:0.14.0"
    assert through["controller"]["replicas"] == 2
    opted_out = argo_events_values(
        hardened=False,
        pull_through=PullThrough(host=ECR, prefixes={"quay.io": "quay"}),
        nats_through_cache=False,
    )
    assert opted_out["configs"]["jetstream"]["versions"][0]["natsImage"] == "docker.io/library/nats:2.10.10"
    with pytest.raises(ValueError, match=r"no pull-through cache covers docker\.io/library/nats"):
        argo_events_values(
            hardened=False,
            pull_through=PullThrough(host=ECR, prefixes={"quay.io": "quay"}),
            nats_through_cache=True,
        )


def test_each_team_gets_its_own_bus_webhook_and_sensor_identity() -> None:
    plan = plan_of("dev")
    teams = {t.name: t for t in PROJECT.load("dev")[1].teams}
    buses = {r.inputs["metadata"]["namespace"]: r for r in _of(plan, "EventBus")}
    sources = {r.inputs["metadata"]["namespace"]: r for r in _of(plan, "EventSource")}
    assert set(buses) == set(sources) == set(teams)
    for team in teams:
        bus = buses[team].inputs
        assert bus["metadata"]["name"] == EVENT_BUS
        jetstream = bus["spec"]["jetstream"]
        # dev runs one server; Argo Events refuses 2 (pkg/reconciler/eventbus/validate.go).
        assert jetstream["replicas"] == 1 and jetstream["streamConfig"] == "replicas: 1\n"
        assert jetstream["securityContext"]["runAsNonRoot"] is True
        for part in ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate"):
            assert jetstream[part]["securityContext"]["allowPrivilegeEscalation"] is False
            assert jetstream[part]["resources"]["limits"]["memory"]
        source = sources[team].inputs
        assert source["metadata"]["name"] == EVENT_SOURCE
        assert source["spec"]["eventBusName"] == EVENT_BUS
        assert source["spec"]["webhook"][EVENT_NAME]["method"] == "POST"
        assert source["spec"]["webhook"][EVENT_NAME]["port"] == str(WEBHOOK_PORT)
        # The custom objects wait for the release that installs their CRDs.
        release_urn = next(r.urn for r in plan.resources if r.name == "dev-events-release")
        assert release_urn in buses[team].dependencies and release_urn in sources[team].dependencies

        sensor_role = _named(
            plan, "kubernetes:rbac.authorization.k8s.io/v1:Role", SENSOR_SERVICE_ACCOUNT, team
        )
        assert sensor_role.inputs["rules"] == [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}
        ]
        binding = _named(
            plan, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "metaflow-sensor-authors", team
        )
        assert binding.inputs["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": teams[team].group}
        ]


def test_metaflow_config_carries_the_teams_own_event_settings() -> None:
    plan = plan_of("dev")
    for team, config in plan.outputs["metaflow_config"].items():
        assert {k: v for k, v in config.items() if k.startswith("METAFLOW_ARGO_EVENTS_")} == (
            metaflow_event_settings(team)
        )
        assert config["METAFLOW_ARGO_EVENTS_INTERNAL_WEBHOOK_URL"] == webhook_url(team)
        assert f".{team}.svc.cluster.local:" in webhook_url(team)
        assert (
            config["METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE"] == config["METAFLOW_KUBERNETES_NAMESPACE"] == team
        )


def test_stacks_without_events_carry_no_event_settings() -> None:
    plan = plan_of("prod")
    assert not PROJECT.load("prod")[1].orchestrator.argo_events.enabled
    assert not _of(plan, "EventBus")
    for config in plan.outputs["metaflow_config"].values():
        assert not [k for k in config if k.startswith("METAFLOW_ARGO_EVENTS_")]


# --- what the controller builds, in the simulation ----------------------------------------------------------


def _controller_objects() -> list[KubeObject]:
    image = {"name": "ARGO_EVENTS_IMAGE", "value": f"{ECR}/quay/argoproj/argo-events:v1.9.10"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "argo-events-controller-manager", "namespace": "argo-events"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "env": [image]}]}}},
    }
    config = {
        "eventBus": {
            "jetstream": {
                "versions": [
                    {
                        "version": "2.10.10",
                        "natsImage": "nats-image",
                        "metricsExporterImage": "metrics-image",
                        "configReloaderImage": "reloader-image",
                    }
                ]
            }
        }
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argo-events-controller-manager", "namespace": "argo-events"},
        "data": {"controller-config.yaml": yaml.safe_dump(config)},
    }
    return [KubeObject(deployment, "urn:release"), KubeObject(configmap, "urn:release")]


def test_the_simulation_builds_the_buses_and_webhooks_as_the_controller_would() -> None:
    bus = KubeObject(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventBus",
            "metadata": {"name": "default", "namespace": "team-a"},
            "spec": {
                "jetstream": {
                    "version": "2.10.10",
                    "containerTemplate": {"resources": {"limits": {"memory": "1Gi"}}},
                }
            },
        },
        "urn:bus",
    )
    source = KubeObject(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "EventSource",
            "metadata": {"name": "hook", "namespace": "team-a"},
            "spec": {"service": {"ports": [{"port": 12000, "targetPort": 12000}]}, "webhook": {}},
        },
        "urn:source",
    )
    built = {(o.kind, o.name): o for o in argo_events_objects([bus, source], _controller_objects())}
    assert set(built) == {
        ("StatefulSet", "eventbus-default-js"),
        ("Service", "eventbus-default-js-svc"),
        ("Deployment", "hook-eventsource"),
        ("Service", "hook-eventsource-svc"),
    }
    statefulset = built[("StatefulSet", "eventbus-default-js")].obj["spec"]
    assert statefulset["replicas"] == 3, "JetStreamBus.GetReplicas defaults to 3"
    containers = {c["name"]: c for c in statefulset["template"]["spec"]["containers"]}
    assert {n: c["image"] for n, c in containers.items()} == {
        "main": "nats-image",
        "reloader": "reloader-image",
        "metrics": "metrics-image",
    }
    assert containers["main"]["resources"] == {"limits": {"memory": "1Gi"}}
    webhook = built[("Deployment", "hook-eventsource")].obj["spec"]["template"]["spec"]["containers"][0]
    assert webhook["image"].endswith("/quay/argoproj/argo-events:v1.9.10")
    assert built[("Deployment", "hook-eventsource")].urn == "urn:source"
    # Without a controller in the plan nothing is built: the objects would stay unreconciled.
    assert argo_events_objects([bus, source], []) == []


def test_a_bus_without_security_context_is_caught_by_the_workload_rules() -> None:
    plan = mutable_plan("dev")
    [bus] = [r for r in _of(plan, "EventBus") if r.inputs["metadata"]["namespace"] == "search"]
    del bus.inputs["spec"]["jetstream"]["securityContext"]
    for part in ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate"):
        del bus.inputs["spec"]["jetstream"][part]["securityContext"]
    found = [
        f
        for f in findings(world_of("dev", plan), "MLS-SIM-WORKLOAD-001")
        if "search/eventbus-default-js" in f.message and "docker.io" not in f.message
    ]
    assert found and all(f.urn == bus.urn for f in found)
    clean = [
        f
        for f in findings(world_of("dev"), "MLS-SIM-WORKLOAD-001")
        if "eventbus-default-js" in f.message and "docker.io" not in f.message
    ]
    assert clean == [], "only the dev stack's named opt-out (NATS from Docker Hub) is reported"


def test_the_webhook_and_bus_flows_are_required_and_allowed() -> None:
    assert [f for f in findings(world_of("dev"), "MLS-SIM-NET-002") if "event" in f.message.lower()] == []
    plan = mutable_plan("dev")
    # Without the namespace's own allow rule, steps cannot publish and the webhook cannot reach its bus.
    (same_namespace,) = [
        r
        for r in plan.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["name"] == "allow-same-namespace"
        and r.inputs["metadata"]["namespace"] == "search"
    ]
    plan.resources.remove(same_namespace)
    messages = [f.message for f in findings(world_of("dev", plan), "MLS-SIM-NET-002")]
    assert any("publish Metaflow events" in m and "namespace search" in m for m in messages)
    assert any("reach its EventBus 'default'" in m and "namespace search" in m for m in messages)


# --- cost ---------------------------------------------------------------------------------------------------


def test_cost_states_what_the_event_pods_request_where_they_are_priced() -> None:
    dev = estimate(plan_of("dev"), PROJECT.load("dev")[1])
    [line] = [a for a in dev.assumptions if a.startswith("Argo Events")]
    # Two teams: a one-server bus (50m + 10m + 10m; 128 + 32 + 32 MiB) and a webhook (50m; 64 MiB) each.
    assert "2 team event buses and 2 webhooks request 0.24 vCPU and 512 MiB" in line
    prod = estimate(plan_of("prod"), PROJECT.load("prod")[1])
    assert not [a for a in prod.assumptions if a.startswith("Argo Events")]


def test_a_one_server_bus_is_refused_in_hardened_tiers() -> None:
    """MLS-EVT-001 in staging: the dev bus (one server) fails, three servers pass."""
    plan = mutable_plan("dev")
    config, _ = PROJECT.load("dev")
    wire = dict(config.wire_config())
    platform = json.loads(wire[PLATFORM_CONFIG_KEY])
    wire[PLATFORM_CONFIG_KEY] = json.dumps({**platform, "tier": "staging"})
    buses = _of(plan, "EventBus")
    rule = [RULES_BY_ID["MLS-EVT-001"]]
    found = [v for v in evaluate(buses, wire, rule) if "needs at least 3" in v.message]
    assert {v.urn for v in found} == {b.urn for b in buses}
    for bus in buses:
        bus.inputs["spec"]["jetstream"]["replicas"] = 3.0
    assert evaluate(buses, wire, rule) == []
    assert evaluate(buses, dict(config.wire_config()), rule) == [], "dev allows one server"
