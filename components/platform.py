"""The whole environment: composes every component in dependency order from one PlatformSpec."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.access import LOCAL_API_PORT, PORT_FORWARD_DOCUMENT, AccessHost, AccessHostArgs
from components.cluster import Cluster, ClusterArgs, eks_cluster_name
from components.compute import Compute, ComputeArgs
from components.cost_allocation import CostAllocation, CostAllocationArgs
from components.cost_allocation import ui_addresses as opencost_addresses
from components.deployer import DeployRunner, DeployRunnerArgs
from components.environment import Environment
from components.events import ArgoEvents, ArgoEventsArgs
from components.governance import Guardrails, GuardrailsArgs
from components.gpu import GpuPools, GpuPoolsArgs
from components.inference import Inference, InferenceArgs
from components.keys import EncryptionKeys, EncryptionKeysArgs
from components.logs import Logs, LogsArgs
from components.network import Network, NetworkArgs
from components.notebooks import JupyterHub, JupyterHubArgs, ui_address
from components.observability import Alerts, AlertsArgs, Metrics, MetricsArgs, scrape_targets
from components.options import child
from components.orchestrator import (
    UI_BACKEND,
    UI_FRONTEND,
    UI_FRONTEND_PORT,
    UI_PORT,
    Orchestrator,
    OrchestratorArgs,
)
from components.registry import PullThrough, Registry, RegistryArgs
from components.secrets import ExternalSecrets, ExternalSecretsArgs
from components.storage import ObjectStore, ObjectStoreArgs
from components.teams import Teams, TeamsArgs
from components.vectordb import VectorDb, VectorDbArgs, vector_db_clients
from mlstack import outputs
from mlstack.spec import PlatformSpec
from mlstack.spec.notebooks import notebook_cpu_pools, notebook_gpu_pools
from mlstack.spec.observability import (
    GRAFANA_CONTAINER_PORT,
    GRAFANA_LOCAL_PORT,
    GRAFANA_POD,
    in_cluster_prometheus_url,
)
from mlstack.spec.secrets import synced_sso_clients


class Platform(pulumi.ComponentResource):
    """An mlstack environment. Every AWS resource below it uses one provider whose default tags carry the
    required tags (environment, owner, cost-center, managed-by), set here and nowhere else.
    """

    def __init__(self, name: str, spec: PlatformSpec, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:platform:Platform", name, None, opts)
        env = Environment.from_spec(spec)
        self.env = env
        self.aws_provider = aws.Provider(
            f"{name}-aws",
            region=env.region,
            allowed_account_ids=[env.account_id],
            default_tags=aws.ProviderDefaultTagsArgs(tags=env.tags),
            opts=child(self),
        )
        aws_only = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})

        # The alert topic comes first: the budget's notifications go to it too.
        self.alerts: Alerts | None = None
        if spec.metrics.enabled and spec.metrics.alerts:
            self.alerts = Alerts(
                f"{name}-alerts", AlertsArgs(env=env, emails=tuple(spec.budgets.notify_emails)), aws_only
            )
        self.guardrails = Guardrails(
            f"{name}-guardrails",
            GuardrailsArgs(
                env=env,
                budget=spec.budgets,
                replica_regions=spec.replica_regions(),
                teams=tuple(spec.teams),
                alert_topic_arn=self.alerts.topic_arn if self.alerts is not None else None,
            ),
            aws_only,
        )
        self.keys = EncryptionKeys(f"{name}-keys", EncryptionKeysArgs(env=env), aws_only)
        self.network = Network(
            f"{name}-network",
            NetworkArgs(
                env=env,
                spec=spec.network,
                cluster_name=eks_cluster_name(env),
                logs_key_arn=self.keys.logs_key_arn,
                boundary_arn=self.guardrails.permission_boundary_arn,
            ),
            aws_only,
        )
        # Before the cluster and independent of it: a first targeted `up` creates the runner so that the full
        # `up` can run inside the VPC (mlstack first-deploy-targets).
        self.deploy_runner: DeployRunner | None = None
        repository = spec.deploy_runner_repository()
        if spec.deploy_runner.enabled and repository is not None:
            self.deploy_runner = DeployRunner(
                f"{name}-deployer",
                DeployRunnerArgs(
                    env=env,
                    spec=spec.deploy_runner,
                    github_repository=repository,
                    vpc_id=self.network.vpc_id,
                    private_subnet_ids=self.network.private_subnet_ids,
                    logs_key_arn=self.keys.logs_key_arn,
                    data_key_arn=self.keys.data_key_arn,
                    boundary_arn=self.guardrails.permission_boundary_arn,
                ),
                aws_only,
            )
        self.access_host: AccessHost | None = None
        if spec.access_host.enabled:
            self.access_host = AccessHost(
                f"{name}-access",
                AccessHostArgs(
                    env=env,
                    spec=spec.access_host,
                    vpc_id=self.network.vpc_id,
                    private_subnet_ids=self.network.private_subnet_ids,
                    boundary_arn=self.guardrails.permission_boundary_arn,
                ),
                aws_only,
            )
        # Outside the cluster, only these reach its private API (rules on the cluster security group, port 443).
        api_clients: dict[str, pulumi.Input[str]] = {}
        if self.deploy_runner is not None:
            api_clients["deployer"] = self.deploy_runner.security_group_id
        if self.access_host is not None:
            api_clients["access"] = self.access_host.security_group_id
        self.cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs(
                env=env,
                spec=spec.cluster,
                private_subnet_ids=self.network.private_subnet_ids,
                cluster_key_arn=self.keys.cluster_key_arn,
                logs_key_arn=self.keys.logs_key_arn,
                boundary_arn=self.guardrails.permission_boundary_arn,
                volume_key_arn=self.keys.data_key_arn,
                api_clients=api_clients,
            ),
            aws_only,
        )
        self.gpu = GpuPools(
            f"{name}-gpu",
            GpuPoolsArgs(
                env=env,
                spec=list(spec.gpu_pools),
                cluster=self.cluster,
                boundary_arn=self.guardrails.permission_boundary_arn,
                # The registry is created later (it grants the GPU node role cache fills); the cache paths
                # only need the spec.
                pull_through=PullThrough.from_spec(env, spec.registry),
                ami_version=spec.cluster.gpu_node_ami,
            ),
            aws_only,
        )
        self.compute = Compute(
            f"{name}-compute",
            ComputeArgs(
                env=env,
                spec=list(spec.cpu_pools),
                cluster=self.cluster,
                karpenter=self.gpu,
                pull_through=PullThrough.from_spec(env, spec.registry),
            ),
            aws_only,
        )
        self.storage = ObjectStore(
            f"{name}-storage",
            ObjectStoreArgs(
                env=env,
                spec=spec.storage,
                data_key_arn=self.keys.data_key_arn,
                permission_boundary_arn=self.guardrails.permission_boundary_arn,
            ),
            aws_only,
        )
        self.registry = Registry(
            f"{name}-registry",
            RegistryArgs(
                env=env,
                spec=spec.registry,
                registry_key_arn=self.keys.registry_key_arn,
                permission_boundary_arn=self.guardrails.permission_boundary_arn,
            ),
            aws_only,
        )
        # Kubelet pulls every pod's image with its node's role, so the node roles fill the caches on first pull.
        for node_role in (self.cluster.node_role, self.gpu.node_role):
            self.registry.grant_cache_fill(node_role)
        self.teams = Teams(
            f"{name}-teams",
            TeamsArgs(
                env=env,
                spec=list(spec.teams),
                gpu_pools=list(spec.gpu_pools),
                boundary_arn=self.guardrails.permission_boundary_arn,
                k8s_provider=self.cluster.k8s_provider,
                cluster=self.cluster,
                storage=self.storage,
                registry=self.registry,
                platform_admins=spec.platform_admins,
                cpu_pools=list(spec.cpu_pools),
                kueue_after=[self.compute.jobset],
            ),
            aws_only,
        )
        if self.access_host is not None:
            # Who may tunnel: the platform admins and every team's people (their Identity Center permission
            # sets assume these roles). Kubernetes RBAC still decides what each can do once through.
            self.access_host.grant_session(f"{name}-access-platform-admin", self.teams.platform_admin_role)
            for team_name, human in self.teams.human_roles.items():
                self.access_host.grant_session(f"{name}-access-team-{team_name}", human)
        # Before the apps whose SSO Secrets it syncs (JupyterHub, Grafana, the Argo server); only when one has SSO.
        self.external_secrets: ExternalSecrets | None = None
        sso_clients = synced_sso_clients(spec)
        if sso_clients:
            self.external_secrets = ExternalSecrets(
                f"{name}-secrets",
                ExternalSecretsArgs(
                    env=env,
                    spec=spec.external_secrets,
                    clients=tuple(sso_clients),
                    boundary_arn=self.guardrails.permission_boundary_arn,
                    cluster=self.cluster,
                    k8s_provider=self.cluster.k8s_provider,
                    pull_through=self.registry.pull_through,
                    after=self.teams.admission_ready,
                ),
                aws_only,
            )
        self.orchestrator = Orchestrator(
            f"{name}-orchestrator",
            OrchestratorArgs(
                env=env,
                spec=spec.orchestrator,
                pull_through=self.registry.pull_through,
                teams=tuple(spec.teams),
                k8s_provider=self.cluster.k8s_provider,
                cluster=self.cluster,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                data_key_arn=self.keys.data_key_arn,
                boundary_arn=self.guardrails.permission_boundary_arn,
                buckets=self.storage.buckets,
                team_namespaces=self.teams.namespace_ready,
                admission_ready=self.teams.admission_ready,
                sso_secrets=self.external_secrets,
            ),
            aws_only,
        )
        self.events: ArgoEvents | None = None
        if spec.orchestrator.argo_events.enabled:
            self.events = ArgoEvents(
                f"{name}-events",
                ArgoEventsArgs(
                    env=env,
                    spec=spec.orchestrator.argo_events,
                    teams=tuple(spec.teams),
                    k8s_provider=self.cluster.k8s_provider,
                    pull_through=self.registry.pull_through,
                    team_namespaces=self.teams.namespace_ready,
                    admission_ready=self.teams.admission_ready,
                ),
                aws_only,
            )
        self.vector_db = VectorDb(
            f"{name}-vectordb",
            VectorDbArgs(
                env=env,
                spec=spec.vector_db,
                pull_through=self.registry.pull_through,
                k8s_provider=self.cluster.k8s_provider,
                cluster=self.cluster,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                data_key_arn=self.keys.data_key_arn,
                boundary_arn=self.guardrails.permission_boundary_arn,
                artifacts=self.storage.buckets.get("artifacts"),
                client_namespaces=vector_db_clients(spec),
                scraper_namespaces=[spec.metrics.namespace] if spec.metrics.enabled else [],
                team_namespaces=self.teams.namespace_ready,
                admission_ready=self.teams.admission_ready,
            ),
            aws_only,
        )
        self.metrics: Metrics | None = None
        if spec.metrics.enabled:
            self.metrics = Metrics(
                f"{name}-metrics",
                MetricsArgs(
                    env=env,
                    spec=spec.metrics,
                    pull_through=self.registry.pull_through,
                    k8s_provider=self.cluster.k8s_provider,
                    storage_class_name=self.cluster.storage_class_name,
                    targets=scrape_targets(spec),
                    alerts=self.alerts,
                    cluster=self.cluster,
                    boundary_arn=self.guardrails.permission_boundary_arn,
                    after=self.teams.admission_ready,
                    monitors_after=self.vector_db.scrape_prerequisites,
                    grafana_viewer_groups=[team.group for team in spec.teams],
                    sso_secrets=self.external_secrets,
                ),
                aws_only,
            )
        self.cost_allocation: CostAllocation | None = None
        if self.metrics is not None and spec.metrics.opencost.enabled:
            self.cost_allocation = CostAllocation(
                f"{name}-opencost",
                CostAllocationArgs(
                    env=env,
                    spec=spec,
                    pull_through=self.registry.pull_through,
                    k8s_provider=self.cluster.k8s_provider,
                    metrics_release=self.metrics.release,
                ),
                aws_only,
            )
        self.inference = Inference(
            f"{name}-inference",
            InferenceArgs(
                env=env,
                spec=spec.inference,
                boundary_arn=self.guardrails.permission_boundary_arn,
                data_key_arn=self.keys.data_key_arn,
                models_bucket=self.storage.buckets["models"] if "models" in self.storage.buckets else None,
                artifacts_bucket=self.storage.buckets.get("artifacts"),
                registry=self.registry,
                cluster=self.cluster,
                k8s_provider=self.cluster.k8s_provider,
                vpc_id=self.network.vpc_id,
                vpc_cidr=self.network.vpc_cidr,
                private_subnet_ids=self.network.private_subnet_ids,
                team_ready=self.teams.namespace_ready,
                pool_ready=self.gpu.pool_ready,
                admission_ready=self.teams.admission_ready,
                team_cost_centers={team.name: team.cost_center for team in spec.teams},
                # A Prometheus the stack file names wins over the platform's own.
                prometheus_url=spec.inference.prometheus_url or in_cluster_prometheus_url(spec.metrics),
                metrics_ready=[self.metrics] if self.metrics is not None else [],
            ),
            aws_only,
        )
        self.logs: Logs | None = None
        if spec.logs.enabled:
            self.logs = Logs(
                f"{name}-logs",
                LogsArgs(
                    env=env,
                    spec=spec.logs,
                    teams=tuple(spec.teams),
                    logs_key_arn=self.keys.logs_key_arn,
                    boundary_arn=self.guardrails.permission_boundary_arn,
                    pull_through=self.registry.pull_through,
                    cluster=self.cluster,
                    k8s_provider=self.cluster.k8s_provider,
                ),
                aws_only,
            )
            # People of a team read their own team's logs; the platform group and the nodes' stay with the admins.
            for team_name, human_role in self.teams.human_roles.items():
                self.logs.grant_team_read(f"{name}-logs-read-{team_name}", team_name, human_role)
        self.notebooks: JupyterHub | None = None
        if spec.notebooks.enabled:
            self.notebooks = JupyterHub(
                f"{name}-notebooks",
                JupyterHubArgs(
                    env=env,
                    spec=spec.notebooks,
                    teams=tuple(spec.teams),
                    cpu_pools=tuple(notebook_cpu_pools(spec)),
                    gpu_pools=tuple(notebook_gpu_pools(spec)),
                    pull_through=self.registry.pull_through,
                    k8s_provider=self.cluster.k8s_provider,
                    storage_class_name=self.cluster.storage_class_name,
                    team_namespaces=self.teams.namespace_ready,
                    admission_ready=self.teams.admission_ready,
                    gpu_pool_sizes={pool.name: pool.max_gpus for pool in spec.gpu_pools},
                    sso_secrets=self.external_secrets,
                ),
                aws_only,
            )

        self.metaflow_config = self.orchestrator.metaflow_config
        self.permission_boundary_arn = self.guardrails.permission_boundary_arn
        self.data_key_arn = self.keys.data_key_arn
        self.stack_outputs = self._stack_outputs(spec)
        self.register_outputs(
            {
                "permission_boundary_arn": self.permission_boundary_arn,
                "data_key_arn": self.data_key_arn,
                "metaflow_config": self.metaflow_config,
            }
        )

    def _stack_outputs(self, spec: PlatformSpec) -> dict[str, object]:
        """Every documented stack output (mlstack/outputs.py STACK_OUTPUTS, docs/outputs.md), by name. The entry
        point exports them; a component never does."""
        env, cluster = self.env, self.cluster
        access, runner = self.access_host, self.deploy_runner
        # Pulumi drops a None output, so a component that is off exports empty values: every output is always there.
        tunnel: object = {}
        if access is not None:
            tunnel = pulumi.Output.all(
                access.instance_id, cluster.cluster_endpoint, cluster.cluster_arn
            ).apply(
                lambda values: outputs.tunnel_commands(
                    instance_id=values[0],
                    endpoint=values[1],
                    cluster_arn=values[2],
                    region=env.region,
                    local_port=LOCAL_API_PORT,
                    document=PORT_FORWARD_DOCUMENT,
                )
            )
        orchestrator = spec.orchestrator
        metaflow_uis = (
            outputs.metaflow_ui_addresses(
                [team.name for team in spec.teams],
                namespace=orchestrator.metaflow_namespace,
                frontend=UI_FRONTEND,
                backend=UI_BACKEND,
                frontend_port=UI_FRONTEND_PORT,
                backend_port=UI_PORT,
            )
            if orchestrator.metaflow and orchestrator.metaflow_ui
            else {}
        )
        notebook_ui = {"jupyterhub": ui_address(spec.notebooks)} if self.notebooks is not None else {}
        cost_uis = opencost_addresses(spec.metrics) if self.cost_allocation is not None else {}
        return {
            "environment": spec.environment,
            "tier": spec.tier.value,
            "permission_boundary_arn": self.permission_boundary_arn,
            "data_key_arn": self.data_key_arn,
            "cluster_name": cluster.cluster_name,
            "cluster_arn": cluster.cluster_arn,
            "cluster_endpoint": cluster.cluster_endpoint,
            "kubeconfig_command": cluster.cluster_name.apply(
                lambda name: outputs.kubeconfig_command(name, env.region)
            ),
            "tunnel_commands": tunnel,
            "access_host_instance_id": access.instance_id if access is not None else "",
            "bucket_names": pulumi.Output.all(
                **{purpose: bucket.bucket_name for purpose, bucket in self.storage.buckets.items()}
            ),
            "registry_url": self.registry.registry_url,
            "repository_urls": self.registry.repository_urls,
            "platform_admin_role_arn": self.teams.platform_admin_role_arn,
            "human_role_arns": self.teams.human_role_arns,
            "workload_role_arns": self.teams.workload_role_arns,
            "endpoint_urls": self.inference.endpoint_urls,
            "metaflow_config": self.metaflow_config.apply(
                lambda teams: {team: outputs.laptop_metaflow_config(cfg) for team, cfg in teams.items()}
            ),
            "metaflow_config_in_cluster": self.metaflow_config.apply(
                lambda teams: {team: outputs.in_cluster_metaflow_config(cfg) for team, cfg in teams.items()}
            ),
            "ui_addresses": pulumi.Output.all(
                self.orchestrator.argo_server_url,
                self.orchestrator.argo_namespace,
                self.metrics.grafana_url if self.metrics is not None else "",
            ).apply(
                lambda values: {
                    **outputs.ui_addresses(values[0], values[1]),
                    **outputs.grafana_addresses(
                        values[2], spec.metrics.namespace, GRAFANA_POD, GRAFANA_CONTAINER_PORT, GRAFANA_LOCAL_PORT
                    ),
                    **metaflow_uis,
                    **notebook_ui,
                    **cost_uis,
                }
            ),
            "deploy_runner_project": runner.project_name if runner is not None else "",
            "deploy_runner_label": runner.runs_on if runner is not None else "",
        }
