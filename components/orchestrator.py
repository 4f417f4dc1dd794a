"""Argo Workflows and the Metaflow metadata service on RDS, and a workflow identity per team."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import Cluster, system_placement
from components.environment import Environment
from components.events import metaflow_event_settings
from components.iam import TEAM_COST_CENTER_TAG, policy_document, team_tags
from components.options import child, stateful
from components.rbac import bound_role, group_subject, service_account_subject
from components.registry import PullThrough
from components.secrets import ExternalSecrets
from components.storage import Bucket
from components.teams import LOCAL_QUEUE
from components.workloads import (
    BASELINE,
    POSTGRES_PORT,
    RESTRICTED_CONTAINER,
    clients_only_policy,
    database_network,
    namespace,
    restricted_pod,
    tls_parameter_group,
    workload_role,
)
from mlstack.spec.orchestrator import OrchestratorSpec
from mlstack.spec.teams import TeamSpec

ARGO_CHART = "argo-workflows"
ARGO_REPOSITORY = "https://argoproj.github.io/argo-helm"
ARGO_RELEASE = "argo-workflows"
ARGO_SERVER_ACCOUNT = "argo-server"
ARGO_CONTROLLER_ACCOUNT = "argo-workflow-controller"
ARGO_SERVER_PORT = 2746
# The chart's own image registries (argo-helm@argo-workflows-1.0.18:charts/argo-workflows/values.yaml), whose
# pull-through caches the controller, server, executor and CRD job pull from.
ARGO_IMAGE_REGISTRY = "quay.io"
ARGO_CRD_JOB_IMAGE = "registry.k8s.io/kubectl"
# Every team namespace gets this service account; Argo runs workflows as it unless a workflow says otherwise.
WORKFLOW_SERVICE_ACCOUNT = "workflows"
# The label that names a workload's Kueue LocalQueue.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
METADATA_SERVICE = "metaflow-metadata"
METADATA_PORT = 8080
UI_BACKEND = "metaflow-ui-backend"
UI_PORT = 8083
# The UI frontend (Netflix/metaflow-ui), one per team next to its backend: nginx serving the built app on PORT
# (metaflow-ui@v1.3.3 Dockerfile: FROM nginx, ENV PORT=3000; nginx.conf.template `listen ${PORT}`).
UI_FRONTEND = "metaflow-ui"
UI_FRONTEND_PORT = 3000
# Where the browser reaches the team's UI backend: a kubectl port-forward of its pod to localhost. The frontend
# injects METAFLOW_SERVICE into index.html (nginx.conf.template sub_filter `window.METAFLOW_SERVICE`), and the
# app calls it from the browser (src/constants.ts), so it names the laptop's forward, not an in-cluster URL.
LOCAL_UI_BACKEND_URL = f"http://localhost:{UI_PORT}"
LOCAL_UI_URL = f"http://localhost:{UI_FRONTEND_PORT}"
METAFLOW_DB_NAME = "metaflow"
# Where a laptop reaches the metadata service: a kubectl port-forward (docs/guides/first-metaflow-flow.md).
LOCAL_METADATA_URL = f"http://localhost:{METADATA_PORT}"
# Label naming the team a Metaflow object serves.
TEAM_LABEL = "mlstack.dev/team"
METAFLOW_DB_USER = "metaflow"
POSTGRES_MAJOR_VERSION = "16"
# Workflows read the team's datasets and write its artifacts and models, each under the team's own prefix.
TEAM_READ_BUCKETS = ("datasets", "artifacts", "models")
TEAM_WRITE_BUCKETS = ("artifacts", "models")
ARTIFACT_KEY_FORMAT = "{{workflow.namespace}}/argo-artifacts/{{workflow.name}}/{{pod.name}}"


@dataclass(frozen=True)
class OrchestratorArgs:
    """Inputs of the Orchestrator. Everything it reaches is passed in explicitly."""

    env: Environment
    spec: OrchestratorSpec
    pull_through: PullThrough
    teams: Sequence[TeamSpec]
    k8s_provider: k8s.Provider
    cluster: Cluster
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    data_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]
    # Data buckets by purpose; artifacts is required, datasets and models are granted to teams when present.
    buckets: Mapping[str, Bucket]
    team_namespaces: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team, what its namespaced objects wait for (``Teams.namespace_ready``); empty when none."""
    admission_ready: Sequence[pulumi.Resource] = ()
    """What every workload waits for because a cluster-wide fail-closed admission webhook must be serving first
    (``Teams.admission_ready``: the Kueue release, whose Deployment, StatefulSet and Job webhooks admit every
    namespace but kube-system and kueue-system). Empty when none."""
    sso_secrets: ExternalSecrets | None = None
    """The operator that syncs the Argo server's OIDC client Secret from Secrets Manager
    (``Platform.external_secrets``, used only with ``sso``); None: the platform team creates the Secret by hand."""

    @property
    def artifacts(self) -> Bucket:
        if "artifacts" not in self.buckets:
            # The spec refuses an enabled orchestrator without the bucket; this guards other callers.
            raise ValueError("the orchestrator needs an artifacts bucket; add 'artifacts' to storage.buckets")
        return self.buckets["artifacts"]


