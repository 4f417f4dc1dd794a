"""Network reachability in the deploy simulation: enforcement, needed flows, forbidden flows.

Each reviewed defect (rt-cluster row 11 and its follow-on, rt-data S2) is put back into a copy of a shipped plan
and must be flagged on the resource to fix; the NetworkPolicy semantics the checks rely on are tested on small
hand-built networks.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from mlstack.simulate.helm import KubeObject
from mlstack.simulate.network import (
    NAMESPACE_NAME_LABEL,
    Network,
    Pod,
    Policy,
    Port,
    Service,
    ServicePort,
    Source,
    Unknown,
    _policy_of,
    evaluate,
    network,
    resolve,
)
from tests.simulation import findings, mutable_plan, resource, unwaived, world_of

ENFORCED = "MLS-SIM-NET-001"
REQUIRED = "MLS-SIM-NET-002"
FORBIDDEN = "MLS-SIM-NET-003"
NETWORK_CHECKS = (ENFORCED, REQUIRED, FORBIDDEN)
ADDON = "aws:eks/addon:Addon"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _enforce(plan):
    """The rt-cluster row 11 fix for the add-on: the VPC CNI network policy agent on (as shipped since the fix;
    set again so the tests that need enforcement do not depend on it)."""
    addon = resource(plan, ADDON, "vpc-cni")
    addon.inputs["configurationValues"] = json.dumps({"enableNetworkPolicy": "true"})
    return addon


def _without_interceptor_egress(plan, team: str) -> None:
    """The rt-cluster row 11 follow-on defect put back: no egress rule of team ``team`` admits the KEDA HTTP
    interceptor (the fix is the team's allow-endpoint-interceptor policy)."""
    fix = resource(plan, NETPOL, f"teams-{team}-netpol-allow-endpoint-interceptor")
    plan.resources.remove(fix)


def _add_namespace_to_allow_list(plan, team: str, namespace: str) -> None:
    policy = resource(plan, NETPOL, f"teams-{team}-netpol-allow-shared-services")
    expression = policy.inputs["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchExpressions"][0]
    expression["values"] = [*expression["values"], namespace]


# --- enforcement (rt-cluster row 11, rt-data S2) -------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_policies_nobody_enforces_are_a_finding_on_the_vpc_cni_addon(stack):
    """rt-cluster 11 / rt-data S2: vpc-cni without configurationValues leaves every NetworkPolicy unenforced."""
    plan = mutable_plan(stack)
    addon = resource(plan, ADDON, "vpc-cni")
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}  # the fix
    assert findings(world_of(stack, plan), ENFORCED) == []
    del addon.inputs["configurationValues"]  # the defect as shipped on main@427347a
    found = findings(world_of(stack, plan), ENFORCED)
    assert [f.urn for f in found] == [addon.urn]
    assert 'enableNetworkPolicy defaults to "false"' in found[0].message


def test_enable_network_policy_true_enforces_them():
    plan = mutable_plan("dev")
    _enforce(plan)
    assert findings(world_of("dev", plan), ENFORCED) == []


def test_enable_network_policy_false_is_a_finding_and_a_boolean_cannot_be_evaluated():
    plan = mutable_plan("dev")
    addon = resource(plan, ADDON, "vpc-cni")
    addon.inputs["configurationValues"] = json.dumps({"enableNetworkPolicy": "false"})
    found = findings(world_of("dev", plan), ENFORCED)
    assert [f.urn for f in found] == [addon.urn] and "'false'" in found[0].message
    addon.inputs["configurationValues"] = json.dumps({"enableNetworkPolicy": True})
    found = findings(world_of("dev", plan), ENFORCED)
    assert [f.urn for f in found] == [addon.urn] and found[0].message.startswith("cannot evaluate")


def test_a_plan_without_network_policies_needs_no_enforcement():
    plan = mutable_plan("dev")
    plan.resources[:] = [r for r in plan.resources if r.type != NETPOL]
    assert findings(world_of("dev", plan), ENFORCED) == []


