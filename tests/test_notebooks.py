"""Notebooks (JupyterHub): spec validation, the hub-side profile filter, the chart values, the planned objects and
the deploy simulation's view of the notebook servers (admission, capacity, network flows)."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from components.jupyterhub_profiles import NoTeamProfile, profiles_for, team_profile_list
from components.notebooks import (
    EXTRA_CONFIG,
    HUB_SERVICE_ACCOUNT,
    PROFILES_MODULE,
    SERVER_PORT,
    jupyterhub_values,
    server_network_policy,
    spawner_rules,
    team_profiles,
)
from components.registry import PullThrough
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.network import network
from mlstack.simulate.spawner_made import server_job, spawner_made
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from mlstack.spec.notebooks import notebook_cpu_pools, notebook_gpu_pools
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, mutable_plan, resource, world_of

DEV = yaml.safe_load(PROJECT.stack_file("dev").read_text())
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _spec(stack: str = "dev"):
    return PROJECT.load(stack)[1]


def _load(tmp_path: Path, mutate) -> Any:
    document = copy.deepcopy(DEV)
    mutate(document["config"][SPEC_KEY])
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_spec(path)[1]


def _problems(tmp_path: Path, mutate) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, mutate)
    assert "Traceback" not in str(caught.value)
    return {problem.path: str(problem.render()) for problem in caught.value.problems}


# --- spec ------------------------------------------------------------------------------------------------------


def test_notebooks_are_off_by_default_and_an_enabled_hub_needs_sso(tmp_path: Path) -> None:
    spec = _load(tmp_path, lambda s: s.pop("notebooks"))
    assert spec.notebooks.enabled is False

    def no_sso(s: dict[str, Any]) -> None:
        del s["notebooks"]["sso"]

    problems = _problems(tmp_path, no_sso)
    assert any(path.startswith("notebooks") and "notebooks.sso" in text for path, text in problems.items())


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"userdata_from_id_token": True}, "not both"),
        ({"userdata_url": None}, "userdata_from_id_token: true"),
        ({"oauth_callback_url": "https://hub.example.com/callback"}, "/hub/oauth_callback"),
        ({"oauth_callback_url": "http://hub.example.com/hub/oauth_callback"}, "oauth_callback_url"),
    ],
)
def test_sso_settings_are_checked(tmp_path: Path, change: dict[str, Any], fragment: str) -> None:
    def mutate(s: dict[str, Any]) -> None:
        s["notebooks"]["sso"].update(change)

    problems = _problems(tmp_path, mutate)
    assert any(fragment in text for text in problems.values()), problems


def test_cross_section_rules_name_the_field(tmp_path: Path) -> None:
    def mutate(s: dict[str, Any]) -> None:
        s["notebooks"]["team_groups"] = {"nobody": "g"}
        s["notebooks"]["gpu_pools"] = ["missing"]
        s["notebooks"]["cpu_server"] = {"cpu": 64, "memory_gib": 4}
        s["notebooks"]["home_gib"] = 600
        s["notebooks"]["namespace"] = "search"
        s["registry"]["pull_through_caches"] = [{"upstream": "ecr-public"}, {"upstream": "k8s"}]

    problems = _problems(tmp_path, mutate)
    assert "'nobody' is not a declared team" in problems["notebooks.team_groups.nobody"]
    assert "'missing' is not a GPU pool" in problems["notebooks.gpu_pools.0"]
    assert "cpu_quota 32" in problems["notebooks.cpu_server"]
    assert "max_pvc_gib (500)" in problems["notebooks.home_gib"]
    assert "quay.io" in problems["registry.pull_through_caches"]
    assert "a team's namespace" in problems["notebooks.namespace"]


def test_default_pools_are_the_amd64_cpu_pools_and_the_notebook_gpu_pools() -> None:
    assert [p.name for p in notebook_cpu_pools(_spec("dev"))] == ["cpu"]  # cpu-arm is arm64
    assert notebook_gpu_pools(_spec("dev")) == []  # gpu-dev serves inference
    assert [p.name for p in notebook_gpu_pools(_spec("prod"))] == ["notebooks"]


def test_idle_culling_defaults_fit_the_tier() -> None:
    assert _spec("dev").notebooks.cull_minutes(hardened=False) == 30
    assert _spec("prod").notebooks.cull_minutes(hardened=True) == 60


# --- the hub-side profile filter (runs in the hub pod) -----------------------------------------------------------


def _spawner(name: str, *groups: str) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(name=name, groups=[SimpleNamespace(name=g) for g in groups]))


TEAMS = {
    "search": {"group": "team-search", "profiles": [{"slug": "search-cpu", "kubespawner_override": {}}]},
    "recsys": {
        "group": "team-recsys",
        "profiles": [{"slug": "recsys-cpu"}, {"slug": "recsys-gpu", "default": True}],
    },
}


def test_a_user_sees_only_the_profiles_of_their_teams() -> None:
    profile_list = team_profile_list(TEAMS)
    assert [p["slug"] for p in profile_list(_spawner("ana", "team-search", "other"))] == ["search-cpu"]
    assert [p["slug"] for p in profile_list(_spawner("bo", "team-recsys"))] == ["recsys-cpu", "recsys-gpu"]
    both = profile_list(_spawner("cy", "team-recsys", "team-search"))
    assert [p["slug"] for p in both] == ["recsys-cpu", "recsys-gpu", "search-cpu"]


def test_the_first_profile_is_the_default_unless_one_is() -> None:
    assert profiles_for(["team-search"], TEAMS)[0]["default"] is True
    assert [p.get("default", False) for p in profiles_for(["team-recsys"], TEAMS)] == [False, True]


def test_a_user_in_no_team_group_gets_an_error_not_the_hub_namespace() -> None:
    with pytest.raises(NoTeamProfile, match="none of the team groups"):
        team_profile_list(TEAMS)(_spawner("eve", "admins"))
    with pytest.raises(NoTeamProfile):
        team_profile_list(TEAMS)(SimpleNamespace(user=SimpleNamespace(name="x", groups=[])))


def test_profiles_handed_out_are_copies() -> None:
    data = copy.deepcopy(TEAMS)
    profile_list = team_profile_list(data)
    profile_list(_spawner("ana", "team-search"))[0]["kubespawner_override"]["namespace"] = "recsys"
    data["search"]["profiles"][0]["slug"] = "changed"
    assert profile_list(_spawner("ana", "team-search"))[0] == {
        "slug": "search-cpu",
        "kubespawner_override": {},
        "default": True,
    }


def test_the_extra_config_installs_the_filter_as_the_chart_runs_it(tmp_path: Path) -> None:
    """hub.extraConfig is exec'd by the chart's jupyterhub_config.py with `c` and z2jh's get_config in scope, and
    the extra file sits next to it on sys.path; run the committed snippet the same way."""
    shutil.copy(PROFILES_MODULE, tmp_path / "mlstack_profiles.py")
    config = SimpleNamespace(KubeSpawner=SimpleNamespace())
    values = {"custom.mlstack.teams": TEAMS}
    sys.path.insert(0, str(tmp_path))
    try:
        exec(EXTRA_CONFIG, {"c": config, "get_config": values.__getitem__})
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mlstack_profiles", None)
    assert [p["slug"] for p in config.KubeSpawner.profile_list(_spawner("bo", "team-recsys"))] == [
        "recsys-cpu",
        "recsys-gpu",
    ]


def test_the_hub_module_needs_only_the_standard_library() -> None:
    spec = importlib.util.spec_from_file_location("isolated_profiles", PROFILES_MODULE)
    assert spec is not None and spec.loader is not None
    source = PROFILES_MODULE.read_text()
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert set(imports) <= {"__future__", "copy", "collections.abc", "typing"}


# --- profiles and values ---------------------------------------------------------------------------------------


def _pull_through() -> PullThrough:
    return PullThrough(host="111122223333.dkr.ecr.us-east-1.amazonaws.com", prefixes={"quay.io": "quay"})


def test_profiles_put_each_server_in_its_team_namespace_on_its_pool() -> None:
    spec = _spec("prod")
    team = next(t for t in spec.teams if t.name == "search")
    profiles = team_profiles(
        spec.notebooks, team, cpu_pools=notebook_cpu_pools(spec), gpu_pools=notebook_gpu_pools(spec)
    )
    assert [p["slug"] for p in profiles] == ["search-cpu-cpu", "search-gpu-notebooks"]
    cpu, gpu = (p["kubespawner_override"] for p in profiles)
    for override in (cpu, gpu):
        assert override["namespace"] == "search"
        assert override["service_account"] == "workload"
        assert override["automount_service_account_token"] is False
        assert override["extra_labels"] == {"mlstack.io/team": "search", "kueue.x-k8s.io/queue-name": "default"}
        # Karpenter's consolidation would otherwise evict a running server, a bare pod nothing recreates.
        assert override["extra_annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert cpu["node_selector"] == {"mlstack.io/pool": "cpu"}
    assert "tolerations" not in cpu and "extra_resource_limits" not in cpu
    assert gpu["node_selector"] == {"mlstack.io/pool": "notebooks"}
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule", "operator": "Equal"}]
    assert gpu["extra_resource_limits"] == gpu["extra_resource_guarantees"] == {"nvidia.com/gpu": "1"}
    assert gpu["cpu_guarantee"] == gpu["cpu_limit"] == 2.0
    assert gpu["mem_guarantee"] == gpu["mem_limit"] == 12 * 1024**3


def test_a_shared_pool_offers_a_time_slice_and_a_team_without_gpus_none() -> None:
    spec = _spec("prod")
    shared = GpuPoolSpec(
        name="nb-shared",
        workload_class="notebook",
        instance_types=["g6"],
        max_gpus=4,
        sharing={"mode": "time-slicing", "replicas": 4},
    )
    team = spec.teams[0]
    profiles = team_profiles(spec.notebooks, team, cpu_pools=[], gpu_pools=[shared])
    assert [p["slug"] for p in profiles] == [f"{team.name}-gpu-slice-nb-shared"]
    assert "1/4 of a GPU" in profiles[0]["display_name"]
    assert profiles[0]["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    no_gpus = team.model_copy(update={"gpu_quota": 0, "gpu_borrowing_limit": 0, "gpu_quota_by_pool": None})
    assert team_profiles(spec.notebooks, no_gpus, cpu_pools=[], gpu_pools=[shared]) == []


def test_no_gpu_profile_on_a_pool_where_kueue_gives_the_team_nothing() -> None:
    """prod's research team has 0 of its gpu_quota on the serving pool; without borrowing Kueue never admits a
    server there, so that pool gets no profile for it, while the notebooks pool, where it has a share, does."""
    spec = _spec("prod")
    research = next(t for t in spec.teams if t.name == "research")
    sizes = {pool.name: pool.max_gpus for pool in spec.gpu_pools}
    assert research.pool_quotas(sizes)["serving"] == 0 and research.pool_quotas(sizes)["notebooks"] > 0
    pools = list(spec.gpu_pools)
    no_borrowing = research.model_copy(update={"gpu_borrowing_limit": 0})
    slugs = [p["slug"] for p in team_profiles(spec.notebooks, no_borrowing, cpu_pools=[], gpu_pools=pools, gpu_pool_sizes=sizes)]
    assert slugs == ["research-gpu-training", "research-gpu-notebooks"]
    borrowing = [p["slug"] for p in team_profiles(spec.notebooks, research, cpu_pools=[], gpu_pools=pools, gpu_pool_sizes=sizes)]
    assert "research-gpu-serving" in borrowing
    # The planned release carries the filter: every team has a share of prod's notebooks pool.
    release = next(r for r in plan_of("prod").resources if r.type == RELEASE and r.name.endswith("notebooks-release"))
    teams = release.inputs["values"]["custom"]["mlstack"]["teams"]
    assert all(any("gpu-notebooks" in p["slug"] for p in entry["profiles"]) for entry in teams.values())


def _values(stack: str = "dev") -> dict[str, Any]:
    spec = _spec(stack)
    return jupyterhub_values(
        spec.notebooks,
        teams=spec.teams,
        cpu_pools=notebook_cpu_pools(spec),
        gpu_pools=notebook_gpu_pools(spec),
        pull_through=_pull_through(),
        storage_class="gp3-encrypted",
        hardened=spec.tier.hardened,
    )


def test_sign_in_is_generic_oauth_with_team_groups_and_secrets_from_a_kubernetes_secret() -> None:
    values = _values()
    config = values["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "generic-oauth"
    oauth = config["GenericOAuthenticator"]
    assert oauth["manage_groups"] is True
    assert oauth["allowed_groups"] == ["team-recsys", "team-search"]
    assert oauth["auth_state_groups_key"] == "oauth_user.groups"
    assert oauth["userdata_url"] == "https://idp.example.com/oauth2/v1/userinfo"
    assert "client_secret" not in oauth and "client_id" not in oauth
    assert config["Authenticator"]["enable_auth_state"] is True
    env = values["hub"]["extraEnv"]
    assert env["OAUTH_CLIENT_SECRET"] == {
        "valueFrom": {"secretKeyRef": {"name": "jupyterhub-oidc", "key": "client-secret"}}
    }
    assert config["JupyterHub"]["hub_connect_url"] == "http://hub.jupyterhub.svc.cluster.local:8081"


def test_images_come_through_the_cache_and_nothing_is_public_or_pre_pulled() -> None:
    values = _values()
    host = "111122223333.dkr.ecr.us-east-1.amazonaws.com/quay/jupyterhub"
    assert values["hub"]["image"] == {"name": f"{host}/k8s-hub"}
    assert values["proxy"]["chp"]["image"] == {"name": f"{host}/configurable-http-proxy"}
    assert values["singleuser"]["image"] == {"name": f"{host}/k8s-singleuser-sample", "tag": "4.4.0"}
    assert values["proxy"]["service"] == {"type": "ClusterIP"}
    assert values["proxy"]["chp"]["networkPolicy"]["allowedIngressPorts"] == []
    assert values["scheduling"]["userScheduler"] == {"enabled": False}
    assert values["prePuller"] == {"hook": {"enabled": False}, "continuous": {"enabled": False}}
    assert values["singleuser"]["cloudMetadata"] == {"blockWithIptables": False}
    assert values["singleuser"]["storage"]["dynamic"] == {"storageClass": "gp3-encrypted"}
    assert values["hub"]["db"]["pvc"]["storageClassName"] == "gp3-encrypted"
    assert values["cull"]["timeout"] == 30 * 60


def test_the_rendered_chart_runs_two_pods_on_the_system_nodes_from_our_registry() -> None:
    """The release as the deploy simulation renders it (real helm, the packaged 4.4.0 chart)."""
    world = world_of("dev")
    from mlstack.simulate.objects import chart_objects, pod_spec

    objects = [o for o in chart_objects(world) if o.release == "jupyterhub"]
    kinds = sorted(o.kind for o in objects if pod_spec(o) is not None and "KubeSpawner" not in o.template)
    assert kinds == ["Deployment", "Deployment"]
    for item in objects:
        spec = pod_spec(item)
        if spec is None or "KubeSpawner" in item.template:
            continue
        assert spec["nodeSelector"] == {"mlstack.io/node-role": "system"}
        for container in spec["containers"]:
            assert container["image"].startswith("111122223333.dkr.ecr.us-east-1.amazonaws.com/quay/")
    assert not [o for o in objects if o.kind == "Service" and (o.obj["spec"].get("type") or "ClusterIP") != "ClusterIP"]


# --- planned objects -------------------------------------------------------------------------------------------


def test_the_hub_gets_exactly_the_spawner_rights_in_each_team_namespace() -> None:
    plan = plan_of("dev")
    roles = [r for r in plan.resources if r.type == "kubernetes:rbac.authorization.k8s.io/v1:Role" and "spawner" in r.name]
    assert sorted(r.inputs["metadata"]["namespace"] for r in roles) == ["recsys", "search"]
    for role in roles:
        rules = {tuple(rule["resources"]): set(rule["verbs"]) for rule in role.inputs["rules"]}
        assert rules == {
            ("pods",): {"get", "list", "watch", "create", "delete"},
            ("persistentvolumeclaims",): {"get", "create", "delete"},
            ("events",): {"get", "list", "watch"},
        }
    bindings = [
        r
        for r in plan.resources
        if r.type == "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding" and "spawner" in r.name
    ]
    for binding in bindings:
        assert binding.inputs["subjects"] == [
            {"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": "jupyterhub"}
        ]
    assert len(spawner_rules()) == 3


def test_team_groups_may_port_forward_to_the_proxy_over_websocket_and_spdy() -> None:
    """kubectl's WebSocket port-forward is a GET (verb get), its SPDY fallback a POST (verb create)."""
    plan = plan_of("dev")
    (role,) = [
        r
        for r in plan.resources
        if r.type == "kubernetes:rbac.authorization.k8s.io/v1:Role" and r.inputs["metadata"]["name"] == "jupyterhub-users"
    ]
    rules = {tuple(rule["resources"]): set(rule["verbs"]) for rule in role.inputs["rules"]}
    assert rules[("pods/portforward",)] == {"get", "create"}
    assert rules[("services",)] == {"get"}


