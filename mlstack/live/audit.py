"""Audit: read the live account and report drift from the guardrails the stack deployed.

Only resources tagged ``environment=<env>`` are audited, so other environments and hand-made resources in the
same account stay out of the report. Every region the stack deploys to is read: the home region and the
replica regions of the models bucket and the registry. Each rule is one function returning a :class:`Result`
per resource: PASS when compliant, FAIL on drift, NOT_CHECKED when the read was denied (never PASS).

The platform's deliberate exceptions (SSE-S3 access-log buckets, mutable pull-through cache repositories) come
from :mod:`mlstack.guardrail_exceptions`, the module the policy pack uses too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from mlstack.guardrail_exceptions import pull_through_cache_repository, sse_s3_allowed, tags_immutable
from mlstack.live.aws import Aws, Denied, LiveError, aws_call, error_code
from mlstack.live.bootstrap import (
    KMS_ALGORITHMS,
    PUBLIC_ACCESS_FLAGS,
    denies_insecure_transport,
    policy_statements,
)
from mlstack.live.report import Report, Result, Rule, Status
from mlstack.pipeline_roles import PIPELINE_ROLES, pipeline_boundary_name, pipeline_role_name
from mlstack.spec import PlatformSpec

RULES = (
    Rule(
        "s3-encryption",
        "Buckets encrypt new objects with SSE-KMS by default (SSE-S3 only on access-log buckets)",
    ),
    Rule("s3-versioning", "Buckets keep versions"),
    Rule("s3-public-access-block", "Buckets block public access with all four flags"),
    Rule("s3-policy", "Bucket policies deny requests without TLS and grant nothing to everyone"),
    Rule("ecr-immutable-tags", "Repositories refuse every tag overwrite (pull-through caches excepted)"),
    Rule(
        "ecr-scanning",
        "Images are scanned: the registry's scanning rules, as ECR applies them, cover the repository",
    ),
    Rule("iam-boundary", "Roles carry the environment's permission boundary"),
    Rule("eks-endpoint", "The cluster endpoint stays private, or public only to the declared CIDRs"),
    Rule("eks-logging", "Control-plane logging of api, audit and authenticator is on"),
    Rule("eks-secrets-encryption", "The cluster encrypts Kubernetes secrets with a KMS key"),
    Rule("ec2-imdsv2", "Launch templates require IMDSv2 (http tokens required)"),
    Rule("budget", "The environment's monthly AWS Budget exists"),
    Rule("kms-rotation", "Customer-managed keys rotate"),
)
ENV_TAG = "environment"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
# Error codes of a read on a resource the Tagging API still lists after it was deleted: GetResources returns
# "tagged or previously tagged resources" (Resource Groups Tagging API, GetResources), so such entries are skipped.
GONE_CODES = frozenset({"NoSuchBucket", "NotFoundException", "RepositoryNotFoundException", "NoSuchEntity"})

Check = Callable[[], Result]


def _not_checked(rule: str, subject: str, exc: Denied, note: str = "") -> Result:
    message = f"{exc.permission} denied" + (f" ({note})" if note else "")
    return Result(rule, subject, Status.NOT_CHECKED, message, f"grant {exc.permission}")


def _guarded(rule: str, subject: str, check: Check) -> Result:
    """Run one rule on one resource; a denied read makes it NOT_CHECKED with the permission it lacked."""
    try:
        return check()
    except Denied as exc:
        return _not_checked(rule, subject, exc)


def _gone(exc: ClientError) -> bool:
    return error_code(exc) in GONE_CODES


def _tags(pairs: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p[value] for p in pairs}


def scan_filter_matches(pattern: str, repository: str) -> bool:
    """Whether an ECR scanning WILDCARD filter matches ``repository``.

    AWS ECR User Guide, "Filters to choose which repositories are scanned": a filter with no wildcard matches
    every repository name that contains it; with a wildcard, ``*`` stands for zero or more characters and the
    whole name must match.
    """
    if "*" not in pattern:
        return pattern in repository
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), repository) is not None


def effective_scanning(repository: dict[str, Any], registry: dict[str, Any]) -> tuple[bool, str]:
    """Whether ECR scans ``repository`` under the registry scanning configuration ``registry``, and how.

    AWS ECR User Guide, "Filters to choose which repositories are scanned": with enhanced scanning, a repository
    no rule's filter matches has scanning disabled (the repository's own scanOnPush is not used); with basic
    scanning, a repository no scan-on-push filter matches is set to manual scanning. Without basic rules, the
    repository's own (deprecated) scanOnPush flag decides.
    """
    name = repository["repositoryName"]
    scan_type = registry.get("scanType", "BASIC")
    matching = sorted(
        {
            (rule.get("scanFrequency", ""), entry.get("filter", ""))
            for rule in registry.get("rules", [])
            for entry in rule.get("repositoryFilters", [])
            if scan_filter_matches(entry.get("filter", ""), name)
        }
    )
    if matching:
        frequency, pattern = matching[0]
        return True, f"{scan_type.lower()} scanning, {frequency} through filter '{pattern}'"
    if scan_type == "ENHANCED":
        return (
            False,
            "enhanced scanning is on, but no rule's filter matches the repository: scanning disabled",
        )
    if registry.get("rules"):
        return False, "no basic scan-on-push filter matches the repository: manual scanning only"
    if repository.get("imageScanningConfiguration", {}).get("scanOnPush"):
        return True, "basic scanning, scan on push (repository setting)"
    return False, "scan on push is off and no registry scanning rule covers the repository"


@dataclass
class _Buckets:
    """What the bucket rules need across regions: the buckets and which of them receive access logs."""

    names: dict[str, str] = field(default_factory=dict)  # bucket -> region
    log_targets: set[str] = field(default_factory=set)
    logging_unknown: list[Denied] = field(default_factory=list)


@dataclass(frozen=True)
class Audit:
    """The inputs of one audit run: the account's clients and the environment's spec."""

    aws: Aws
    spec: PlatformSpec

    @property
    def env(self) -> str:
        return self.spec.environment

    @property
    def regions(self) -> tuple[str, ...]:
        """The home region first, then every replica region the stack deploys to."""
        return (self.spec.region, *self.spec.replica_regions())

    def _where(self, name: str, region: str) -> str:
        return name if region == self.spec.region else f"{name} ({region})"

    def run(self) -> Report:
        account = self.aws.account_id()
        if account != self.spec.account_id:
            raise LiveError(
                f"credentials are for account {account}, the stack file of {self.env} wants {self.spec.account_id}; "
                "switch profile (AWS_PROFILE=...) and run again"
            )
        results: list[Result] = []
        results += self._buckets()
        for region in self.regions:
            results += self._repositories(region)
        results += self._roles()
        results += self._clusters()
        results += self._launch_templates()
        results += self._budgets()
        for region in self.regions:
            results += self._keys(region)
        return Report(
            tool="audit",
            title=f"audit {self.env} (account {account}, {', '.join(self.regions)}): resources tagged "
            f"{ENV_TAG}={self.env}",
            rules=RULES,
            results=tuple(results),
        )

    def _unlisted(self, rules: tuple[str, ...], exc: Denied, what: str) -> list[Result]:
        message = f"{exc.permission} denied, so {what} could not be listed"
        return [Result(r, what, Status.NOT_CHECKED, message, f"grant {exc.permission}") for r in rules]

    # --- discovery by tag --------------------------------------------------------------------------------

    def _tagged(self, resource_type: str, region: str) -> Iterator[str]:
        paginator = self.aws.client("resourcegroupstaggingapi", region=region).get_paginator("get_resources")
        with aws_call("tag:GetResources"):
            for page in paginator.paginate(
                TagFilters=[{"Key": ENV_TAG, "Values": [self.env]}], ResourceTypeFilters=[resource_type]
            ):
                for mapping in page["ResourceTagMappingList"]:
                    yield mapping["ResourceARN"]

    # --- S3 ----------------------------------------------------------------------------------------------

    def _buckets(self) -> list[Result]:
        rules = ("s3-encryption", "s3-versioning", "s3-public-access-block", "s3-policy")
        found = _Buckets()
        results: list[Result] = []
        for region in self.regions:
            try:
                for arn in self._tagged("s3:bucket", region):
                    found.names[arn.rsplit(":", 1)[-1]] = region
            except Denied as exc:
                results += self._unlisted(rules, exc, f"buckets in {region}")
        gone: set[str] = set()
        for bucket, region in sorted(found.names.items()):
            s3 = self.aws.client("s3", region=region)
            try:
                with aws_call("s3:GetBucketLogging"):
                    target = (
                        s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled", {}).get("TargetBucket")
                    )
            except Denied as exc:
                found.logging_unknown.append(exc)
                continue
            except ClientError as exc:
                if not _gone(exc):
                    raise
                gone.add(bucket)
                continue
            if target:
                found.log_targets.add(target)
        for bucket, region in sorted(found.names.items()):
            if bucket in gone:
                continue
            s3 = self.aws.client("s3", region=region)
            checks = [
                ("s3-encryption", partial(_bucket_encryption, s3, bucket, found)),
                ("s3-versioning", partial(_bucket_versioning, s3, bucket)),
                ("s3-public-access-block", partial(_bucket_public_access, s3, bucket)),
                ("s3-policy", partial(_bucket_policy, s3, bucket)),
            ]
            try:
                results += [_guarded(rule, bucket, check) for rule, check in checks]
            except ClientError as exc:
                if not _gone(exc):  # deleted between the listing and the reads
                    raise
        return results

    # --- ECR ---------------------------------------------------------------------------------------------

    def _repositories(self, region: str) -> list[Result]:
        rules = ("ecr-immutable-tags", "ecr-scanning")
        ecr = self.aws.client("ecr", region=region)
        try:
            with aws_call("ecr:DescribeRepositories"):
                repositories = [
                    repo
                    for page in ecr.get_paginator("describe_repositories").paginate()
                    for repo in page["repositories"]
                ]
        except Denied as exc:
            return self._unlisted(rules, exc, f"repositories in {region}")
        results: list[Result] = []
        caches: list[str] | Denied | None = None
        registry: dict[str, Any] | Denied | None = None
        for repo in repositories:
            name = self._where(repo["repositoryName"], region)
            try:
                with aws_call("ecr:ListTagsForResource"):
                    tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
            except Denied as exc:
                results += [_not_checked(r, name, exc) for r in rules]
                continue
            except ClientError as exc:
                if _gone(exc):
                    continue
                raise
            if tags.get(ENV_TAG) != self.env:
                continue
            if caches is None:
                caches = _cache_prefixes(ecr)
            if registry is None:
                registry = _registry_scanning(ecr)
            results.append(_mutability(repo, name, caches))
            results.append(self._scanning(repo, name, region, caches, registry))
        return results

    def _scanning(
        self,
        repo: dict[str, Any],
        name: str,
        region: str,
        caches: list[str] | Denied,
        registry: dict[str, Any] | Denied,
    ) -> Result:
        if isinstance(registry, Denied):
            return _not_checked("ecr-scanning", name, registry, "the registry's scanning rules")
        scanned, how = effective_scanning(repo, registry)
        if scanned:
            return Result("ecr-scanning", name, Status.PASS, how)
        cache = (
            None
            if isinstance(caches, Denied)
            else pull_through_cache_repository(repo["repositoryName"], caches)
        )
        if cache is not None:
            return Result(
                "ecr-scanning",
                name,
                Status.PASS,
                f"exception: pull-through cache repository ({cache}/) follows the registry's scanning, which "
                f"does not cover it ({how})",
            )
        if region != self.spec.region:
            return Result(
                "ecr-scanning",
                name,
                Status.PASS,
                f"exception: replica region {region}; the stack scans images in {self.spec.region} ({how})",
            )
        return Result(
            "ecr-scanning",
            name,
            Status.FAIL,
            how,
            "run `pulumi up` to restore the registry scanning configuration (registry.enhanced_scanning), or "
            f"aws ecr put-image-scanning-configuration --repository-name {repo['repositoryName']} "
            "--image-scanning-configuration scanOnPush=true",
        )

    # --- IAM ---------------------------------------------------------------------------------------------

    def _roles(self) -> list[Result]:
        iam = self.aws.client("iam")
        # The name Guardrails gives the boundary (components/governance.py), in the region's partition.
        boundary = (
            f"arn:{self.aws.partition}:iam::{self.spec.account_id}:policy/{self.env}-permission-boundary"
        )
        try:
            with aws_call("iam:ListRoles"):
                names = [
                    role["RoleName"]
                    for page in iam.get_paginator("list_roles").paginate()
                    for role in page["Roles"]
                    # Service-linked roles belong to AWS and can carry neither our tags nor our boundary.
                    if not role.get("Path", "/").startswith("/aws-service-role/")
                ]
        except Denied as exc:
            return self._unlisted(("iam-boundary",), exc, "roles")
        results = []
        for name in names:
            try:
                with aws_call("iam:GetRole"):
                    role = iam.get_role(RoleName=name)["Role"]
            except Denied as exc:
                results.append(_not_checked("iam-boundary", name, exc))
                continue
            except ClientError as exc:
                if _gone(exc):  # deleted since ListRoles
                    continue
                raise
            if _tags(role.get("Tags", [])).get(ENV_TAG) != self.env:
                continue
            attached = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            expected = boundary
            if name in {pipeline_role_name(self.env, r) for r in PIPELINE_ROLES}:
                # The pipeline's roles carry the account foundation's boundary (components/account.py).
                expected = f"arn:{self.aws.partition}:iam::{self.spec.account_id}:policy/{pipeline_boundary_name(self.env)}"
            if attached == expected:
                results.append(Result("iam-boundary", name, Status.PASS, "boundary attached"))
            else:
                results.append(
                    Result(
                        "iam-boundary",
                        name,
                        Status.FAIL,
                        f"permission boundary is {attached or 'missing'}, not {expected}",
                        f"aws iam put-role-permissions-boundary --role-name {name} --permissions-boundary {expected}",
                    )
                )
        return results

    # --- EKS ---------------------------------------------------------------------------------------------

    def _clusters(self) -> list[Result]:
        rules = ("eks-endpoint", "eks-logging", "eks-secrets-encryption")
        eks = self.aws.client("eks")
        try:
            with aws_call("eks:ListClusters"):
                names = [
                    n for page in eks.get_paginator("list_clusters").paginate() for n in page["clusters"]
                ]
        except Denied as exc:
            return self._unlisted(rules, exc, "clusters")
        results: list[Result] = []
        for name in names:
            try:
                with aws_call("eks:DescribeCluster"):
                    cluster = eks.describe_cluster(name=name)["cluster"]
            except Denied as exc:
                results += [_not_checked(r, name, exc) for r in rules]
                continue
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":  # deleted since ListClusters
                    continue
                raise
            if cluster.get("tags", {}).get(ENV_TAG) != self.env:
                continue
            results += [
                self._endpoint(name, cluster),
                _logging(name, cluster),
                _secrets_encryption(name, cluster),
            ]
        return results

    def _endpoint(self, name: str, cluster: dict[str, Any]) -> Result:
        vpc = cluster.get("resourcesVpcConfig", {})
        declared = self.spec.cluster
        allowed = {str(c) for c in declared.public_access_cidrs}
        if not vpc.get("endpointPublicAccess", False):
            return Result("eks-endpoint", name, Status.PASS, "private endpoint only")
        opened = set(vpc.get("publicAccessCidrs", []))
        if not declared.endpoint_public_access:
            return Result(
                "eks-endpoint",
                name,
                Status.FAIL,
                f"endpoint is public ({', '.join(sorted(opened)) or 'no CIDRs listed'}) but the stack declares it private",
                f"aws eks update-cluster-config --name {name} --resources-vpc-config endpointPublicAccess=false,endpointPrivateAccess=true",
            )
        extra = sorted(opened - allowed)
        if extra:
            return Result(
                "eks-endpoint",
                name,
                Status.FAIL,
                f"public endpoint open to undeclared CIDRs {', '.join(extra)}",
                "run `pulumi up` to restore cluster.public_access_cidrs",
            )
        return Result("eks-endpoint", name, Status.PASS, "public only to the declared CIDRs")

    # --- EC2 launch templates (IMDSv2) -------------------------------------------------------------------

    def _launch_templates(self) -> list[Result]:
        ec2 = self.aws.client("ec2")
        try:
            with aws_call("ec2:DescribeLaunchTemplates"):
                templates = [
                    t
                    for page in ec2.get_paginator("describe_launch_templates").paginate(
                        Filters=[{"Name": f"tag:{ENV_TAG}", "Values": [self.env]}]
                    )
                    for t in page["LaunchTemplates"]
                ]
        except Denied as exc:
            return self._unlisted(("ec2-imdsv2",), exc, "launch templates")
        return [
            _guarded("ec2-imdsv2", t["LaunchTemplateName"], partial(_imdsv2, ec2, t))
            for t in sorted(templates, key=lambda t: t["LaunchTemplateName"])
        ]

    # --- Budgets -----------------------------------------------------------------------------------------

    def _budgets(self) -> list[Result]:
        # The name Guardrails gives the environment's budget (components/governance.py: <env>-monthly).
        wanted = f"{self.env}-monthly"
        # AWS Budgets is a global service; botocore resolves its endpoint from the partition.
        budgets = self.aws.client("budgets")
        try:
            with aws_call("budgets:ViewBudget"):  # the IAM action of DescribeBudgets (Budgets API reference)
                names = {
                    b["BudgetName"]
                    for page in budgets.get_paginator("describe_budgets").paginate(
                        AccountId=self.spec.account_id
                    )
                    for b in page.get("Budgets", [])
                }
        except Denied as exc:
            return [_not_checked("budget", wanted, exc)]
        if wanted in names:
            return [Result("budget", wanted, Status.PASS, "exists")]
        return [
            Result(
                "budget",
                wanted,
                Status.FAIL,
                "the environment's monthly budget is missing: cost overruns go unannounced",
                "run `pulumi up` to restore it (governance budget)",
            )
        ]

    # --- KMS ---------------------------------------------------------------------------------------------

    def _keys(self, region: str) -> list[Result]:
        try:
            arns = sorted(self._tagged("kms:key", region))
        except Denied as exc:
            return self._unlisted(("kms-rotation",), exc, f"keys in {region}")
        kms = self.aws.client("kms", region=region)
        results = []
        for arn in arns:
            try:
                results.append(_guarded("kms-rotation", arn, partial(_key_rotation, kms, arn)))
            except ClientError as exc:
                if not _gone(exc):
                    raise
        return results


# --- one function per rule -------------------------------------------------------------------------------


def _read(call: Callable[[], dict[str, Any]], permission: str, missing: str) -> dict[str, Any] | None:
    try:
        with aws_call(permission):
            return call()
    except ClientError as exc:
        if error_code(exc) == missing:
            return None
        raise


def _bucket_encryption(s3: Any, bucket: str, found: _Buckets) -> Result:
    config = _read(
        lambda: s3.get_bucket_encryption(Bucket=bucket),
        "s3:GetEncryptionConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    rules = (config or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithm = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") if rules else None
    if algorithm in KMS_ALGORITHMS:
        return Result("s3-encryption", bucket, Status.PASS, algorithm or "")
    if sse_s3_allowed(algorithm, bucket in found.log_targets):
        return Result(
            "s3-encryption",
            bucket,
            Status.PASS,
            "exception: SSE-S3 on a bucket that receives S3 server access logs (they cannot be delivered to SSE-KMS)",
        )
    if sse_s3_allowed(algorithm, True) and found.logging_unknown:
        return _not_checked(
            "s3-encryption",
            bucket,
            found.logging_unknown[0],
            "SSE-S3 is allowed only on access-log buckets, and which buckets receive logs could not be read",
        )
    return Result(
        "s3-encryption",
        bucket,
        Status.FAIL,
        f"default encryption is {algorithm or 'missing'}, not SSE-KMS",
        "run `pulumi up` to restore the bucket's SSE-KMS configuration with the data key",
    )


def _bucket_versioning(s3: Any, bucket: str) -> Result:
    with aws_call("s3:GetBucketVersioning"):
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    if status == "Enabled":
        return Result("s3-versioning", bucket, Status.PASS, "Enabled")
    return Result(
        "s3-versioning",
        bucket,
        Status.FAIL,
        f"versioning is {status}",
        f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
    )


def _bucket_public_access(s3: Any, bucket: str) -> Result:
    config = _read(
        lambda: s3.get_public_access_block(Bucket=bucket),
        "s3:GetBucketPublicAccessBlock",
        "NoSuchPublicAccessBlockConfiguration",
    )
    flags = (config or {}).get("PublicAccessBlockConfiguration", {})
    off = [name for name in PUBLIC_ACCESS_FLAGS if not flags.get(name, False)]
    if not off:
        return Result("s3-public-access-block", bucket, Status.PASS, "all four flags on")
    return Result(
        "s3-public-access-block",
        bucket,
        Status.FAIL,
        f"off: {', '.join(off)}",
        f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
        + ",".join(f"{name}=true" for name in PUBLIC_ACCESS_FLAGS),
    )


def _public_grant(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
    return statement.get("Effect") == "Allow" and everyone and not statement.get("Condition")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _bucket_policy(s3: Any, bucket: str) -> Result:
    policy = _read(lambda: s3.get_bucket_policy(Bucket=bucket), "s3:GetBucketPolicy", "NoSuchBucketPolicy")
    statements = policy_statements((policy or {}).get("Policy"))
    problems = []
    if not denies_insecure_transport(statements):
        problems.append("no statement denies requests without TLS" if policy else "the bucket has no policy")
    public = [s.get("Sid", "(no Sid)") for s in statements if _public_grant(s)]
    if public:
        problems.append(f"statements {', '.join(public)} allow everyone without a condition")
    if not problems:
        return Result("s3-policy", bucket, Status.PASS, "TLS-only, nothing public")
    return Result(
        "s3-policy",
        bucket,
        Status.FAIL,
        "; ".join(problems),
        "run `pulumi up` to restore the bucket policy the stack declares",
    )


def _cache_prefixes(ecr: Any) -> list[str] | Denied:
    """The repository prefixes of the registry's pull-through cache rules."""
    try:
        with aws_call("ecr:DescribePullThroughCacheRules"):
            return [
                rule["ecrRepositoryPrefix"]
                for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate()
                for rule in page["pullThroughCacheRules"]
            ]
    except Denied as exc:
        return exc