def test_another_policy_engine_counts_as_enforcement():
    plan = mutable_plan("dev")
    release = resource(plan, "kubernetes:helm.sh/v3:Release", "karpenter")
    release.inputs["chart"] = "cilium"  # only its name is read by this check
    assert findings(world_of("dev", plan), ENFORCED) == []


# --- required flows ---------------------------------------------------------------------------------------


def test_callers_of_a_scale_to_zero_endpoint_blocked_by_team_egress_are_a_finding():
    """rt-cluster 11 follow-on: with enforcement on, team egress admits argo/metaflow/qdrant/monitoring but not
    keda, so the owning team cannot reach its scale-to-zero endpoint (ExternalName -> interceptor in keda)."""
    plan = mutable_plan("dev")
    _enforce(plan)
    assert findings(world_of("dev", plan), REQUIRED) == []  # the fix: allow-endpoint-interceptor per team
    _without_interceptor_egress(plan, "search")
    allow_list = resource(plan, NETPOL, "teams-search-netpol-allow-shared-services")
    found = findings(world_of("dev", plan), REQUIRED)
    assert [f.urn for f in found] == [allow_list.urn]
    assert "endpoint 'chat'" in found[0].message
    assert "keda/keda-add-ons-http-interceptor-proxy" in found[0].message
    assert "refused on egress" in found[0].message


def test_the_interceptor_flow_passes_once_team_egress_admits_keda():
    """The other spelling of the fix: keda on the shared-services allow-list instead of a policy of its own."""
    plan = mutable_plan("dev")
    _enforce(plan)
    for team in ("search", "recsys"):
        _without_interceptor_egress(plan, team)
        _add_namespace_to_allow_list(plan, team, "keda")
    assert findings(world_of("dev", plan), REQUIRED) == []


def test_the_interceptor_must_reach_the_backend_service():
    plan = mutable_plan("dev")
    _add_namespace_to_allow_list(plan, "search", "keda")
    endpoint_policy = resource(plan, NETPOL, "inference-chat-netpol")
    # Ingress only from the team's own namespace: the interceptor (namespace keda) is refused.
    endpoint_policy.inputs["spec"]["ingress"][0]["from"] = [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "search"}}}
    ]
    messages = [f.message for f in findings(world_of("dev", plan), REQUIRED) if f.urn == endpoint_policy.urn]
    assert any("KEDA HTTP interceptor forwards" in m and "refused on ingress" in m for m in messages)


def test_the_backend_port_may_be_named_in_the_http_scaled_object():
    plan = mutable_plan("dev")
    _enforce(plan)
    _add_namespace_to_allow_list(plan, "search", "keda")
    scaler = resource(plan, "kubernetes:http.keda.sh/v1alpha1:HTTPScaledObject", "chat")
    target = scaler.inputs["spec"]["scaleTargetRef"]
    del target["port"]
    target["portName"] = "http"
    assert findings(world_of("dev", plan), REQUIRED) == []
    target["portName"] = "grpc"
    found = findings(world_of("dev", plan), REQUIRED)
    assert [f.urn for f in found] == [scaler.urn] and found[0].message.startswith("cannot evaluate")


def test_dns_refused_by_a_wrong_pod_selector_blames_the_dns_policy():
    plan = mutable_plan("prod")
    allow_dns = resource(plan, NETPOL, "teams-recsys-netpol-allow-dns")
    allow_dns.inputs["spec"]["egress"][0]["to"][0]["podSelector"] = {"matchLabels": {"k8s-app": "coredns"}}
    found = findings(world_of("prod", plan), REQUIRED)
    dns = [f for f in found if f.message.startswith("DNS")]
    assert {f.urn for f in dns} == {allow_dns.urn}
    assert {("UDP 53" in f.message) or ("TCP 53" in f.message) for f in dns} == {True}
    assert len(dns) == 2  # UDP and TCP


