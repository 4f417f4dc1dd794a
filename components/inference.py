"""Model-serving endpoints on Kubernetes (KEDA autoscaled, scale from zero) or SageMaker.

Every Kubernetes object is built by a plain function of the endpoint's spec (``deployment_manifest``,
``service_manifests``, ...), so tests can check the shapes that reach the recorded plan and the component only
decides which objects exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from components.cluster import system_placement
from components.environment import Environment
from components.helm import chart_source
from components.iam import (
    TEAM_COST_CENTER_TAG,
    platform_role,
    pod_identity_trust,
    policy_document,
    service_trust,
    team_tags,
)
from components.options import child
from components.registry import PullThrough
from mlstack.spec.inference import EndpointSpec, InferenceSpec

# Charts are pinned; the KEDA and HTTP add-on versions match the CRDs the tests validate against.
KEDA_CHART = ("keda", "2.20.2", "https://kedacore.github.io/charts")
HTTP_ADDON_CHART = ("keda-add-ons-http", "0.15.0", "https://kedacore.github.io/charts")
LB_CONTROLLER_CHART = ("aws-load-balancer-controller", "1.13.0", "https://aws.github.io/eks-charts")
KEDA_NAMESPACE = "keda"
# The KEDA HTTP add-on's release (the chart's name; the _chart helper names releases after their chart).
HTTP_ADDON_RELEASE = HTTP_ADDON_CHART[0]
# The interceptor serves Prometheus metrics on 2223 (kedacore/http-add-on@v0.15.0 pkg/observability/config.go:
# OTEL_PROM_EXPORTER_ENABLED defaults to true, OTEL_PROM_EXPORTER_PORT to 2223; interceptor/main.go serves /metrics
# there), but the 0.15.0 chart declares no container port for it and renders no Service for it
# (templates/interceptor/), so mlstack adds the Service upstream's kustomize config has
# (config/interceptor/metrics-service.yaml), which the metrics stack scrapes.
HTTP_ADDON_METRICS_PORT = 2223
INTERCEPTOR_METRICS_SERVICE = f"{HTTP_ADDON_RELEASE}-interceptor-metrics"
# The metrics Service's own labels, distinct from the chart's interceptor Services (admin, proxy), so that its
# ServiceMonitor selects it alone.
INTERCEPTOR_METRICS_LABELS = {"app.kubernetes.io/name": "http-add-on", "app.kubernetes.io/component": "interceptor-metrics"}
# Where KEDA's and the HTTP add-on's images are published (the charts' default registry).
KEDA_IMAGE_REGISTRY = "ghcr.io"
LB_CONTROLLER_NAMESPACE = "kube-system"
# The chart's controller image (aws/eks-charts@v0.0.196:stable/aws-load-balancer-controller/values.yaml
# `image.repository`), pulled through the ECR Public cache.
LB_CONTROLLER_IMAGE = "public.ecr.aws/eks/aws-load-balancer-controller"
INTERCEPTOR_SERVICE = f"keda-add-ons-http-interceptor-proxy.{KEDA_NAMESPACE}.svc.cluster.local"
INTERCEPTOR_PORT = 8080
# The interceptor pods' labels (kedacore/charts@c4b92e9:http-add-on/templates/interceptor/deployment.yaml).
INTERCEPTOR_POD_LABELS = {
    "app.kubernetes.io/component": "interceptor",
    "app.kubernetes.io/name": "http-add-on",
}
# Callers always use port 8080, whether the endpoint is warm (the Service) or cold-capable (the interceptor).
SERVICE_PORT = 8080

# The GPU pools label their nodes and taint them so that only pods asking for GPUs land there.
POOL_LABEL = "mlstack.io/pool"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
# EKS Pod Identity agent, reached on the node's link-local address.
POD_IDENTITY_AGENT = "169.254.170.23/32"

MODEL_DIR = "/models"
# aws-cli v2 through the ECR Public pull-through cache; pinned because cache tags are immutable.
MODEL_LOADER_IMAGE = "ecr-public/aws-cli/aws-cli:2.31.13"
NON_ROOT_UID = 65532
# Host resources per GPU: sized to fit the smallest GPU instances (4 vCPU, 16 GiB) with the node's daemons.
CPU_PER_GPU = "3"
MEMORY_PER_GPU_GIB = 12
SHM_PER_GPU_GIB = 2
# GPU families whose every size has local NVMe instance storage (label karpenter.k8s.aws/instance-local-nvme in
# aws/karpenter-provider-aws@v1.14.1:website/content/en/docs/reference/instance-types.md, generated from EC2
# DescribeInstanceTypes). SageMaker refuses a KmsKeyId on these; their volumes are hardware-encrypted.
INSTANCE_STORE_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"})
# Large models take minutes to load into GPU memory: the startup probe allows 20 minutes before liveness starts.
STARTUP_SECONDS = 1200
PROBE_PERIOD_SECONDS = 10


class ModelsBucket(Protocol):
    """What the inference component needs from the models bucket (components.storage.Bucket)."""

    bucket_name: pulumi.Output[str]

    def grant_read(self, principal: aws.iam.Role, prefix: str | None = None) -> aws.iam.RolePolicy: ...


class CaptureBucket(Protocol):
    """What SageMaker data capture needs from the artifacts bucket (components.storage.Bucket)."""

    bucket_name: pulumi.Output[str]

    def grant_write(self, principal: aws.iam.Role, prefix: str | None = None) -> aws.iam.RolePolicy: ...


class ImageRegistry(Protocol):
    """The platform's ECR (components.registry.Registry)."""

    pull_through: PullThrough

    def grant_pull(self, principal: aws.iam.Role) -> aws.iam.RolePolicy: ...


class PodIdentity(Protocol):
    """The cluster's Pod Identity association (components.cluster.Cluster.pod_identity)."""

    def pod_identity(
        self,
        name: str,
        *,
        namespace: str,
        service_account: str,
        role: aws.iam.Role,
        parent: pulumi.Resource | None = None,
    ) -> aws.eks.PodIdentityAssociation: ...


