"""Orchestrator section of the environment spec: Argo Workflows and Metaflow."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.secrets import SecretsManagerName

ChartVersion = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:\d+)?(/[\w.~%/-]*)?$")]
RdsInstanceClass = Annotated[str, StringConstraints(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
# An image reference with a registry host and an explicit tag, so nothing floats to 'latest'.
ContainerImage = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$")
]


class ArgoSsoSpec(StrictModel):
    """OIDC single sign-on for the Argo server. The client id and secret live in a Kubernetes Secret of the Argo
    namespace that External Secrets Operator syncs from Secrets Manager (``client_secret_id``), so they never pass
    through config or state."""

    issuer: HttpsUrl = Field(description="Root URL of the OIDC identity provider, https only.")
    redirect_url: HttpsUrl = Field(
        description="The Argo server's OAuth2 callback, https only, ending in /oauth2/callback."
    )
    client_secret_name: DnsLabel = Field(
        default="argo-server-sso",
        description="Kubernetes Secret in the Argo namespace holding keys client-id and client-secret. "
        "Default: argo-server-sso.",
    )
    client_secret_id: SecretsManagerName | None = Field(
        default=None,
        description="AWS Secrets Manager secret (its name) holding the client as JSON keys client-id and "
        "client-secret; External Secrets Operator copies it into client_secret_name (external_secrets). "
        "Default: mlstack/<environment>/sso/argo-server.",
    )
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[\w:.-]{1,64}$")]] = Field(
        default_factory=lambda: ["groups"],
        description="Extra OIDC scopes to request. Default: groups, used to map users to service accounts.",
    )

    @model_validator(mode="after")
    def _callback_path(self) -> ArgoSsoSpec:
        if not self.redirect_url.endswith("/oauth2/callback"):
            raise ValueError(
                f"redirect_url {self.redirect_url!r} must end in /oauth2/callback, the Argo server's callback path"
            )
        return self


class ArgoEventsSpec(StrictModel):
    """Argo Events for Metaflow's ``@trigger`` and ``@trigger_on_finish``: the controller (argo-events chart) and,
    in every team namespace, a JetStream EventBus, the webhook EventSource Metaflow publishes to and the service
    account Metaflow's sensors run as. Default: off."""

    enabled: bool = Field(
        default=False,
        description="Install Argo Events and wire it into each team's Metaflow config (needs argo_workflows and "
        "metaflow). Default: off.",
    )
    namespace: DnsLabel = Field(
        default="argo-events", description="Namespace of the Argo Events controller. Default: argo-events."
    )
    chart_version: ChartVersion = Field(
        default="2.4.22",
        description="Pinned version of the argo-events Helm chart (argoproj/argo-helm). "
        "Default: 2.4.22 (Argo Events v1.9.10).",
    )
    eventbus_replicas: Literal[1, 3, 5] | None = Field(
        default=None,
        description="NATS JetStream servers of each team's EventBus (Argo Events accepts 1 or at least 3; "
        "JetStream needs an odd number for its quorum). Default: 1 in dev, 3 in staging and prod.",
    )
    nats_images_through_cache: bool = Field(
        default=True,
        description="Pull the EventBus's NATS images (Docker Hub: nats, natsio/nats-server-config-reloader, "
        "natsio/prometheus-nats-exporter) through the registry's docker-hub pull-through cache, which must then "
        "exist. false is a named opt-out that pulls them from Docker Hub directly. Default: on.",
    )
    allow_root_sensors: bool = Field(
        default=False,
        description="Named opt-out: let team namespaces register Sensors whose pods run as root. Metaflow 2.19.39 "
        "sets no security context on the Sensors it registers and the argo-events image runs as root, so by "
        "default the API server refuses them (a ValidatingAdmissionPolicy: `argo-workflows create` of a flow "
        "with @trigger fails with the reason); true only warns and records each in the API audit log. "
        "Default: off (root Sensors refused).",
    )