def test_workflow_pods_refused_by_the_metaflow_policy_are_a_finding():
    plan = mutable_plan("prod")
    metaflow = resource(plan, NETPOL, "orchestrator-search-metaflow-netpol")  # one policy per team's service
    assert [f for f in findings(world_of("prod", plan), REQUIRED) if f.urn == metaflow.urn] == []
    metaflow.inputs["spec"]["ingress"][0]["ports"] = [{"port": 8081.0, "protocol": "TCP"}]
    found = [f for f in findings(world_of("prod", plan), REQUIRED) if f.urn == metaflow.urn]
    assert found and all("Metaflow metadata service" in f.message for f in found)
    assert all("namespace search" in f.message for f in found)


def test_qdrant_clients_refused_on_egress_are_a_finding():
    plan = mutable_plan("prod")
    allow_list = resource(plan, NETPOL, "teams-research-netpol-allow-shared-services")
    expression = allow_list.inputs["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchExpressions"][0]
    expression["values"] = [v for v in expression["values"] if v != "qdrant"]
    found = [f for f in findings(world_of("prod", plan), REQUIRED) if "Qdrant clients" in f.message]
    assert {f.urn for f in found} == {allow_list.urn}
    assert {"on 6333" in f.message or "on 6334" in f.message for f in found} == {True}