@dataclass(frozen=True)
class InferenceArgs:
    """Inputs of the Inference component.

    ``models_bucket`` is granted per endpoint (its model's prefix only); ``registry`` is granted to SageMaker
    execution roles; ``cluster`` associates Kubernetes endpoints' roles; ``k8s_provider`` creates their objects.
    ``vpc_id``, ``vpc_cidr`` and ``private_subnet_ids`` place SageMaker endpoints and the internal ALB.
    """

    env: Environment
    spec: InferenceSpec
    boundary_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    models_bucket: ModelsBucket | None
    """None only when the environment declares no models bucket; then it may declare no endpoints."""
    registry: ImageRegistry
    cluster: PodIdentity
    k8s_provider: kubernetes.Provider
    vpc_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    artifacts_bucket: CaptureBucket | None = None
    team_cost_centers: Mapping[str, str] = field(default_factory=dict)
    """Team -> cost center: an endpoint's role and SageMaker resources carry their team's ``team-cost-center``
    tag (components.iam.team_tags), which the team's budget filters on. A team not listed gets no team tags."""
    team_ready: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team, what an endpoint in its namespace waits for (``Teams.namespace_ready``)."""
    pool_ready: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per GPU pool, what an endpoint on it waits for (``GpuPools.pool_ready``)."""
    admission_ready: Sequence[pulumi.Resource] = ()
    """What every workload waits for because a cluster-wide fail-closed admission webhook must be serving first
    (``Teams.admission_ready``: the Kueue release, whose Deployment, StatefulSet and Job webhooks admit every
    namespace but kube-system and kueue-system). Empty when none."""
    prometheus_url: str | None = None
    """The Prometheus warm endpoints' KEDA triggers query: the stack file's ``inference.prometheus_url``, else the
    platform's own (``Metrics``). None only when no endpoint scales on Prometheus (the spec refuses it otherwise)."""
    metrics_ready: Sequence[pulumi.Resource] = ()
    """What a Prometheus-triggered ScaledObject waits for: the metrics stack, so that its first query finds a
    Prometheus. Empty when the stack file names its own."""


