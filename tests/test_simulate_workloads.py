"""The pack's Kubernetes rules on chart objects: chart pods are judged like ours and blame their Release."""

from __future__ import annotations

import pytest

from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.objects import chart_objects
from mlstack.simulate.workloads import chart_violations, kubernetes_resource_rules, type_token
from tests.simulation import findings, mutable_plan, resource, unwaived, world_of

WORKLOADS = "MLS-SIM-WORKLOAD-001"


def _qdrant_image_findings(stack, plan=None):
    return [
        f
        for f in findings(world_of(stack, plan), WORKLOADS)
        if f.message.startswith("MLS-K8S-010") and "release qdrant" in f.message
    ]


def test_rt_data_r2_qdrant_image_from_docker_hub_is_flagged_on_the_release():
    """rt-data R2: the Qdrant chart's image docker.io/qdrant/qdrant is not routed through the ECR cache."""
    plan = mutable_plan("prod")
    qdrant = resource(plan, RELEASE_TYPE, "qdrant")
    qdrant.inputs["values"].pop("image", None)  # the chart default, as on main
    found = _qdrant_image_findings("prod", plan)
    assert [f.urn for f in found] == [qdrant.urn]
    assert "docker.io/qdrant/qdrant" in found[0].message
    assert "StatefulSet qdrant/qdrant (chart template qdrant/templates/statefulset.yaml" in found[0].message


def test_qdrant_image_through_the_docker_hub_cache_passes():
    plan = mutable_plan("prod")
    qdrant = resource(plan, RELEASE_TYPE, "qdrant")
    world = world_of("prod", plan)
    registry = f"{world.spec.account_id}.dkr.ecr.{world.spec.region}.amazonaws.com"
    # qdrant/qdrant-helm@qdrant-1.19.0:charts/qdrant/values.yaml `image.repository`.
    qdrant.inputs["values"]["image"] = {"repository": f"{registry}/docker-hub/qdrant/qdrant"}
    assert _qdrant_image_findings("prod", plan) == []


def test_a_privileged_chart_container_is_flagged_with_its_template():
    plan = mutable_plan("dev")
    keda = resource(plan, RELEASE_TYPE, "inference-keda")
    operator = keda.inputs["values"]["securityContext"]["operator"]
    # kedacore/charts@v2.20.2:keda/values.yaml `securityContext.operator` (the operator container's context).
    operator.update(privileged=True, allowPrivilegeEscalation=True)
    found = [
        f
        for f in findings(world_of("dev", plan), WORKLOADS)
        if f.message.startswith("MLS-K8S-013") and f.urn == keda.urn
    ]
    assert [f.message.split(": ", 1)[1].split(";")[0] for f in found] == [
        "container keda-operator is privileged",
        "container keda-operator does not set allowPrivilegeEscalation false",
    ]
    assert all(
        "Deployment keda/keda-operator (chart template keda/templates/manager/deployment.yaml" in f.message
        for f in found
    )


def test_the_rules_reused_are_the_packs_kubernetes_resource_rules():
    ids = {rule.id for rule in kubernetes_resource_rules()}
    assert {"MLS-K8S-010", "MLS-K8S-012", "MLS-K8S-013", "MLS-K8S-015", "MLS-K8S-017"} <= ids
    assert "MLS-K8S-020" not in ids  # a stack rule: it judges the plan's own namespaces
    assert "MLS-K8S-003" not in ids  # a rule on the Release itself


def test_type_tokens_follow_pulumi_kubernetes():
    world = world_of("dev")
    tokens = {type_token(item) for _, item in chart_violations(world)}
    assert "kubernetes:apps/v1:Deployment" in tokens and "kubernetes:apps/v1:DaemonSet" in tokens


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_charts_pass_the_pack(stack):
    """Mandatory now: every finding left on a shipped stack is covered by a waiver of policies/waivers.yaml."""
    assert unwaived(stack, findings(world_of(stack), WORKLOADS)) == []


def _residual(stack):
    """(release, policy, container) of every chart finding on ``stack``."""
    return _residual_of(world_of(stack))


