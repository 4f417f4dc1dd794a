"""JupyterHub's flows in the network simulation: what must get through and what must not.

Pods, by the labels the chart and KubeSpawner give them (zero-to-jupyterhub-k8s@4.4.0: ``component: hub`` and
``component: proxy`` with ``app: jupyterhub``; jupyterhub/kubespawner@7.0.0: notebook servers carry
``component: singleuser-server`` and the hub's common labels with ``app.kubernetes.io/managed-by: kubespawner``,
mlstack.simulate.spawner_made). Ports and addresses, from the same sources: the hub listens on 8081 behind Service
``hub`` (the servers' JUPYTERHUB_API_URL, components/notebooks.py ``hub_connect_url``), the proxy's REST API on
8001 behind ``proxy-api`` (the hub configures routes there), and the proxy and the hub reach a server at its pod
IP on 8888 (kubespawner@7.0.0 spawner.py ``_get_pod_url``: ``status.podIP`` unless services are enabled).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlstack.simulate.network import Forbidden, Network, Pod, Required, Source

HUB_PORT = 8081
PROXY_API_PORT = 8001
SERVER_PORT = 8888


def _jupyterhub(pod: Pod, component: str) -> bool:
    return pod.labels.get("app") == "jupyterhub" and pod.labels.get("component") == component


def _servers(net: Network) -> list[Pod]:
    return [
        p
        for p in net.pods
        if _jupyterhub(p, "singleuser-server") and p.labels.get("app.kubernetes.io/managed-by") == "kubespawner"
    ]


def notebook_required(net: Network) -> Iterator[Required]:
    """Hub <-> proxy, proxy and hub -> every notebook server, every notebook server -> the hub API."""
    hubs = [p for p in net.pods if _jupyterhub(p, "hub")]
    servers = _servers(net)
    for hub in hubs:
        ns = hub.namespace
        proxies = tuple(Source(pod=p) for p in net.pods if _jupyterhub(p, "proxy") and p.namespace == ns)
        yield Required(
            f"the JupyterHub hub in {ns} configures the proxy's routes through its REST API",
            (Source(pod=hub),),
            ns,
            "proxy-api",
            PROXY_API_PORT,
        )
        yield Required(f"the JupyterHub proxy in {ns} forwards /hub/ to the hub", proxies, ns, "hub", HUB_PORT)
        if not servers:
            continue
        yield Required(
            "notebook servers call the hub API (JUPYTERHUB_API_URL: Service hub, port 8081)",
            tuple(Source(pod=p) for p in servers),
            ns,
            "hub",
            HUB_PORT,
        )
        yield Required(
            "the JupyterHub proxy routes each user's browser to their notebook server (pod address, 8888)",
            proxies,
            ns,
            "notebook servers",
            SERVER_PORT,
            pods=tuple(servers),
        )
        yield Required(
            "the hub checks each notebook server it starts is up (pod address, 8888)",
            (Source(pod=hub),),
            ns,
            "notebook servers",
            SERVER_PORT,
            pods=tuple(servers),
        )


def notebook_forbidden(net: Network) -> Iterator[Forbidden]:
    """A team's notebook servers are reached only by JupyterHub's own namespace and their own team; the hub is
    reached only from its own namespace and by the notebook servers."""
    servers = _servers(net)
    hubs = [p for p in net.pods if _jupyterhub(p, "hub")]
    hub_namespaces = {p.namespace for p in hubs}
    for team in sorted({p.namespace for p in servers}):
        yield Forbidden(
            f"only JupyterHub ({', '.join(sorted(hub_namespaces))}) and team '{team}' itself may reach team "
            f"'{team}' notebook servers",
            tuple(
                Source(pod=p)
                for p in net.pods
                if p.namespace not in {team, *hub_namespaces} and not p.host_network
            ),
            tuple(p for p in servers if p.namespace == team),
        )
    for ns in sorted(hub_namespaces):
        yield Forbidden(
            f"only notebook servers and JupyterHub's own namespace ({ns}) may reach the hub",
            tuple(Source(pod=p) for p in net.pods if p.namespace != ns and p not in servers and not p.host_network),
            tuple(p for p in hubs if p.namespace == ns),
        )