class Inference(pulumi.ComponentResource):
    """Model-serving endpoints on Kubernetes (KEDA autoscaled) or SageMaker.

    Kubernetes endpoints: a Deployment on the endpoint's GPU pool in the team's namespace, its own Pod Identity
    role reading only its model's prefix, a Service, a PodDisruptionBudget, a NetworkPolicy and a KEDA
    ScaledObject (or an HTTPScaledObject when it scales to zero, so cold requests wait in the interceptor).
    SageMaker endpoints: Model, EndpointConfiguration (KMS, VPC, optional data capture), Endpoint and an
    Application Auto Scaling target and policy.

    Outputs: ``endpoint_urls`` (endpoint name to in-cluster URL or SageMaker endpoint name) and
    ``endpoint_role_arns`` (endpoint name to the ARN of its role).
    """

    endpoint_urls: pulumi.Output[dict[str, str]]
    endpoint_role_arns: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: InferenceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:inference:Inference", name, None, opts)
        self._name = name
        self._args = args
        endpoints = args.spec.endpoints
        on_kubernetes = [e for e in endpoints if e.backend == "kubernetes"]
        self.charts: list[kubernetes.helm.v3.Release] = []
        if on_kubernetes:
            # None: the stack's named opt-out (inference.keda_images_through_cache), images from ghcr.io.
            cache = args.registry.pull_through if args.spec.keda_images_through_cache else None
            keda = self._chart(
                "keda",
                KEDA_CHART,
                KEDA_NAMESPACE,
                _keda_values(hardened=args.env.tier.hardened, pull_through=cache),
            )
            self.charts.append(keda)
            if any(e.scales_to_zero for e in on_kubernetes):
                # The add-on's chart renders a keda.sh ScaledObject for its interceptor, whose CRD is a template
                # of the KEDA release (kedacore/charts@v2.20.2:keda/templates/crds): install KEDA first.
                http_addon = self._chart(
                    "http-addon",
                    HTTP_ADDON_CHART,
                    KEDA_NAMESPACE,
                    _http_addon_values(hardened=args.env.tier.hardened, pull_through=cache),
                    after=[keda],
                )
                self.charts.append(http_addon)
                kubernetes.core.v1.Service(
                    f"{name}-interceptor-metrics",
                    **interceptor_metrics_service(),
                    opts=self._k8s(depends_on=[http_addon]),
                )
        if any(e.exposure == "internal-alb" for e in on_kubernetes):
            self.charts.append(self._load_balancer_controller())

        urls: dict[str, pulumi.Input[str]] = {}
        roles: dict[str, pulumi.Input[str]] = {}
        for endpoint in endpoints:
            if endpoint.backend == "kubernetes":
                role = self._kubernetes_endpoint(endpoint)
                urls[endpoint.name] = endpoint_url(endpoint)
            else:
                role, sagemaker_endpoint = self._sagemaker_endpoint(endpoint)
                urls[endpoint.name] = sagemaker_endpoint.name
            roles[endpoint.name] = role.arn

        self.endpoint_urls = pulumi.Output.all(**urls)  # type: ignore[assignment]
        self.endpoint_role_arns = pulumi.Output.all(**roles)  # type: ignore[assignment]
        self.register_outputs(
            {"endpoint_urls": self.endpoint_urls, "endpoint_role_arns": self.endpoint_role_arns}
        )

    # -- Kubernetes backend -------------------------------------------------------------------------------

    def _k8s(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return child(self, provider=self._args.k8s_provider, **kwargs)

    def _chart(
        self,
        role: str,
        chart: tuple[str, str, str],
        namespace: str,
        values: Mapping[str, Any],
        after: Sequence[pulumi.Resource] = (),
    ) -> kubernetes.helm.v3.Release:
        name, version, repo = chart
        reference, repository_opts = chart_source(repo, name)
        return kubernetes.helm.v3.Release(
            f"{self._name}-{role}",
            name=name,
            chart=reference,
            version=version,
            namespace=namespace,
            create_namespace=True,
            atomic=True,
            values=dict(values),
            repository_opts=repository_opts,
            opts=self._k8s(depends_on=[*after, *self._args.admission_ready]),
        )

    def _load_balancer_controller(self) -> kubernetes.helm.v3.Release:
        env = self._args.env
        role = platform_role(
            self,
            f"{self._name}-lb-controller-role",
            env=env,
            role_suffix="aws-load-balancer-controller",
            boundary_arn=self._args.boundary_arn,
            assume_role_policy=pod_identity_trust(env),
            description="AWS Load Balancer Controller: internal ALBs for inference endpoints",
        )
        aws.iam.RolePolicy(
            f"{self._name}-lb-controller-policy",
            role=role.name,
            name="load-balancer-controller",
            policy=policy_document(load_balancer_controller_statements(env, vpc_id=self._args.vpc_id)),
            opts=child(self),
        )
        self._args.cluster.pod_identity(
            f"{self._name}-lb-controller-identity",
            namespace=LB_CONTROLLER_NAMESPACE,
            service_account="aws-load-balancer-controller",
            role=role,
            parent=self,
        )
        return self._chart(
            "lb-controller",
            LB_CONTROLLER_CHART,
            LB_CONTROLLER_NAMESPACE,
            {
                "clusterName": env.resource_name("eks"),
                "region": env.region,
                "vpcId": self._args.vpc_id,
                "replicaCount": 2,
                "serviceAccount": {"create": True, "name": "aws-load-balancer-controller"},
                # Only Ingresses that name the class are managed; Services stay ClusterIP.
                "createIngressClassResource": True,
                "ingressClass": "alb",
                "enableServiceMutatorWebhook": False,
                # aws/eks-charts@v0.0.196:stable/aws-load-balancer-controller/values.yaml `image.repository`
                # (templates/deployment.yaml renders "<repository>:<tag>"; the chart's tag v2.13.0 is kept).
                "image": {"repository": self._args.registry.pull_through.image(LB_CONTROLLER_IMAGE)},
                # aws/eks-charts@v0.0.196:stable/aws-load-balancer-controller/values.yaml `resources` (default
                # none; the chart's commented example requests 100m and 128Mi), rendered on the controller
                # container by templates/deployment.yaml. The limit leaves room above that example for a
                # cluster with many Ingresses and Services.
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                # values.yaml `nodeSelector`, `tolerations`: a platform controller, on the system nodes.
                **system_placement(),
            },
        )

    def _endpoint_role(self, endpoint: EndpointSpec, trust: str, description: str) -> aws.iam.Role:
        """The endpoint's own role, ``<env>-inference-<name>``; grants are added by the backend."""
        return platform_role(
            self,
            f"{self._name}-{endpoint.name}-role",
            env=self._args.env,
            role_suffix=f"inference-{endpoint.name}",
            boundary_arn=self._args.boundary_arn,
            assume_role_policy=trust,
            description=description,
            tags=self._team_tags(endpoint),
        )

    def _team_tags(self, endpoint: EndpointSpec) -> dict[str, str] | None:
        """The owning team's cost-allocation tags, for everything billed for this endpoint."""
        cost_center = self._args.team_cost_centers.get(endpoint.team)
        return team_tags(endpoint.team, cost_center) if cost_center else None

    def _kubernetes_endpoint(self, endpoint: EndpointSpec) -> aws.iam.Role:
        env, args = self._args.env, self._args
        base = f"{self._name}-{endpoint.name}"
        role = self._endpoint_role(
            endpoint,
            pod_identity_trust(env),
            f"Inference endpoint {endpoint.name}: reads {endpoint.model} only",
        )
        _models(args).grant_read(role, prefix=endpoint.model_location.prefix)
        args.cluster.pod_identity(
            f"{base}-identity",
            namespace=endpoint.team,
            service_account=endpoint.name,
            role=role,
            parent=self,
        )
        after = [*args.team_ready.get(endpoint.team, ()), *args.pool_ready.get(endpoint.gpu_pool or "", ())]
        account = kubernetes.core.v1.ServiceAccount(
            f"{base}-sa",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(**_metadata(endpoint)),
            automount_service_account_token=False,
            opts=self._k8s(depends_on=after),
        )
        loader_image = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/{MODEL_LOADER_IMAGE}"
        deployment = kubernetes.apps.v1.Deployment(
            f"{base}-deployment",
            **deployment_manifest(
                endpoint,
                loader_image=loader_image,
                team_cost_center=args.team_cost_centers.get(endpoint.team),
            ),
            # KEDA owns the replica count once the Deployment exists.
            opts=self._k8s(depends_on=[*after, account], ignore_changes=["spec.replicas"]),
        )
        for index, manifest in enumerate(service_manifests(endpoint)):
            kubernetes.core.v1.Service(
                f"{base}-service" + ("" if index == 0 else "-backend"),
                **manifest,
                opts=self._k8s(depends_on=after),
            )
        kubernetes.policy.v1.PodDisruptionBudget(
            f"{base}-pdb", **disruption_budget_manifest(endpoint), opts=self._k8s(depends_on=after)
        )
        kubernetes.networking.v1.NetworkPolicy(
            f"{base}-netpol",
            **network_policy_manifest(endpoint, vpc_cidr=args.vpc_cidr),
            opts=self._k8s(depends_on=after),
        )
        scaler = scaler_manifest(endpoint, prometheus_url=args.prometheus_url)
        # Only a Prometheus trigger queries the metrics stack; an HTTPScaledObject does not wait for it.
        metrics_ready = list(args.metrics_ready) if scaler["kind"] == "ScaledObject" else []
        kubernetes.apiextensions.CustomResource(
            f"{base}-scaler",
            api_version=scaler["apiVersion"],
            kind=scaler["kind"],
            metadata=scaler["metadata"],
            spec=scaler["spec"],
            opts=self._k8s(depends_on=[*self.charts, deployment, *metrics_ready]),
        )
        if endpoint.exposure == "internal-alb":
            kubernetes.networking.v1.Ingress(
                f"{base}-ingress",
                **ingress_manifest(endpoint, private_subnet_ids=args.private_subnet_ids),
                opts=self._k8s(depends_on=[*self.charts, deployment]),
            )
        return role

    # -- SageMaker backend --------------------------------------------------------------------------------

    def _sagemaker_endpoint(self, endpoint: EndpointSpec) -> tuple[aws.iam.Role, aws.sagemaker.Endpoint]:
        env, args = self._args.env, self._args
        base = f"{self._name}-{endpoint.name}"
        physical = env.resource_name(endpoint.name)
        role = self._endpoint_role(
            endpoint,
            service_trust("sagemaker.amazonaws.com"),
            f"SageMaker endpoint {endpoint.name}: reads {endpoint.model} only, pulls platform images",
        )
        grants: list[pulumi.Resource] = [
            _models(args).grant_read(role, prefix=endpoint.model_location.prefix),
            args.registry.grant_pull(role),
            aws.iam.RolePolicy(
                f"{base}-runtime-policy",
                role=role.name,
                name="sagemaker-runtime",
                policy=policy_document(sagemaker_runtime_statements(env, physical)),
                opts=child(self),
            ),
        ]
        capture_uri: pulumi.Output[str] | None = None
        if endpoint.data_capture_percent:
            if args.artifacts_bucket is None:
                raise ValueError(
                    f"endpoint {endpoint.name} captures data but the environment has no artifacts bucket"
                )
            prefix = capture_prefix(endpoint)
            grants.append(args.artifacts_bucket.grant_write(role, prefix=prefix))
            capture_uri = pulumi.Output.concat("s3://", args.artifacts_bucket.bucket_name, "/", prefix)

        security_group = aws.ec2.SecurityGroup(
            f"{base}-sg",
            name=env.resource_name("inference", endpoint.name),
            description=f"SageMaker endpoint {endpoint.name}: HTTPS out for S3, ECR and CloudWatch only",
            vpc_id=args.vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS"
                )
            ],
            opts=child(self),
        )
        location = endpoint.model_location
        instance_family = (endpoint.sagemaker_instance_type or "").removeprefix("ml.").split(".")[0]
        if instance_family not in INSTANCE_STORE_FAMILIES:
            raise ValueError(
                f"endpoint {endpoint.name}: {endpoint.sagemaker_instance_type} is not known to have local instance "
                "storage; mlstack relies on its hardware encryption and sets no KmsKeyId (add the family to "
                "INSTANCE_STORE_FAMILIES only after checking its instance store)"
            )
        # No physical names: every argument of a Model and an EndpointConfiguration forces a replacement, and
        # Pulumi creates the replacement before deleting the old one, so a fixed name would collide and fail
        # the update. Auto-names (logical name plus a random suffix) let the Endpoint switch over in place.
        model = aws.sagemaker.Model(
            f"{base}-model",
            execution_role_arn=role.arn,
            enable_network_isolation=endpoint.network_isolation,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=endpoint.image,
                mode="SingleModel",
                model_data_source=aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(
                    s3_data_sources=[
                        aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                            s3_uri=location.uri, s3_data_type="S3Prefix", compression_type="None"
                        )
                    ]
                ),
                environment=sagemaker_environment(endpoint),
            ),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                subnets=args.private_subnet_ids, security_group_ids=[security_group.id]
            ),
            tags=self._team_tags(endpoint),
            opts=child(self, depends_on=grants),
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{base}-config",
            # No kms_key_arn: every GPU type mlstack serves on has NVMe instance storage, encrypted by the
            # instance's hardware, and CreateEndpointConfig fails when KmsKeyId is set for such a type (SageMaker
            # API reference, CreateEndpointConfig.KmsKeyId).
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    variant_name="primary",
                    model_name=model.name,
                    instance_type=endpoint.sagemaker_instance_type,
                    initial_instance_count=endpoint.min_replicas,
                    container_startup_health_check_timeout_in_seconds=STARTUP_SECONDS,
                    model_data_download_timeout_in_seconds=STARTUP_SECONDS,
                )
            ],
            data_capture_config=(
                aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                    enable_capture=True,
                    initial_sampling_percentage=endpoint.data_capture_percent,
                    destination_s3_uri=capture_uri,
                    kms_key_id=args.data_key_arn,
                    capture_options=[
                        aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                            capture_mode=mode
                        )
                        for mode in ("Input", "Output")
                    ],
                )
                if capture_uri is not None
                else None
            ),
            tags=self._team_tags(endpoint),
            opts=child(self),
        )
        sagemaker_endpoint = aws.sagemaker.Endpoint(
            f"{base}-endpoint",
            name=physical,
            endpoint_config_name=config.name,
            tags=self._team_tags(endpoint),
            opts=child(self),
        )
        target = aws.appautoscaling.Target(
            f"{base}-scaling-target",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", sagemaker_endpoint.name, "/variant/primary"),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=endpoint.min_replicas,
            max_capacity=endpoint.max_replicas,
            opts=child(self),
        )
        metric, target_value = sagemaker_scaling_metric(endpoint)
        aws.appautoscaling.Policy(
            f"{base}-scaling-policy",
            name=physical,
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=target_value,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=metric
                ),
                scale_in_cooldown=endpoint.autoscaling.scale_down_delay_seconds,
                scale_out_cooldown=60,
            ),
            opts=child(self),
        )
        return role, sagemaker_endpoint