class OrchestratorSpec(StrictModel):
    """Workflow orchestration. Default: Argo Workflows with client-token auth, Metaflow on top."""

    argo_workflows: bool = Field(default=True, description="Install Argo Workflows. Default: on.")
    argo_namespace: DnsLabel = Field(
        default="argo", description="Namespace of the Argo controller and server. Default: argo."
    )
    argo_chart_version: ChartVersion = Field(
        default="1.0.18",
        description="Pinned version of the argo-workflows Helm chart (argoproj/argo-helm). "
        "Default: 1.0.18 (Argo Workflows v4.0).",
    )
    server_auth_mode: Literal["client", "sso"] = Field(
        default="client",
        description="Argo server auth: 'client' (Kubernetes bearer tokens) or 'sso'. 'server' mode is never allowed. "
        "Default: client.",
    )
    sso: ArgoSsoSpec | None = Field(
        default=None,
        description="OIDC settings; required when server_auth_mode is sso and refused otherwise. Default: none.",
    )
    workflow_archive: bool = Field(
        default=False,
        description="Archive finished workflows in the Metaflow metadata database (needs metaflow). "
        "Default: off; workflows then live only as long as their TTL in etcd.",
    )
    archive_ttl_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="How long archived workflows are kept. Default: 30 days.",
    )
    archive_db_secret_name: DnsLabel = Field(
        default="argo-archive-db",
        description="Kubernetes Secret in the Argo namespace with keys username and password for the archive, "
        "synced from the database's RDS-managed Secrets Manager secret (for example by External Secrets); "
        "mlstack never copies the password. Default: argo-archive-db.",
    )
    metaflow: bool = Field(
        default=True, description="Install the Metaflow metadata service on RDS. Default: on."
    )
    metaflow_namespace: DnsLabel = Field(
        default="metaflow", description="Namespace of the Metaflow metadata service. Default: metaflow."
    )
    argo_events: ArgoEventsSpec = Field(
        default_factory=ArgoEventsSpec,
        description="Argo Events for Metaflow's event triggers. Default: off.",
    )
    metaflow_ui: bool = Field(
        default=False,
        description="Also run the Metaflow UI, backend and frontend, per team next to its metadata service "
        "(internal Services only; reached through port-forwards). Default: off.",
    )
    # The default is the image and tag of outerbounds/metaflow-tools' chart (charts/metaflow @ metaflow-0.1.2,
    # subchart metaflow-ui 0.3.2 values.yaml `uiStatic.image`: public.ecr.aws/outerbounds/metaflow_ui, v1.3.3).
    metaflow_ui_image: ContainerImage = Field(
        default="public.ecr.aws/outerbounds/metaflow_ui:v1.3.3",
        description="Image of the Metaflow UI frontend (Netflix/metaflow-ui), pulled through the registry's "
        "pull-through cache for its upstream registry. Default: public.ecr.aws/outerbounds/metaflow_ui:v1.3.3.",
    )
    # The default is the image outerbounds/metaflow-tools' own chart deploys (charts/metaflow @ metaflow-0.1.2,
    # subchart metaflow-service 0.2.2: repository public.ecr.aws/outerbounds/metaflow_metadata_service, tag
    # defaulting to appVersion v2.4.13). Netflix/metaflow-service v2.4.13 is the first release line whose
    # migration honours MF_METADATA_DB_SSL_MODE (run_goose.py) and builds with an unpinned boto3 (Nov 2024,
    # after 1.34.41, the first with Pod Identity credentials).
    metadata_service_image: ContainerImage = Field(
        default="public.ecr.aws/outerbounds/metaflow_metadata_service:v2.4.13",
        description="Image of the metadata service, its database migration and the UI backend; registry and tag "
        "required. "
        "It is pulled through the registry's pull-through cache for its upstream registry. "
        "Default: public.ecr.aws/outerbounds/metaflow_metadata_service:v2.4.13.",
    )
    # docker-library/official-images@37079fb:library/python tags 3.12.14 (SharedTags "3.12.14, 3.12"): a patch
    # release, so steps do not change Python under a data scientist between two runs. The tag was read in the
    # official-images library; that ECR Public's docker/library copy carries it too was not checked offline.
    metaflow_step_image: ContainerImage = Field(
        default="public.ecr.aws/docker/library/python:3.12.14",
        description="Default image of Metaflow's @kubernetes and Argo Workflows steps "
        "(METAFLOW_KUBERNETES_CONTAINER_IMAGE), pulled through the registry's pull-through cache; without it "
        "Metaflow runs python:<major>.<minor> from Docker Hub. A step's own image= still wins. "
        "Default: public.ecr.aws/docker/library/python:3.12.14 (Docker's official image on ECR Public).",
    )
    metadata_service_replicas: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Replicas of the metadata service Deployment. Default: 1 in dev, 2 in staging and prod.",
    )
    db_instance_class: RdsInstanceClass = Field(
        default="db.t4g.micro",
        description="RDS instance class of the metadata database. Default: db.t4g.micro in dev, db.t4g.small "
        "in staging, db.m7g.large in prod.",
    )
    db_multi_az: bool = Field(
        default=False,
        description="Run the metadata database with a standby in a second zone. Default: off in dev (cost), "
        "on in staging and prod; prod refuses off.",
    )
    db_allocated_storage_gb: int = Field(
        default=20,
        ge=20,
        le=16384,
        description="Initial gp3 storage of the metadata database. Default: 20 GiB.",
    )
    db_max_allocated_storage_gb: int = Field(
        default=100,
        ge=20,
        le=16384,
        description="Ceiling for storage autoscaling; equal to db_allocated_storage_gb turns it off. "
        "Default: 100 GiB.",
    )
    backup_retention_days: int = Field(
        default=1,
        ge=1,
        le=35,
        description="Automated backup retention of the metadata database. Default: 1 in dev, 7 in staging, 14 in prod.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OrchestratorSpec:
        if self.server_auth_mode == "sso" and self.sso is None:
            raise ValueError(
                "server_auth_mode is sso but sso is not set; add sso.issuer and sso.redirect_url"
            )
        if self.server_auth_mode != "sso" and self.sso is not None:
            raise ValueError(
                "sso is set but server_auth_mode is client; set server_auth_mode: sso or remove sso"
            )
        if self.workflow_archive and not (self.metaflow and self.argo_workflows):
            raise ValueError(
                "workflow_archive stores workflows in the Metaflow metadata database: it needs both "
                "argo_workflows and metaflow on; turn it off or turn them on"
            )
        if self.argo_events.enabled and not (self.metaflow and self.argo_workflows):
            raise ValueError(
                "argo_events triggers Metaflow flows deployed on Argo Workflows: it needs both argo_workflows and "
                "metaflow on; turn argo_events.enabled off or turn them on"
            )
        if self.metaflow_ui and not self.metaflow:
            raise ValueError("metaflow_ui needs metaflow on; turn metaflow_ui off or metaflow on")
        if self.db_max_allocated_storage_gb < self.db_allocated_storage_gb:
            raise ValueError(
                f"db_max_allocated_storage_gb ({self.db_max_allocated_storage_gb}) is below "
                f"db_allocated_storage_gb ({self.db_allocated_storage_gb}); raise it or make them equal"
            )
        return self
