"""Network reachability: is NetworkPolicy enforced, and do the policies allow exactly the flows the platform needs?

Three checks:

* ``MLS-SIM-NET-001``: the plan creates NetworkPolicies but nothing enforces them (the ``vpc-cni`` add-on's
  network policy agent is off, and no other policy engine is installed).
* ``MLS-SIM-NET-002``: a flow the platform needs (DNS, callers to their endpoints through the KEDA HTTP
  interceptor, workflow pods to the Metaflow metadata service, clients to Qdrant, KEDA to its scaler addresses,
  OpenCost to the Prometheus its PROMETHEUS_SERVER_ENDPOINT names)
  would be refused once enforcement is on.
* ``MLS-SIM-NET-003``: a flow the platform must refuse (team to team, anyone but Qdrant's or Metaflow's clients
  to those services) would be allowed.

Flows are evaluated with the Kubernetes NetworkPolicy semantics
(https://kubernetes.io/docs/concepts/services-networking/network-policies/), plus the one place where the VPC CNI
implementation differs and the platform depends on it: egress to a Service ClusterIP (see
:func:`_egress_allows`). Pods are the pod templates of the plan and of the rendered charts, the add-on CoreDNS
pods, and one modelled run-time pod per namespace (a workflow step, a notebook: no labels, any port), because
team namespaces hold pods that no manifest of the plan describes. ``docs/simulation.md`` lists what is not
modelled.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pulumi_policy import Severity

from mlstack.simulate.framework import SimResult, World, derived, sim_check, unique
from mlstack.simulate.helm import RELEASE_TYPE, KubeObject
from mlstack.simulate.objects import all_objects, label_selector_matches, workloads

ADDON_TYPE = "aws:eks/addon:Addon"
VPC_CNI = "vpc-cni"
# amazon-vpc-cni-k8s@v1.20.4:charts/aws-vpc-cni/values.yaml:125 (`enableNetworkPolicy: "false"`, rendered into
# the amazon-vpc-cni ConfigMap as enable-network-policy-controller); EKS user guide cni-network-policy-configure
# ("Enter the JSON key "enableNetworkPolicy": and value "true" in Configuration values").
ENABLE_NETWORK_POLICY = "enableNetworkPolicy"
# Charts that bring their own NetworkPolicy engine (a CNI or a policy-only agent). None is packaged in
# shared/charts today; a release of one of them counts as enforcement.
POLICY_ENGINE_CHARTS = frozenset({"tigera-operator", "calico", "cilium", "antrea", "kube-router"})

# The namespace label the control plane sets on every namespace (Kubernetes >= 1.22, immutable):
# https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# CoreDNS of the EKS add-on, modelled on the upstream add-on manifest (kubernetes/kubernetes
# cluster/addons/dns/coredns/coredns.yaml.base: pod and Service label k8s-app=kube-dns, container ports dns 53/UDP,
# dns-tcp 53/TCP, metrics 9153/TCP). The EKS build's manifest is not published; its labels are the same by the
# user guide's `-l k8s-app=kube-dns` commands, not verified against the add-on itself.
DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORTS = (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))
# EKS gives Services a ClusterIP from 10.100.0.0/16 or 172.20.0.0/16 when the cluster sets no serviceIpv4Cidr
# (EKS API reference, KubernetesNetworkConfigRequest.serviceIpv4Cidr).
EKS_DEFAULT_SERVICE_CIDRS = (ipaddress.IPv4Network("10.100.0.0/16"), ipaddress.IPv4Network("172.20.0.0/16"))
# A namespace that exists in every cluster and that no tenant owns: its modelled pod stands for "anyone else".
OUTSIDER_NAMESPACE = "default"
# The pods the Prometheus Operator creates for a Prometheus (mlstack.simulate.operator_made).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/managed-by": "prometheus-operator"}
# A port no manifest declares, to ask "is anything at all allowed to a pod that may listen anywhere".
_UNLISTED_PORT = 40000


# --- the model ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: str


@dataclass(frozen=True)
class Pod:
    """A pod template (or a modelled pod): where it runs, its labels, the ports it declares."""

    namespace: str
    labels: Mapping[str, str]
    ports: tuple[Port, ...]
    label: str  # for messages: "Deployment search/chat" or "any pod in namespace search"
    urn: str | None = None
    host_network: bool = False
    # A modelled run-time pod may listen on any port, not only the declared ones.
    any_port: bool = False
    # The port its pod template asks scrapers to use (annotation prometheus.io/port), if any.
    scrape_port: int | None = None

    def named_port(self, name: str, protocol: str) -> int | None:
        for port in self.ports:
            if port.name == name and port.protocol == protocol:
                return port.number
        return None


@dataclass(frozen=True)
class Source:
    """Where a flow starts: a pod, or an address outside the pod network (the internal ALB in the VPC)."""

    pod: Pod | None = None
    network: ipaddress.IPv4Network | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.pod.label if self.pod else self.label


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    protocol: str
    target: int | str


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    selector: Mapping[str, str] | None
    ports: tuple[ServicePort, ...]
    external_name: str = ""
    headless: bool = False
    urn: str | None = None

    def port(self, number: int, protocol: str = "TCP") -> ServicePort | None:
        for item in self.ports:
            if item.port == number and item.protocol == protocol:
                return item
        return None


@dataclass
class Policy:
    """One NetworkPolicy, with the directions it isolates (``policyTypes``, defaulted as the API server does)."""

    namespace: str
    name: str
    pod_selector: Mapping[str, Any]
    ingress: list[dict[str, Any]]
    egress: list[dict[str, Any]]
    types: frozenset[str]
    urn: str

    @property
    def label(self) -> str:
        return f"NetworkPolicy {self.namespace}/{self.name}"


@dataclass
class Network:
    """Everything the reachability checks read, indexed once per world."""

    namespaces: dict[str, dict[str, str]]
    pods: list[Pod]
    services: dict[tuple[str, str], Service]
    policies: dict[str, list[Policy]]  # by namespace
    vpc_cidr: ipaddress.IPv4Network | None
    service_cidrs: tuple[ipaddress.IPv4Network, ...]
    modelled: dict[str, Pod] = field(default_factory=dict)  # namespace -> its modelled run-time pod

    def pods_of(self, service: Service) -> list[Pod]:
        if not service.selector:
            return []
        return [
            pod
            for pod in self.pods
            if pod.namespace == service.namespace and _labels_match(service.selector, pod.labels)
        ]


def _num(value: Any) -> int:
    return int(float(value))


def _port_ref(value: Any) -> int | str:
    """A port given as a number (wire format floats) or a name."""
    if isinstance(value, str) and not value.isdigit():
        return value
    return _num(value)


def _pod_of(item: KubeObject, spec: dict[str, Any]) -> Pod:
    template = item.obj.get("spec") or {}
    if item.kind == "CronJob":
        template = ((template.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    elif item.kind != "Pod":
        template = template.get("template") or {}
    labels = (
        (item.obj.get("metadata") or {}).get("labels")
        if item.kind == "Pod"
        else (template.get("metadata") or {}).get("labels")
    )
    annotations = (
        (item.obj.get("metadata") or {}).get("annotations")
        if item.kind == "Pod"
        else (template.get("metadata") or {}).get("annotations")
    ) or {}
    scrape = str(annotations.get("prometheus.io/port", ""))
    ports = tuple(
        Port(str(p.get("name") or ""), _num(p["containerPort"]), str(p.get("protocol") or "TCP"))
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if p.get("containerPort") is not None
    )
    return Pod(
        namespace=item.namespace,
        labels=dict(labels or {}),
        ports=ports,
        label=item.label,
        urn=item.urn,
        host_network=bool(spec.get("hostNetwork")),
        scrape_port=int(scrape) if scrape.isdigit() else None,
    )


def _service_of(item: KubeObject) -> Service:
    spec = item.obj.get("spec") or {}
    ports = tuple(
        ServicePort(
            str(p.get("name") or ""),
            _num(p["port"]),
            str(p.get("protocol") or "TCP"),
            _port_ref(p.get("targetPort", p["port"])),
        )
        for p in spec.get("ports") or []
    )
    return Service(
        namespace=item.namespace,
        name=item.name,
        selector=spec.get("selector"),
        ports=ports,
        external_name=str(spec.get("externalName") or "") if spec.get("type") == "ExternalName" else "",
        headless=spec.get("clusterIP") == "None",
        urn=item.urn,
    )


def _policy_of(item: KubeObject) -> Policy:
    spec = item.obj.get("spec") or {}
    ingress = list(spec.get("ingress") or [])
    egress = list(spec.get("egress") or [])
    types = spec.get("policyTypes")
    if not types:
        # "If no policyTypes are specified on a NetworkPolicy then by default Ingress will always be set and
        # Egress will be set if the NetworkPolicy has any egress rules." (kubernetes.io network-policies)
        types = ["Ingress", *(["Egress"] if egress else [])]
    return Policy(
        namespace=item.namespace,
        name=item.name,
        pod_selector=spec.get("podSelector") or {},
        ingress=ingress,
        egress=egress,
        types=frozenset(types),
        urn=item.urn,
    )


def _cidrs_of_cluster(world: World) -> tuple[ipaddress.IPv4Network, ...]:
    for cluster in world.resources("aws:eks/cluster:Cluster"):
        config = cluster.inputs.get("kubernetesNetworkConfig") or {}
        cidr = config.get("serviceIpv4Cidr")
        if isinstance(cidr, str):
            return (ipaddress.IPv4Network(cidr),)
    return EKS_DEFAULT_SERVICE_CIDRS


@derived
def network(world: World) -> Network:
    """The pod network of the plan: namespaces with labels, pods, Services and NetworkPolicies."""
    namespaces: dict[str, dict[str, str]] = {}
    pods: list[Pod] = []
    services: dict[tuple[str, str], Service] = {}
    policies: dict[str, list[Policy]] = {}
    for item in all_objects(world):
        if item.kind == "Namespace":
            namespaces.setdefault(item.name, {}).update((item.obj.get("metadata") or {}).get("labels") or {})
        elif item.kind == "Service":
            services[(item.namespace, item.name)] = _service_of(item)
        elif item.kind == "NetworkPolicy":
            policies.setdefault(item.namespace, []).append(_policy_of(item))
        if item.namespace:
            namespaces.setdefault(item.namespace, {})
    pods.extend(_pod_of(item, spec) for item, spec in workloads(world))
    # CoreDNS comes with the EKS coredns add-on, not as a plan object.
    pods.append(
        Pod(
            DNS_NAMESPACE,
            DNS_LABELS,
            tuple(Port(*p) for p in DNS_PORTS),
            "CoreDNS (EKS coredns add-on) in kube-system",
        )
    )
    services[(DNS_NAMESPACE, DNS_SERVICE)] = Service(
        DNS_NAMESPACE,
        DNS_SERVICE,
        DNS_LABELS,
        tuple(ServicePort(name, number, proto, number) for name, number, proto in DNS_PORTS),
    )
    for name in (DNS_NAMESPACE, OUTSIDER_NAMESPACE):
        namespaces.setdefault(name, {})
    for name, labels in namespaces.items():
        labels[NAMESPACE_NAME_LABEL] = name
    modelled = {
        name: Pod(name, {}, (), f"any pod in namespace {name}", any_port=True) for name in sorted(namespaces)
    }
    pods.extend(modelled.values())
    net = world.spec.network
    vpc = net.existing_vpc.cidr if net.existing_vpc is not None else net.cidr
    return Network(namespaces, pods, services, policies, vpc, _cidrs_of_cluster(world), modelled)


# --- selectors and peers -----------------------------------------------------------------------------------


def _labels_match(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a label set; an empty selector matches all.

    A plain ``{key: value}`` mapping (a Service selector) is read as matchLabels.
    """
    if selector is None:
        return True
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    return label_selector_matches(selector, labels)