def test_server_policy_admits_only_the_hub_and_proxy_and_lets_servers_call_the_hub() -> None:
    policy = server_network_policy(_spec("dev").notebooks)
    assert policy["podSelector"]["matchLabels"]["component"] == "singleuser-server"
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": SERVER_PORT}]
    assert {peer["podSelector"]["matchLabels"]["component"] for peer in ingress["from"]} == {"hub", "proxy"}
    for peer in ingress["from"]:
        assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "jupyterhub"}}
    (egress,) = policy["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 8081}]


# --- deploy simulation -----------------------------------------------------------------------------------------


def test_spawner_made_builds_one_server_per_profile_from_the_hub_secret() -> None:
    world = world_of("prod")
    from mlstack.simulate.objects import chart_objects

    servers = [o for o in chart_objects(world) if "KubeSpawner" in o.template]
    assert sorted(o.name for o in servers if o.namespace == "search") == [
        "jupyter-search-cpu-cpu",
        "jupyter-search-gpu-notebooks",
    ]
    gpu = next(o for o in servers if o.name == "jupyter-search-gpu-notebooks")
    pod = gpu.obj["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": str(12 * 1024**3), "nvidia.com/gpu": "1"}
    assert container["ports"] == [{"name": "notebook-port", "containerPort": 8888}]
    assert container["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"] == {
        "fsGroup": 100,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["serviceAccountName"] == "workload" and pod["automountServiceAccountToken"] is False
    labels = gpu.obj["spec"]["template"]["metadata"]["labels"]
    assert labels["component"] == "singleuser-server" and labels["mlstack.io/team"] == "search"


def test_spawner_made_ignores_releases_without_a_hub_secret() -> None:
    other = KubeObject({"kind": "Secret", "data": {}}, "urn", "x", "x/templates/secret.yaml", "ns")
    assert spawner_made([other]) == []
    job = server_job({"singleuser": {}}, {"slug": "s", "kubespawner_override": {"namespace": "t"}})
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False  # no service account


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_model_the_notebook_flows_and_pass(stack: str) -> None:
    world = world_of(stack)
    from mlstack.simulate.network import forbidden_flows, required_flows

    whys = [f.why for f in required_flows(world)]
    assert any("routes each user's browser" in why for why in whys)
    assert any("notebook servers call the hub API" in why for why in whys)
    assert any("notebook servers" in f.why for f in forbidden_flows(world))
    found = findings(world, "MLS-SIM-NET-002", "MLS-SIM-NET-003", "MLS-SIM-ADM-001", "MLS-SIM-ADM-002")
    assert [f for f in found if "jupyter" in f.message or "notebook" in f.message or "hub" in f.message] == []


def test_without_the_server_policy_the_proxy_cannot_reach_the_servers() -> None:
    plan = mutable_plan("dev")
    plan.resources.remove(resource(plan, NETPOL, "notebooks-search-servers-netpol"))
    messages = [f.message for f in findings(world_of("dev", plan), "MLS-SIM-NET-002")]
    assert any("routes each user's browser" in m and "search/jupyter-search-cpu-cpu" in m for m in messages)
    assert any("notebook servers call the hub API" in m for m in messages)


def test_a_server_policy_open_to_every_namespace_is_a_finding() -> None:
    plan = mutable_plan("dev")
    policy = resource(plan, NETPOL, "notebooks-recsys-servers-netpol")
    policy.inputs["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    found = findings(world_of("dev", plan), "MLS-SIM-NET-003")
    assert any(
        "team 'recsys' notebook servers" in f.message and f.urn == policy.urn for f in found
    ), [f.message for f in found]


def test_a_server_over_its_team_quota_is_rejected_by_the_simulation() -> None:
    plan = mutable_plan("dev")
    release = resource(plan, RELEASE, "notebooks-release")
    profiles = release.inputs["values"]["custom"]["mlstack"]["teams"]["search"]["profiles"]
    profiles[0]["kubespawner_override"]["cpu_guarantee"] = 40.0
    profiles[0]["kubespawner_override"]["cpu_limit"] = 40.0
    messages = [f.message for f in findings(world_of("dev", plan), "MLS-SIM-ADM-002")]
    assert any("requests.cpu" in m and "jupyter-search-cpu-cpu" in m for m in messages), messages


def test_servers_are_kueue_workloads_of_their_team_queue_in_the_simulation() -> None:
    """Kueue 0.19.2 would put the servers on the team's "default" LocalQueue anyway; the label says so, and the
    simulation's queue check (MLS-SIM-ADM-005) sees a server whose queue does not exist."""
    world = world_of("dev")
    from mlstack.simulate.objects import chart_objects

    servers = [o for o in chart_objects(world) if "KubeSpawner" in o.template]
    assert servers
    for server in servers:
        labels = server.obj["spec"]["template"]["metadata"]["labels"]
        assert labels["kueue.x-k8s.io/queue-name"] == "default"
    assert [f for f in findings(world, "MLS-SIM-ADM-005") if "jupyter" in f.message] == []

    plan = mutable_plan("dev")
    release = resource(plan, RELEASE, "notebooks-release")
    profile = release.inputs["values"]["custom"]["mlstack"]["teams"]["search"]["profiles"][0]
    profile["kubespawner_override"]["extra_labels"]["kueue.x-k8s.io/queue-name"] = "nowhere"
    messages = [f.message for f in findings(world_of("dev", plan), "MLS-SIM-ADM-005")]
    assert any("jupyter-search-cpu-cpu" in m and "names queue nowhere" in m for m in messages), messages


def test_servers_are_in_the_network_model_with_their_port() -> None:
    net = network(world_of("dev"))
    servers = [p for p in net.pods if p.labels.get("component") == "singleuser-server"]
    assert sorted(p.namespace for p in servers) == ["recsys", "search"]
    assert all(p.named_port("notebook-port", "TCP") == SERVER_PORT for p in servers)


def test_the_stack_outputs_say_where_the_hub_is() -> None:
    hub = plan_of("dev").outputs["ui_addresses"]["jupyterhub"]
    assert hub == {
        "in_cluster": "http://proxy-public.jupyterhub.svc.cluster.local",
        "laptop": "http://localhost:8000",
        "port_forward": "kubectl -n jupyterhub port-forward svc/proxy-public 8000:80",
    }


def test_staging_and_prod_keep_the_hub_database_on_uninstall() -> None:
    assert "annotations" not in _values("dev")["hub"]["db"]["pvc"]
    assert _values("prod")["hub"]["db"]["pvc"]["annotations"] == {"helm.sh/resource-policy": "keep"}