def _keda_values(*, hardened: bool, pull_through: PullThrough | None = None) -> dict[str, Any]:
    """KEDA operator: in staging and prod two replicas, one always up through a drain, so that scaling survives
    a node loss; in dev one replica and no budget (a one-replica budget would block every node drain), which
    keeps dev's platform on its two small system nodes (docs/cost.md). No cloud credentials needed."""
    values: dict[str, Any] = {
        "operator": {"replicaCount": 2 if hardened else 1},
        "securityContext": {"operator": container_security_context()},
        # kedacore/charts@v2.20.2:keda/values.yaml `rbac.enabledCustomScaledRefKinds` (default true, with
        # `rbac.scaledRefKinds` [{apiGroup: "*", kind: "*"}]): templates/manager/clusterrole.yaml then grants
        # get/list/patch/update/watch on every resource of every API group. mlstack's ScaledObjects and
        # HTTPScaledObjects only target Deployments (deployment_manifest), which the ClusterRole's fixed
        # apps/deployments/scale rule already covers ("Deployments and StatefulSets are supported out of the box").
        "rbac": {"enabledCustomScaledRefKinds": False},
        # The operator's Prometheus metrics (trigger errors, scaler values) on port 8080, named "metrics" on its
        # Service, which the metrics stack scrapes (kedacore/charts@v2.20.2:keda/values.yaml
        # `prometheus.operator.enabled`/`port`; templates/manager/service.yaml and deployment.yaml).
        "prometheus": {"operator": {"enabled": True}},
        # kedacore/charts@v2.20.2:keda/values.yaml top-level `nodeSelector`, `tolerations` (every KEDA pod).
        **system_placement(),
    }
    if hardened:
        values["podDisruptionBudget"] = {"operator": {"minAvailable": 1}}
    if pull_through is not None:
        # kedacore/charts@v2.20.2:keda/values.yaml `image.keda.registry`, `image.metricsApiServer.registry`,
        # `image.webhooks.registry` (default ghcr.io; repositories kedacore/... and the appVersion tag kept):
        # templates/manager/deployment.yaml and its siblings render "<registry>/<repository>:<tag>".
        cache = pull_through.registry(KEDA_IMAGE_REGISTRY)
        values["image"] = {
            component: {"registry": cache} for component in ("keda", "metricsApiServer", "webhooks")
        }
    return values