class Unknown(Exception):
    """A fact the simulation cannot evaluate; its message says which."""


def _block_matches(block: Mapping[str, Any], ranges: Sequence[ipaddress.IPv4Network], what: str) -> bool:
    """Does an ipBlock cover every address of ``ranges``, none of them, or (Unknown) only some?"""
    cidr = ipaddress.ip_network(str(block.get("cidr")), strict=False)
    excepts = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    if cidr.version != 4:
        return False
    verdicts: set[bool | None] = set()
    for r in ranges:
        if r.subnet_of(cidr) and not any(r.overlaps(e) for e in excepts):  # type: ignore[arg-type]
            verdicts.add(True)
        elif not r.overlaps(cidr) or any(r.subnet_of(e) for e in excepts):  # type: ignore[arg-type]
            verdicts.add(False)
        else:
            verdicts.add(None)
    if verdicts == {True}:
        return True
    if verdicts == {False}:
        return False
    raise Unknown(
        f"cannot evaluate ipBlock {cidr} against {what} {', '.join(map(str, ranges))}: it covers part of the range, "
        "so the verdict depends on the address a pod gets"
    )


def _peer_selects_pod(
    net: Network,
    peer: Mapping[str, Any],
    policy_namespace: str,
    pod: Pod | None,
    source: Source | None = None,
) -> bool:
    """kubernetes.io network-policies, "Behavior of to and from selectors": podSelector alone selects pods of the
    policy's namespace; namespaceSelector alone every pod of the selected namespaces; both in one peer the
    selected pods of the selected namespaces; ipBlock addresses (pod addresses come from the VPC with VPC CNI)."""
    if "ipBlock" in peer:
        if pod is not None and not pod.host_network:
            if net.vpc_cidr is None:
                raise Unknown("cannot evaluate an ipBlock peer: the VPC CIDR is not known")
            return _block_matches(peer["ipBlock"], [net.vpc_cidr], "pod addresses (the VPC CIDR)")
        if source is not None and source.network is not None:
            return _block_matches(peer["ipBlock"], [source.network], source.label)
        if pod is not None and net.vpc_cidr is not None:  # host-network pod: a node address in the VPC
            return _block_matches(peer["ipBlock"], [net.vpc_cidr], "node addresses (the VPC CIDR)")
        return False
    if pod is None or pod.host_network:
        return False
    if "namespaceSelector" in peer:
        if not _labels_match(peer.get("namespaceSelector") or {}, net.namespaces.get(pod.namespace, {})):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or _labels_match(peer.get("podSelector") or {}, pod.labels)