def _registry_scanning(ecr: Any) -> dict[str, Any] | Denied:
    try:
        with aws_call("ecr:GetRegistryScanningConfiguration"):
            return dict(ecr.get_registry_scanning_configuration().get("scanningConfiguration", {}))
    except Denied as exc:
        return exc


def _mutability(repo: dict[str, Any], name: str, caches: list[str] | Denied) -> Result:
    mutability = repo.get("imageTagMutability", "MUTABLE")
    if tags_immutable(mutability):
        return Result("ecr-immutable-tags", name, Status.PASS, mutability)
    if isinstance(caches, Denied):
        return _not_checked(
            "ecr-immutable-tags", name, caches, f"{mutability}; whether it is a pull-through cache is unknown"
        )
    cache = pull_through_cache_repository(repo["repositoryName"], caches)
    if cache is not None:
        return Result(
            "ecr-immutable-tags",
            name,
            Status.PASS,
            f"exception: pull-through cache repository ({cache}/) is {mutability} on purpose",
        )
    excluded = [f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters", [])]
    detail = (
        f"tags matching {', '.join(excluded)} are excluded from IMMUTABLE and can be overwritten"
        if mutability == "IMMUTABLE_WITH_EXCLUSION"
        else f"tags are {mutability}: a pushed tag can be overwritten"
    )
    return Result(
        "ecr-immutable-tags",
        name,
        Status.FAIL,
        detail,
        f"aws ecr put-image-tag-mutability --repository-name {repo['repositoryName']} --image-tag-mutability IMMUTABLE",
    )


def _secrets_encryption(name: str, cluster: dict[str, Any]) -> Result:
    keys = [
        entry.get("provider", {}).get("keyArn")
        for entry in cluster.get("encryptionConfig", [])
        if "secrets" in entry.get("resources", [])
    ]
    keys = [k for k in keys if k]
    if keys:
        return Result("eks-secrets-encryption", name, Status.PASS, f"secrets encrypted with {keys[0]}")
    return Result(
        "eks-secrets-encryption",
        name,
        Status.FAIL,
        "Kubernetes secrets are not envelope-encrypted with a KMS key",
        f"aws eks associate-encryption-config --cluster-name {name} --encryption-config "
        '\'[{"resources":["secrets"],"provider":{"keyArn":"<cluster key ARN>"}}]\'',
    )


def _imdsv2(ec2: Any, template: dict[str, Any]) -> Result:
    name = template["LaunchTemplateName"]
    with aws_call("ec2:DescribeLaunchTemplateVersions"):
        versions = [
            v
            for page in ec2.get_paginator("describe_launch_template_versions").paginate(
                LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default", "$Latest"]
            )
            for v in page["LaunchTemplateVersions"]
        ]
    optional = sorted(
        {
            str(v["VersionNumber"])
            for v in versions
            if v.get("LaunchTemplateData", {}).get("MetadataOptions", {}).get("HttpTokens") != "required"
        }
    )
    if not optional:
        return Result("ec2-imdsv2", name, Status.PASS, "http tokens required ($Default and $Latest)")
    return Result(
        "ec2-imdsv2",
        name,
        Status.FAIL,
        f"version {', '.join(optional)} allows IMDSv1 (http tokens not required): pods may reach node credentials",
        "run `pulumi up` to restore the launch template's metadata options",
    )


def _logging(name: str, cluster: dict[str, Any]) -> Result:
    enabled = {
        kind
        for setup in cluster.get("logging", {}).get("clusterLogging", [])
        if setup.get("enabled")
        for kind in setup.get("types", [])
    }
    missing = [kind for kind in REQUIRED_LOG_TYPES if kind not in enabled]
    logging = {"clusterLogging": [{"types": missing, "enabled": True}]}
    if not missing:
        return Result("eks-logging", name, Status.PASS, "api, audit and authenticator logs on")
    return Result(
        "eks-logging",
        name,
        Status.FAIL,
        f"control-plane logging off for {', '.join(missing)}",
        f"aws eks update-cluster-config --name {name} --logging '{json.dumps(logging)}'",
    )


def _key_rotation(kms: Any, arn: str) -> Result:
    with aws_call("kms:DescribeKey"):
        metadata = kms.describe_key(KeyId=arn)["KeyMetadata"]
    if metadata.get("KeyManager") == "AWS":
        return Result("kms-rotation", arn, Status.PASS, "AWS-managed key, rotated by AWS")
    if metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return Result(
            "kms-rotation", arn, Status.PASS, f"{metadata['KeySpec']} keys cannot rotate automatically"
        )
    origin = metadata.get("Origin", "AWS_KMS")
    if origin != "AWS_KMS":
        # KMS API, GetKeyRotationStatus: "You cannot enable automatic rotation of ... KMS keys with imported key
        # material, or KMS keys in a custom key store" (Origin EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE).
        return Result(
            "kms-rotation",
            arn,
            Status.WARN,
            f"origin {origin}: KMS cannot rotate it automatically; rotate it by hand (the stack creates none)",
        )
    if metadata.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
        return Result("kms-rotation", arn, Status.WARN, f"key is {metadata['KeyState']}")
    with aws_call("kms:GetKeyRotationStatus"):
        enabled = kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"]
    if enabled:
        return Result("kms-rotation", arn, Status.PASS, "rotation on")
    return Result(
        "kms-rotation",
        arn,
        Status.FAIL,
        "automatic rotation is off",
        f"aws kms enable-key-rotation --key-id {metadata['KeyId']}",
    )
