"""The whole environment: composes every component in dependency order from one PlatformSpec."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.cluster import Cluster, ClusterArgs, eks_cluster_name
from components.compute import Compute, ComputeArgs
from components.environment import Environment
from components.events import ArgoEvents, ArgoEventsArgs
from components.governance import Guardrails, GuardrailsArgs
from components.gpu import GpuPools, GpuPoolsArgs
from components.inference import Inference, InferenceArgs
from components.keys import EncryptionKeys, EncryptionKeysArgs
from components.logs import Logs, LogsArgs
from components.network import Network, NetworkArgs
from components.observability import Alerts, AlertsArgs, Metrics, MetricsArgs, scrape_targets
from components.options import child
from components.orchestrator import Orchestrator, OrchestratorArgs
from components.registry import PullThrough, Registry, RegistryArgs
from components.storage import ObjectStore, ObjectStoreArgs
from components.teams import Teams, TeamsArgs
from components.vectordb import VectorDb, VectorDbArgs, vector_db_clients
from mlstack.spec import PlatformSpec
from mlstack.spec.observability import in_cluster_prometheus_url


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
        self.cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs(
                env=env,
                spec=spec.cluster,
                private_subnet_ids=self.network.private_subnet_ids,
                cluster_key_arn=self.keys.cluster_key_arn,
                logs_key_arn=self.keys.logs_key_arn,
                boundary_arn=self.guardrails.permission_boundary_arn,
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

        self.metaflow_config = self.orchestrator.metaflow_config
        self.permission_boundary_arn = self.guardrails.permission_boundary_arn
        self.data_key_arn = self.keys.data_key_arn
        self.register_outputs(
            {
                "permission_boundary_arn": self.permission_boundary_arn,
                "data_key_arn": self.data_key_arn,
                "metaflow_config": self.metaflow_config,
            }
        )