def _port_matches(rule_ports: Sequence[Mapping[str, Any]], port: int, protocol: str, dst: Pod | None) -> bool:
    """A rule's ports against a destination port: none listed allows all; a port may be a number, a range
    (``endPort``) or a name resolved on the destination pod; protocol defaults to TCP."""
    if not rule_ports:
        return True
    for item in rule_ports:
        if str(item.get("protocol") or "TCP") != protocol:
            continue
        ref = item.get("port")
        if ref is None:
            return True
        ref = _port_ref(ref)
        if isinstance(ref, str):
            if dst is not None and dst.named_port(ref, protocol) == port:
                return True
            continue
        end = item.get("endPort")
        if ref == port or (end is not None and ref <= port <= _num(end)):
            return True
    return False


def _selecting(net: Network, pod: Pod, direction: str) -> list[Policy]:
    """The policies that isolate ``pod`` in ``direction`` (none for host-network pods: VPC CNI does not apply
    policies in host networking mode, amazon-vpc-cni-k8s@v1.20.4:docs/network-policy-faq.md)."""
    if pod.host_network:
        return []
    return [
        p
        for p in net.policies.get(pod.namespace, [])
        if direction in p.types and _labels_match(p.pod_selector, pod.labels)
    ]


# --- one flow ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # When refused: the direction and the policies that isolate that side.
    direction: str = ""
    isolating: tuple[Policy, ...] = ()
    # When allowed against a wish: the policies whose rules admit it (empty: nothing isolates the pod).
    admitting: tuple[Policy, ...] = ()


def _egress_allows(
    net: Network, src: Pod, dst: Pod, port: int, protocol: str, via: Service | None, via_port: int | None
) -> tuple[bool, list[Policy], list[Policy]]:
    """Egress of ``src`` to ``dst``. Through a (non-headless) Service, VPC CNI's eBPF probe on the source pod's
    veth sees the ClusterIP before kube-proxy's DNAT, so the policy controller adds a Service's ClusterIP to a
    peer only when the peer's podSelector matches the Service's selector, and an ipBlock must cover the
    service CIDR with the Service's own port (aws/amazon-network-policy-controller-k8s@v1.1.7:
    pkg/resolvers/endpoints.go computeEgressEndpoints and getMatchingServiceClusterIPs)."""
    selecting = _selecting(net, src, "Egress")
    if not selecting:
        return True, [], []
    cluster_ip = via is not None and not via.headless and via.selector is not None
    # The port the source's probe sees: the Service's for a ClusterIP, the pod's otherwise.
    seen_port = via_port if cluster_ip and via_port is not None else port
    admitting = []
    for policy in selecting:
        for rule in policy.egress:
            peers = rule.get("to") or []
            ports = rule.get("ports") or []
            if not peers:
                hit = _port_matches(ports, seen_port, protocol, dst)
            else:
                hit = False
                for peer in peers:
                    if cluster_ip and via is not None:
                        if "ipBlock" in peer:
                            matched = _block_matches(peer["ipBlock"], net.service_cidrs, "the service CIDR")
                            hit = matched and _port_matches(ports, seen_port, protocol, None)
                        else:
                            matched = _peer_selects_pod(net, peer, policy.namespace, dst) and _labels_match(
                                peer.get("podSelector") or {}, via.selector or {}
                            )
                            hit = matched and _port_matches(ports, port, protocol, dst)
                    else:
                        hit = _peer_selects_pod(net, peer, policy.namespace, dst) and _port_matches(
                            ports, port, protocol, dst
                        )
                    if hit:
                        break
            if hit:
                admitting.append(policy)
                break
    return bool(admitting), selecting, admitting


def _ingress_allows(
    net: Network, source: Source, dst: Pod, port: int, protocol: str
) -> tuple[bool, list[Policy], list[Policy]]:
    """Ingress of ``dst`` (after DNAT: the pod's own port) from ``source``."""
    selecting = _selecting(net, dst, "Ingress")
    if not selecting:
        return True, [], []
    admitting = []
    for policy in selecting:
        for rule in policy.ingress:
            peers = rule.get("from") or []
            if not _port_matches(rule.get("ports") or [], port, protocol, dst):
                continue
            if not peers or any(
                _peer_selects_pod(net, peer, policy.namespace, source.pod, source) for peer in peers
            ):
                admitting.append(policy)
                break
    return bool(admitting), selecting, admitting


def evaluate(
    net: Network,
    source: Source,
    dst: Pod,
    port: int,
    protocol: str,
    via: Service | None = None,
    via_port: int | None = None,
) -> Verdict:
    """Is ``source`` -> ``dst`` on ``port``/``protocol`` (optionally through Service ``via``) allowed with
    enforcement on? Allowed only if the source's egress and the destination's ingress both allow it: each side
    is isolated once any policy selects it for that direction, and then allowed by the union of the rules."""
    admitting: list[Policy] = []
    if source.pod is not None:
        ok, selecting, egress_admit = _egress_allows(net, source.pod, dst, port, protocol, via, via_port)
        if not ok:
            return Verdict(False, "egress", tuple(selecting))
        admitting += egress_admit
    ok, selecting, ingress_admit = _ingress_allows(net, source, dst, port, protocol)
    if not ok:
        return Verdict(False, "ingress", tuple(selecting))
    return Verdict(True, admitting=tuple(ingress_admit))


# --- Services and addresses --------------------------------------------------------------------------------


def _service_by_host(net: Network, host: str, namespace: str) -> Service | None:
    """``name``, ``name.ns``, ``name.ns.svc`` or ``name.ns.svc.cluster.local`` -> the Service, if the plan has it."""
    parts = host.rstrip(".").split(".")
    if len(parts) == 1:
        return net.services.get((namespace, parts[0]))
    if len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"]):
        return net.services.get((parts[1], parts[0]))
    return None


@dataclass(frozen=True)
class Hop:
    """A Service a client connects to, resolved to the pods behind it and their port."""

    service: Service
    pod: Pod
    port: int  # the pod's port after DNAT
    protocol: str
    service_port: int  # the port the client connects to