def test_the_internal_alb_must_reach_its_endpoint():
    plan = mutable_plan("prod")
    chat = resource(plan, NETPOL, "inference-chat-netpol")
    chat.inputs["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]  # the VPC ipBlock dropped
    found = [f for f in findings(world_of("prod", plan), REQUIRED) if "internal ALB" in f.message]
    assert [f.urn for f in found] == [chat.urn]


def test_a_trigger_address_no_service_answers_cannot_be_evaluated():
    """rt-cluster row 10: the warm endpoints' ScaledObjects queried a Prometheus the plan did not install (put
    back: the operator's governing Service prometheus-operated, which no manifest of the plan renders)."""
    plan = mutable_plan("prod")
    scaler = resource(plan, "kubernetes:keda.sh/v1alpha1:ScaledObject", "chat")
    for trigger in scaler.inputs["spec"]["triggers"]:
        trigger["metadata"]["serverAddress"] = "http://prometheus-operated.monitoring.svc:9090"
    found = [f for f in findings(world_of("prod", plan), REQUIRED) if f.urn == scaler.urn]
    assert len(found) == 1
    assert (
        found[0].message.startswith("cannot evaluate")
        and "monitoring/prometheus-operated" in found[0].message
    )


def test_an_external_name_to_nowhere_cannot_be_evaluated():
    plan = mutable_plan("dev")
    _enforce(plan)
    [alias] = [r for r in plan.resources if r.name == "dev-inference-chat-service"]
    assert alias.inputs["spec"]["type"] == "ExternalName"
    alias.inputs["spec"]["externalName"] = "missing.keda.svc.cluster.local"
    found = [f for f in findings(world_of("dev", plan), REQUIRED) if f.urn == alias.urn]
    assert (
        found
        and "cannot evaluate" in found[0].message
        and "missing.keda.svc.cluster.local" in found[0].message
    )


def test_metaflow_clients_are_read_from_the_config_the_plan_exports():
    plan = mutable_plan("dev")
    configs = plan.outputs["metaflow_config"]
    assert set(configs) == {"recsys", "search"}
    configs["search"]["METAFLOW_SERVICE_INTERNAL_URL"] = (
        "http://metaflow-meta.metaflow.svc.cluster.local:8080"
    )
    found = [f for f in findings(world_of("dev", plan), REQUIRED) if "Metaflow" in f.message]
    assert len(found) == 1
    assert "namespace search" in found[0].message and "no Service metaflow/metaflow-meta" in found[0].message
    del plan.outputs["metaflow_config"]
    found = [f for f in findings(world_of("dev", plan), REQUIRED) if "Metaflow" in f.message]
    assert [f.message.split(":")[0] for f in found] == [
        "cannot evaluate workflow steps -> Metaflow metadata service"
    ]


def test_an_endpoint_without_its_service_cannot_be_evaluated():
    plan = mutable_plan("prod")
    plan.resources[:] = [r for r in plan.resources if r.name != "prod-inference-ranker-service"]
    found = [f for f in findings(world_of("prod", plan), REQUIRED) if "endpoint 'ranker'" in f.message]
    assert len(found) == 1 and "no Service recsys/ranker" in found[0].message


# --- forbidden flows --------------------------------------------------------------------------------------


def test_qdrant_open_to_every_namespace_is_a_finding():
    plan = mutable_plan("prod")
    clients = resource(plan, NETPOL, "vectordb-clients")
    clients.inputs["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    found = findings(world_of("prod", plan), FORBIDDEN)
    assert found and {f.urn for f in found} == {clients.urn}
    assert "only Qdrant's declared clients" in found[0].message and "6333/TCP" in found[0].message
    assert "default" in found[0].message.split("any pod in namespaces ")[1]


def test_team_ingress_from_every_namespace_is_a_finding():
    plan = mutable_plan("prod")
    same = resource(plan, NETPOL, "teams-recsys-netpol-allow-same-namespace")
    same.inputs["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    found = findings(world_of("prod", plan), FORBIDDEN)
    assert found and {f.urn for f in found} == {same.urn}
    assert {f.message.split(":")[0] for f in found} == {
        "other teams must not reach team 'recsys' pods (tenant isolation); only the serving port of 'recsys' "
        "endpoints is shared",
        # recsys's notebook servers (prod runs JupyterHub) are among its pods.
        "only JupyterHub (jupyterhub) and team 'recsys' itself may reach team 'recsys' notebook servers",
    }
    assert "any pod in namespaces research, search" in found[0].message


def test_the_endpoints_serving_port_is_shared_but_its_other_ports_are_not():
    plan = mutable_plan("prod")
    ranker = resource(plan, NETPOL, "inference-ranker-netpol")
    assert findings(world_of("prod", plan), FORBIDDEN) == []
    ranker.inputs["spec"]["ingress"][0]["ports"] = []  # every port of the ranker pods, to every namespace
    found = findings(world_of("prod", plan), FORBIDDEN)
    assert found and {f.urn for f in found} == {ranker.urn}


def test_a_metaflow_policy_that_selects_no_pod_leaves_the_service_open():
    plan = mutable_plan("dev")
    assert findings(world_of("dev", plan), FORBIDDEN) == []
    metaflow = resource(plan, NETPOL, "orchestrator-search-metaflow-netpol")  # one policy per team's service
    metaflow.inputs["spec"]["podSelector"] = {
        "matchLabels": {"app.kubernetes.io/part-of": "metaflow-service"}
    }
    service = resource(plan, "kubernetes:apps/v1:StatefulSet", "orchestrator-search-metaflow-metadata")
    found = findings(world_of("dev", plan), FORBIDDEN)
    assert [f.urn for f in found] == [service.urn]
    assert "no NetworkPolicy isolates it for ingress" in found[0].message


# --- NetworkPolicy semantics ------------------------------------------------------------------------------


def _pod(ns: str, labels: dict[str, str] | None = None, *ports: tuple[str, int]) -> Pod:
    return Pod(ns, labels or {}, tuple(Port(n, p, "TCP") for n, p in ports), f"pod {ns}/{labels}")


def _policy(ns: str, selector, *, ingress=None, egress=None, types=None) -> Policy:
    types = types or ["Ingress", *(["Egress"] if egress else [])]
    return Policy(ns, "p", selector, ingress or [], egress or [], frozenset(types), f"urn:{ns}")


def _net(policies, namespaces=None, services=None) -> Network:
    labels = {ns: {NAMESPACE_NAME_LABEL: ns, **extra} for ns, extra in (namespaces or {}).items()}
    by_ns: dict[str, list[Policy]] = {}
    for p in policies:
        by_ns.setdefault(p.namespace, []).append(p)
    return Network(
        labels,
        [],
        services or {},
        by_ns,
        ipaddress.IPv4Network("10.0.0.0/16"),
        (ipaddress.IPv4Network("172.20.0.0/16"),),
    )


NAMESPACES = {"a": {"team": "yes"}, "b": {"team": "yes"}, "c": {}}


def test_a_pod_no_policy_selects_is_not_isolated():
    net = _net([_policy("b", {"matchLabels": {"role": "db"}})], NAMESPACES)
    assert evaluate(net, Source(pod=_pod("a")), _pod("b", {"role": "web"}), 80, "TCP", None).allowed
    assert not evaluate(net, Source(pod=_pod("a")), _pod("b", {"role": "db"}), 80, "TCP", None).allowed


def test_namespace_and_pod_selector_in_one_peer_is_an_and_in_two_peers_an_or():
    dst = _pod("b", {"role": "db"})
    both = {
        "namespaceSelector": {"matchLabels": {"team": "yes"}},
        "podSelector": {"matchLabels": {"role": "api"}},
    }
    one_peer = _net([_policy("b", {}, ingress=[{"from": [both]}])], NAMESPACES)
    two_peers = _net(
        [
            _policy(
                "b",
                {},
                ingress=[
                    {
                        "from": [
                            {"namespaceSelector": both["namespaceSelector"]},
                            {"podSelector": both["podSelector"]},
                        ]
                    }
                ],
            )
        ],
        NAMESPACES,
    )
    from_a_web = Source(pod=_pod("a", {"role": "web"}))
    from_a_api = Source(pod=_pod("a", {"role": "api"}))
    from_c_api = Source(pod=_pod("c", {"role": "api"}))
    assert not evaluate(one_peer, from_a_web, dst, 5432, "TCP", None).allowed
    assert evaluate(one_peer, from_a_api, dst, 5432, "TCP", None).allowed
    assert not evaluate(one_peer, from_c_api, dst, 5432, "TCP", None).allowed
    # Two peers: any pod of a team namespace, or an api pod of the policy's own namespace b.
    assert evaluate(two_peers, from_a_web, dst, 5432, "TCP", None).allowed
    assert not evaluate(two_peers, from_c_api, dst, 5432, "TCP", None).allowed
    assert evaluate(two_peers, Source(pod=_pod("b", {"role": "api"})), dst, 5432, "TCP", None).allowed


def test_policies_are_a_union_and_each_direction_isolates_separately():
    deny = _policy("b", {}, types=["Ingress"])
    allow = _policy("b", {}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "yes"}}}]}])
    net = _net([deny, allow], NAMESPACES)
    assert evaluate(net, Source(pod=_pod("a")), _pod("b"), 80, "TCP", None).allowed
    assert not evaluate(net, Source(pod=_pod("c")), _pod("b"), 80, "TCP", None).allowed
    # Egress of b is not isolated by ingress-only policies.
    assert evaluate(net, Source(pod=_pod("b")), _pod("c"), 80, "TCP", None).allowed


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    def types(spec):
        item = KubeObject(
            {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"}, "spec": spec}, "u"
        )
        return _policy_of(item).types

    assert types({"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}) == {"Ingress", "Egress"}
    assert types({"podSelector": {}, "ingress": [{}]}) == {"Ingress"}
    assert types({"podSelector": {}, "policyTypes": ["Egress"]}) == {"Egress"}
    # Ingress isolated with no ingress rule: nothing gets in, not even from the same namespace.
    net = _net([_policy("a", {}, egress=[{"to": [{"podSelector": {}}]}])], NAMESPACES)
    assert not evaluate(net, Source(pod=_pod("a")), _pod("a"), 80, "TCP", None).allowed
    assert not evaluate(net, Source(pod=_pod("a")), _pod("b"), 80, "TCP", None).allowed  # egress to b refused


def test_named_ports_resolve_on_the_destination_and_end_port_is_a_range():
    named = _net([_policy("b", {}, ingress=[{"ports": [{"port": "http", "protocol": "TCP"}]}])], NAMESPACES)
    dst = _pod("b", {}, ("http", 8000))
    assert evaluate(named, Source(pod=_pod("a")), dst, 8000, "TCP", None).allowed
    assert not evaluate(named, Source(pod=_pod("a")), dst, 8001, "TCP", None).allowed
    assert not evaluate(named, Source(pod=_pod("a")), dst, 8000, "UDP", None).allowed
    ranged = _net([_policy("b", {}, ingress=[{"ports": [{"port": 9000, "endPort": 9010}]}])], NAMESPACES)
    assert evaluate(ranged, Source(pod=_pod("a")), dst, 9005, "TCP", None).allowed
    assert not evaluate(ranged, Source(pod=_pod("a")), dst, 9011, "TCP", None).allowed


def test_ip_blocks_match_pod_addresses_from_the_vpc_and_partial_overlap_cannot_be_evaluated():
    whole = _net([_policy("b", {}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}])], NAMESPACES)
    assert evaluate(whole, Source(pod=_pod("a")), _pod("b"), 80, "TCP", None).allowed
    excepted = _net(
        [
            _policy(
                "b", {}, ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]
            )
        ],
        NAMESPACES,
    )
    assert not evaluate(excepted, Source(pod=_pod("a")), _pod("b"), 80, "TCP", None).allowed
    part = _net([_policy("b", {}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.1.0/24"}}]}])], NAMESPACES)
    with pytest.raises(Unknown, match="cannot evaluate ipBlock"):
        evaluate(part, Source(pod=_pod("a")), _pod("b"), 80, "TCP", None)


def test_egress_through_a_cluster_ip_needs_a_peer_matching_the_service_selector():
    """VPC CNI: the source's probe sees the ClusterIP, admitted only for peers whose podSelector matches the
    Service's selector (amazon-network-policy-controller-k8s getMatchingServiceClusterIPs)."""
    dst = _pod("b", {"app": "api", "tier": "web"}, ("http", 8000))
    service = Service("b", "api", {"app": "api"}, (ServicePort("http", 80, "TCP", "http"),))
    narrow = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api", "tier": "web"}}}
    net = _net(
        [_policy("a", {}, egress=[{"to": [narrow]}], types=["Egress"])], NAMESPACES, {("b", "api"): service}
    )
    net.pods.append(dst)
    src = Source(pod=_pod("a"))
    assert evaluate(net, src, dst, 8000, "TCP", None).allowed  # straight to the pod: the spec allows it
    [hop] = resolve(net, service, 80)
    assert hop.port == 8000
    assert hop.service_port == 80
    assert not evaluate(
        net, src, hop.pod, hop.port, "TCP", service, 80
    ).allowed  # through the ClusterIP: refused
    exact = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}
    net.policies["a"][0].egress[0]["to"] = [exact]
    assert evaluate(net, src, hop.pod, hop.port, "TCP", service, 80).allowed
    # An ipBlock admits a ClusterIP only if it covers the service CIDR, on the Service's own port.
    net.policies["a"][0].egress[0] = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 80}]}
    assert evaluate(net, src, hop.pod, hop.port, "TCP", service, 80).allowed
    net.policies["a"][0].egress[0]["ports"] = [{"port": 8000}]
    assert not evaluate(net, src, hop.pod, hop.port, "TCP", service, 80).allowed


