"""Inference section of the environment spec: model serving endpoints.

Rules that need other sections (the models bucket's name, the platform's ECR, the GPU pools) live in
:func:`endpoint_problems`, which the root PlatformSpec calls so that each message names its
``inference.endpoints.N.<field>`` path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.catalog import gpu_catalog
from mlstack.spec.base import DnsLabel, StrictModel
from mlstack.spec.gpu import GpuPoolSpec
from mlstack.spec.storage import s3_bucket_name

# s3://<bucket>/<team>/<model>/<version>/ : the layout every model in the models bucket follows, so a role can
# be granted exactly one model version by prefix.
_MODEL_URI = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/"
    r"(?P<team>[a-z][a-z0-9-]*)/(?P<model>[a-z0-9][a-z0-9._-]*)/(?P<version>[A-Za-z0-9][A-Za-z0-9._-]*)/?$"
)
# registry/repository[:tag][@sha256:digest]; the registry part is present only when the first segment has a
# dot, a colon or is 'localhost', as Docker itself decides.
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?:\.[a-z0-9-]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
AcmCertificateArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
]
SageMakerInstanceType = Annotated[
    str,
    StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$"),
    Field(description="A SageMaker hosting instance type such as ml.g6e.2xlarge."),
]

# Runtimes whose containers load the model from the local disk SageMaker fills from S3, so they run with
# network isolation (no outbound network at all). A custom image may need the network and opts out.
ISOLATABLE_RUNTIMES = frozenset({"vllm", "triton"})


@dataclass(frozen=True)
class ModelLocation:
    """Where a model version lives: bucket, and the key prefix ``<team>/<model>/<version>/``."""

    bucket: str
    team: str
    model: str
    version: str

    @property
    def prefix(self) -> str:
        return f"{self.team}/{self.model}/{self.version}/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def models_bucket_name(environment: str, account_id: str, region: str) -> str:
    """Physical name of the environment's models bucket, ``<env>-<account>-<region>-models``, as the storage
    component names it (bucket names are global, hence account and region)."""
    return s3_bucket_name(environment, account_id, region, "models")


def ecr_registry_host(account_id: str, region: str) -> str:
    """Host name of the environment's private ECR registry."""
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def image_registry(image: str) -> str:
    """The registry an image reference pulls from, as Docker resolves it (docker.io when none is named)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class AutoscalingSpec(StrictModel):
    """How replicas follow load. Default: 8 requests in flight per replica."""

    signal: Literal["concurrency", "rps"] = Field(
        default="concurrency",
        description="What to scale on: requests in flight per replica (concurrency) or requests per second per "
        "replica (rps). Default: concurrency, which tracks GPU batch occupancy better for LLMs.",
    )
    target: int = Field(
        default=8,
        ge=1,
        le=10000,
        description="Target value of the signal per replica; KEDA adds replicas above it. Default: 8.",
    )
    scale_down_delay_seconds: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="Seconds without load before replicas are removed (and before scaling to zero), so a "
        "bursty endpoint does not pay the cold start again and again. Default: 300.",
    )


class EndpointSpec(StrictModel):
    """One model-serving endpoint."""

    name: DnsLabel = Field(description="Endpoint name, unique in the environment.")
    team: DnsLabel = Field(description="Team that owns the endpoint; must be declared under teams.")
    model: str = Field(
        description="S3 URI of the model version to serve: s3://<environment>-<account>-<region>-models/<team>/<model>/<version>/. "
        "The endpoint's role can read this prefix and nothing else. Required."
    )
    runtime: Literal["vllm", "triton", "custom"] = Field(
        description="Serving runtime: vllm (OpenAI-compatible API), triton (Triton Inference Server, model "
        "repository layout) or custom (the image's own entry point, with args)."
    )
    image: str = Field(
        description="Serving image with a tag or digest, from the platform's ECR "
        "(<account>.dkr.ecr.<region>.amazonaws.com/<environment>/<repository>) or one of its pull-through "
        "cache prefixes. Public registries are refused. Required."
    )
    args: list[str] = Field(
        default_factory=list,
        description="Extra arguments for the runtime, appended after the ones mlstack sets (model path, "
        "parallelism, port). Default: none.",
    )
    port: int = Field(
        default=8000, ge=1024, le=65535, description="Port the server listens on. Default: 8000."
    )
    backend: Literal["kubernetes", "sagemaker"] = Field(
        default="kubernetes",
        description="Where the endpoint runs: kubernetes (a Deployment on a GPU pool, KEDA autoscaled, can scale "
        "to zero and hold cold requests) or sagemaker (a managed SageMaker endpoint). Default: kubernetes.",
    )
    gpu_pool: DnsLabel | None = Field(
        default=None,
        description="GPU pool the endpoint runs on; must be declared under gpu_pools. Required for the "
        "kubernetes backend, refused for sagemaker.",
    )
    gpus_per_replica: int = Field(
        default=1,
        ge=1,
        le=8,
        description="GPUs each replica gets; vLLM's tensor parallel size. At most the GPUs of the pool's (or the "
        "SageMaker instance type's) largest instance. Default: 1.",
    )
    sagemaker_instance_type: SageMakerInstanceType | None = Field(
        default=None,
        description="SageMaker instance type (ml.<gpu type>). Required for the sagemaker backend, refused for "
        "kubernetes.",
    )
    min_replicas: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Minimum replicas; 0 scales to zero when idle and holds the first request while a replica "
        "starts (kubernetes only). Default: 0.",
    )
    max_replicas: int = Field(default=1, ge=1, le=100, description="Maximum replicas. Default: 1.")
    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec,
        description="Scaling signal and target. Default: 8 requests in flight per replica.",
    )
    exposure: Literal["internal", "internal-alb"] = Field(
        default="internal",
        description="Who can reach the endpoint: internal (a ClusterIP Service, reachable from inside the "
        "cluster only) or internal-alb (also an internal Application Load Balancer, reachable from the VPC and "
        "networks peered with it). Never public. Default: internal.",
    )
    certificate_arn: AcmCertificateArn | None = Field(
        default=None,
        description="ACM certificate (in the environment's account and region) the internal ALB serves HTTPS "
        "with, on port 443 with a TLS 1.3/1.2 policy. Required for internal-alb in staging and prod; without "
        "it (dev only) the ALB listens on plain HTTP port 80. Default: none.",
    )
    network_isolation: bool = Field(
        default=True,
        description="SageMaker only: run the container without any network access. Default: on for vllm and "
        "triton; a custom image that needs the network must set it to false.",
    )
    data_capture_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="SageMaker only: percentage of requests and responses captured to "
        "the artifacts bucket under inference-capture/<endpoint>/. Default: 0, no capture.",
    )

    @field_validator("model")
    @classmethod
    def _model_layout(cls, value: str) -> str:
        if not _MODEL_URI.match(value):
            raise ValueError(
                f"'{value}' is not a model location; use s3://<environment>-<account>-<region>-models/<team>/<model>/<version>/"
            )
        return value if value.endswith("/") else value + "/"

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        match = _IMAGE.match(value)
        if not match:
            raise ValueError(f"'{value}' is not an image reference like <registry>/<repository>:<tag>")
        if not match["tag"] and not match["digest"]:
            raise ValueError(f"'{value}' names no tag or digest; pin a version (tags are immutable in ECR)")
        if match["tag"] == "latest" and not match["digest"]:
            raise ValueError(f"'{value}' uses the 'latest' tag; pin a version or a digest")
        return value

    @property
    def model_location(self) -> ModelLocation:
        match = _MODEL_URI.match(self.model)
        assert match is not None  # checked by the field validator
        return ModelLocation(
            bucket=match["bucket"], team=match["team"], model=match["model"], version=match["version"]
        )

    @property
    def image_repository(self) -> str:
        """Repository path inside the registry, without registry host, tag or digest."""
        path = self.image.split("@", 1)[0]
        _, _, path = path.partition("/")
        return path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path

    @property
    def scales_to_zero(self) -> bool:
        return self.min_replicas == 0

    @model_validator(mode="after")
    def _consistent(self) -> EndpointSpec:
        problems: list[str] = []
        if self.min_replicas > self.max_replicas:
            problems.append(
                f"min_replicas ({self.min_replicas}) is greater than max_replicas ({self.max_replicas})"
            )
        if self.backend == "kubernetes":
            if self.gpu_pool is None:
                problems.append("the kubernetes backend needs gpu_pool: name a declared GPU pool")
            if self.sagemaker_instance_type is not None:
                problems.append("sagemaker_instance_type is for the sagemaker backend: remove it")
            if self.scales_to_zero and self.exposure == "internal-alb":
                problems.append(
                    "internal-alb cannot hold requests while the endpoint scales from zero (the ALB sends "
                    "straight to pods): set min_replicas to 1 or more, or use exposure internal"
                )
            if self.data_capture_percent:
                problems.append("data_capture_percent is for the sagemaker backend: remove it")
            if self.certificate_arn is not None and self.exposure != "internal-alb":
                problems.append("certificate_arn is for exposure internal-alb: remove it")
        else:
            if self.sagemaker_instance_type is None:
                problems.append(
                    "the sagemaker backend needs sagemaker_instance_type, for example ml.g6e.2xlarge"
                )
            if self.gpu_pool is not None:
                problems.append(
                    "gpu_pool is for the kubernetes backend; SageMaker picks its own hosts: remove it"
                )
            if self.scales_to_zero:
                problems.append(
                    "SageMaker endpoints cannot scale to zero without dropping requests: set min_replicas to "
                    "1 or more, or use the kubernetes backend"
                )
            if self.exposure != "internal":
                problems.append(
                    "SageMaker endpoints are reached through the SageMaker API: use exposure internal"
                )
            if self.network_isolation and self.runtime not in ISOLATABLE_RUNTIMES:
                problems.append(
                    f"a {self.runtime} image may need the network at start-up; set network_isolation to "
                    "true only if it does not, or false to allow it"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class InferenceSpec(StrictModel):
    """Model serving. Default: no endpoints."""

    endpoints: list[EndpointSpec] = Field(
        default_factory=list, description="Endpoints to serve. Default: none."
    )
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[a-z0-9.-]+(:\d+)?(/.*)?$",
        description="A Prometheus you run that KEDA queries for the request metrics of Kubernetes endpoints "
        "with min_replicas of 1 or more, instead of the platform's own (the metrics section); it must scrape "
        "the endpoint pods. Required when such an endpoint exists and metrics.enabled is off: KEDA reports a "
        "failed query as an error, so without a reachable Prometheus a warm endpoint never scales. "
        "Scale-to-zero endpoints are measured by the KEDA HTTP interceptor instead. Default: the platform's "
        "Prometheus.",
    )
    keda_images_through_cache: bool = Field(
        default=True,
        description="Pull the images of KEDA and its HTTP add-on (ghcr.io/kedacore/..., the charts' defaults) "
        "through the registry's github pull-through cache, which then must exist (ECR needs GitHub credentials "
        "for ghcr.io). Off is a named opt-out: pods pull from ghcr.io directly, unscanned. Default: on.",
    )


def prometheus_problems(spec: InferenceSpec, platform_prometheus: str | None) -> list[tuple[str, str]]:
    """A warm Kubernetes endpoint scales on Prometheus metrics: refuse it when there is nothing to query.

    kedacore/keda@v2.20.2:pkg/scalers/prometheus_scaler.go returns an error for a failed query
    (ignoreNullValues covers only empty results), so without a reachable Prometheus the endpoint never scales.
    ``platform_prometheus`` is the URL of the Prometheus the platform installs (None when metrics are off).
    """
    warm = [e.name for e in spec.endpoints if e.backend == "kubernetes" and not e.scales_to_zero]
    if not warm or spec.prometheus_url is not None or platform_prometheus is not None:
        return []
    return [
        (
            "inference.prometheus_url",
            f"endpoints {warm} keep replicas warm and scale on Prometheus metrics, but metrics.enabled is off "
            "and no prometheus_url is set: turn the metrics stack on (remove metrics.enabled), set "
            "prometheus_url to a Prometheus you run that scrapes the endpoint pods, or set min_replicas 0 to "
            "scale through the HTTP interceptor",
        )
    ]


def _certificate_problems(
    endpoint: EndpointSpec, path: str, *, account_id: str, region: str, hardened: bool
) -> list[tuple[str, str]]:
    """An internal ALB serves HTTPS with a certificate of the environment's own account and region."""
    if endpoint.exposure != "internal-alb":
        return []
    if endpoint.certificate_arn is None:
        if not hardened:
            return []
        return [
            (
                f"{path}.certificate_arn",
                "staging and prod serve an internal ALB over HTTPS only: set certificate_arn to an ACM "
                f"certificate in account {account_id}, region {region}, or use exposure internal",
            )
        ]
    _, _, _, cert_region, cert_account, _ = endpoint.certificate_arn.split(":", 5)
    if (cert_region, cert_account) != (region, account_id):
        return [
            (
                f"{path}.certificate_arn",
                f"the certificate is in account {cert_account}, region {cert_region}; an ALB can only use an "
                f"ACM certificate of its own account and region ({account_id}, {region}): request or import "
                "one there",
            )
        ]
    return []