def resolve(net: Network, service: Service, port: int, protocol: str = "TCP") -> list[Hop]:
    """The pods (and their port) that ``service:port`` reaches. An ExternalName Service is a DNS CNAME: the client
    connects to the target Service on the same port. Raises Unknown when the plan lacks what to resolve."""
    seen = set()
    while service.external_name:
        if (service.namespace, service.name) in seen:
            raise Unknown(f"ExternalName loop at Service {service.namespace}/{service.name}")
        seen.add((service.namespace, service.name))
        target = _service_by_host(net, service.external_name, service.namespace)
        if target is None:
            raise Unknown(
                f"cannot evaluate: ExternalName Service {service.namespace}/{service.name} points at "
                f"{service.external_name}, which is no Service of the plan"
            )
        service = target
    svc_port = service.port(port, protocol)
    if svc_port is None:
        raise Unknown(
            f"cannot evaluate: Service {service.namespace}/{service.name} has no {protocol} port {port}"
        )
    hops = []
    pods = net.pods_of(service)
    if not pods:
        raise Unknown(
            f"cannot evaluate: no pod of the plan matches the selector of Service {service.namespace}/{service.name}"
        )
    for pod in pods:
        ref = svc_port.target
        number = pod.named_port(ref, protocol) if isinstance(ref, str) else ref
        if number is None:
            raise Unknown(
                f"cannot evaluate: {pod.label} declares no {protocol} port named '{ref}' for Service "
                f"{service.namespace}/{service.name}"
            )
        hops.append(Hop(service, pod, number, protocol, svc_port.port))
    return hops


# --- the catalogue of required flows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Required:
    """A flow the platform needs: ``sources`` reach Service ``namespace/service`` on ``port``."""

    why: str
    sources: tuple[Source, ...]
    namespace: str
    service: str
    port: int
    protocol: str = "TCP"
    # Blamed when the Service itself cannot be found (the object that names the address).
    owner_urn: str | None = None
    # Set when the catalogue itself cannot say what the flow is: reported as is.
    unknown: str = ""
    # Destinations reached by pod address rather than through a Service (JupyterHub's proxy routes to each notebook
    # server's pod IP); when set, ``service`` only names them in messages.
    pods: tuple[Pod, ...] = ()


def _team_names(world: World) -> list[str]:
    return [team.name for team in world.spec.teams]


def _clients_in(net: Network, namespaces: Iterable[str]) -> tuple[Source, ...]:
    """The run-time pods of these namespaces (workflow steps, applications): the clients of shared services.
    The plan's own servers there (an endpoint's vLLM pods) are not clients of anything but DNS."""
    return tuple(Source(pod=net.modelled[ns]) for ns in sorted(set(namespaces)) if ns in net.modelled)


@dataclass(frozen=True)
class MetaflowClient:
    """One team's Metaflow configuration: where its steps run and the metadata service they call."""

    namespace: str
    url: str
    service_namespace: str
    service: str
    port: int


def metaflow_clients(world: World) -> list[MetaflowClient]:
    """From the plan's ``metaflow_config`` output (one config per team): the namespace its steps run in
    (``METAFLOW_KUBERNETES_NAMESPACE``) and the address pods use (``METAFLOW_SERVICE_INTERNAL_URL``, which Metaflow's
    Kubernetes and Argo plugins pass to the pods as their service URL; ``METAFLOW_SERVICE_URL`` when absent)."""
    configs = world.plan.outputs.get("metaflow_config") or {}
    clients = []
    for team, config in sorted(configs.items()) if isinstance(configs, dict) else []:
        if not isinstance(config, dict):
            continue
        url = config.get("METAFLOW_SERVICE_INTERNAL_URL") or config.get("METAFLOW_SERVICE_URL")
        parsed = urlparse(str(url or ""))
        host = parsed.hostname or ""
        parts = host.split(".")
        if len(parts) < 2:
            continue
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        namespace = str(config.get("METAFLOW_KUBERNETES_NAMESPACE") or team)
        clients.append(MetaflowClient(namespace, str(url), parts[1], parts[0], port))
    return clients


def _interceptors(net: Network) -> tuple[Source, ...]:
    """The pods that forward held requests: those behind the Services that ExternalName Services alias (the KEDA
    HTTP interceptor proxy), or, with no alias in the plan, the interceptor pods by the http-add-on chart's labels
    (kedacore/charts http-add-on 0.15.0 templates/interceptor/deployment.yaml, as rendered)."""
    pods: list[Pod] = []
    for service in net.services.values():
        if not service.external_name:
            continue
        target = _service_by_host(net, service.external_name, service.namespace)
        for pod in net.pods_of(target) if target is not None else []:
            if pod not in pods:
                pods.append(pod)
    if not pods:
        pods = [
            p
            for p in net.pods
            if p.labels.get("app.kubernetes.io/component") == "interceptor"
            and p.labels.get("app.kubernetes.io/part-of") == "keda-add-ons-http"
        ]
    return tuple(Source(pod=p) for p in pods)


def _objects(world: World, kind: str) -> list[KubeObject]:
    return [item for item in all_objects(world) if item.kind == kind]