class Orchestrator(pulumi.ComponentResource):
    """Argo Workflows (pinned Helm chart, client or SSO auth, non-root, artifacts in S3 through Pod Identity)
    and the Metaflow metadata service on an encrypted, private RDS PostgreSQL whose master password RDS keeps
    in Secrets Manager. Each team gets a ``workflows`` service account whose role reaches only its prefixes.

    Outputs: ``argo_namespace``, ``argo_server_url``, ``metadata_service_urls`` (team -> in-cluster URL), ``metadata_db_endpoint``,
    ``metadata_db_secret_arn``, ``metaflow_config`` (per team, the contents of ~/.metaflowconfig/config.json).
    """

    argo_namespace: pulumi.Output[str]
    argo_server_url: pulumi.Output[str]
    metadata_service_urls: pulumi.Output[dict[str, str]]
    metadata_db_endpoint: pulumi.Output[str]
    metadata_db_secret_arn: pulumi.Output[str]
    metaflow_config: pulumi.Output[dict[str, dict[str, str]]]

    def __init__(self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:orchestrator:Orchestrator", name, None, opts)
        env, spec = args.env, args.spec
        self._args = args

        self.database: aws.rds.Instance | None = None
        if spec.metaflow:
            self.database = self._metadata_database(name)

        self.argo_release: k8s.helm.v3.Release | None = None
        if spec.argo_workflows:
            argo_ns = namespace(self, f"{name}-argo-ns", spec.argo_namespace, args.k8s_provider, "workflows")
            self._argo_server_role(name, argo_ns)
            # The server reads its OIDC client from this Secret at start: the release waits for the operator.
            synced = (
                args.sso_secrets.sync_client(f"{name}-argo-sso", "argo-server", after=[argo_ns])
                if args.sso_secrets is not None and spec.sso is not None
                else []
            )
            self.argo_release = k8s.helm.v3.Release(
                f"{name}-argo",
                name=ARGO_RELEASE,
                chart=ARGO_CHART,
                version=spec.argo_chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGO_REPOSITORY),
                namespace=argo_ns.metadata.name,
                create_namespace=False,
                atomic=True,
                cleanup_on_fail=True,
                values=pulumi.Output.all(
                    bucket=args.artifacts.bucket_name,
                    db_host=self.database.address if self.database else "",
                    kms_key=args.artifacts.key_arn or "",
                ).apply(
                    lambda out: argo_values(
                        spec,
                        env,
                        [t.name for t in args.teams],
                        bucket=out["bucket"],
                        db_host=out["db_host"] or None,
                        kms_key_id=out["kms_key"] or None,
                        pull_through=args.pull_through,
                    )
                ),
                opts=child(
                    self, provider=args.k8s_provider, depends_on=[argo_ns, *synced, *args.admission_ready]
                ),
            )

        service_urls: dict[str, str] = {}
        if self.database is not None:
            service_urls = self._metadata_service(name, self.database)

        self._team_workflow_identities(name)

        argo_url = (
            f"http://{ARGO_RELEASE}-server.{spec.argo_namespace}.svc.cluster.local:{ARGO_SERVER_PORT}"
            if spec.argo_workflows
            else ""
        )
        self.argo_namespace = pulumi.Output.from_input(spec.argo_namespace if spec.argo_workflows else "")
        self.argo_server_url = pulumi.Output.from_input(argo_url)
        self.metadata_service_urls = pulumi.Output.from_input(service_urls)
        self.metadata_db_endpoint = self.database.address if self.database else pulumi.Output.from_input("")
        self.metadata_db_secret_arn = (
            _master_secret_arn(self.database) if self.database else pulumi.Output.from_input("")
        )
        step_image = args.pull_through.image(spec.metaflow_step_image) if spec.metaflow else ""
        self.metaflow_config = (
            args.artifacts.bucket_name.apply(
                lambda bucket: {
                    team.name: metaflow_config(
                        team.name,
                        env,
                        cost_center=team.cost_center,
                        bucket=bucket,
                        service_url=service_urls[team.name],
                        argo_ui_url=argo_url,
                        step_image=step_image,
                        events=spec.argo_events.enabled,
                    )
                    for team in args.teams
                }
            )
            if spec.metaflow
            else pulumi.Output.from_input({})
        )
        self.register_outputs(
            {
                "argo_namespace": self.argo_namespace,
                "argo_server_url": self.argo_server_url,
                "metadata_service_urls": self.metadata_service_urls,
                "metadata_db_endpoint": self.metadata_db_endpoint,
                "metadata_db_secret_arn": self.metadata_db_secret_arn,
                "metaflow_config": self.metaflow_config,
            }
        )

    def _metadata_database(self, name: str) -> aws.rds.Instance:
        args, env, spec = self._args, self._args.env, self._args.spec
        group, subnets = database_network(
            self,
            name,
            env=env,
            purpose="metaflow",
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            cluster_security_group_id=args.cluster.cluster_security_group_id,
        )
        parameters = tls_parameter_group(
            self, name, env=env, purpose="metaflow", family=f"postgres{POSTGRES_MAJOR_VERSION}"
        )
        identifier = env.resource_name("metaflow")
        return aws.rds.Instance(
            f"{name}-metadata-db",
            identifier=identifier,
            engine="postgres",
            engine_version=POSTGRES_MAJOR_VERSION,
            auto_minor_version_upgrade=True,
            instance_class=spec.db_instance_class,
            allocated_storage=spec.db_allocated_storage_gb,
            max_allocated_storage=spec.db_max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.data_key_arn,
            db_name=METAFLOW_DB_NAME,
            username=METAFLOW_DB_USER,
            # RDS generates and rotates the password in Secrets Manager: it never enters config or state.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.data_key_arn,
            iam_database_authentication_enabled=True,
            db_subnet_group_name=subnets.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            multi_az=spec.db_multi_az,
            backup_retention_period=spec.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=env.tier.hardened,
            skip_final_snapshot=not env.tier.hardened,
            final_snapshot_identifier=env.resource_name("metaflow", "final") if env.tier.hardened else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            performance_insights_enabled=env.tier.hardened,
            performance_insights_kms_key_id=args.data_key_arn if env.tier.hardened else None,
            apply_immediately=not env.tier.hardened,
            opts=stateful(self, env),
        )

    def _argo_server_role(self, name: str, argo_ns: k8s.core.v1.Namespace) -> None:
        """The Argo server streams artifacts to the UI with its own credentials: read on each team's Argo
        prefix only (the server checks the user's Kubernetes RBAC before it serves one)."""
        args = self._args
        if not args.teams:
            return
        role = workload_role(
            self,
            f"{name}-argo-server-role",
            env=args.env,
            role_suffix="argo-server",
            boundary_arn=args.boundary_arn,
            cluster=args.cluster,
            namespace=args.spec.argo_namespace,
            service_account=ARGO_SERVER_ACCOUNT,
            description="Argo server: reads workflow artifacts of every team for the UI",
        )
        for team in args.teams:
            args.artifacts.grant_read(role, prefix=f"{team.name}/argo-artifacts/")

    def _metadata_service(self, name: str, database: aws.rds.Instance) -> dict[str, str]:
        """One metadata service (and optional UI backend) per team, each on the team's own PostgreSQL schema,
        with its own service account and IAM role (the team's Metaflow root only), reachable only from the
        team's namespace and port-forwardable only by the team's group. Returns team -> in-cluster URL.

        A shared service would let any team read and rewrite every other team's runs: the service has no
        per-request authentication (rt-data S3). Each pod reads the RDS-managed secret at start-up through Pod
        Identity into a memory-backed volume that only it sees, so no Kubernetes Secret ever holds the password.
        """
        args, spec = self._args, self._args.spec
        ns_name = spec.metaflow_namespace
        # Baseline, not restricted: the database migration runs as root (see metaflow_statefulset_spec).
        metaflow_ns = namespace(
            self, f"{name}-metaflow-ns", ns_name, args.k8s_provider, "workflows", enforce=BASELINE
        )
        k8s_opts = child(self, provider=args.k8s_provider, depends_on=[metaflow_ns, *args.admission_ready])
        secret_arn = _master_secret_arn(database)
        urls: dict[str, str] = {}
        for team in args.teams:
            urls[team.name] = self._team_metadata_service(
                name, team, ns_name, k8s_opts, host=database.address, secret_arn=secret_arn
            )
        return urls

    def _team_metadata_service(
        self,
        name: str,
        team: TeamSpec,
        ns_name: str,
        k8s_opts: pulumi.ResourceOptions,
        *,
        host: pulumi.Output[str],
        secret_arn: pulumi.Output[str],
    ) -> str:
        args, env, spec = self._args, self._args.env, self._args.spec
        prefix = f"{name}-{team.name}"
        account_name = f"metaflow-{team.name}"
        account = k8s.core.v1.ServiceAccount(
            f"{prefix}-metaflow-sa",
            metadata=_meta(account_name, ns_name, team=team.name),
            automount_service_account_token=False,
            opts=k8s_opts,
        )
        role = workload_role(
            self,
            f"{prefix}-metaflow-role",
            env=env,
            role_suffix=f"metaflow-{team.name}",
            boundary_arn=args.boundary_arn,
            cluster=args.cluster,
            namespace=ns_name,
            service_account=account_name,
            description=f"Metaflow service of team {team.name}: DB credentials and the team's Metaflow root",
            tags=team_tags(team.name, team.cost_center),
        )
        aws.iam.RolePolicy(
            f"{prefix}-metaflow-db-secret",
            role=role.name,
            policy=policy_document(db_secret_statements(secret_arn, args.data_key_arn, env.region)),
            opts=child(self),
        )
        # The UI backend reads task artifacts, logs and cards from this team's Metaflow root, and nothing else.
        args.artifacts.grant_read(role, prefix=f"{team.name}/metaflow/")
        scripts = k8s.core.v1.ConfigMap(
            f"{prefix}-metaflow-db",
            metadata=_meta(f"metaflow-db-{team.name}", ns_name, team=team.name),
            data=metaflow_db_files(team.name),
            opts=k8s_opts,
        )

        apps = [(METADATA_SERVICE, METADATA_PORT, "services.metadata_service.server")]
        if spec.metaflow_ui:
            apps.append((UI_BACKEND, UI_PORT, "services.ui_backend_service.ui_server"))
        pods: list[str] = []
        for app, port, module in apps:
            set_name = f"{app}-{team.name}"
            pods += [f"{set_name}-{i}" for i in range(spec.metadata_service_replicas)]
            k8s.apps.v1.StatefulSet(
                f"{prefix}-{app}",
                metadata=_meta(set_name, ns_name, team=team.name),
                spec=pulumi.Output.all(host=host, secret_arn=secret_arn).apply(
                    lambda out, app=app, port=port, module=module, set_name=set_name: (
                        metaflow_statefulset_spec(  # type: ignore[misc]
                            spec,
                            team=team.name,
                            app=app,
                            name=set_name,
                            port=port,
                            module=module,
                            db_host=out["host"],
                            db_secret_arn=out["secret_arn"],
                            region=env.region,
                            migrate=app == METADATA_SERVICE,
                            pull_through=args.pull_through,
                        )
                    )
                ),
                opts=child(self, provider=args.k8s_provider, depends_on=[account, role, scripts]),
            )
            k8s.core.v1.Service(
                f"{prefix}-{app}-svc",
                metadata=_meta(set_name, ns_name, team=team.name),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    selector={"app.kubernetes.io/name": set_name},
                    ports=[k8s.core.v1.ServicePortArgs(name="http", port=port, target_port=port)],
                ),
                opts=k8s_opts,
            )
        if spec.metaflow_ui:
            pods += self._ui_frontend(prefix, team, ns_name, k8s_opts)
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-metaflow-netpol",
            metadata=_meta(f"metaflow-clients-{team.name}", ns_name, team=team.name),
            spec=clients_only_policy(
                pod_labels={"app.kubernetes.io/part-of": "metaflow", TEAM_LABEL: team.name},
                namespaces=[team.name],
                ports=[METADATA_PORT, UI_PORT] if spec.metaflow_ui else [METADATA_PORT],
            ),
            opts=k8s_opts,
        )
        # Laptops reach the team's service with `kubectl port-forward pod/<name>-0`: only the team's group, only
        # its own pods (StatefulSet pods have stable names, so RBAC can name them).
        bound_role(
            self,
            f"{prefix}-metaflow-port-forward",
            metadata=_meta(f"metaflow-port-forward-{team.name}", ns_name, team=team.name),
            rules=[
                {"api_groups": [""], "resources": ["pods"], "resource_names": pods, "verbs": ["get"]},
                {"api_groups": [""], "resources": ["pods/portforward"], "resource_names": pods, "verbs": ["create"]},
            ],
            subjects=[group_subject(team.group)],
            provider=args.k8s_provider,
            role_opts=k8s_opts,
        )
        return f"http://{METADATA_SERVICE}-{team.name}.{ns_name}.svc.cluster.local:{METADATA_PORT}"

    def _ui_frontend(
        self, prefix: str, team: TeamSpec, ns_name: str, k8s_opts: pulumi.ResourceOptions
    ) -> list[str]:
        """The team's Metaflow UI frontend: a StatefulSet (stable pod names for the team's port-forward Role)
        and a ClusterIP Service. It has no network client: the team's browser reaches it and the team's UI
        backend through port-forwards, which NetworkPolicies do not see; the metaflow namespace's policy still
        admits nothing but the team's namespace on the services' ports. Returns its pod names."""
        spec = self._args.spec
        set_name = f"{UI_FRONTEND}-{team.name}"
        k8s.apps.v1.StatefulSet(
            f"{prefix}-{UI_FRONTEND}",
            metadata=_meta(set_name, ns_name, team=team.name),
            spec=ui_frontend_statefulset_spec(
                spec, team=team.name, name=set_name, pull_through=self._args.pull_through
            ),
            opts=k8s_opts,
        )
        k8s.core.v1.Service(
            f"{prefix}-{UI_FRONTEND}-svc",
            metadata=_meta(set_name, ns_name, team=team.name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector={"app.kubernetes.io/name": set_name},
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=UI_FRONTEND_PORT, target_port=UI_FRONTEND_PORT
                    )
                ],
            ),
            opts=k8s_opts,
        )
        return [f"{set_name}-{i}" for i in range(spec.metadata_service_replicas)]

    def _team_workflow_identities(self, name: str) -> None:
        """Per team: the ``workflows`` service account, the executor permissions Argo needs in the namespace,
        and an IAM role that reaches only the team's own prefixes."""
        args = self._args
        if not (args.spec.argo_workflows or args.spec.metaflow):
            return
        for team in args.teams:
            after_namespaces = child(
                self, provider=args.k8s_provider, depends_on=list(args.team_namespaces.get(team.name, ()))
            )
            account = k8s.core.v1.ServiceAccount(
                f"{name}-{team.name}-workflows-sa",
                metadata=_meta(WORKFLOW_SERVICE_ACCOUNT, team.name),
                opts=after_namespaces,
            )
            bound_role(
                self,
                f"{name}-{team.name}-executor",
                metadata=_meta("argo-workflow-executor", team.name),
                # Argo v3.4+ executors report step results through WorkflowTaskResults, nothing else.
                rules=[
                    {"api_groups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
                ],
                subjects=[service_account_subject(WORKFLOW_SERVICE_ACCOUNT, team.name)],
                provider=args.k8s_provider,
                role_opts=after_namespaces,
                binding_after=[account],
            )
            # Metaflow's @parallel on Argo creates a JobSet from a resource template, run by the workflow's own
            # service account: the executor runs `kubectl create` and then reads the object back until its
            # success or failure condition holds (argoproj/argo-workflows@v4.0.6:workflow/executor/resource.go).
            bound_role(
                self,
                f"{name}-{team.name}-jobsets",
                metadata=_meta("metaflow-jobsets", team.name),
                rules=[{"api_groups": ["jobset.x-k8s.io"], "resources": ["jobsets"], "verbs": ["create", "get"]}],
                subjects=[service_account_subject(WORKFLOW_SERVICE_ACCOUNT, team.name)],
                provider=args.k8s_provider,
                role_opts=after_namespaces,
                binding_after=[account],
            )
            role = workload_role(
                self,
                f"{name}-{team.name}-workflows-role",
                env=args.env,
                role_suffix=f"{team.name}-workflows",
                boundary_arn=args.boundary_arn,
                cluster=args.cluster,
                namespace=team.name,
                service_account=WORKFLOW_SERVICE_ACCOUNT,
                description=f"Workflows of team {team.name}: its own prefixes only",
                tags=team_tags(team.name, team.cost_center),
            )
            own = f"{team.name}/"
            for purpose, bucket in args.buckets.items():
                if purpose in TEAM_READ_BUCKETS:
                    bucket.grant_read(role, prefix=own)
                if purpose in TEAM_WRITE_BUCKETS:
                    bucket.grant_write(role, prefix=own)


def _meta(name: str, ns: str, team: str | None = None) -> k8s.meta.v1.ObjectMetaArgs:
    part_of = "metaflow" if name.startswith("metaflow") else "workflows"
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/managed-by": "mlstack",
    }
    if team is not None:
        labels[TEAM_LABEL] = team
    return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=labels)


