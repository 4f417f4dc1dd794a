"""ECR rules: immutable, encrypted, scanned, cleaned up, private; pull-through caches only from known upstreams;
repositories ECR creates itself (caches, replicas) encrypted through creation templates."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from mlstack.guardrail_exceptions import tags_immutable
from policies.framework import (
    Severity,
    Tier,
    as_list,
    depends_on,
    principals,
    region_of,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
    statements,
)

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
PULL_THROUGH = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
DEFAULT_UPSTREAMS = [
    "public.ecr.aws",
    "quay.io",
    "registry.k8s.io",
    "ghcr.io",
    "nvcr.io",
    "registry-1.docker.io",
]


@resource_rule(
    "MLS-ECR-001",
    types=[REPOSITORY],
    title="Repositories have immutable tags",
    why="A mutable tag lets a push replace the image a deployment already runs, defeating review and rollback.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["ECR.2"]},
    remediation="Set image_tag_mutability IMMUTABLE.",
)
def repository_immutable(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not tags_immutable(args.props.get("imageTagMutability", "MUTABLE")):
        yield f"imageTagMutability is {args.props.get('imageTagMutability', 'MUTABLE (default)')}"


@resource_rule(
    "MLS-ECR-002",
    types=[REPOSITORY],
    title="Repositories are encrypted with a KMS key",
    why="Images carry model weights and code; the registry key keeps them under the platform's key policy.",
    severity=Severity.MEDIUM,
    remediation="Set encryption_configurations=[{encryption_type: KMS, kms_key: <registry key ARN>}].",
)
def repository_kms(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    configurations = as_list(args.props.get("encryptionConfigurations"))
    if not any(c.get("encryptionType") == "KMS" and c.get("kmsKey") for c in configurations):
        yield "not encrypted with a KMS key"


@resource_rule(
    "MLS-ECR-003",
    types=[REPOSITORY],
    title="Repositories scan images on push",
    why="Known-vulnerable base images are caught when they arrive, not when they are exploited.",
    severity=Severity.MEDIUM,
    controls={"aws-fsbp": ["ECR.1"], "cis-eks": ["5.1.1"]},
    remediation="Set image_scanning_configuration.scan_on_push true.",
)
def repository_scan_on_push(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if (args.props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        yield "scanOnPush is not true"


@stack_rule(
    "MLS-ECR-004",
    subjects=[REPOSITORY, LIFECYCLE],
    title="Every repository has a lifecycle policy",
    why="Training images are large and pushed often; without expiry the registry grows without bound.",
    severity=Severity.LOW,
    controls={"aws-fsbp": ["ECR.3"]},
    remediation="Attach an ecr.LifecyclePolicy expiring untagged images and keeping the last N tagged ones.",
)
def repository_lifecycle(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    policies = resources_of(args, LIFECYCLE)
    for repository in resources_of(args, REPOSITORY):
        name = repository.props.get("name")
        if not any(
            depends_on(p, "repository", repository) or p.props.get("repository") == name for p in policies
        ):
            yield f"repository {name} has no lifecycle policy", repository.urn


@resource_rule(
    "MLS-ECR-005",
    types=[REPOSITORY],
    title="Repositories in staging and prod cannot be force-deleted",
    why="force_delete removes every image with the repository, including the ones running in production.",
    severity=Severity.HIGH,
    remediation="Leave force_delete unset (false) in hardened tiers.",
)
def repository_not_force_deleted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and args.props.get("forceDelete") is True:
        yield "forceDelete is true"


@stack_rule(
    "MLS-ECR-006",
    subjects=[REPOSITORY, SCANNING],
    title="Prod scans the registry continuously with enhanced scanning",
    why="Basic scanning checks an image once; enhanced scanning re-checks running images as new CVEs appear "
    "and covers language packages, which is what prod needs.",
    severity=Severity.MEDIUM,
    controls={"cis-eks": ["5.1.1"]},
    remediation="Keep registry.enhanced_scanning on for prod (the tier default).",
)
def prod_enhanced_scanning(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    if stack_context().tier is not Tier.PROD or not resources_of(args, REPOSITORY):
        return
    if not any(s.props.get("scanType") == "ENHANCED" for s in resources_of(args, SCANNING)):
        yield "the registry has no ENHANCED scanning configuration", None


@resource_rule(
    "MLS-ECR-007",
    types=[REPOSITORY_POLICY],
    title="Repository policies allow only principals of the account",
    why="A repository policy allowing '*' or another account hands the platform's images (and weights) out.",
    severity=Severity.CRITICAL,
    remediation="Allow no principal outside the account and '*' only in Deny; restrict pulls to platform roles "
    "with a Deny on aws:PrincipalArn.",
)
def repository_policy_private(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    account = stack_context().account_id
    for index, statement in enumerate(statements(args.props.get("policy"))):
        if statement.get("Effect") != "Allow":
            continue
        values = principals(statement)
        sid = statement.get("Sid", f"#{index}")
        if "*" in values and not statement.get("Condition"):
            yield f"statement {sid} allows anyone"
        foreign = [
            v for v in values if str(v).startswith("arn:") and account and f":{account}:" not in str(v)
        ]
        if foreign:
            yield f"statement {sid} allows principals of another account: {foreign}"


@resource_rule(
    "MLS-ECR-008",
    types=[PULL_THROUGH],
    title="Pull-through caches mirror only approved upstream registries",
    why="Workloads pull only from the platform's ECR; the pull-through cache is the one door to public "
    "images, so its upstreams are an allow-list.",
    severity=Severity.MEDIUM,
    remediation="Use an approved upstream, or add it to allowedUpstreams after review.",
    config={
        "allowedUpstreams": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_UPSTREAMS,
            "description": "Upstream registry hosts a pull-through cache may mirror.",
        }
    },
)
def pull_through_upstream_allowed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    upstream = args.props.get("upstreamRegistryUrl")
    allowed = list(config.get("allowedUpstreams") or [])
    if upstream not in allowed:
        yield f"upstream {upstream!r} is not in {allowed}"


def _encrypts_with_kms(template: PolicyResource) -> bool:
    return any(
        c.get("encryptionType") == "KMS" and c.get("kmsKey")
        for c in as_list(template.props.get("encryptionConfigurations"))
    )


def _template_for(
    templates: list[PolicyResource], prefix: str, applied_for: str, region: str
) -> PolicyResource | None:
    """The template ECR would apply to a new repository under ``prefix``: the one for exactly that prefix,
    else the ROOT template, among those applied for ``applied_for`` in ``region``."""
    candidates = [
        t for t in templates if applied_for in as_list(t.props.get("appliedFors")) and region_of(t) == region
    ]
    for wanted in (prefix, "ROOT"):
        for template in candidates:
            if template.props.get("prefix") == wanted:
                return template
    return None


def _template_problem(template: PolicyResource | None, what: str) -> str | None:
    if template is None:
        return f"{what} has no repository creation template: ECR creates its repositories with AES-256"
    if not _encrypts_with_kms(template):
        return f"{what}: creation template {template.name} does not encrypt with a KMS key"
    if not template.props.get("customRoleArn"):
        return (
            f"{what}: creation template {template.name} has no custom role, which ECR needs to use a KMS key"
        )
    return None


@stack_rule(
    "MLS-ECR-009",
    subjects=[PULL_THROUGH, TEMPLATE],
    title="Pull-through caches create KMS-encrypted repositories",
    why="ECR creates a cache's repositories itself on the first pull. Without a creation template for the "
    "cache's prefix they get AES-256, no lifecycle and no policy, and encryption can never change afterwards.",
    severity=Severity.MEDIUM,
    remediation="Give each pull-through cache rule a RepositoryCreationTemplate for its prefix applied for "
    "PULL_THROUGH_CACHE, with KMS encryption and a custom role (components.registry does).",
)
def pull_through_creation_template(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    templates = resources_of(args, TEMPLATE)
    for rule in resources_of(args, PULL_THROUGH):
        prefix = str(rule.props.get("ecrRepositoryPrefix"))
        template = _template_for(templates, prefix, "PULL_THROUGH_CACHE", region_of(rule))
        problem = _template_problem(template, f"pull-through cache {prefix}")
        if problem:
            yield problem, rule.urn


@stack_rule(
    "MLS-ECR-010",
    subjects=[REPLICATION, TEMPLATE],
    title="Replicated repositories are KMS-encrypted in their destination region",
    why="ECR creates the replicas itself in the destination registry. Without a creation template there, for "
    "the replicated prefix, they get AES-256 and lose the source's lifecycle and policy.",
    severity=Severity.MEDIUM,
    remediation="Create a RepositoryCreationTemplate in each destination region, applied for REPLICATION, for "
    "the replicated prefix, with KMS encryption by a key of that region and a custom role.",
)
def replication_creation_template(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    templates = resources_of(args, TEMPLATE)
    account = stack_context().account_id
    for replication in resources_of(args, REPLICATION):
        configuration = replication.props.get("replicationConfiguration") or {}
        for rule in as_list(configuration.get("rules")):
            filters = [str(f.get("filter", "")).rstrip("/") for f in as_list(rule.get("repositoryFilters"))]
            for destination in as_list(rule.get("destinations")):
                # Another account's replicas follow that account's templates, not this stack's.
                if account and destination.get("registryId") not in (None, account):
                    continue
                region = str(destination.get("region"))
                for prefix in filters or ["ROOT"]:
                    template = _template_for(templates, prefix, "REPLICATION", region)
                    problem = _template_problem(template, f"replication of {prefix or 'ROOT'} to {region}")
                    if problem:
                        yield problem, replication.urn