def required_flows(world: World) -> Iterator[Required]:
    """The catalogue, derived from the spec and the plan (team list, endpoints, clients), each entry with its why."""
    net = network(world)
    # DNS: every pod resolves names through kube-dns (dnsPolicy ClusterFirst, the default).
    everyone = tuple(Source(pod=p) for p in net.pods if not p.host_network and p.namespace != DNS_NAMESPACE)
    for protocol in ("UDP", "TCP"):
        yield Required(
            f"DNS ({protocol} 53): every pod resolves Service names through kube-dns; TCP carries large answers",
            everyone,
            DNS_NAMESPACE,
            DNS_SERVICE,
            53,
            protocol,
        )
    # Inference: the owning team's pods call its endpoints through the endpoint's Service. A scale-to-zero
    # endpoint's Service is an ExternalName to the KEDA HTTP interceptor, which forwards to the backend Service
    # named by the HTTPScaledObject's scaleTargetRef: service, and port or portName (kedacore/http-add-on@v0.15.0:
    # config/crd/bases/http.keda.sh_httpscaledobjects.yaml).
    endpoints = {(e.team, e.name): e for e in world.spec.inference.endpoints if e.backend == "kubernetes"}
    for (team, name), endpoint in endpoints.items():
        service = net.services.get((team, name))
        if service is None:
            yield Required(
                f"endpoint '{name}': pods of its team '{team}' call it",
                _clients_in(net, [team]),
                team,
                name,
                endpoint.port,
            )
            continue
        for port in service.ports:
            yield Required(
                f"endpoint '{name}': pods of its team '{team}' call it on Service {team}/{name}:{port.port}",
                _clients_in(net, [team]),
                team,
                name,
                port.port,
                port.protocol,
            )
        if endpoint.exposure == "internal-alb" and net.vpc_cidr is not None:
            for hop_port in service.ports:
                yield Required(
                    f"endpoint '{name}': its internal ALB (target-type ip, in the VPC) sends to the pods",
                    (Source(network=net.vpc_cidr, label=f"the internal ALB (VPC {net.vpc_cidr})"),),
                    team,
                    name,
                    hop_port.port,
                    hop_port.protocol,
                )
    interceptors = _interceptors(net)
    for item in _objects(world, "HTTPScaledObject"):
        target = (item.obj.get("spec") or {}).get("scaleTargetRef") or {}
        why = f"scale-to-zero endpoint '{item.name}': the KEDA HTTP interceptor forwards held requests"
        backend = net.services.get((item.namespace, str(target.get("service"))))
        if target.get("port") is not None:
            target_port: int | None = _num(target["port"])
        else:
            named = [p.port for p in backend.ports if p.name == target.get("portName")] if backend else []
            target_port = named[0] if named else None
        if target_port is None:
            yield Required(
                why,
                interceptors,
                item.namespace,
                str(target.get("service")),
                0,
                owner_urn=item.urn,
                unknown=f"cannot evaluate {why}: scaleTargetRef names no port the plan's Service "
                f"{item.namespace}/{target.get('service')} has ({target.get('port') or target.get('portName')})",
            )
            continue
        yield Required(
            f"{why} to {target.get('service')}:{target_port}",
            interceptors,
            item.namespace,
            str(target.get("service")),
            target_port,
            owner_urn=item.urn,
        )
    # Workflows: each team's steps record runs in the metadata service their Metaflow config names.
    if world.spec.orchestrator.metaflow:
        clients = metaflow_clients(world)
        if not clients:
            yield Required(
                "workflow steps record runs in the Metaflow metadata service",
                (),
                world.spec.orchestrator.metaflow_namespace,
                "",
                0,
                unknown="cannot evaluate workflow steps -> Metaflow metadata service: the plan exports no "
                "metaflow_config with an in-cluster METAFLOW_SERVICE_INTERNAL_URL",
            )
        for client in clients:
            yield Required(
                f"workflow steps in namespace {client.namespace} record runs in the Metaflow metadata service "
                f"their config names ({client.url})",
                _clients_in(net, [client.namespace]),
                client.service_namespace,
                client.service,
                client.port,
            )
    # Events: each team's steps publish to the webhook their config names; the webhook EventSource and the team's
    # sensors reach the team's own JetStream bus, whose servers cluster with each other (components/events.py).
    if world.spec.orchestrator.argo_events.enabled:
        yield from _event_flows(world, net)
    # Vector search: the declared clients reach Qdrant's REST and gRPC ports; its replicas reach each other.
    vdb = world.spec.vector_db
    if vdb.enabled and vdb.engine == "qdrant":
        from components.vectordb import (
            QDRANT_GRPC_PORT,
            QDRANT_HTTP_PORT,
            QDRANT_P2P_PORT,
            QDRANT_RELEASE,
            SNAPSHOT_JOB,
            vector_db_clients,
        )

        qdrant_clients = vector_db_clients(world.spec)
        for port in (QDRANT_HTTP_PORT, QDRANT_GRPC_PORT):
            yield Required(
                f"Qdrant clients ({', '.join(qdrant_clients)}) reach Qdrant on {port}",
                _clients_in(net, qdrant_clients),
                vdb.namespace,
                QDRANT_RELEASE,
                port,
            )
        qdrant_pods = tuple(
            Source(pod=p)
            for p in net.pods
            if p.namespace == vdb.namespace and p.labels.get("app.kubernetes.io/instance") == QDRANT_RELEASE
        )
        if vdb.replicas > 1:
            yield Required(
                "Qdrant replicas replicate shards over the p2p (Raft) port",
                qdrant_pods,
                vdb.namespace,
                f"{QDRANT_RELEASE}-headless",
                QDRANT_P2P_PORT,
            )
        yield Required(
            "the snapshot job calls every Qdrant replica's REST API",
            tuple(Source(pod=p) for p in net.pods if p.labels.get("app.kubernetes.io/name") == SNAPSHOT_JOB),
            vdb.namespace,
            f"{QDRANT_RELEASE}-headless",
            QDRANT_HTTP_PORT,
        )
    # KEDA: the operator queries every in-cluster address its triggers name (Prometheus, external scalers). Its pods
    # carry app=keda-operator (kedacore/charts@v2.20.2:keda/templates/manager/deployment.yaml, as rendered).
    keda_operator = tuple(Source(pod=p) for p in net.pods if p.labels.get("app") == "keda-operator")
    if keda_operator:
        for item in _objects(world, "ScaledObject"):
            for trigger in (item.obj.get("spec") or {}).get("triggers") or []:
                meta = trigger.get("metadata") or {}
                address = meta.get("serverAddress") or meta.get("scalerAddress")
                if not isinstance(address, str):
                    continue
                parsed = urlparse(address if "://" in address else f"grpc://{address}")
                if not parsed.hostname or not parsed.port:
                    continue
                host = parsed.hostname
                if not (host.count(".") == 1 or ".svc" in host):
                    continue  # an address outside the cluster
                parts = host.split(".")
                yield Required(
                    f"KEDA queries the {trigger.get('type')} trigger address {address} of ScaledObject "
                    f"{item.namespace}/{item.name}",
                    keda_operator,
                    parts[1] if len(parts) > 1 else item.namespace,
                    parts[0],
                    parsed.port,
                    owner_urn=item.urn,
                )
    # JupyterHub: hub, proxy and the notebook servers KubeSpawner starts in the team namespaces.
    from mlstack.simulate.notebook_flows import notebook_required

    yield from notebook_required(net)
    yield from _grafana_required(world, net)
    # Prometheus clients configured by environment: OpenCost reads every allocation from the Prometheus its
    # PROMETHEUS_SERVER_ENDPOINT names (opencost/opencost-helm-chart@opencost-2.5.17:charts/opencost/templates/
    # deployment.yaml renders it from opencost.prometheus.internal; pkg/env PROMETHEUS_SERVER_ENDPOINT).
    yield from _prometheus_env_flows(world)


def _grafana_pods(world: World, net: Network) -> tuple[Pod, ...]:
    """The Grafana pods of the metrics release (components/observability.py GRAFANA_POD_NAME)."""
    from components.observability import GRAFANA_POD_NAME

    metrics = world.spec.metrics
    if not metrics.runs_grafana:
        return ()
    return tuple(
        p
        for p in net.pods
        if p.namespace == metrics.namespace and p.labels.get("app.kubernetes.io/name") == GRAFANA_POD_NAME
    )


def _grafana_required(world: World, net: Network) -> Iterator[Required]:
    """Grafana queries the in-cluster Prometheus through its Service (the data source kube-prometheus-stack
    provisions, mlstack/spec/observability.py PROMETHEUS_SERVICE)."""
    from mlstack.spec.observability import PROMETHEUS_PORT, PROMETHEUS_SERVICE

    grafana = _grafana_pods(world, net)
    if grafana:
        yield Required(
            "Grafana queries Prometheus, its data source",
            tuple(Source(pod=p) for p in grafana),
            world.spec.metrics.namespace,
            PROMETHEUS_SERVICE,
            PROMETHEUS_PORT,
        )


