"""Registry section of the environment spec: ECR repositories for training, serving and base images."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import AwsRegion, DnsLabel, StrictModel

Upstream = Literal["ecr-public", "quay", "k8s", "docker-hub", "github", "gitlab"]

# Where each upstream lives: the public registries mlstack caches. ECR's pull-through cache supports more
# upstreams than these (also Azure Container Registry, Chainguard and other Amazon ECR private registries, per
# the ECR user guide, pull-through-cache.html); mlstack does not offer them.
UPSTREAM_URLS: dict[str, str] = {
    "ecr-public": "public.ecr.aws",
    "quay": "quay.io",
    "k8s": "registry.k8s.io",
    "docker-hub": "registry-1.docker.io",
    "github": "ghcr.io",
    "gitlab": "registry.gitlab.com",
}
# Image references name Docker Hub docker.io, but ECR's cache rule names the registry it really talks to.
REGISTRY_ALIASES: dict[str, str] = {"docker.io": "registry-1.docker.io"}
# Upstreams that ECR only pulls from with credentials stored in Secrets Manager.
CREDENTIALED_UPSTREAMS = frozenset({"docker-hub", "github", "gitlab"})

# ECR only reads pull-through credentials from secrets whose name starts with 'ecr-pullthroughcache/'.
PullThroughSecretArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d:\d{12}:"
        r"secret:ecr-pullthroughcache/[\w/+=.@-]+$"
    ),
    Field(
        description="Secrets Manager secret ARN whose name starts with 'ecr-pullthroughcache/', in the "
        "environment's account and region."
    ),
]
# Images ECR's pull-through cache cannot reach: nvcr.io is not a supported upstream (ECR user guide,
# pull-through-cache.html), and NVIDIA publishes these release tags on NGC only. Mirrored, each is copied into
# the environment's own repository named here (`<environment>/<name>`, immutable tags, so a copied tag can never
# be re-pointed). Public repository -> mirror repository name.
NVIDIA_MIRRORS: dict[str, str] = {
    "nvcr.io/nvidia/k8s-device-plugin": "nvidia-device-plugin",
    "nvcr.io/nvidia/k8s/dcgm-exporter": "dcgm-exporter",
}
RepositoryPrefix = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$", min_length=2, max_length=30)
]


class PullThroughCacheSpec(StrictModel):
    """One upstream registry that clusters pull through ECR, cached under ``<registry>/<prefix>/``."""

    upstream: Upstream = Field(
        description="The public registry to cache: ecr-public, quay, k8s (no credentials), or docker-hub, "
        "github, gitlab (credentials required)."
    )
    prefix: RepositoryPrefix | None = Field(
        default=None,
        description="ECR repository prefix of the cached images. Default: the upstream's name (for example "
        "'ecr-public').",
    )
    credential_arn: PullThroughSecretArn | None = Field(
        default=None,
        description="Secrets Manager secret holding the upstream's username and access token. Required for "
        "docker-hub, github and gitlab; refused for upstreams that need none. Default: no credentials.",
    )

    @property
    def repository_prefix(self) -> str:
        return self.prefix or self.upstream

    @property
    def upstream_url(self) -> str:
        return UPSTREAM_URLS[self.upstream]

    @model_validator(mode="after")
    def _credentials_match_upstream(self) -> PullThroughCacheSpec:
        if self.upstream in CREDENTIALED_UPSTREAMS and self.credential_arn is None:
            raise ValueError(
                f"upstream '{self.upstream}' needs credentials: set credential_arn to a Secrets Manager secret "
                "named 'ecr-pullthroughcache/...'"
            )
        if self.upstream not in CREDENTIALED_UPSTREAMS and self.credential_arn is not None:
            raise ValueError(f"upstream '{self.upstream}' takes no credentials: remove credential_arn")
        return self


def _default_caches() -> list[PullThroughCacheSpec]:
    # Every upstream that needs no credentials: platform and chart images come from all three (Kueue's and
    # Argo's CRD job's from registry.k8s.io).
    return [
        PullThroughCacheSpec(upstream="ecr-public"),
        PullThroughCacheSpec(upstream="quay"),
        PullThroughCacheSpec(upstream="k8s"),
    ]


class RegistrySpec(StrictModel):
    """Container registry. Default: immutable, KMS-encrypted, scanned ECR repositories."""

    repositories: list[DnsLabel] = Field(
        default_factory=lambda: ["training", "serving", "base"],
        min_length=1,
        description="Repository names; each becomes '<environment>/<name>'. Default: training, serving and base.",
    )
    keep_tagged_images: int = Field(
        default=30, ge=1, le=1000, description="How many tagged images each repository keeps. Default: 30."
    )
    untagged_expiry_days: int = Field(
        default=7, ge=1, le=365, description="Days after which untagged images expire. Default: 7."
    )
    enhanced_scanning: bool = Field(
        default=False,
        description="Registry-level enhanced (Inspector) continuous scanning of every repository. Default: off "
        "in dev and staging (basic scan on push only), on in prod.",
    )
    pull_through_caches: list[PullThroughCacheSpec] = Field(
        default_factory=_default_caches,
        description="Public registries that clusters pull through ECR. Default: ECR Public, Quay and "
        "registry.k8s.io, which need no credentials. An empty list creates no cache rules.",
    )
    nvidia_images_mirrored: bool = Field(
        default=True,
        description="Run the NVIDIA device plugin and DCGM exporter from mirrors in the environment's own "
        "repositories '<environment>/nvidia-device-plugin' and '<environment>/dcgm-exporter' (created here, "
        "immutable tags), into which the chart's image tags must be copied before GPU nodes start "
        "(docs/components/registry.md, Mirrored images). Off is a named opt-out: GPU nodes pull them from "
        "nvcr.io, which no pull-through cache reaches. Default: on.",
    )
    replication_region: AwsRegion | None = Field(
        default=None,
        description="Replicate the environment's repositories to this region (another region than the "
        "environment's). Default: no replication.",
    )

    @field_validator("repositories")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each repository may be listed once")
        return value

    @property
    def mirror_repositories(self) -> list[str]:
        """The mirror repositories this environment creates besides ``repositories``."""
        return list(NVIDIA_MIRRORS.values()) if self.nvidia_images_mirrored else []

    @model_validator(mode="after")
    def _mirrors_do_not_clash(self) -> RegistrySpec:
        clash = sorted(set(self.repositories) & set(self.mirror_repositories))
        if clash:
            raise ValueError(
                f"repositories {clash} are the NVIDIA image mirrors' names; rename them or set "
                "nvidia_images_mirrored: false"
            )
        return self

    @field_validator("pull_through_caches")
    @classmethod
    def _unique_prefixes(cls, value: list[PullThroughCacheSpec]) -> list[PullThroughCacheSpec]:
        prefixes = [cache.repository_prefix for cache in value]
        repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if repeated:
            raise ValueError(
                f"pull-through prefixes {repeated} are used more than once; set distinct prefixes"
            )
        return value
