"""The platform stack's outputs: one declaration per output (name, type, purpose), read by the program entry
point, the docs (docs/outputs.md) and the tests, so that what the stack exports and what the docs promise cannot
drift apart. Also the command lines the outputs carry, built here as plain functions so they are tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pydantic import TypeAdapter

# Where a laptop reaches the Argo server: the port-forward of docs/guides/first-metaflow-flow.md (2746 is the
# server's port, components/orchestrator.py ARGO_SERVER_PORT).
LOCAL_ARGO_URL = "http://localhost:2746"


@dataclass(frozen=True)
class StackOutput:
    """One output of the platform stack: its name, its type as the docs spell it, the Python type its value
    must validate as, and what it is for."""

    name: str
    type: str
    python_type: Any
    description: str

    def validate(self, value: Any) -> None:
        """Raise pydantic.ValidationError when ``value`` is not of the declared type."""
        TypeAdapter(self.python_type).validate_python(value, strict=True)


_STR_MAP = dict[str, str]
STACK_OUTPUTS: tuple[StackOutput, ...] = (
    StackOutput("environment", "string", str, "The environment's name (dev, staging, prod)."),
    StackOutput("tier", "string", str, "Its hardening tier: dev, staging or prod."),
    StackOutput(
        "permission_boundary_arn", "string", str, "The permission boundary every role of the stack carries."
    ),
    StackOutput(
        "data_key_arn", "string", str, "The KMS key that encrypts the buckets, the database and secrets."
    ),
    StackOutput("cluster_name", "string", str, "The EKS cluster's name (`<env>-eks`)."),
    StackOutput(
        "cluster_arn",
        "string",
        str,
        "The EKS cluster's ARN; `aws eks update-kubeconfig` names the kubeconfig cluster entry after it.",
    ),
    StackOutput(
        "cluster_endpoint",
        "string",
        str,
        "The private API endpoint (https URL). Reachable only inside the VPC: the deploy runner, the access host.",
    ),
    StackOutput(
        "kubeconfig_command",
        "string",
        str,
        "The exact `aws eks update-kubeconfig --name ... --region ...` line. Works as is inside the VPC.",
    ),
    StackOutput(
        "tunnel_commands",
        "map of string",
        _STR_MAP,
        "From a laptop, through the access host: `start` opens the Session Manager tunnel to the API on "
        "localhost:8443, `kubeconfig` points the kubeconfig entry at it (`server` localhost, `tls-server-name` "
        "the endpoint's host). Empty when `access_host` is off.",
    ),
    StackOutput(
        "access_host_instance_id",
        "string",
        str,
        "The Session Manager host's instance id; empty when `access_host` is off.",
    ),
    StackOutput(
        "bucket_names", "map of string", _STR_MAP, "Bucket name by purpose (datasets, artifacts, models)."
    ),
    StackOutput(
        "registry_url", "string", str, "The ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`)."
    ),
    StackOutput("repository_urls", "map of string", _STR_MAP, "Image repository URL by repository name."),
    StackOutput("platform_admin_role_arn", "string", str, "The platform-admin role: cluster admin, tunnels."),
    StackOutput(
        "human_role_arns",
        "map of string",
        _STR_MAP,
        "Per team with `human_access`, the role its people assume (Kubernetes group of the team, tunnels).",
    ),
    StackOutput(
        "workload_role_arns", "map of string", _STR_MAP, "Per team, the role its pods run as (Pod Identity)."
    ),
    StackOutput(
        "endpoint_urls",
        "map of string",
        _STR_MAP,
        "Per inference endpoint, its in-cluster URL (or SageMaker endpoint name): "
        "docs/guides/call-an-endpoint.md.",
    ),
    StackOutput(
        "metaflow_config",
        "map of map of string",
        dict[str, _STR_MAP],
        "Per team, `~/.metaflowconfig/config.json` for a laptop: the metadata service and the Argo UI on "
        "localhost through `kubectl port-forward`, pods told the in-cluster URL.",
    ),
    StackOutput(
        "metaflow_config_in_cluster",
        "map of map of string",
        dict[str, _STR_MAP],
        "Per team, the same config for code that runs inside the cluster (a notebook pod): every URL in-cluster.",
    ),
    StackOutput(
        "ui_addresses",
        "map of map of string",
        dict[str, _STR_MAP],
        "Per UI (argo, grafana where it runs, metaflow-ui-<team> where the Metaflow UI is on, jupyterhub where "
        "notebooks are on, opencost (its API) and opencost-ui where OpenCost and its UI are on): its in-cluster URL, "
        "its laptop URL and the `kubectl port-forward` that serves it there (the Metaflow UI needs its backend's "
        "forward too).",
    ),
    StackOutput(
        "deploy_runner_project",
        "string",
        str,
        "The CodeBuild project hosting the in-VPC GitHub Actions runner; empty when `deploy_runner` is off.",
    ),
    StackOutput(
        "deploy_runner_label",
        "string",
        str,
        "The `runs-on` label of deploy jobs: `codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}`; "
        "empty when `deploy_runner` is off.",
    ),
)
OUTPUT_NAMES = tuple(output.name for output in STACK_OUTPUTS)


def kubeconfig_command(cluster_name: str, region: str) -> str:
    """``aws eks update-kubeconfig`` for the cluster (AWS CLI reference, eks update-kubeconfig: --name, --region)."""
    return f"aws eks update-kubeconfig --name {cluster_name} --region {region}"


def endpoint_host(endpoint: str) -> str:
    """The host name of the API endpoint URL: what the API server's certificate is issued for."""
    # netloc, not hostname: hostname lower-cases, and the name is echoed to users as EKS reports it.
    parsed = urlparse(endpoint)
    host = parsed.netloc.rsplit(":", 1)[0] if parsed.scheme == "https" else ""
    if not host:
        raise ValueError(f"not an https URL: {endpoint!r}")
    return host