def _http_addon_values(*, hardened: bool, pull_through: PullThrough | None = None) -> dict[str, Any]:
    """KEDA HTTP add-on: the interceptor holds a cold request until a replica is ready, so its wait and
    response timeouts cover a GPU node start plus a model load (see docs/components/inference.md). Staging and
    prod run two interceptors (up to ten) and the chart's three scalers; dev one of each, its interceptor
    growing to three at most, which dev's two small system nodes hold at peak (the deploy simulation's capacity
    check, MLS-SIM-CAP-002). Chart values interceptor.replicas and scaler.replicas at
    kedacore/charts@c4b92e9:http-add-on/values.yaml."""
    values: dict[str, Any] = {
        "interceptor": {
            "replicas": {"min": 2 if hardened else 1, "max": 10 if hardened else 3, "waitTimeout": f"{STARTUP_SECONDS}s"},
            "responseHeaderTimeout": "600s",
            # Both fields set, one of them zero: the chart template renders each non-zero field and its default
            # is maxUnavailable 1, so setting only minAvailable would give a PDB with both, which the API
            # server refuses (kedacore/charts@c4b92e9:http-add-on/templates/interceptor/poddisruptionbudget.yaml).
            # maxUnavailable 1 lets a drain proceed, and with two replicas keeps one interceptor up.
            "pdb": {"enabled": True, "minAvailable": 0, "maxUnavailable": 1},
            **system_placement(),
        },
        # values.yaml `operator.`, `scaler.`, `interceptor.nodeSelector` and `.tolerations`: system nodes.
        "scaler": {"replicas": 3 if hardened else 1, **system_placement()},
        "operator": system_placement(),
        # kedacore/charts@c4b92e9:http-add-on/values.yaml (chart 0.15.0) `securityContext` applies to the
        # operator, scaler and interceptor containers alike (templates/*/deployment.yaml use it when no per-
        # component context is set). Its default drops every capability and forbids escalation but sets no user,
        # so the images' user decides; this pins a non-root one (the chart's commented runAsNonRoot option).
        "securityContext": container_security_context(),
    }
    if pull_through is not None:
        # kedacore/charts@c4b92e9:http-add-on/values.yaml `images.operator`, `images.interceptor`,
        # `images.scaler` (full image names without tag; templates/*/deployment.yaml append
        # ":<images.tag | default appVersion>").
        values["images"] = {
            component: pull_through.image(f"{KEDA_IMAGE_REGISTRY}/kedacore/http-add-on-{component}")
            for component in ("operator", "interceptor", "scaler")
        }
    return values