# What the per-release waivers cover, and nothing more: a new finding on a waived release fails here.
_NVIDIA = {
    ("gpu-dcgm-exporter", "MLS-K8S-010", "exporter"),
    ("gpu-dcgm-exporter", "MLS-K8S-012", "exporter"),
    *(
        ("gpu-device-plugin", policy, container)
        for policy in ("MLS-K8S-010", "MLS-K8S-012")
        for container in ("nvidia-device-plugin-ctr", "mps-control-daemon-mounts", "mps-control-daemon-ctr")
    ),
    *(
        ("gpu-device-plugin", "MLS-K8S-013", container)
        for container in ("mps-control-daemon-mounts", "mps-control-daemon-ctr")
    ),
}
_KEDA_OPT_OUT = {
    ("inference-keda", "MLS-K8S-010", c)
    for c in ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks")
}
_HTTP_ADDON_OPT_OUT = {
    ("inference-http-addon", "MLS-K8S-010", f"keda-add-ons-http-{c}")
    for c in ("interceptor", "operator", "external-scaler")
}
_QDRANT_OPT_OUT = {("vectordb-qdrant", "MLS-K8S-010", "qdrant")}
# What the chart's values cannot remove from the metrics stack (its waiver in policies/waivers.yaml).
_METRICS = {
    ("metrics-kube-prometheus-stack", "MLS-K8S-014", "monitoring/kube-prometheus-stack-prometheus-node-exporter"),
    ("metrics-kube-prometheus-stack", "MLS-K8S-024", "kube-prometheus-stack-operator"),
}
# Every stack's named opt-out metrics.grafana.image_through_cache: false (Grafana's image from Docker Hub), under the
# metrics release's waiver.
_GRAFANA_OPT_OUT = {("metrics-kube-prometheus-stack", "MLS-K8S-010", "grafana")}
# dev's named opt-out orchestrator.argo_events.nats_images_through_cache: false (the EventBus pods the Argo Events
# controller builds, mlstack/simulate/operators.py).
_NATS_OPT_OUT = {
    (f"events-{team}-eventbus", "MLS-K8S-010", c)
    for team in ("search", "recsys")
    for c in ("main", "reloader", "metrics")
}
# The stacks' named opt-out metrics.opencost.images_through_cache: false (components/cost_allocation.py).
_OPENCOST_OPT_OUT = {("opencost-opencost", "MLS-K8S-010", "opencost")}
# Every stack's named opt-out external_secrets.image_through_cache: false: External Secrets Operator's image from
# ghcr.io (its only registry), under the operator release's waiver.
_ESO_OPT_OUT = {("secrets-operator", "MLS-K8S-010", "external-secrets")}
# The log agent reads root-owned node logs (components/logs.py; its own waiver in policies/waivers.yaml).
_LOG_AGENT = {("logs-fluent-bit", "MLS-K8S-012", "aws-for-fluent-bit")}


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (
            "dev",
            _NVIDIA
            | _KEDA_OPT_OUT
            | _HTTP_ADDON_OPT_OUT
            | _QDRANT_OPT_OUT
            | _LOG_AGENT
            | _NATS_OPT_OUT
            | _METRICS
            | _GRAFANA_OPT_OUT
            | _OPENCOST_OPT_OUT
            | _ESO_OPT_OUT,
        ),
        (
            "staging",
            _NVIDIA
            | _KEDA_OPT_OUT
            | _QDRANT_OPT_OUT
            | _LOG_AGENT
            | _METRICS
            | _GRAFANA_OPT_OUT
            | _OPENCOST_OPT_OUT
            | _ESO_OPT_OUT,
        ),
        (
            "prod",
            _NVIDIA
            | _KEDA_OPT_OUT
            | _QDRANT_OPT_OUT
            | _LOG_AGENT
            | _METRICS
            | _GRAFANA_OPT_OUT
            | _OPENCOST_OPT_OUT
            | _ESO_OPT_OUT,
        ),
    ],
)
def test_the_waived_chart_findings_are_exactly_the_documented_ones(stack, expected):
    """Issue 17: root causes fixed through chart values (resources, KEDA's RBAC wildcards, the HTTP add-on's
    user, dcgm-exporter's SYS_ADMIN and escalation); only the NVIDIA images and node agents and the stacks'
    named image opt-outs remain (docs/simulation.md, Workloads)."""
    assert _residual(stack) == expected


def test_the_mps_control_daemon_cannot_schedule_on_a_platform_node():
    """The waived privileged MPS DaemonSet selects nodes labelled nvidia.com/mps.capable=true, a label mlstack
    never sets (GPU feature discovery sets it under an MPS sharing config only; mlstack offers time-slicing)."""
    world = world_of("prod")
    [mps] = [
        o for o in chart_objects(world) if o.kind == "DaemonSet" and o.name.endswith("mps-control-daemon")
    ]
    selector = mps.obj["spec"]["template"]["spec"]["nodeSelector"]
    assert selector == {"nvidia.com/mps.capable": "true"}
    assert "mps.capable" not in repr(world.spec.model_dump(mode="json"))


