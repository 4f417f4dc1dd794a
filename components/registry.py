"""Container registry: ECR repositories with immutable tags, KMS encryption, scan on push and lifecycle, plus
pull-through caches of public registries, so that clusters only ever pull from the environment's ECR. The
repositories ECR creates by itself (cache repositories on first pull, replicas in the replication region) get
the same encryption, lifecycle and policy through repository creation templates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import platform_role, policy_document, service_trust
from components.keys import create_key
from components.options import child, provider_in_region, stateful
from mlstack.spec.registry import NVIDIA_MIRRORS, REGISTRY_ALIASES, RegistrySpec

_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
# The first pull of an upstream image creates its cache repository and imports the image.
_CACHE_FILL_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
# What ECR does with the creation role when it creates a repository from a template: create and tag it,
# copy images into it (replication only), and give itself a grant on the template's key.
_CREATION_ACTIONS = ["ecr:CreateRepository", "ecr:TagResource"]
_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]


@dataclass(frozen=True)
class RegistryArgs:
    env: Environment
    spec: RegistrySpec
    registry_key_arn: pulumi.Input[str]
    """The registry key (EncryptionKeys.registry_key_arn) that encrypts every repository."""
    permission_boundary_arn: pulumi.Input[str]
    """Guardrails.permission_boundary_arn, for the role ECR uses to create repositories from templates."""


class Registry(pulumi.ComponentResource):
    """The environment's ECR repositories (``<env>/<name>``) and pull-through caches (``<prefix>/...``).

    Each repository has immutable tags, KMS encryption with the registry key, scan on push, a lifecycle
    policy (untagged images expire, the last N tagged are kept) and a repository policy that admits only
    the platform's own roles. Repositories that ECR creates on its own (a cache's repositories on first pull,
    replicas in ``replication_region``) follow a repository creation template with the same key (a key of
    the replica region for replicas), lifecycle, policy and tags. Grant access with :meth:`grant_pull` and
    :meth:`grant_push`; check an image reference with :meth:`allows_image`.

    Outputs: ``registry_url`` (``<account>.dkr.ecr.<region>.amazonaws.com``), ``repository_urls``
    (name to URL), ``repository_arns`` (name to ARN), ``allowed_image_prefixes``.
    """

    registry_url: pulumi.Output[str]
    repository_urls: pulumi.Output[dict[str, str]]
    repository_arns: pulumi.Output[dict[str, str]]
    allowed_image_prefixes: list[str]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:registry:Registry", name, None, opts)
        env, spec = args.env, args.spec
        self._env = env
        self._grants: set[str] = set()
        host = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com"
        lifecycle = _lifecycle_policy(spec)
        repository_policy = json.dumps(_repository_policy(env), sort_keys=True)

        self.repositories: dict[str, aws.ecr.Repository] = {}
        for repo in [*spec.repositories, *spec.mirror_repositories]:
            repository = aws.ecr.Repository(
                f"{name}-{repo}",
                name=f"{env.name}/{repo}",
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=args.registry_key_arn
                    )
                ],
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                # Deleting a repository never deletes its images implicitly.
                force_delete=False,
                opts=stateful(self, env),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{repo}-lifecycle",
                repository=repository.name,
                policy=lifecycle,
                opts=child(self),
            )
            aws.ecr.RepositoryPolicy(
                f"{name}-{repo}-policy",
                repository=repository.name,
                policy=repository_policy,
                opts=child(self),
            )
            self.repositories[repo] = repository

        self.pull_through_prefixes = [cache.repository_prefix for cache in spec.pull_through_caches]
        replication_region = spec.replication_region
        self.replica_key: aws.kms.Key | None = None
        replica_provider: aws.Provider | None = None
        if replication_region is not None:
            # A repository's key must be in the repository's region: replicas need a registry key there.
            replica_provider = provider_in_region(self, f"{name}-replica-aws", env, replication_region)
            self.replica_key = create_key(
                self,
                f"{name}-replica-registry",
                env=env,
                purpose="registry",
                region=replication_region,
                alias_suffix="-replica",
                provider=replica_provider,
            )

        self.creation_role: aws.iam.Role | None = None
        ready: list[pulumi.Resource] = []
        if self.pull_through_prefixes or replication_region is not None:
            # ECR applies a template's KMS key and tags only through a role of ours that it assumes.
            self.creation_role = platform_role(
                self,
                f"{name}-creation-role",
                env=env,
                role_suffix="ecr-repository-creation",
                boundary_arn=args.permission_boundary_arn,
                assume_role_policy=service_trust("ecr.amazonaws.com"),
                description=f"ECR creates the {env.name} cache and replica repositories with this role.",
            )
            ready = [
                aws.iam.RolePolicy(
                    f"{name}-creation-policy",
                    role=self.creation_role.name,
                    name="ecr-create-repositories",
                    policy=policy_document(
                        _creation_statements(
                            env,
                            self.pull_through_prefixes,
                            args.registry_key_arn,
                            replication_region,
                            self.replica_key.arn if self.replica_key is not None else None,
                        )
                    ),
                    opts=child(self),
                )
            ]
        for cache in spec.pull_through_caches:
            prefix = cache.repository_prefix
            assert self.creation_role is not None
            template = aws.ecr.RepositoryCreationTemplate(
                f"{name}-cache-{prefix}-template",
                prefix=prefix,
                applied_fors=["PULL_THROUGH_CACHE"],
                description=f"Repositories of the {prefix} pull-through cache of {cache.upstream_url}",
                # Mutable on purpose: a cache repository mirrors its upstream, where tags move (rebuilt base
                # images, patch tags). ECR re-checks a cached tag at least once a day and updates it, which
                # immutable tags would forbid, freezing the first image ever pulled under a tag. No grant of
                # the platform allows pushing to a cache, so only the upstream can move a tag.
                image_tag_mutability="MUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=args.registry_key_arn
                    )
                ],
                lifecycle_policy=lifecycle,
                repository_policy=repository_policy,
                resource_tags=env.tags,
                custom_role_arn=self.creation_role.arn,
                opts=child(self, depends_on=ready),
            )
            # The rule waits for its template: a pull in between would create an AES-256 repository, and a
            # repository's encryption can never be changed afterwards.
            aws.ecr.PullThroughCacheRule(
                f"{name}-cache-{prefix}",
                ecr_repository_prefix=prefix,
                upstream_registry_url=cache.upstream_url,
                credential_arn=cache.credential_arn,
                opts=child(self, depends_on=[template]),
            )

        if spec.enhanced_scanning:
            # A registry-wide setting: one environment per account and region owns it.
            aws.ecr.RegistryScanningConfiguration(
                f"{name}-scanning",
                scan_type="ENHANCED",
                rules=[
                    aws.ecr.RegistryScanningConfigurationRuleArgs(
                        scan_frequency="CONTINUOUS_SCAN",
                        repository_filters=[
                            aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                                filter="*", filter_type="WILDCARD"
                            )
                        ],
                    )
                ],
                opts=child(self),
            )

        if replication_region is not None:
            assert self.creation_role is not None and self.replica_key is not None
            # Replicas are created in the destination registry, so the template lives in that region too.
            # Their source repositories have immutable tags, so the replicas can keep them immutable.
            replica_template = aws.ecr.RepositoryCreationTemplate(
                f"{name}-replica-template",
                prefix=env.name,
                applied_fors=["REPLICATION"],
                description=f"Replicas of the {env.name} repositories",
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=self.replica_key.arn
                    )
                ],
                lifecycle_policy=lifecycle,
                repository_policy=repository_policy,
                resource_tags=env.tags,
                custom_role_arn=self.creation_role.arn,
                opts=child(self, provider=replica_provider, depends_on=ready),
            )
            aws.ecr.ReplicationConfiguration(
                f"{name}-replication",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                    region=spec.replication_region, registry_id=env.account_id
                                )
                            ],
                            repository_filters=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                    filter=f"{env.name}/", filter_type="PREFIX_MATCH"
                                )
                            ],
                        )
                    ]
                ),
                # Replication starts only once its replicas would be encrypted with the replica key.
                opts=child(self, depends_on=[replica_template]),
            )

        # Image references inference may run: the environment's repositories and its pull-through caches.
        self.allowed_image_prefixes = [f"{host}/{env.name}/{repo}" for repo in self.repositories] + [
            f"{host}/{prefix}/" for prefix in self.pull_through_prefixes
        ]
        self.registry_url = pulumi.Output.from_input(host)
        self.pull_through = PullThrough.from_spec(env, spec)
        self.repository_urls = pulumi.Output.all(
            **{repo: r.repository_url for repo, r in self.repositories.items()}
        )
        self.repository_arns = pulumi.Output.all(**{repo: r.arn for repo, r in self.repositories.items()})
        self.register_outputs(
            {
                "registry_url": self.registry_url,
                "repository_urls": self.repository_urls,
                "repository_arns": self.repository_arns,
                "allowed_image_prefixes": self.allowed_image_prefixes,
            }
        )

    def allows_image(self, image: str) -> bool:
        """Whether ``image`` comes from one of this registry's repositories or pull-through caches."""
        return image_allowed(image, self.allowed_image_prefixes)

    def grant_pull(self, principal: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``principal`` pull images from every repository and pull-through cache of the environment.

        Creates and returns an inline policy on the role. No KMS permission is needed: ECR decrypts layers
        through the grant it holds on the registry key.
        """
        return self._grant("pull", principal, self._pull_statements())

    def grant_cache_fill(self, principal: aws.iam.Role) -> aws.iam.RolePolicy | None:
        """Let ``principal`` create and fill the pull-through cache repositories on a first pull, and nothing
        else: ``ecr:CreateRepository`` and ``ecr:BatchImportUpstreamImage`` on ``<cache prefix>/*`` only.

        For the node roles: kubelet pulls every pod's image with the node's role, and the first pull of an
        upstream image through a cache needs both actions (ECR user guide, pull-through-cache-iam.html:
        "ecr:CreateRepository ... is required if the repository storing the cached images doesn't already
        exist"). AmazonEC2ContainerRegistryPullOnly holds BatchImportUpstreamImage but not CreateRepository.
        Returns ``None`` when the environment has no cache.
        """
        if not self.pull_through_prefixes:
            return None
        return self._grant("cache-fill", principal, [self._cache_fill_statement()])

    def grant_push(
        self, principal: aws.iam.Role, repositories: Sequence[str] | None = None
    ) -> aws.iam.RolePolicy:
        """Let ``principal`` push (and pull) images to ``repositories`` (default: every repository of the
        environment; never the pull-through caches). Creates and returns an inline policy on the role.
        """
        names = list(repositories) if repositories is not None else list(self.repositories)
        unknown = sorted(set(names) - set(self.repositories))
        if unknown or not names:
            raise ValueError(
                f"cannot grant push to repositories {unknown or names}; declared: {sorted(self.repositories)}"
            )
        arns = [self.repositories[repo].arn for repo in names]
        statements = [
            _authorization_statement(),
            {
                "Sid": "PushImages",
                "Effect": "Allow",
                "Action": [*_PUSH_ACTIONS, *_PULL_ACTIONS[1:]],
                "Resource": arns,
            },
        ]
        suffix = "" if repositories is None else "-" + "-".join(sorted(names))
        return self._grant(f"push{suffix}", principal, statements)

    def _pull_statements(self) -> list[dict[str, Any]]:
        statements = [
            _authorization_statement(),
            {
                "Sid": "PullImages",
                "Effect": "Allow",
                "Action": _PULL_ACTIONS,
                "Resource": [r.arn for r in self.repositories.values()] + self._cache_arns(),
            },
        ]
        if self.pull_through_prefixes:
            statements.append(self._cache_fill_statement())
        return statements

    def _cache_fill_statement(self) -> dict[str, Any]:
        return {
            "Sid": "FillPullThroughCaches",
            "Effect": "Allow",
            "Action": _CACHE_FILL_ACTIONS,
            "Resource": self._cache_arns(),
        }

    def _cache_arns(self) -> list[str]:
        return [self._env.arn("ecr", f"repository/{prefix}/*") for prefix in self.pull_through_prefixes]

    def _grant(
        self, access: str, principal: aws.iam.Role, statements: list[dict[str, Any]]
    ) -> aws.iam.RolePolicy:
        suffix = f"{access}-{principal.pulumi_resource_name}"
        if suffix in self._grants:
            raise ValueError(f"{principal.pulumi_resource_name} already has {access} access to the registry")
        self._grants.add(suffix)
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-{suffix}",
            role=principal.name,
            name=f"ecr-{access}",
            policy=policy_document(statements),
            opts=child(self),
        )


def image_allowed(image: str, allowed_prefixes: Sequence[str]) -> bool:
    """Whether ``image`` (``<registry>/<repository>:<tag>`` or ``...@<digest>``) starts with one of
    ``allowed_prefixes`` (a Registry's ``allowed_image_prefixes``): an exact repository followed by a tag or
    digest, or a pull-through prefix (ending in '/') followed by an upstream path.
    """
    for prefix in allowed_prefixes:
        if prefix.endswith("/"):
            if image.startswith(prefix) and len(image) > len(prefix):
                return True
        elif image.startswith((f"{prefix}:", f"{prefix}@")):
            return True
    return False


def _authorization_statement() -> dict[str, Any]:
    # GetAuthorizationToken has no resource-level permissions in IAM: '*' is the only valid resource, and
    # the token alone grants nothing without the repository actions.
    return {
        "Sid": "GetRegistryToken",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }


def _creation_statements(
    env: Environment,
    cache_prefixes: Sequence[str],
    registry_key_arn: pulumi.Input[str],
    replication_region: str | None,
    replica_key_arn: pulumi.Input[str] | None,
) -> list[dict[str, Any]]:
    """What ECR may do as the creation role: create and tag the cache repositories (and the replicas in the
    replication region), and use the registry keys only to hand ECR its grant on them."""
    repositories = [env.arn("ecr", f"repository/{prefix}/*") for prefix in cache_prefixes]
    keys: list[pulumi.Input[str]] = [registry_key_arn]
    statements: list[dict[str, Any]] = []
    if replication_region is not None and replica_key_arn is not None:
        replicas = f"arn:aws:ecr:{replication_region}:{env.account_id}:repository/{env.name}/*"
        repositories.append(replicas)
        keys.append(replica_key_arn)
        statements.append(
            {
                "Sid": "ReplicateImages",
                "Effect": "Allow",
                "Action": "ecr:ReplicateImage",
                "Resource": [replicas],
            }
        )
    return [
        {
            "Sid": "CreateRepositories",
            "Effect": "Allow",
            "Action": _CREATION_ACTIONS,
            "Resource": repositories,
        },
        *statements,
        {
            "Sid": "RegistryKeysForEcr",
            "Effect": "Allow",
            "Action": ["kms:DescribeKey", "kms:RetireGrant"],
            "Resource": keys,
        },
        {
            # The grant ECR gives itself on a new repository's key: only ever for an AWS resource.
            "Sid": "GrantEcrTheRegistryKeys",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": keys,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def _lifecycle_policy(spec: RegistrySpec) -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {spec.untagged_expiry_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": spec.untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the last {spec.keep_tagged_images} tagged images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": spec.keep_tagged_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


def _repository_policy(env: Environment) -> dict[str, Any]:
    """Only the platform's own roles may pull; nobody outside the account may do anything.

    An Allow naming the account root only delegates to IAM, so it cannot restrict who pulls: a Deny does.
    Service-linked roles (``role/aws-service-role/...``, for example Inspector's for enhanced scanning) keep
    their access; they act for AWS services, not for people.
    """
    platform_roles = f"arn:aws:iam::{env.account_id}:role/{env.name}-*"
    service_linked = f"arn:aws:iam::{env.account_id}:role/aws-service-role/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyPlatformRolesPull",
                "Effect": "Deny",
                "Principal": "*",
                "Action": _PULL_ACTIONS,
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": [platform_roles, service_linked]}},
            },
            {
                "Sid": "DenyOutsideTheAccount",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:*",
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": env.account_id}},
            },
        ],
    }


@dataclass(frozen=True)
class PullThrough:
    """Rewrites a public image reference to the same image through the environment's ECR pull-through cache,
    so that platform workloads pull only from the platform's registry (scanned, encrypted, no rate limits)."""

    host: str
    prefixes: Mapping[str, str]
    mirrors: Mapping[str, str] = field(default_factory=dict)
    """Public repository -> the environment's mirror repository URL, for images no cache reaches."""

    @classmethod
    def from_spec(cls, env: Environment, spec: RegistrySpec) -> PullThrough:
        host = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com"
        mirrored = NVIDIA_MIRRORS if spec.nvidia_images_mirrored else {}
        return cls(
            host=host,
            prefixes={cache.upstream_url: cache.repository_prefix for cache in spec.pull_through_caches},
            mirrors={public: f"{host}/{env.name}/{repo}" for public, repo in mirrored.items()},
        )

    def mirror(self, public_repository: str) -> str | None:
        """The environment's mirror of ``public_repository`` (no tag), or None when the stack does not mirror it."""
        return self.mirrors.get(public_repository)

    def image(self, public_image: str) -> str:
        registry, _, path = public_image.partition("/")
        return f"{self.registry(registry, image=public_image)}/{path}"

    def registry(self, public_registry: str, *, image: str | None = None) -> str:
        """Where the cache of a public registry (``quay.io``) is: ``<host>/<prefix>``, for charts that take the
        registry and the repository as separate values."""
        prefix = self.prefixes.get(REGISTRY_ALIASES.get(public_registry, public_registry))
        if prefix is None:
            raise ValueError(
                f"no pull-through cache covers {image or public_registry}; add its registry to "
                "registry.pull_through_caches"
            )
        return f"{self.host}/{prefix}"