def tunnel_commands(
    *, instance_id: str, endpoint: str, cluster_arn: str, region: str, local_port: int, document: str
) -> dict[str, str]:
    """The two commands a laptop runs to use the cluster through the access host.

    - ``start``: Session Manager port forwarding to a remote host (parameters ``host``, ``portNumber``,
      ``localPortNumber`` of AWS-StartPortForwardingSessionToRemoteHost; Systems Manager user guide,
      session-manager-working-with-sessions-start.html). Needs the Session Manager plugin for the AWS CLI.
    - ``kubeconfig``: after ``aws eks update-kubeconfig``, point its entry (named after the cluster ARN) at the
      local end; ``--server`` clears ``tls-server-name`` and ``--tls-server-name`` sets it again
      (kubernetes/kubectl pkg/cmd/config/create_cluster.go, modifyCluster), so the API server's certificate
      still verifies against the endpoint's host name.
    """
    host = endpoint_host(endpoint)
    return {
        "start": (
            f"aws ssm start-session --region {region} --target {instance_id} --document-name {document} "
            f"--parameters host={host},portNumber=443,localPortNumber={local_port}"
        ),
        "kubeconfig": (
            f"kubectl config set-cluster {cluster_arn} --server=https://localhost:{local_port} "
            f"--tls-server-name={host}"
        ),
    }


def laptop_metaflow_config(config: dict[str, str]) -> dict[str, str]:
    """A team's Metaflow config for a laptop: the Argo UI links Metaflow prints point at the local port-forward
    (the in-cluster name does not resolve there); the service URL already is the local port-forward."""
    laptop = dict(config)
    if "METAFLOW_ARGO_WORKFLOWS_UI_URL" in laptop:
        laptop["METAFLOW_ARGO_WORKFLOWS_UI_URL"] = LOCAL_ARGO_URL
    return laptop


# Metaflow's pairs of a client URL and the in-cluster URL it hands to the pods it launches (the laptop config
# points the first at a port-forward): the metadata service, and the Argo Events webhook when events are on.
INTERNAL_URL_PAIRS = (
    ("METAFLOW_SERVICE_URL", "METAFLOW_SERVICE_INTERNAL_URL"),
    ("METAFLOW_ARGO_EVENTS_WEBHOOK_URL", "METAFLOW_ARGO_EVENTS_INTERNAL_WEBHOOK_URL"),
)


def in_cluster_metaflow_config(config: dict[str, str]) -> dict[str, str]:
    """A team's Metaflow config for code running in the cluster: every client URL is the in-cluster one, which
    is also what Metaflow hands to the pods it launches."""
    inside = dict(config)
    for client, internal in INTERNAL_URL_PAIRS:
        if internal in inside:
            inside[client] = inside[internal]
    return inside


def ui_addresses(argo_server_url: str, argo_namespace: str) -> dict[str, dict[str, str]]:
    """Where each UI is, in the cluster and from a laptop; empty when Argo Workflows is off."""
    if not argo_server_url:
        return {}
    service = urlparse(argo_server_url).hostname or ""
    name = service.split(".", 1)[0]
    port = urlparse(argo_server_url).port
    return {
        "argo": {
            "in_cluster": argo_server_url,
            "laptop": LOCAL_ARGO_URL,
            "port_forward": f"kubectl -n {argo_namespace} port-forward svc/{name} {port}:{port}",
        }
    }


def grafana_addresses(
    grafana_url: str, namespace: str, pod: str, container_port: int, local_port: int
) -> dict[str, dict[str, str]]:
    """Grafana's in-cluster URL, where a laptop opens it and the port-forward that serves it there (the laptop URL
    is Grafana's root_url and its SSO redirect's origin; the pod, by its stable name, is what the teams' Role
    lets them forward to); empty where no Grafana runs."""
    if not grafana_url:
        return {}
    return {
        "grafana": {
            "in_cluster": grafana_url,
            "laptop": f"http://localhost:{local_port}",
            "port_forward": f"kubectl -n {namespace} port-forward pod/{pod} {local_port}:{container_port}",
        }
    }


def metaflow_ui_addresses(
    teams: list[str], *, namespace: str, frontend: str, backend: str, frontend_port: int, backend_port: int
) -> dict[str, dict[str, str]]:
    """Each team's Metaflow UI: the frontend's in-cluster URL, where a laptop opens it, and the two
    port-forwards it needs there (the browser calls the backend on its own local port; docs/guides/metaflow-ui.md)."""
    return {
        f"{frontend}-{team}": {
            "in_cluster": f"http://{frontend}-{team}.{namespace}.svc.cluster.local:{frontend_port}",
            "laptop": f"http://localhost:{frontend_port}",
            "port_forward": f"kubectl -n {namespace} port-forward pod/{frontend}-{team}-0 {frontend_port}:{frontend_port}",
            "port_forward_backend": (
                f"kubectl -n {namespace} port-forward pod/{backend}-{team}-0 {backend_port}:{backend_port}"
            ),
        }
        for team in teams
    }