@pytest.mark.parametrize("component", ["keda", "http-addon"])
def test_keda_images_through_the_github_cache_pass(component):
    """With a github cache (inference.keda_images_through_cache on), KEDA's and the add-on's images come from
    the environment's ECR and the release has no finding left at all."""
    from components.inference import _http_addon_values, _keda_values
    from components.registry import PullThrough

    spec = world_of("dev").spec
    host = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com"
    through = PullThrough(host=host, prefixes={"ghcr.io": "github"})
    plan = mutable_plan("dev")
    release = resource(plan, RELEASE_TYPE, f"inference-{component}")
    values = (_keda_values if component == "keda" else _http_addon_values)(
        hardened=False, pull_through=through
    )
    release.inputs["values"] = {**release.inputs["values"], **values}
    world = world_of("dev", plan)
    images = {
        container["image"]
        for item in chart_objects(world)
        if item.urn == release.urn and item.kind == "Deployment"
        for container in item.obj["spec"]["template"]["spec"]["containers"]
    }
    assert len(images) == 3 and all(i.startswith(f"{host}/github/kedacore/") for i in images), images
    assert [f.message for f in findings(world, WORKLOADS) if f.urn == release.urn] == []


def test_mirrored_nvidia_images_leave_only_the_node_agents_root_findings():
    """registry.nvidia_images_mirrored (on by default; the shipped stacks opt out until the images are copied):
    the environment gets <env>/nvidia-device-plugin and <env>/dcgm-exporter repositories, both charts pull from
    them with the charts' own tags, and MLS-K8S-010 is gone from both releases."""
    from components.gpu import DCGM_EXPORTER_IMAGE, DEVICE_PLUGIN_IMAGE, _mirrored
    from components.registry import PullThrough
    from mlstack.spec.registry import NVIDIA_MIRRORS, RegistrySpec

    world = world_of("dev")
    spec = world.spec
    host = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com"
    mirrors = {public: f"{host}/dev/{repo}" for public, repo in NVIDIA_MIRRORS.items()}
    through = PullThrough(host=host, prefixes={}, mirrors=mirrors)
    assert RegistrySpec().mirror_repositories == ["nvidia-device-plugin", "dcgm-exporter"]
    assert RegistrySpec(nvidia_images_mirrored=False).mirror_repositories == []
    assert _mirrored(PullThrough(host=host, prefixes={}), DEVICE_PLUGIN_IMAGE) == {}

    plan = mutable_plan("dev")
    releases = {
        "gpu-device-plugin": DEVICE_PLUGIN_IMAGE,
        "gpu-dcgm-exporter": DCGM_EXPORTER_IMAGE,
    }
    for name, public in releases.items():
        release = resource(plan, RELEASE_TYPE, name)
        release.inputs["values"] = {**release.inputs["values"], **_mirrored(through, public)}
    world = world_of("dev", plan)
    images = {
        container["image"]
        for item in chart_objects(world)
        if item.kind == "DaemonSet" and item.release in ("nvidia-device-plugin", "dcgm-exporter")
        for container in [
            *item.obj["spec"]["template"]["spec"].get("initContainers", []),
            *item.obj["spec"]["template"]["spec"]["containers"],
        ]
    }
    assert images == {
        f"{host}/dev/nvidia-device-plugin:v0.17.1",
        f"{host}/dev/dcgm-exporter:4.2.3-4.1.1-ubuntu22.04",
    }
    left = {(r, p) for r, p, _ in _residual_of(world) if r.startswith("gpu-")}
    assert ("gpu-device-plugin", "MLS-K8S-010") not in left and (
        "gpu-dcgm-exporter",
        "MLS-K8S-010",
    ) not in left
    assert ("gpu-device-plugin", "MLS-K8S-012") in left and ("gpu-dcgm-exporter", "MLS-K8S-012") in left


def _residual_of(world):
    """(release, policy, container) of every chart finding over ``world``."""
    found = set()
    for f in findings(world, WORKLOADS):
        release = f.urn.rsplit("::", 1)[1].split("-", 1)[1]
        # A container finding names its container; a pod or RBAC finding names its object ("...; Kind <name> (chart").
        if "container " in f.message:
            container = f.message.split("container ", 1)[1].split(" ", 1)[0]
        else:
            container = f.message.split("; ", 1)[1].split(" ", 2)[1]
        found.add((release, f.message.split(" ", 1)[0], container))
    return found