def test_host_network_pods_are_never_isolated():
    net = _net([_policy("b", {}, types=["Ingress"])], NAMESPACES)
    host = Pod("b", {}, (), "host pod", host_network=True)
    assert evaluate(net, Source(pod=_pod("a")), host, 80, "TCP", None).allowed


def test_the_model_reads_namespaces_pods_and_coredns_from_the_plan():
    net = network(world_of("dev"))
    assert net.namespaces["search"][NAMESPACE_NAME_LABEL] == "search"
    assert net.namespaces["search"]["mlstack.io/team"] == "search"
    assert any(
        p.namespace == "keda" and p.labels.get("app.kubernetes.io/component") == "interceptor"
        for p in net.pods
    )
    assert ("kube-system", "kube-dns") in net.services
    assert {"search", "recsys", "default"} <= set(net.modelled)


# --- the shipped stacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_are_clean(stack):
    found = findings(world_of(stack), *NETWORK_CHECKS)
    assert unwaived(stack, found) == []
    # What the shipped waivers cover (staging, prod: issue 19) is only the Prometheus no Service answers yet.
    for waived in (f for f in found if f not in unwaived(stack, found)):
        assert waived.policy_id == REQUIRED and waived.message.startswith("cannot evaluate KEDA queries")
        assert "prometheus" in waived.message and ":ScaledObject::" in waived.urn