def endpoint_problems(
    endpoints: Sequence[EndpointSpec],
    *,
    environment: str,
    account_id: str,
    region: str,
    buckets: Sequence[str],
    repositories: Sequence[str],
    pull_through_prefixes: Sequence[str],
    gpu_pools: Sequence[GpuPoolSpec],
    hardened: bool = False,
) -> list[tuple[str, str]]:
    """Cross-section rules for every endpoint, each as (``inference.endpoints.N.<field>``, message)."""
    problems: list[tuple[str, str]] = []
    largest_gpu_count = _largest_gpu_counts()
    models_bucket = models_bucket_name(environment, account_id, region)
    registry = ecr_registry_host(account_id, region)
    own_repositories = [f"{environment}/{name}" for name in repositories]
    pools = {pool.name: pool for pool in gpu_pools}
    for i, endpoint in enumerate(endpoints):
        path = f"inference.endpoints.{i}"
        location = endpoint.model_location
        if location.bucket != models_bucket or "models" not in buckets:
            problems.append(
                (
                    f"{path}.model",
                    f"'{endpoint.model}' is outside the models bucket; upload the model to "
                    f"s3://{models_bucket}/{endpoint.team}/<model>/<version>/"
                    + ("" if "models" in buckets else " and add 'models' to storage.buckets"),
                )
            )
        elif location.team != endpoint.team:
            problems.append(
                (
                    f"{path}.model",
                    f"'{endpoint.model}' is under team '{location.team}', but the endpoint belongs to "
                    f"'{endpoint.team}'; serve models from s3://{models_bucket}/{endpoint.team}/",
                )
            )
        problems += _image_problems(
            endpoint, f"{path}.image", registry, own_repositories, list(pull_through_prefixes)
        )
        problems += _certificate_problems(
            endpoint, path, account_id=account_id, region=region, hardened=hardened
        )
        pool = pools.get(endpoint.gpu_pool) if endpoint.gpu_pool else None
        if pool is not None:
            known = [largest_gpu_count[s] for s in pool.instance_types if s in largest_gpu_count]
            if known and endpoint.gpus_per_replica > max(known):
                problems.append(
                    (
                        f"{path}.gpus_per_replica",
                        f"{endpoint.gpus_per_replica} GPUs per replica, but the largest instance in pool "
                        f"'{pool.name}' ({', '.join(pool.instance_types)}) has {max(known)}; lower it or add a "
                        "larger instance type to the pool",
                    )
                )
            elif endpoint.gpus_per_replica > pool.max_gpus:
                problems.append(
                    (
                        f"{path}.gpus_per_replica",
                        f"{endpoint.gpus_per_replica} GPUs per replica exceed pool '{pool.name}' max_gpus "
                        f"({pool.max_gpus}); raise the pool limit or lower gpus_per_replica",
                    )
                )
        if endpoint.sagemaker_instance_type is not None:
            ec2_type = endpoint.sagemaker_instance_type.removeprefix("ml.")
            if ec2_type not in largest_gpu_count:
                problems.append(
                    (
                        f"{path}.sagemaker_instance_type",
                        f"'{endpoint.sagemaker_instance_type}' is not a GPU instance type mlstack knows; use "
                        "ml.<type> for a type in components/data/gpu_instances.yaml",
                    )
                )
            elif endpoint.gpus_per_replica > largest_gpu_count[ec2_type]:
                problems.append(
                    (
                        f"{path}.gpus_per_replica",
                        f"{endpoint.gpus_per_replica} GPUs per replica, but "
                        f"{endpoint.sagemaker_instance_type} has {largest_gpu_count[ec2_type]}; choose a larger "
                        "instance type or lower it",
                    )
                )
    return problems