def _master_secret_arn(database: aws.rds.Instance) -> pulumi.Output[str]:
    return database.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn if secrets else "")


def argo_values(
    spec: OrchestratorSpec,
    env: Environment,
    teams: list[str],
    *,
    bucket: str,
    db_host: str | None,
    kms_key_id: str | None = None,
    pull_through: PullThrough,
) -> dict[str, Any]:
    """Helm values of the argo-workflows chart. Everything security-relevant is explicit, not a chart default;
    every image (controller, server, executor, CRD job) comes through the environment's pull-through caches."""
    hardened = env.tier.hardened
    # argo-helm@argo-workflows-1.0.18:charts/argo-workflows/values.yaml `controller.image.registry`,
    # `server.image.registry`, `executor.image.registry` (default quay.io; repositories argoproj/... and tags
    # default to the appVersion v4.0.6 are kept): templates/_helpers.tpl "argo-workflows.image" renders
    # "<registry>/<repository>".
    quay = pull_through.registry(ARGO_IMAGE_REGISTRY)
    server: dict[str, Any] = {
        "enabled": True,
        "authModes": [spec.server_auth_mode],
        "serviceType": "ClusterIP",
        "serviceAccount": {"create": True, "name": ARGO_SERVER_ACCOUNT},
        "replicas": 2 if hardened else 1,
        "image": {"registry": quay},
        "podSecurityContext": restricted_pod(8737),
        "securityContext": {**RESTRICTED_CONTAINER},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "ingress": {"enabled": False},
        "secure": False,
        # values.yaml `server.nodeSelector` (merged with the chart's kubernetes.io/os), `server.tolerations`.
        **system_placement(),
    }
    if spec.sso is not None:
        server["sso"] = {
            "enabled": True,
            "issuer": spec.sso.issuer,
            "clientId": {"name": spec.sso.client_secret_name, "key": "client-id"},
            "clientSecret": {"name": spec.sso.client_secret_name, "key": "client-secret"},
            "redirectUrl": spec.sso.redirect_url,
            "scopes": list(spec.sso.scopes),
            "rbac": {"enabled": True},
        }
    controller: dict[str, Any] = {
        "serviceAccount": {"create": True, "name": ARGO_CONTROLLER_ACCOUNT},
        # Workflows run in the team namespaces, where mlstack creates the service account and its Role.
        "workflowNamespaces": list(teams),
        "replicas": 2 if hardened else 1,
        "image": {"registry": quay},
        "podSecurityContext": restricted_pod(8737),
        "securityContext": {**RESTRICTED_CONTAINER},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        # values.yaml `controller.nodeSelector`, `controller.tolerations`: on the system nodes.
        **system_placement(),
        # values.yaml `controller.metricsConfig.enabled` (default false): the controller's Prometheus endpoint
        # (/metrics on 9090, plain HTTP: the chart's `secure: false`) and the Service that exposes it
        # (templates/controller/workflow-controller-service.yaml), which the metrics stack scrapes
        # (components/observability.py scrape_targets).
        "metricsConfig": {"enabled": True},
        "workflowDefaults": {
            "spec": {
                "serviceAccountName": WORKFLOW_SERVICE_ACCOUNT,
                # Finished workflows leave etcd after a week; the archive (when on) keeps them longer.
                "ttlStrategy": {"secondsAfterCompletion": 7 * 24 * 3600},
                "podGC": {"strategy": "OnPodSuccess"},
            }
        },
    }
    if spec.workflow_archive and db_host:
        controller["persistence"] = {
            "archive": True,
            "archiveTTL": f"{spec.archive_ttl_days}d",
            "postgresql": {
                "host": db_host,
                "port": POSTGRES_PORT,
                "database": METAFLOW_DB_NAME,
                "tableName": "argo_workflows",
                "userNameSecret": {"name": spec.archive_db_secret_name, "key": "username"},
                "passwordSecret": {"name": spec.archive_db_secret_name, "key": "password"},
                "ssl": True,
                "sslMode": "require",
            },
        }
    return {
        "crds": {
            "install": True,
            "keep": True,
            # argo-helm@argo-workflows-1.0.18:charts/argo-workflows/values.yaml
            # `crds.upgradeJob.image.repository` (default registry.k8s.io/kubectl; the tag v1.36.2 is kept):
            # templates/crds-install-job.yaml renders "<repository>:<tag>".
            # `crds.upgradeJob.nodeSelector`, `.tolerations` (templates/crds-install-job.yaml): system nodes.
            # `crds.full` stays true: false installs the minimal CRDs (files/crds/minimal, schemas reduced to
            # x-kubernetes-preserve-unknown-fields), so the API server would stop validating Workflows. The hook
            # Job that applies the full CRDs gets `crds.upgradeJob.resources` (default none; rendered on its
            # kubectl container by templates/crds-install-job.yaml).
            "upgradeJob": {
                "image": {"repository": pull_through.image(ARGO_CRD_JOB_IMAGE)},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                **system_placement(),
            },
        },
        "singleNamespace": False,
        "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
        "controller": controller,
        "server": server,
        "executor": {
            # The executor image is an argument of the controller (templates/controller/
            # workflow-controller-deployment.yaml `--executor-image`), pulled in every workflow pod.
            "image": {"registry": quay},
            "securityContext": {**RESTRICTED_CONTAINER},
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        },
        # Pods get S3 credentials from Pod Identity through the SDK chain: no access keys in any Secret.
        "useStaticCredentials": False,
        "artifactRepository": {
            "archiveLogs": True,
            "s3": {
                "bucket": bucket,
                "endpoint": f"s3.{env.region}.amazonaws.com",
                "region": env.region,
                "insecure": False,
                "useSDKCreds": True,
                "keyFormat": ARTIFACT_KEY_FORMAT,
                # With a key id Argo sends SSE-KMS with that key (argo-workflows v4.0.6
                # workflow/artifacts/s3/s3.go buildServerSideEnc -> encrypt.NewSSEKMS); without one it sends
                # AES256 (encrypt.NewSSE), which the bucket policy refuses. The chart copies encryptionOptions
                # verbatim (argo-helm argo-workflows-1.0.18, workflow-controller-config-map.yaml).
                "encryptionOptions": (
                    {"enableEncryption": True, "kmsKeyId": kms_key_id}
                    if kms_key_id
                    else {"enableEncryption": True}
                ),
            },
        },
    }


