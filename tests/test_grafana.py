"""Grafana, kube-prometheus-stack's grafana subchart: the spec's SSO rule, the sign-in settings that reach
grafana.ini, the committed dashboards provisioned as sidecar ConfigMaps, the rendered pod (images, non-root,
read-only root, system nodes, no volume, no Ingress), the NetworkPolicies (Prometheus in, nothing else), and the
per-pool GPU panels' join with kube-state-metrics."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability import (
    DASHBOARDS_DIR,
    GRAFANA_ADMIN_SECRET,
    dashboard_configmaps,
    grafana_values,
    monitor_manifest,
    network_policy_manifests,
    scrape_targets,
)
from components.registry import PullThrough
from mlstack.cost import estimate
from mlstack.promql import metric_names
from mlstack.simulate.objects import chart_objects
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from mlstack.spec.observability import (
    GRAFANA_OAUTH_CALLBACK,
    GRAFANA_POD,
    GrafanaSpec,
    GrafanaSsoSpec,
    MetricsSpec,
)
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, mutable_plan, resource, world_of

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SSO = GrafanaSsoSpec(
    auth_url="https://idp.example.com/authorize",
    token_url="https://idp.example.com/token",
    api_url="https://idp.example.com/userinfo",
    admin_group="ml-platform-admins",
)
PULL_THROUGH = PullThrough(host="111122223333.dkr.ecr.us-east-1.amazonaws.com", prefixes={"quay.io": "quay"})


def _values(stack: str) -> dict[str, Any]:
    return resource(plan_of(stack), RELEASE, "kube-prometheus-stack").inputs["values"]["grafana"]


def _grafana_objects(stack: str) -> dict[tuple[str, str], Any]:
    return {
        (o.kind, o.name): o.obj
        for o in chart_objects(world_of(stack))
        if o.release == "kube-prometheus-stack" and "grafana" in o.name
    }


# --- spec ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_hardened_tiers_refuse_grafana_without_sso(tmp_path: Path, stack: str) -> None:
    document = yaml.safe_load(PROJECT.stack_file(stack).read_text())
    del document["config"][SPEC_KEY]["metrics"]["grafana"]["sso"]
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "metrics.grafana.sso" in message, message
    assert (
        f"the {stack} tier signs people in to Grafana through the platform's OIDC identity provider"
        in message
    )
    assert "Traceback" not in message


def test_the_role_expression_maps_the_admin_group_to_admin_and_everyone_else_to_viewer() -> None:
    assert SSO.role_attribute_path == "contains(groups[*], 'ml-platform-admins') && 'Admin' || 'Viewer'"
    assert GrafanaSsoSpec(**{**SSO.model_dump(), "groups_claim": "roles"}).role_attribute_path.startswith(
        "contains(roles[*], "
    )


def test_the_role_expression_evaluates_as_documented() -> None:
    """The JMESPath itself (the JMESPath specification, which Grafana's Go implementation follows): the admin group
    gives Admin, any other groups or none give Viewer, and a missing claim is a type error, which
    role_attribute_strict turns into a refused sign-in (docs/observability.md)."""
    import jmespath
    from jmespath.exceptions import JMESPathTypeError

    path = SSO.role_attribute_path
    assert jmespath.search(path, {"groups": ["ml-platform-admins", "search"]}) == "Admin"
    assert jmespath.search(path, {"groups": ["search"]}) == "Viewer"
    assert jmespath.search(path, {"groups": []}) == "Viewer"
    # A group whose name only contains the admin group's is not it.
    assert jmespath.search(path, {"groups": ["ml-platform-admins-readonly"]}) == "Viewer"
    with pytest.raises(JMESPathTypeError):
        jmespath.search(path, {"email": "someone@example.com"})


def test_no_grafana_where_it_or_the_metrics_stack_is_off() -> None:
    assert grafana_values(MetricsSpec(), pull_through=PULL_THROUGH) == {"enabled": False}
    off = MetricsSpec(enabled=False, grafana=GrafanaSpec(enabled=True, image_through_cache=False))
    assert grafana_values(off, pull_through=PULL_THROUGH) == {"enabled": False}
    assert len(network_policy_manifests("monitoring", grafana=False)) == 2


# --- sign-in ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_anonymous_access_no_basic_auth_no_self_sign_up(stack: str) -> None:
    ini = _values(stack)["grafana.ini"]
    assert ini["auth.anonymous"] == {"enabled": False}
    assert ini["auth.basic"] == {"enabled": False}
    assert ini["users"] == {"allow_sign_up": False}
    assert ini["security"]["disable_brute_force_login_protection"] is False
    assert ini["server"]["root_url"] == "http://localhost:3030"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_hardened_tiers_sign_in_through_the_idp_only(stack: str) -> None:
    values = _values(stack)
    ini = values["grafana.ini"]
    oauth = ini["auth.generic_oauth"]
    assert ini["auth"] == {"disable_login_form": True}
    assert (oauth["enabled"], oauth["use_pkce"], oauth["role_attribute_strict"]) == (True, True, True)
    assert oauth["role_attribute_path"] == "contains(groups[*], 'ml-platform-admins') && 'Admin' || 'Viewer'"
    assert oauth["auth_url"].startswith("https://") and oauth["token_url"].startswith("https://")
    assert "client_secret" not in oauth and "client_id" not in oauth
    # The client comes from the platform team's Secret, through the environment, never through the values.
    assert values["envValueFrom"] == {
        "GF_AUTH_GENERIC_OAUTH_CLIENT_ID": {"secretKeyRef": {"name": "grafana-sso", "key": "client-id"}},
        "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {
            "secretKeyRef": {"name": "grafana-sso", "key": "client-secret"}
        },
    }
    deployment = _grafana_objects(stack)[("StatefulSet", "kube-prometheus-stack-grafana")]
    [grafana] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana"]
    env = {e["name"]: e for e in grafana["env"]}
    assert env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "grafana-sso"
    # The redirect URI to register with the IdP: Grafana's callback under its root_url.
    assert GRAFANA_OAUTH_CALLBACK == "http://localhost:3030/login/generic_oauth"


def test_dev_signs_in_with_the_generated_admin_password_held_in_a_secret() -> None:
    """No IdP in dev: the login form serves the chart's admin user, whose random password the chart writes into
    the Secret kube-prometheus-stack-grafana (never into the values or the plan)."""
    values = _values("dev")
    assert "auth.generic_oauth" not in values["grafana.ini"] and "auth" not in values["grafana.ini"]
    assert "adminPassword" not in values
    secret = _grafana_objects("dev")[("Secret", GRAFANA_ADMIN_SECRET)]
    assert {"admin-user", "admin-password"} <= set(secret["data"])
    # A random 40-character password (grafana/templates/_helpers.tpl "grafana.password": randAlphaNum 40).
    assert len(base64.b64decode(secret["data"]["admin-password"].strip('"'))) == 40


# --- the pod ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_pod_is_non_root_read_only_bounded_on_the_system_nodes_without_a_volume(stack: str) -> None:
    _, spec = PROJECT.load(stack)
    objects = _grafana_objects(stack)
    pod = objects[("StatefulSet", "kube-prometheus-stack-grafana")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 472
    assert pod["nodeSelector"] == {"mlstack.io/node-role": "system"}
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    assert {c["name"] for c in containers} == {
        "grafana",
        "grafana-sc-dashboard",
        "grafana-init-sc-datasources",
    }
    for container in containers:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    ecr = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com/"
    images = {c["name"]: c["image"] for c in containers}
    assert images["grafana"] == "docker.io/grafana/grafana:13.2.0"  # the stacks' named opt-out
    assert images["grafana-sc-dashboard"] == f"{ecr}quay/kiwigrid/k8s-sidecar:2.10.1"
    # Nothing to keep: no claim, every volume an emptyDir, a ConfigMap or a Secret.
    assert not any(kind == "PersistentVolumeClaim" for kind, _ in objects)
    assert all(set(v) & {"emptyDir", "configMap", "secret"} for v in pod["volumes"]), pod["volumes"]
    # Private: a ClusterIP Service, no Ingress, no HTTPRoute.
    assert objects[("Service", "kube-prometheus-stack-grafana")]["spec"]["type"] == "ClusterIP"
    assert not any(kind in ("Ingress", "HTTPRoute") for kind, _ in objects)
    # The sidecars read the metrics namespace only (a Role, not a ClusterRole).
    assert ("Role", "kube-prometheus-stack-grafana") in objects
    assert not any(kind == "ClusterRole" for kind, _ in objects)
    # One replica with a stable name, which the teams' port-forward Role names.
    assert objects[("StatefulSet", "kube-prometheus-stack-grafana")]["spec"]["replicas"] == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_team_may_port_forward_to_the_grafana_pod_and_to_nothing_else_in_the_namespace(stack: str) -> None:
    _, spec = PROJECT.load(stack)
    role = resource(plan_of(stack), "kubernetes:rbac.authorization.k8s.io/v1:Role", "grafana-port-forward")
    binding = resource(
        plan_of(stack), "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "grafana-port-forward-binding"
    )
    assert role.inputs["metadata"]["namespace"] == spec.metrics.namespace
    assert role.inputs["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": [GRAFANA_POD], "verbs": ["get"]},
        # get: kubectl 1.31+'s WebSocket stream (an HTTP GET); create: its SPDY fallback and Kubernetes 1.35+.
        {
            "apiGroups": [""],
            "resources": ["pods/portforward"],
            "resourceNames": [GRAFANA_POD],
            "verbs": ["get", "create"],
        },
    ]
    assert GRAFANA_POD == "kube-prometheus-stack-grafana-0"
    assert binding.inputs["roleRef"]["name"] == role.inputs["metadata"]["name"]
    assert {s["name"] for s in binding.inputs["subjects"]} == {t.group for t in spec.teams}


def test_the_image_goes_through_the_docker_hub_cache_unless_the_stack_opts_out() -> None:
    cached = PullThrough(
        host="111122223333.dkr.ecr.us-east-1.amazonaws.com",
        prefixes={"quay.io": "quay", "registry-1.docker.io": "docker-hub"},
    )
    values = grafana_values(MetricsSpec(grafana=GrafanaSpec(enabled=True)), pull_through=cached)
    assert values["image"] == {
        "registry": "111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub",
        "repository": "grafana/grafana",
        "tag": "13.2.0",
    }
    with pytest.raises(ValueError, match=r"no pull-through cache covers docker\.io"):
        grafana_values(MetricsSpec(grafana=GrafanaSpec(enabled=True)), pull_through=PULL_THROUGH)


# --- dashboards ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_committed_dashboard_is_a_configmap_the_sidecar_selects(stack: str) -> None:
    _, spec = PROJECT.load(stack)
    values = _values(stack)
    sidecar = values["sidecar"]["dashboards"]
    configmaps = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in plan_of(stack).resources
        if r.type == CONFIGMAP and r.inputs["metadata"]["name"].startswith("mlstack-dashboard-")
    }
    committed = sorted(DASHBOARDS_DIR.glob("*.json"))
    assert sorted(configmaps) == [f"mlstack-dashboard-{p.stem}" for p in committed]
    for path in committed:
        configmap = configmaps[f"mlstack-dashboard-{path.stem}"]
        assert configmap["metadata"]["namespace"] == spec.metrics.namespace == sidecar["searchNamespace"]
        assert configmap["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        # The committed JSON, byte for byte.
        assert configmap["data"] == {f"mlstack-{path.stem}.json": path.read_text(encoding="utf-8")}
    assert sidecar["provider"] == {"allowUiUpdates": False}
    assert values["defaultDashboardsEnabled"] is False


def test_the_data_source_is_the_in_cluster_prometheus_written_before_grafana_starts() -> None:
    objects = _grafana_objects("dev")
    datasources = yaml.safe_load(
        objects[("ConfigMap", "kube-prometheus-stack-grafana-datasource")]["data"]["datasource.yaml"]
    )
    [prometheus] = [d for d in datasources["datasources"] if d["type"] == "prometheus"]
    assert prometheus["url"] == "http://kube-prometheus-stack-prometheus.monitoring:9090/"
    # Every dashboard's datasource variable picks a Prometheus data source.
    for path in DASHBOARDS_DIR.glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
        assert variable["query"] == "prometheus"
    # Basic auth is off, so no sidecar may depend on the reload API: data sources come from an init container,
    # dashboards from the file provider's rescan.
    pod = objects[("StatefulSet", "kube-prometheus-stack-grafana")]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["grafana-init-sc-datasources"]
    # An init container must end: k8s-sidecar 2.10.1 lists once and exits with METHOD=LIST only (WATCH and SLEEP
    # loop forever after their first list, src/sidecar.py main), and Grafana starts after its init containers.
    [init] = pod["initContainers"]
    assert {e["name"]: e.get("value") for e in init["env"]}["METHOD"] == "LIST"
    assert not any(e["name"] == "REQ_URL" for c in pod["containers"] for e in c.get("env", []))


def test_dashboard_configmaps_follow_the_files() -> None:
    made = dashboard_configmaps("observability")
    assert len(made) == len(list(DASHBOARDS_DIR.glob("*.json"))) >= 5
    assert {m["metadata"]["namespace"] for m in made} == {"observability"}


# --- per-pool GPU panels ------------------------------------------------------------------------------------


def test_per_pool_gpu_panels_join_dcgm_with_the_allow_listed_pool_label() -> None:
    """The DCGM series carry their node (the monitor's relabelling) and kube_node_labels carries the pool (the
    allowlist): the panels' join uses exactly those two labels, as kube-state-metrics sanitises them."""
    values = resource(plan_of("prod"), RELEASE, "kube-prometheus-stack").inputs["values"]
    [allow] = values["kube-state-metrics"]["metricLabelsAllowlist"]
    match = re.fullmatch(r"(\w+)=\[(.+)\]", allow)
    assert match is not None, allow
    resource_kind, keys = match.groups()
    assert resource_kind == "nodes"
    pool_label = "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", keys)
    assert pool_label == "label_mlstack_io_pool"
    _, spec = PROJECT.load("prod")
    [dcgm] = [t for t in scrape_targets(spec) if t.exporter == "dcgm"]
    [endpoint] = monitor_manifest(dcgm, "monitoring")["spec"]["endpoints"]
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}
    ]
    board = json.loads((DASHBOARDS_DIR / "gpus.json").read_text(encoding="utf-8"))
    per_pool = [p for p in board["panels"] if p["title"].endswith("per pool")]
    assert [p["title"] for p in per_pool] == ["GPU utilisation per pool", "GPU memory used per pool"]
    for panel, dcgm_metric in zip(per_pool, ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"], strict=True):
        [target] = panel["targets"]
        expr = target["expr"]
        assert metric_names(expr) == {dcgm_metric, "kube_node_labels"}
        assert f"on (node) group_left ({pool_label})" in expr and f"by ({pool_label})" in expr
        assert target["legendFormat"] == f"{{{{{pool_label}}}}}"


# --- network ------------------------------------------------------------------------------------------------


def test_only_prometheus_reaches_grafana_and_grafana_reaches_prometheus() -> None:
    assert findings(world_of("prod"), "MLS-SIM-NET-002", "MLS-SIM-NET-003") == []
    # Opened to every namespace: a flow the platform forbids.
    plan = mutable_plan("prod")
    grafana_policy = resource(plan, NETPOL, "metrics-netpol-2")
    assert grafana_policy.inputs["metadata"]["name"] == "allow-prometheus-to-grafana"
    grafana_policy.inputs["spec"]["ingress"] = [{}]
    found = findings(world_of("prod", plan), "MLS-SIM-NET-003")
    assert found and all("nobody outside the metrics namespace may reach Grafana" in f.message for f in found)
    # The own-namespace rule narrowed to KEDA: Grafana can no longer query Prometheus.
    plan = mutable_plan("prod")
    own = resource(plan, NETPOL, "metrics-netpol-0")
    own.inputs["spec"]["ingress"] = [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}]}
    ]
    found = findings(world_of("prod", plan), "MLS-SIM-NET-002")
    assert any("Grafana queries Prometheus, its data source" in f.message for f in found)


def test_the_grafana_policy_admits_prometheus_on_the_web_port_only() -> None:
    own, _keda, grafana = copy.deepcopy(network_policy_manifests("monitoring", grafana=True))
    assert own["spec"]["podSelector"] == {
        "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["grafana"]}]
    }
    [rule] = grafana["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


# --- cost ---------------------------------------------------------------------------------------------------


def test_the_cost_estimate_states_what_grafana_reserves_on_the_system_nodes() -> None:
    """No AWS resource, no volume: Grafana is priced through the system nodes it fits on (dev keeps three)."""
    _, spec = PROJECT.load("dev")
    result = estimate(plan_of("dev"), spec)
    assert (
        "Grafana: no AWS resource and no volume; its pod requests 0.06 vCPU and 256 MiB on the system nodes "
        "(priced with them)"
    ) in result.assumptions
    assert not [line for line in result.lines if "grafana" in line.item.lower()]
    assert findings(world_of("dev"), "MLS-SIM-CAP-001") == []