def _largest_gpu_counts() -> dict[str, int]:
    """GPUs of the largest member of every known family and exact type. Unknown selectors are absent; the
    pool's own validation reports them."""
    catalog = gpu_catalog()
    counts = {name: t.gpu_count for name, t in catalog.types.items()}
    for family in catalog.families:
        counts[family] = max(t.gpu_count for t in catalog.family_types(family))
    return counts


def _image_problems(
    endpoint: EndpointSpec, path: str, registry: str, own: list[str], caches: list[str]
) -> list[tuple[str, str]]:
    source = image_registry(endpoint.image)
    allowed = ", ".join([*own, *(f"{prefix}/..." for prefix in caches)])
    if source != registry:
        kind = "a public registry" if not source.endswith(".amazonaws.com") else "another ECR registry"
        return [
            (
                path,
                f"'{endpoint.image}' comes from {kind} ({source}); serving images must come from the "
                f"platform's ECR {registry}: push it to one of {allowed} or pull it through the cache",
            )
        ]
    repository = endpoint.image_repository
    if repository in own or any(repository.startswith(prefix + "/") for prefix in caches):
        return []
    return [
        (
            path,
            f"repository '{repository}' is neither one of the environment's repositories nor a pull-through "
            f"cache; use one of {allowed}",
        )
    ]