def interceptor_metrics_service() -> dict[str, Any]:
    """The Service in front of the interceptors' Prometheus port (HTTP_ADDON_METRICS_PORT), by number: the
    chart's pod template does not declare it."""
    return {
        "metadata": {
            "name": INTERCEPTOR_METRICS_SERVICE,
            "namespace": KEDA_NAMESPACE,
            "labels": {**INTERCEPTOR_METRICS_LABELS, "app.kubernetes.io/managed-by": "mlstack"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(INTERCEPTOR_POD_LABELS),
            "ports": [
                {
                    "name": "metrics",
                    "port": HTTP_ADDON_METRICS_PORT,
                    "targetPort": HTTP_ADDON_METRICS_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _models(args: InferenceArgs) -> ModelsBucket:
    if (
        args.models_bucket is None
    ):  # the spec refuses endpoints without a models bucket; this is a wiring slip
        raise ValueError("inference endpoints need the models bucket; pass ObjectStore.buckets['models']")
    return args.models_bucket


# -- Manifest builders (pure functions of the spec) ---------------------------------------------------------


def _labels(endpoint: EndpointSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": endpoint.name,
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/part-of": "mlstack",
        "mlstack.io/team": endpoint.team,
    }


def _selector(endpoint: EndpointSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": endpoint.name, "app.kubernetes.io/component": "inference"}


def endpoint_selector(endpoint: EndpointSpec) -> dict[str, str]:
    """The labels that select an endpoint's pods (its Service's and its scrape monitor's selector)."""
    return _selector(endpoint)


# Triton serves its Prometheus metrics on their own port, 8002 by default (--metrics-port); the port is declared
# on the container so that a PodMonitor can name it (a PodMonitor only scrapes declared ports).
TRITON_METRICS_PORT = 8002


def _metadata(endpoint: EndpointSpec, name: str | None = None) -> dict[str, Any]:
    return {"name": name or endpoint.name, "namespace": endpoint.team, "labels": _labels(endpoint)}


def backend_service_name(endpoint: EndpointSpec) -> str:
    """The ClusterIP Service in front of the pods: the endpoint's name, or ``<name>-backend`` when callers
    reach it through the HTTP interceptor (the name then belongs to the interceptor alias)."""
    return f"{endpoint.name}-backend" if endpoint.scales_to_zero else endpoint.name


def endpoint_host(endpoint: EndpointSpec) -> str:
    return f"{endpoint.name}.{endpoint.team}.svc.cluster.local"


def endpoint_url(endpoint: EndpointSpec) -> str:
    """The in-cluster URL callers use; the same for warm and scale-to-zero endpoints."""
    return f"http://{endpoint_host(endpoint)}:{SERVICE_PORT}"


def runtime_command(endpoint: EndpointSpec) -> tuple[list[str] | None, list[str]]:
    """The serving container's command (None keeps the image's entry point) and arguments."""
    port = str(endpoint.port)
    if endpoint.runtime == "vllm":
        command = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        args = [
            "--model",
            MODEL_DIR,
            "--served-model-name",
            endpoint.model_location.model,
            "--tensor-parallel-size",
            str(endpoint.gpus_per_replica),
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the pod; the NetworkPolicy limits who can connect
            "--port",
            port,
        ]
        return command, args + endpoint.args
    if endpoint.runtime == "triton":
        command = ["tritonserver"]
        args = [
            f"--model-repository={MODEL_DIR}",
            f"--http-port={port}",
            "--allow-grpc=false",
            "--metrics-port=8002",
            "--exit-on-error=true",
        ]
        return command, args + endpoint.args
    return None, list(endpoint.args)


def health_paths(endpoint: EndpointSpec) -> tuple[str, str]:
    """(readiness, liveness) HTTP paths of the runtime."""
    if endpoint.runtime == "triton":
        return "/v2/health/ready", "/v2/health/live"
    return "/health", "/health"


def _probes(endpoint: EndpointSpec) -> dict[str, Any]:
    ready, live = health_paths(endpoint)
    port = endpoint.port
    return {
        # Model load can take many minutes for large models; liveness only starts after this succeeds.
        "startupProbe": {
            "httpGet": {"path": ready, "port": port},
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": STARTUP_SECONDS // PROBE_PERIOD_SECONDS,
        },
        "readinessProbe": {
            "httpGet": {"path": ready, "port": port},
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        # Generous: a server busy with a long batch answers health checks late, and a restart costs a reload.
        "livenessProbe": {
            "httpGet": {"path": live, "port": port},
            "periodSeconds": 30,
            "timeoutSeconds": 10,
            "failureThreshold": 5,
        },
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": NON_ROOT_UID,
        "runAsGroup": NON_ROOT_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment_manifest(
    endpoint: EndpointSpec, *, loader_image: str, team_cost_center: str | None = None
) -> dict[str, Any]:
    """The endpoint's Deployment: GPU pool placement, model loader, probes, and a locked-down container."""
    gpus = endpoint.gpus_per_replica
    memory = f"{MEMORY_PER_GPU_GIB * gpus}Gi"
    cpu = str(int(CPU_PER_GPU) * gpus)
    # The CPU limit is explicit and equal to the request: with none, the team LimitRange injects its default
    # limit (1 CPU, components.teams.limit_range_manifest) and admission refuses a request above its limit
    # (kubernetes/website content/en/docs/concepts/policy/limit-range.md, "LimitRange and admission checks").
    resources = {
        "requests": {"cpu": cpu, "memory": memory, GPU_RESOURCE: str(gpus)},
        "limits": {"cpu": cpu, "memory": memory, GPU_RESOURCE: str(gpus)},
    }
    command, args = runtime_command(endpoint)
    home = {"name": "HOME", "value": "/tmp"}  # noqa: S108 - the writable emptyDir on a read-only root
    server: dict[str, Any] = {
        "name": "server",
        "image": endpoint.image,
        "args": args,
        "ports": [
            {"name": "http", "containerPort": endpoint.port, "protocol": "TCP"},
            *(
                [{"name": "metrics", "containerPort": TRITON_METRICS_PORT, "protocol": "TCP"}]
                if endpoint.runtime == "triton"
                else []
            ),
        ],
        "env": [home, {"name": "HF_HUB_OFFLINE", "value": "1"}],
        "resources": resources,
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR, "readOnly": True},
            {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - memory-backed, private to the pod
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        ],
        **_probes(endpoint),
    }
    if command is not None:
        server["command"] = command
    location = endpoint.model_location
    loader = {
        "name": "model-loader",
        "image": loader_image,
        "command": ["aws", "s3", "sync", "--only-show-errors", "--no-progress", location.uri, MODEL_DIR],
        "env": [home],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        ],
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": endpoint.name,
        "automountServiceAccountToken": False,
        "nodeSelector": {POOL_LABEL: endpoint.gpu_pool},
        "tolerations": [GPU_TAINT],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 60,
        "initContainers": [loader],
        "containers": [server],
        "volumes": [
            {"name": "model", "emptyDir": {}},
            # NCCL and PyTorch workers share tensors through /dev/shm; the container default of 64 MiB is too small.
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{SHM_PER_GPU_GIB * gpus}Gi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
        ],
    }
    if endpoint.max_replicas > 1:
        pod_spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector(endpoint)},
            }
        ]
    return {
        "metadata": _metadata(endpoint),
        "spec": {
            "replicas": endpoint.min_replicas,
            "selector": {"matchLabels": _selector(endpoint)},
            # A new replica must be ready before an old one goes: a GPU endpoint has few replicas.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    # The pod label team-cost-center is what split cost allocation data for EKS imports as a cost
                    # allocation tag (AWS Data Exports user guide, split-cost-allocation-data-kubernetes-labels.html:
                    # pod labels only, up to 50 per pod, alphabetical), so the shared GPU node's cost reaches the team.
                    "labels": {
                        **_labels(endpoint),
                        **({TEAM_COST_CENTER_TAG: team_cost_center} if team_cost_center else {}),
                    },
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(8002 if endpoint.runtime == "triton" else endpoint.port),
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def service_manifests(endpoint: EndpointSpec) -> list[dict[str, Any]]:
    """The Service callers use, then (scale-to-zero only) the backend Service behind the interceptor.

    A scale-to-zero endpoint's name is an ExternalName alias of the KEDA HTTP interceptor, which holds requests
    while a replica starts and forwards them to ``<name>-backend``; callers use the same URL either way.
    """
    backend = {
        "metadata": _metadata(endpoint, backend_service_name(endpoint)),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(endpoint),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    if not endpoint.scales_to_zero:
        return [backend]
    alias = {
        "metadata": _metadata(endpoint),
        "spec": {
            "type": "ExternalName",
            "externalName": INTERCEPTOR_SERVICE,
            "ports": [{"name": "http", "port": INTERCEPTOR_PORT, "protocol": "TCP"}],
        },
    }
    return [alias, backend]


def disruption_budget_manifest(endpoint: EndpointSpec) -> dict[str, Any]:
    """At most one replica is evicted at a time (node consolidation, upgrades); with two or more replicas the
    endpoint keeps serving throughout."""
    return {
        "metadata": _metadata(endpoint),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(endpoint)}},
    }


def network_policy_manifest(endpoint: EndpointSpec, *, vpc_cidr: pulumi.Input[str]) -> dict[str, Any]:
    """Ingress on the serving port from pods in the cluster (and from the VPC for an internal ALB); egress only
    to DNS, the Pod Identity agent and HTTPS (S3 for the model)."""
    sources: list[dict[str, Any]] = [{"namespaceSelector": {}}]
    if endpoint.exposure == "internal-alb":
        sources.append({"ipBlock": {"cidr": vpc_cidr}})
    ports = [{"protocol": "TCP", "port": endpoint.port}]
    if endpoint.runtime == "triton":
        ports.append({"protocol": "TCP", "port": 8002})
    return {
        "metadata": _metadata(endpoint),
        "spec": {
            "podSelector": {"matchLabels": _selector(endpoint)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": sources, "ports": ports}],
            "egress": [
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {
                    "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                },
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def prometheus_query(endpoint: EndpointSpec) -> str:
    """The endpoint-wide value of its scaling signal, from the runtime's own metrics."""
    match = f'namespace="{endpoint.team}",pod=~"{endpoint.name}-.*"'
    concurrency = endpoint.autoscaling.signal == "concurrency"
    if endpoint.runtime == "vllm":
        if concurrency:
            return f"sum(vllm:num_requests_running{{{match}}}) + sum(vllm:num_requests_waiting{{{match}}})"
        return f"sum(rate(vllm:request_success_total{{{match}}}[1m]))"
    if endpoint.runtime == "triton":
        if concurrency:
            return f"sum(nv_inference_pending_request_count{{{match}}})"
        return f"sum(rate(nv_inference_request_success{{{match}}}[1m]))"
    if concurrency:
        return f"sum(http_requests_in_flight{{{match}}})"
    return f"sum(rate(http_requests_total{{{match}}}[1m]))"


def scaler_manifest(endpoint: EndpointSpec, *, prometheus_url: str | None) -> dict[str, Any]:
    """KEDA scaling: an HTTPScaledObject when the endpoint scales to zero (the interceptor counts and holds
    requests), else a ScaledObject on the runtime's Prometheus metrics."""
    scaling = endpoint.autoscaling
    target = {"name": endpoint.name, "kind": "Deployment", "apiVersion": "apps/v1"}
    if endpoint.scales_to_zero:
        metric: dict[str, Any] = (
            {"concurrency": {"targetValue": scaling.target}}
            if scaling.signal == "concurrency"
            else {"requestRate": {"targetValue": scaling.target, "granularity": "1s", "window": "1m"}}
        )
        return {
            "apiVersion": "http.keda.sh/v1alpha1",
            "kind": "HTTPScaledObject",
            "metadata": _metadata(endpoint),
            "spec": {
                "hosts": [endpoint_host(endpoint), f"{endpoint.name}.{endpoint.team}.svc", endpoint.name],
                "scaleTargetRef": {
                    **target,
                    "service": backend_service_name(endpoint),
                    "port": SERVICE_PORT,
                },
                "replicas": {"min": endpoint.min_replicas, "max": endpoint.max_replicas},
                "scalingMetric": metric,
                "scaledownPeriod": scaling.scale_down_delay_seconds,
            },
        }
    if prometheus_url is None:  # the spec refuses warm endpoints without one; this is a wiring slip
        raise ValueError(
            f"endpoint {endpoint.name} scales on Prometheus metrics but no prometheus_url was given"
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(endpoint),
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": endpoint.min_replicas,
            "maxReplicaCount": endpoint.max_replicas,
            "cooldownPeriod": scaling.scale_down_delay_seconds,
            "pollingInterval": 15,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": scaling.scale_down_delay_seconds}
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": prometheus_query(endpoint),
                        "threshold": str(scaling.target),
                        # No data (a cold Prometheus) must not scale the endpoint away.
                        "ignoreNullValues": "true",
                    },
                }
            ],
        },
    }


# TLS 1.3, with TLS 1.2 for older clients; no TLS 1.0/1.1 and no CBC ciphers.
ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _listener_annotations(endpoint: EndpointSpec) -> dict[str, str]:
    """HTTPS on 443 with the endpoint's certificate; plain HTTP on 80 only where the spec allows none (dev)."""
    if endpoint.certificate_arn is None:
        return {"alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}]'}
    return {
        "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
        "alb.ingress.kubernetes.io/certificate-arn": endpoint.certificate_arn,
        "alb.ingress.kubernetes.io/ssl-policy": ALB_SSL_POLICY,
    }


def ingress_manifest(
    endpoint: EndpointSpec, *, private_subnet_ids: pulumi.Input[Sequence[str]]
) -> dict[str, Any]:
    """An internal ALB (never internet-facing) sending straight to the pods."""
    subnets = pulumi.Output.from_input(private_subnet_ids).apply(lambda ids: ",".join(ids))
    ready, _ = health_paths(endpoint)
    return {
        "metadata": {
            **_metadata(endpoint),
            "annotations": {
                "alb.ingress.kubernetes.io/scheme": "internal",
                "alb.ingress.kubernetes.io/target-type": "ip",
                "alb.ingress.kubernetes.io/subnets": subnets,
                "alb.ingress.kubernetes.io/healthcheck-path": ready,
                **_listener_annotations(endpoint),
                # Generation can stream for minutes.
                "alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=600",
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {
                                        "name": backend_service_name(endpoint),
                                        "port": {"number": SERVICE_PORT},
                                    }
                                },
                            }
                        ]
                    }
                }
            ],
        },
    }


# -- SageMaker and IAM helpers ------------------------------------------------------------------------------


def capture_prefix(endpoint: EndpointSpec) -> str:
    return f"inference-capture/{endpoint.name}/"


def sagemaker_environment(endpoint: EndpointSpec) -> dict[str, str]:
    """Container environment for SageMaker: the model sits in /opt/ml/model, the port is SageMaker's 8080."""
    if endpoint.runtime == "vllm":
        # The vLLM SageMaker entry point turns SM_VLLM_* variables into server arguments.
        return {
            "SM_VLLM_MODEL": "/opt/ml/model",
            "SM_VLLM_SERVED_MODEL_NAME": endpoint.model_location.model,
            "SM_VLLM_TENSOR_PARALLEL_SIZE": str(endpoint.gpus_per_replica),
        }
    if endpoint.runtime == "triton":
        return {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": endpoint.model_location.model}
    return {}


def sagemaker_scaling_metric(endpoint: EndpointSpec) -> tuple[str, float]:
    """Predefined target-tracking metric and its target for the endpoint's scaling signal."""
    if endpoint.autoscaling.signal == "concurrency":
        return "SageMakerVariantConcurrentRequestsPerModelHighResolution", float(endpoint.autoscaling.target)
    # InvocationsPerInstance counts per minute.
    return "SageMakerVariantInvocationsPerInstance", float(endpoint.autoscaling.target * 60)


def sagemaker_runtime_statements(env: Environment, endpoint_name: str) -> list[dict[str, Any]]:
    """What a SageMaker execution role needs besides the model and the images: ENIs in the VPC, its own logs
    and metrics."""
    return [
        {
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            # SageMaker attaches ENIs in the environment's own subnets; nothing outside this account and region.
            "Resource": [
                f"arn:aws:ec2:{env.region}:{env.account_id}:network-interface/*",
                f"arn:aws:ec2:{env.region}:{env.account_id}:subnet/*",
                f"arn:aws:ec2:{env.region}:{env.account_id}:security-group/*",
            ],
        },
        {
            "Sid": "DescribeTheVpc",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            # Describe calls support no resource-level scoping; they read no data.
            "Resource": "*",
        },
        {
            "Sid": "EndpointLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            "Resource": env.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{endpoint_name}:*"),
        },
        {
            "Sid": "EndpointMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
        },
    ]


def load_balancer_controller_statements(
    env: Environment, *, vpc_id: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """The AWS Load Balancer Controller's permissions, trimmed to ALBs it creates and tags itself.

    Statements follow kubernetes-sigs/aws-load-balancer-controller@v2.13.0:docs/install/iam_policy.json.
    """
    owned = {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
    vpc_arn = pulumi.Output.concat(f"arn:aws:ec2:{env.region}:{env.account_id}:vpc/", vpc_id)
    return [
        {
            # First statement of the upstream policy: an account that never had a load balancer has no ELB
            # service-linked role yet, and the first CreateLoadBalancer makes it.
            "Sid": "ElbServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        },
        {
            # With target-type ip the controller opens the pods' port from the ALB on the security group of
            # each target ENI (pkg/targetgroupbinding/networking_manager.go resolveEndpointSGForENI,
            # ReconcileIngress): here the EKS cluster security group, which it did not create and never tags.
            # Upstream allows this on every group; here only groups in the environment's VPC.
            "Sid": "OpenTargetPortsInTheVpc",
            "Effect": "Allow",
            "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            "Resource": f"arn:aws:ec2:{env.region}:{env.account_id}:security-group/*",
            "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}},
        },
        {
            "Sid": "Describe",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:Describe*",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
            ],
            "Resource": "*",
        },
        {
            "Sid": "CreateTaggedLoadBalancers",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateSecurityGroup",
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            "Resource": "*",
            "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}},
        },
        {
            "Sid": "TagOnCreate",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags", "elasticloadbalancing:AddTags"],
            "Resource": "*",
            "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}},
        },
        {
            "Sid": "ManageOwned",
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyRule",
            ],
            "Resource": "*",
            "Condition": owned,
        },
        {
            "Sid": "NeverInternetFacing",
            "Effect": "Deny",
            "Action": "elasticloadbalancing:CreateLoadBalancer",
            "Resource": "*",
            "Condition": {"StringEquals": {"elasticloadbalancing:Scheme": "internet-facing"}},
        },
    ]