def _prometheus_env_flows(world: World) -> Iterator[Required]:
    """A workload whose container names an in-cluster ``PROMETHEUS_SERVER_ENDPOINT`` must reach that Service."""
    for item, spec in workloads(world):
        for container in spec.get("containers") or []:
            for variable in container.get("env") or []:
                if variable.get("name") != "PROMETHEUS_SERVER_ENDPOINT" or not isinstance(variable.get("value"), str):
                    continue
                address = variable["value"]
                parsed = urlparse(address)
                host = parsed.hostname or ""
                if not (host.count(".") == 1 or ".svc" in host):
                    continue  # a Prometheus outside the cluster
                parts = host.split(".")
                source = _pod_of(item, spec)
                yield Required(
                    f"{item.label} queries the Prometheus its PROMETHEUS_SERVER_ENDPOINT names ({address})",
                    (Source(pod=source),),
                    parts[1] if len(parts) > 1 else item.namespace,
                    parts[0],
                    parsed.port or (443 if parsed.scheme == "https" else 80),
                    owner_urn=item.urn,
                )


def _event_flows(world: World, net: Network) -> Iterator[Required]:
    """Argo Events' flows per team, from the plan's ``metaflow_config`` (Netflix/metaflow@2.19.38: pods publish to
    ``METAFLOW_ARGO_EVENTS_WEBHOOK_URL``, which Argo Workflows steps get from ``ARGO_EVENTS_INTERNAL_WEBHOOK_URL``;
    sensors and EventSources use the bus ``METAFLOW_ARGO_EVENTS_EVENT_BUS`` of their own namespace). The bus's
    Service and ports are argo-events v1.9.10's (mlstack/simulate/operators.py); Metaflow's sensors are created at
    run time, so the namespace's modelled run-time pod stands for them."""
    from mlstack.simulate.operators import JETSTREAM_PORTS

    configs = world.plan.outputs.get("metaflow_config") or {}
    for team, config in sorted(configs.items()) if isinstance(configs, dict) else []:
        if not isinstance(config, dict):
            continue
        namespace = str(config.get("METAFLOW_KUBERNETES_NAMESPACE") or team)
        url = str(config.get("METAFLOW_ARGO_EVENTS_INTERNAL_WEBHOOK_URL") or "")
        parsed = urlparse(url)
        parts = (parsed.hostname or "").split(".")
        if len(parts) < 2 or not parsed.port:
            yield Required(
                f"workflow steps in namespace {namespace} publish Metaflow events",
                (),
                namespace,
                "",
                0,
                unknown=f"cannot evaluate Metaflow events of team {team}: its metaflow_config has no in-cluster "
                f"METAFLOW_ARGO_EVENTS_INTERNAL_WEBHOOK_URL ({url or 'none'})",
            )
            continue
        yield Required(
            f"workflow steps in namespace {namespace} publish Metaflow events to the webhook their config names "
            f"({url})",
            _clients_in(net, [namespace]),
            parts[1],
            parts[0],
            parsed.port,
        )
        bus = str(config.get("METAFLOW_ARGO_EVENTS_EVENT_BUS") or "default")
        sources = tuple(
            Source(pod=p)
            for p in net.pods
            if p.namespace == namespace and p.labels.get("controller") == "eventsource-controller"
        )
        yield Required(
            f"the EventSources and Metaflow's sensors in namespace {namespace} reach its EventBus '{bus}'",
            (*sources, *_clients_in(net, [namespace])),
            namespace,
            f"eventbus-{bus}-js-svc",
            JETSTREAM_PORTS["client"],
        )
        servers = tuple(
            Source(pod=p)
            for p in net.pods
            if p.namespace == namespace and p.labels.get("eventbus-name") == bus
        )
        if len(servers) and any(
            int((item.obj.get("spec") or {}).get("replicas") or 1) > 1
            for item in _objects(world, "StatefulSet")
            if item.namespace == namespace and item.name == f"eventbus-{bus}-js"
        ):
            yield Required(
                f"the JetStream servers of EventBus '{bus}' in namespace {namespace} form their cluster",
                servers,
                namespace,
                f"eventbus-{bus}-js-svc",
                JETSTREAM_PORTS["cluster"],
            )


def _to_fix(net: Network, policies: Sequence[Policy], direction: str, other: Pod | None) -> Policy:
    """The isolating policy to fix, most specific first: one with a rule that already names the other side's
    namespace (its pod selector or ports are what is wrong), then an allow-list of namespaces on every port
    (where a missing namespace goes), then any with namespace rules, then any with rules, then by name."""

    def names_namespace(peer: Mapping[str, Any], policy: Policy) -> bool:
        if other is None or "ipBlock" in peer:
            return False
        if "namespaceSelector" in peer:
            return _labels_match(peer.get("namespaceSelector") or {}, net.namespaces.get(other.namespace, {}))
        return other.namespace == policy.namespace

    def score(p: Policy) -> tuple[int, str]:
        rules = p.egress if direction == "egress" else p.ingress
        key = "to" if direction == "egress" else "from"
        if any(names_namespace(peer, p) for r in rules for peer in r.get(key) or []):
            return (0, p.name)
        namespace_rules = [r for r in rules if any("namespaceSelector" in peer for peer in r.get(key) or [])]
        if any(not r.get("ports") for r in namespace_rules):
            return (1, p.name)
        if namespace_rules:
            return (2, p.name)
        return (3 if rules else 4, p.name)

    return sorted(policies, key=score)[0]


@sim_check(
    "MLS-SIM-NET-001",
    title="NetworkPolicies are enforced",
    why=(
        "The API server accepts a NetworkPolicy whether or not anything enforces it. On EKS the VPC CNI enforces "
        'them only when the vpc-cni add-on is configured with enableNetworkPolicy "true" (off by default), so '
        "without it every default-deny and allow-list of the plan is decoration and every pod reaches every pod"
    ),
    severity=Severity.HIGH,
    remediation=(
        'Set the vpc-cni add-on\'s configuration_values to {"enableNetworkPolicy": "true"} (EKS user guide, '
        "cni-network-policy-configure), or install another NetworkPolicy engine"
    ),
    subjects=(ADDON_TYPE, "kubernetes:networking.k8s.io/v1:NetworkPolicy"),
)
def policies_enforced(world: World) -> SimResult:
    count = sum(len(p) for p in network(world).policies.values())
    if not count:
        return
    engines = [
        r
        for r in world.resources(RELEASE_TYPE)
        if str(r.inputs.get("chart", "")).rsplit("/", 1)[-1] in POLICY_ENGINE_CHARTS
    ]
    if engines:
        return
    addons = [r for r in world.resources(ADDON_TYPE) if r.inputs.get("addonName") == VPC_CNI]
    if not addons:
        yield (
            f"cannot evaluate: the plan creates {count} NetworkPolicies but neither a vpc-cni add-on nor a "
            "NetworkPolicy engine; whatever CNI the cluster runs must enforce them",
            None,
        )
        return
    for addon in addons:
        raw = addon.inputs.get("configurationValues")
        if raw is None:
            yield (
                f"the plan creates {count} NetworkPolicies but the vpc-cni add-on has no configurationValues: "
                f'{ENABLE_NETWORK_POLICY} defaults to "false", so none of them is enforced and every pod reaches '
                "every pod",
                addon.urn,
            )
            continue
        try:
            config = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            yield (
                f"cannot evaluate: the vpc-cni add-on's configurationValues is not JSON ({raw!r})",
                addon.urn,
            )
            continue
        value = config.get(ENABLE_NETWORK_POLICY) if isinstance(config, dict) else None
        if value == "true":
            continue
        if isinstance(value, bool):
            yield (
                f"cannot evaluate: vpc-cni configurationValues sets {ENABLE_NETWORK_POLICY} to the boolean "
                f'{str(value).lower()}; the documented value is the string "true" (the add-on\'s schema '
                "decides whether a boolean is accepted)",
                addon.urn,
            )
            continue
        yield (
            f"the plan creates {count} NetworkPolicies but the vpc-cni add-on sets {ENABLE_NETWORK_POLICY} to "
            f'{value!r} (default "false"), so none of them is enforced and every pod reaches every pod',
            addon.urn,
        )