def db_secret_statements(
    secret_arn: pulumi.Input[str], data_key_arn: pulumi.Input[str], region: str
) -> list[dict[str, Any]]:
    """Read the one RDS-managed secret, and decrypt it with the data key only through Secrets Manager."""
    return [
        {
            "Sid": "ReadDatabaseCredentials",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": secret_arn,
        },
        {
            "Sid": "DecryptThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": data_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        },
    ]


# The migration container's security context: root (see metaflow_deployment_spec), nothing else granted.
MIGRATION_CONTAINER: dict[str, Any] = {
    "runAsUser": 0,
    "runAsGroup": 0,
    "runAsNonRoot": False,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# Where each pod of a team's Metaflow services finds its database settings and helper scripts (a ConfigMap).
DB_FILES = "/etc/metaflow-db"
# libpq (psycopg2: the services and run_goose.py's checks) and pgconn v1.13 (pgx v4, the goose v3.9.0 binary
# the image runs) both read PGSERVICEFILE/PGSERVICE, and both send a service's `options` to the server as
# command-line options (jackc/pgconn v1.13.0 config.go: env PGSERVICE/PGSERVICEFILE, unknown settings become
# startup parameters). So every connection of the team's pods, migration included, uses the team's schema.
PG_SERVICE = "metaflow"


def metaflow_schema(team: str) -> str:
    """The PostgreSQL schema of one team's Metaflow metadata: ``metaflow_<team>`` with '-' as '_' (team names
    are DNS labels of at most 32 characters, so the result is a valid unquoted identifier)."""
    return "metaflow_" + team.replace("-", "_")


# The first botocore whose container credential provider reads EKS Pod Identity credentials (AWS EKS user guide,
# pod-id-minimum-sdk.html: "Python (Boto3) - 1.34.41", "Python (botocore) - 1.34.41"). metaflow-service v2.4.13
# does not pin boto3 (Netflix/metaflow-service@v2.4.13:services/metadata_service/requirements.txt), so the
# image's version is whatever pip resolved when it was built: the script checks it before the first AWS call.
POD_IDENTITY_MIN_BOTOCORE = (1, 34, 41)

_FETCH_CREDENTIALS = f"""\
# Reads the RDS-managed secret through Pod Identity on every container start, so a restart after RDS rotates
# the password picks up the new one.
import os
import sys

import boto3
import botocore

MINIMUM = {POD_IDENTITY_MIN_BOTOCORE!r}
found = tuple(int(part) for part in botocore.__version__.split(".")[:3])
if found < MINIMUM:
    sys.exit(
        "error: botocore " + botocore.__version__ + " in this image predates EKS Pod Identity credentials "
        "(botocore >= " + ".".join(map(str, MINIMUM)) + "); set orchestrator.metadata_service_image to an image "
        "with a newer boto3"
    )

client = boto3.client("secretsmanager", region_name=os.environ["AWS_REGION"])
secret = client.get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])["SecretString"]
with open("/run/db/credentials.json", "w") as out:
    out.write(secret)
"""

_PRINT_DB_LOGIN = """\
import json

print(json.load(open("/run/db/credentials.json"))["password"])
"""

_CREATE_SCHEMA = """\
# The team's schema must exist before goose creates its tables there (search_path from the service file).
import os

import psycopg2
from psycopg2 import sql

connection = psycopg2.connect(
    host=os.environ["MF_METADATA_DB_HOST"],
    port=os.environ["MF_METADATA_DB_PORT"],
    user=os.environ["MF_METADATA_DB_USER"],
    password=os.environ["MF_METADATA_DB_PSWD"],
    dbname=os.environ["MF_METADATA_DB_NAME"],
    sslmode=os.environ["MF_METADATA_DB_SSL_MODE"],
)
connection.autocommit = True
with connection.cursor() as cursor:
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(os.environ["DB_SCHEMA_NAME"])))
connection.close()
"""

_CHECK_LOGIN = """\
# Liveness: fails when the password this container read no longer logs in (RDS rotated it), so the kubelet
# restarts the container, which reads the new one.
import json
import os

import psycopg2

psycopg2.connect(
    host=os.environ["MF_METADATA_DB_HOST"],
    port=os.environ["MF_METADATA_DB_PORT"],
    user=os.environ["MF_METADATA_DB_USER"],
    password=json.load(open("/run/db/credentials.json"))["password"],
    dbname=os.environ["MF_METADATA_DB_NAME"],
    sslmode=os.environ["MF_METADATA_DB_SSL_MODE"],
    connect_timeout=5,
).close()
"""


def metaflow_db_files(team: str) -> dict[str, str]:
    """The ConfigMap data of one team's Metaflow pods: the PostgreSQL service file that pins the team's schema,
    and the small scripts the containers run (no secret: the password is read at start-up)."""
    return {
        "pg_service.conf": f"[{PG_SERVICE}]\noptions=-c search_path={metaflow_schema(team)}\n",
        "fetch_credentials.py": _FETCH_CREDENTIALS,
        "password.py": _PRINT_DB_LOGIN,
        "create_schema.py": _CREATE_SCHEMA,
        "check_login.py": _CHECK_LOGIN,
    }


def metaflow_statefulset_spec(
    spec: OrchestratorSpec,
    *,
    team: str,
    app: str,
    name: str,
    port: int,
    module: str,
    db_host: str,
    db_secret_arn: str,
    region: str,
    migrate: bool,
    pull_through: PullThrough,
) -> dict[str, Any]:
    """StatefulSet spec of one team's Metaflow service: credentials read at start-up into memory, the team's
    schema, non-root (but for the migration), read-only root file system, requests and limits set.

    A StatefulSet rather than a Deployment only for its stable pod names (``<name>-0``...), which the team's
    port-forward Role names."""
    python = "/opt/latest/bin/python3"
    # TLS to RDS, which requires it for PostgreSQL 15+. Both readers of MF_METADATA_DB_SSL_MODE exist at
    # metaflow-service v2.4.13: run_goose.py (the migration) and services/utils/__init__.py DBConfiguration
    # (the services); 'require' encrypts without a CA bundle in the pod.
    env = [
        {"name": "MF_METADATA_DB_HOST", "value": db_host},
        {"name": "MF_METADATA_DB_PORT", "value": str(POSTGRES_PORT)},
        {"name": "MF_METADATA_DB_USER", "value": METAFLOW_DB_USER},
        {"name": "MF_METADATA_DB_NAME", "value": METAFLOW_DB_NAME},
        {"name": "MF_METADATA_DB_SSL_MODE", "value": "require"},
        # Each pool at most 5 connections: teams x replicas x services share one small instance.
        {"name": "MF_METADATA_DB_POOL_MAX", "value": "5"},
        # run_goose.py and services/data/postgres_async_db.py read DB_SCHEMA_NAME (v2.4.13).
        {"name": "DB_SCHEMA_NAME", "value": metaflow_schema(team)},
        {"name": "PGSERVICEFILE", "value": f"{DB_FILES}/pg_service.conf"},
        {"name": "PGSERVICE", "value": PG_SERVICE},
        {"name": "DB_SECRET_ARN", "value": db_secret_arn},
        {"name": "AWS_REGION", "value": region},
    ]
    if app == UI_BACKEND:
        # The UI bundle is downloaded into /root at build time (Dockerfile, download_ui.sh), which our
        # non-root user cannot read; the backend serves only its API (ui_server.py: UI_ENABLED == "1").
        env.append({"name": "UI_ENABLED", "value": "0"})
        # The team's UI frontend (its own origin, http://localhost:3000 through a port-forward) calls this
        # backend from the browser: metaflow-service v2.4.13 ui_server.py enables CORS for exactly this origin
        # (services/utils ORIGIN_TO_ALLOW_CORS_FROM), and for no other.
        if spec.metaflow_ui:
            env.append({"name": "ORIGIN_TO_ALLOW_CORS_FROM", "value": LOCAL_UI_URL})
    with_password = f'export MF_METADATA_DB_PSWD="$({python} {DB_FILES}/password.py)" && '
    mounts = [
        {"name": "db-credentials", "mountPath": "/run/db"},
        {"name": "db-files", "mountPath": DB_FILES, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not the host's /tmp
    ]
    resources = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    init: list[dict[str, Any]] = []
    if migrate:
        # The migration is the one container that runs as root: metaflow-service v2.4.13's Dockerfile ADDs
        # run_goose.py and the goose migration files under /root (WORKDIR /root, python:3.11.6-slim-bookworm,
        # no USER), and /root is mode 0700, so no other user can read them. Root here owns those files, so it
        # needs no capability: all are dropped, no escalation, read-only root file system, and the container
        # only creates the team's schema, runs goose and exits before the service starts. The namespace
        # therefore enforces the baseline Pod Security Standard (restricted stays audited and warned), and
        # MLS-K8S-012 is waived for these StatefulSets in policies/waivers.yaml.
        init.append(
            {
                "name": "migrate-db",
                "image": pull_through.image(spec.metadata_service_image),
                "command": ["/bin/sh", "-c"],
                "args": [
                    f"{python} {DB_FILES}/fetch_credentials.py && "
                    + with_password
                    + f"{python} {DB_FILES}/create_schema.py && "
                    + f"exec {python} /root/run_goose.py --only-if-empty-db"
                ],
                "env": [*env, {"name": "HOME", "value": "/tmp"}],  # noqa: S108 - a private emptyDir
                "volumeMounts": mounts,
                "securityContext": {**MIGRATION_CONTAINER},
                "resources": resources,
            }
        )
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "metaflow", TEAM_LABEL: team}
    pod: dict[str, Any] = {
        "serviceAccountName": f"metaflow-{team}",
        "securityContext": restricted_pod(),
        "containers": [
            {
                "name": app,
                "image": pull_through.image(spec.metadata_service_image),
                "command": ["/bin/sh", "-c"],
                "args": [
                    f"{python} {DB_FILES}/fetch_credentials.py && "
                    + with_password
                    + f"exec {python} -m {module}"
                ],
                # The image's WORKDIR is /root (mode 0700): a non-root process cannot start there. The services
                # import from /opt/latest's site-packages (pip install . in the Dockerfile), so they run from
                # the private /tmp.
                "workingDir": "/tmp",  # noqa: S108 - a private emptyDir
                "env": [*env, {"name": "HOME", "value": "/tmp"}],  # noqa: S108
                "ports": [{"name": "http", "containerPort": port}],
                "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10},
                # RDS rotates the password every 7 days: when it stops logging in, restart and read it again.
                "livenessProbe": {
                    "exec": {"command": [python, f"{DB_FILES}/check_login.py"]},
                    "initialDelaySeconds": 60,
                    "periodSeconds": 60,
                    "timeoutSeconds": 15,
                    "failureThreshold": 3,
                },
                "volumeMounts": mounts,
                "securityContext": RESTRICTED_CONTAINER,
                "resources": resources,
            }
        ],
        "volumes": [
            {"name": "db-credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "db-files", "configMap": {"name": f"metaflow-db-{team}"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    if init:
        pod["initContainers"] = init
    pod.update(system_placement())  # a platform service: on the system nodes
    return {
        "serviceName": name,
        "replicas": spec.metadata_service_replicas,
        # Replicas are interchangeable: start and replace them together, not one by one.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }


def ui_frontend_statefulset_spec(
    spec: OrchestratorSpec, *, team: str, name: str, pull_through: PullThrough
) -> dict[str, Any]:
    """StatefulSet spec of one team's Metaflow UI frontend: the metaflow-ui image (FROM nginx, built by
    Netflix/metaflow-ui@v1.3.3's Dockerfile) as a non-root user with a read-only root file system.

    nginx writes in four places, each a private emptyDir: /etc/nginx/conf.d, where the image's entrypoint renders
    its templates (nginxinc/docker-nginx entrypoint 20-envsubst-on-templates.sh: output_dir
    NGINX_ENVSUBST_OUTPUT_DIR, default /etc/nginx/conf.d, which must be writable); /var/cache/nginx (nginx's temp
    paths); /run (the pid file; Debian's /var/run links there); /tmp. Run as a non-root user nginx ignores its
    `user` directive and binds port 3000, above 1024."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "metaflow", TEAM_LABEL: team}
    writable = {"conf": "/etc/nginx/conf.d", "cache": "/var/cache/nginx", "run": "/run", "tmp": "/tmp"}  # noqa: S108
    pod: dict[str, Any] = {
        # The frontend reads nothing from the cluster: no service account token.
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod(),
        "containers": [
            {
                "name": UI_FRONTEND,
                "image": pull_through.image(spec.metaflow_ui_image),
                "env": [
                    {"name": "PORT", "value": str(UI_FRONTEND_PORT)},
                    {"name": "METAFLOW_SERVICE", "value": LOCAL_UI_BACKEND_URL},
                ],
                "ports": [{"name": "http", "containerPort": UI_FRONTEND_PORT}],
                "readinessProbe": {"httpGet": {"path": "/", "port": UI_FRONTEND_PORT}, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/", "port": UI_FRONTEND_PORT}, "periodSeconds": 30},
                "volumeMounts": [{"name": key, "mountPath": path} for key, path in writable.items()],
                "securityContext": RESTRICTED_CONTAINER,
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            }
        ],
        "volumes": [{"name": key, "emptyDir": {"sizeLimit": "64Mi"}} for key in writable],
    }
    pod.update(system_placement())  # a platform service, like the team's metadata service and UI backend
    return {
        "serviceName": name,
        "replicas": spec.metadata_service_replicas,
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }


def metaflow_config(
    team: str,
    env: Environment,
    *,
    cost_center: str,
    bucket: str,
    service_url: str,
    argo_ui_url: str,
    step_image: str,
    events: bool = False,
) -> dict[str, str]:
    """The ~/.metaflowconfig/config.json of one team: its own S3 root, namespace and service account, the
    metadata service and Argo Workflows. It holds no secret: credentials come from the user's AWS session and
    kubeconfig, and pods get theirs from Pod Identity.

    Metaflow reads only ``METAFLOW_*`` keys from this file (Netflix/metaflow metaflow_config_funcs.py
    ``from_conf``: ``env_name = "METAFLOW_%s" % name``), so the AWS region comes from the user's AWS profile.

    - ``METAFLOW_SERVICE_URL`` is where the laptop reaches the service: a ``kubectl port-forward`` on
      localhost (the service has no endpoint outside the cluster). ``METAFLOW_SERVICE_INTERNAL_URL`` is the
      in-cluster URL that Metaflow hands to the pods it launches (plugins/kubernetes/kubernetes.py and
      plugins/argo/argo_workflows.py set the pods' METAFLOW_SERVICE_URL from SERVICE_INTERNAL_URL).
    - No ``METAFLOW_S3_SERVER_SIDE_ENCRYPTION``: Metaflow can send only the algorithm, never a key id
      (plugins/datatools/s3/s3.py sets only ServerSideEncryption; metaflow_config.py has no KMS key setting),
      and the bucket refuses ``aws:kms`` without its key id. Without the header the bucket's default
      encryption applies: SSE-KMS with the data key and the bucket key.
    - ``METAFLOW_KUBERNETES_CONTAINER_IMAGE`` is the steps' default image through the ECR pull-through
      cache; without it Metaflow runs ``python:<major>.<minor>`` from Docker Hub
      (plugins/kubernetes/kubernetes_decorator.py).
    - With ``events`` (orchestrator.argo_events.enabled), the ``METAFLOW_ARGO_EVENTS_*`` keys of
      :func:`components.events.metaflow_event_settings`.
    """
    root = f"s3://{bucket}/{team}/metaflow"
    config = {
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": root,
        "METAFLOW_DATATOOLS_S3ROOT": f"{root}/data",
        "METAFLOW_CARD_S3ROOT": f"{root}/cards",
        "METAFLOW_DEFAULT_METADATA": "service",
        "METAFLOW_SERVICE_URL": LOCAL_METADATA_URL,
        "METAFLOW_SERVICE_INTERNAL_URL": service_url,
        "METAFLOW_KUBERNETES_NAMESPACE": team,
        "METAFLOW_KUBERNETES_SERVICE_ACCOUNT": WORKFLOW_SERVICE_ACCOUNT,
        # Limits equal to requests (metaflow 2.19.39 plugins/kubernetes/kube_utils.py qos_requests_and_limits).
        # With Metaflow's default QoS (Burstable: requests only) the team LimitRange adds its default limit
        # (memory 2Gi) to a step that requests more (Metaflow's default is 4096M), and admission refuses the pod.
        "METAFLOW_KUBERNETES_QOS": "Guaranteed",
        "METAFLOW_KUBERNETES_CONTAINER_IMAGE": step_image,
        # Every step pod carries the team's cost center, so split cost allocation data for EKS (with the label
        # imported as a cost allocation tag) charges its share of the shared nodes to the team's budget.
        # Format "key=value,..." (plugins/kubernetes/kubernetes_decorator.py: KUBERNETES_LABELS.split(",")).
        "METAFLOW_KUBERNETES_LABELS": f"{TEAM_COST_CENTER_TAG}={cost_center},{TEAM_LABEL}={team}",
    }
    # Every step queues on the team's Kueue LocalQueue (components/teams.py LOCAL_QUEUE): Argo's step pods
    # through Kueue's pod integration, @parallel JobSets as one gang (Kueue's jobset integration). Metaflow
    # puts these labels on the pods, Jobs and JobSets it creates (plugins/kubernetes/kubernetes.py
    # create_jobset: jobset.labels(labels)); kubernetes-sigs/kueue@v0.19.2 docs tasks/run/jobsets.md and
    # external_workloads/argo_workflow.md name the label.
    config["METAFLOW_KUBERNETES_LABELS"] += f",{KUEUE_QUEUE_LABEL}={LOCAL_QUEUE}"
    if argo_ui_url:
        config["METAFLOW_ARGO_WORKFLOWS_UI_URL"] = argo_ui_url
    if events:
        # @trigger and @trigger_on_finish through the team's own Argo Events bus and webhook (components/events.py).
        config.update(metaflow_event_settings(team))
    return config