@sim_check(
    "MLS-SIM-NET-002",
    title="The NetworkPolicies allow every flow the platform needs",
    why=(
        "Once NetworkPolicies are enforced, a flow no policy allows is dropped silently: DNS lookups time out, "
        "callers of an endpoint hang, workflow steps cannot record their runs. The catalogue of needed flows "
        "(docs/simulation.md) is derived from the spec: teams, endpoints, Metaflow and Qdrant clients"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Add the missing allow rule to the NetworkPolicy named in the finding (the source's egress or the "
        "destination's ingress)"
    ),
    subjects=("kubernetes:networking.k8s.io/v1:NetworkPolicy",),
)
def required_flows_allowed(world: World) -> SimResult:
    return unique(_required_findings(world))


def _required_findings(world: World) -> Iterator[tuple[str, str | None]]:
    net = network(world)
    for flow in required_flows(world):
        if flow.unknown:
            yield flow.unknown, flow.owner_urn
            continue
        if not flow.sources:
            continue
        if flow.pods:
            yield from _direct_findings(net, flow)
            continue
        service = net.services.get((flow.namespace, flow.service))
        if service is None:
            yield (
                f"cannot evaluate {flow.why}: the plan has no Service {flow.namespace}/{flow.service}, so nothing "
                "would answer",
                flow.owner_urn,
            )
            continue
        try:
            hops = resolve(net, service, flow.port, flow.protocol)
        except Unknown as unknown:
            yield f"{flow.why}: {unknown}", flow.owner_urn or service.urn
            continue
        via = f"Service {flow.namespace}/{flow.service}:{flow.port}"
        for hop in hops:
            if hop.service is not service:
                via = f"{via} (ExternalName to Service {hop.service.namespace}/{hop.service.name})"
            blocked: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
            for source in flow.sources:
                try:
                    verdict = evaluate(
                        net, source, hop.pod, hop.port, hop.protocol, hop.service, hop.service_port
                    )
                except Unknown as unknown:
                    yield f"{flow.why}: {source.name} -> {hop.pod.label}: {unknown}", hop.service.urn
                    continue
                if verdict.allowed:
                    continue
                other = hop.pod if verdict.direction == "egress" else source.pod
                policy = _to_fix(net, verdict.isolating, verdict.direction, other)
                names, isolating = blocked.setdefault((verdict.direction, policy.urn), ([], set()))
                names.append(source.name)
                isolating.update(p.label for p in verdict.isolating)
            for (direction, urn), (names, isolating) in blocked.items():
                side = "source" if direction == "egress" else "destination"
                yield (
                    f"{flow.why}: refused on {direction} for {', '.join(sorted(set(names)))} -> {hop.pod.label} "
                    f"port {hop.port}/{hop.protocol} via {via}; no {direction} rule of the policies isolating the "
                    f"{side} ({', '.join(sorted(isolating))}) allows it",
                    urn,
                )


def _direct_findings(net: Network, flow: Required) -> Iterator[tuple[str, str | None]]:
    """A flow to pods by their address: each source to each destination pod on ``flow.port``."""
    for dst in flow.pods:
        blocked: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
        for source in flow.sources:
            try:
                verdict = evaluate(net, source, dst, flow.port, flow.protocol)
            except Unknown as unknown:
                yield f"{flow.why}: {source.name} -> {dst.label}: {unknown}", dst.urn
                continue
            if verdict.allowed:
                continue
            other = dst if verdict.direction == "egress" else source.pod
            policy = _to_fix(net, verdict.isolating, verdict.direction, other)
            names, isolating = blocked.setdefault((verdict.direction, policy.urn), ([], set()))
            names.append(source.name)
            isolating.update(p.label for p in verdict.isolating)
        for (direction, urn), (names, isolating) in blocked.items():
            side = "source" if direction == "egress" else "destination"
            yield (
                f"{flow.why}: refused on {direction} for {', '.join(sorted(set(names)))} -> {dst.label} "
                f"port {flow.port}/{flow.protocol} (pod address); no {direction} rule of the policies isolating "
                f"the {side} ({', '.join(sorted(isolating))}) allows it",
                urn,
            )


# --- forbidden flows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forbidden:
    why: str
    sources: tuple[Source, ...]
    destinations: tuple[Pod, ...]
    # (pod label, port) pairs the platform means to allow (an endpoint's serving port to other teams).
    exempt: frozenset[tuple[str, int]] = frozenset()
    # (source label, destination label, port) flows the platform means to allow from one source only (the
    # platform's Prometheus scraping Qdrant's REST port).
    exempt_flows: frozenset[tuple[str, str, int]] = frozenset()


def _policy_ports(net: Network) -> set[tuple[int, str]]:
    """Every numeric port some policy names, and one none names."""
    ports = {(_UNLISTED_PORT, "TCP")}
    for policies in net.policies.values():
        for policy in policies:
            for rule in [*policy.ingress, *policy.egress]:
                for item in rule.get("ports") or []:
                    ref = item.get("port")
                    if ref is not None and not isinstance(_port_ref(ref), str):
                        ports.add((_num(ref), str(item.get("protocol") or "TCP")))
    return ports


def _probe_ports(pod: Pod, policy_ports: set[tuple[int, str]]) -> list[tuple[int, str]]:
    """The ports to try against ``pod``: its declared ones and every port some policy names or none names (a
    container may listen on ports its pod spec does not declare: Triton's gRPC and metrics ports)."""
    return sorted({(p.number, p.protocol) for p in pod.ports} | policy_ports)


def forbidden_flows(world: World) -> Iterator[Forbidden]:
    net = network(world)
    teams = _team_names(world)
    # An endpoint is a shared service: its serving port (and the port it asks scrapers to use, which for vLLM is
    # the serving port itself) is open to every namespace by design (EndpointSpec.exposure "internal").
    serving = {
        (pod.label, port)
        for pod in net.pods
        for e in world.spec.inference.endpoints
        if e.backend == "kubernetes"
        and pod.namespace == e.team
        and pod.labels.get("app.kubernetes.io/name") == e.name
        and pod.labels.get("app.kubernetes.io/component") == "inference"
        for port in {e.port, *([pod.scrape_port] if pod.scrape_port else [])}
    }
    by_namespace: dict[str, list[Pod]] = {}
    for pod in net.pods:
        by_namespace.setdefault(pod.namespace, []).append(pod)
    for team in teams:
        others = [t for t in teams if t != team and t in net.modelled]
        if not others:
            continue
        yield Forbidden(
            f"other teams must not reach team '{team}' pods (tenant isolation); only the serving port of "
            f"'{team}' endpoints is shared",
            tuple(Source(pod=net.modelled[t]) for t in others),
            tuple(by_namespace.get(team, [])),
            frozenset(serving),
        )
    outsiders_of = lambda allowed: tuple(  # noqa: E731
        Source(pod=p) for p in net.pods if p.namespace not in allowed and not p.host_network
    )
    vdb = world.spec.vector_db
    if vdb.enabled and vdb.engine == "qdrant":
        from components.vectordb import QDRANT_HTTP_PORT, QDRANT_RELEASE, vector_db_clients

        clients = vector_db_clients(world.spec)
        qdrant = tuple(
            p
            for p in net.pods
            if p.namespace == vdb.namespace and p.labels.get("app.kubernetes.io/instance") == QDRANT_RELEASE
        )
        # The platform's Prometheus scrapes Qdrant's /metrics (behind the read-only key) on the REST port, and
        # nothing else of Qdrant (components/vectordb.py qdrant_network_policy).
        scrapers = (
            [
                p
                for p in net.pods
                if p.namespace == world.spec.metrics.namespace
                and all(p.labels.get(k) == v for k, v in PROMETHEUS_POD_LABELS.items())
            ]
            if world.spec.metrics.enabled
            else []
        )
        yield Forbidden(
            f"only Qdrant's declared clients ({', '.join(clients)}) may reach Qdrant, and the platform's "
            "Prometheus its REST port",
            outsiders_of({*clients, vdb.namespace}),
            qdrant,
            exempt_flows=frozenset(
                (scraper.label, pod.label, QDRANT_HTTP_PORT) for scraper in scrapers for pod in qdrant
            ),
        )
    grafana = _grafana_pods(world, net)
    if grafana:
        # People reach Grafana through a kubectl port-forward (inside the pod's network namespace); over the pod
        # network only Prometheus, from its own namespace, scrapes it.
        yield Forbidden(
            "nobody outside the metrics namespace may reach Grafana (people come through a port-forward)",
            outsiders_of({world.spec.metrics.namespace}),
            grafana,
        )
    if world.spec.orchestrator.metaflow:
        by_service: dict[tuple[str, str], set[str]] = {}
        for client in metaflow_clients(world):
            by_service.setdefault((client.service_namespace, client.service), set()).add(client.namespace)
        for (namespace, name), admitted in by_service.items():
            service = net.services.get((namespace, name))
            if service is None:
                continue  # reported by MLS-SIM-NET-002
            yield Forbidden(
                f"only the Metaflow clients of Service {namespace}/{name} (namespaces {', '.join(sorted(admitted))}, "
                "whose config names it) may reach that unauthenticated metadata service",
                outsiders_of({*admitted, namespace}),
                tuple(net.pods_of(service)),
            )
    from mlstack.simulate.notebook_flows import notebook_forbidden

    yield from notebook_forbidden(net)


@sim_check(
    "MLS-SIM-NET-003",
    title="The NetworkPolicies refuse the flows the platform forbids",
    why=(
        "Tenant isolation and the client lists of Qdrant and the Metaflow metadata service (which has no "
        "authentication of its own) hold only if the policies refuse everyone else: a pod nobody isolates for "
        "ingress, or a rule wider than its clients, lets any pod of the cluster in"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Isolate the destination for ingress (a default-deny) and narrow the admitting rule named in the finding "
        "to the declared clients"
    ),
    subjects=("kubernetes:networking.k8s.io/v1:NetworkPolicy",),
)
def forbidden_flows_refused(world: World) -> SimResult:
    return unique(_forbidden_findings(world))


def _forbidden_findings(world: World) -> Iterator[tuple[str, str | None]]:
    net = network(world)
    policy_ports = _policy_ports(net)
    for flow in forbidden_flows(world):
        for dst in flow.destinations:
            reached: dict[tuple[str | None, str], tuple[list[Source], set[str]]] = {}
            key: tuple[str | None, str]
            for number, protocol in _probe_ports(dst, policy_ports):
                if (dst.label, number) in flow.exempt or not _admits_other_namespaces(
                    net, dst, number, protocol
                ):
                    continue
                for source in flow.sources:
                    if (source.name, dst.label, number) in flow.exempt_flows:
                        continue
                    try:
                        verdict = evaluate(net, source, dst, number, protocol)
                    except Unknown as unknown:
                        yield f"{flow.why}: {source.name} -> {dst.label}: {unknown}", dst.urn
                        continue
                    if not verdict.allowed:
                        continue
                    if verdict.admitting:
                        key = (verdict.admitting[0].urn, f"admitted by {verdict.admitting[0].label}")
                    else:
                        key = (dst.urn, "no NetworkPolicy isolates it for ingress")
                    sources, ports = reached.setdefault(key, ([], set()))
                    if source not in sources:
                        sources.append(source)
                    ports.add(f"{number}/{protocol}")
            for (urn, reason), (sources, ports) in reached.items():
                yield (
                    f"{flow.why}: {dst.label} is reachable ({reason}) on {', '.join(sorted(ports))} from "
                    f"{_describe(sources)}",
                    urn,
                )


def _admits_other_namespaces(net: Network, dst: Pod, port: int, protocol: str) -> bool:
    """Could any pod of another namespace get in on this port? False when ``dst`` is isolated for ingress and every
    rule for the port admits only pods of its own namespace: then no source need be tried (this keeps the team x
    team scan linear in practice)."""
    selecting = _selecting(net, dst, "Ingress")
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy.ingress:
            if not _port_matches(rule.get("ports") or [], port, protocol, dst):
                continue
            peers = rule.get("from") or []
            if not peers or any("namespaceSelector" in peer or "ipBlock" in peer for peer in peers):
                return True
    return False


def _describe(sources: Iterable[Source]) -> str:
    """Sources for a message: whole namespaces (their modelled pod got through) first, then single pods."""
    anywhere = sorted({s.pod.namespace for s in sources if s.pod is not None and s.pod.any_port})
    single = sorted(
        s.name for s in sources if s.pod is None or (not s.pod.any_port and s.pod.namespace not in anywhere)
    )
    parts = (
        [f"any pod in namespace{'s' if len(anywhere) > 1 else ''} {', '.join(anywhere)}"] if anywhere else []
    )
    parts += single[:3] + ([f"{len(single) - 3} more pods"] if len(single) > 3 else [])
    return "; ".join(parts)
