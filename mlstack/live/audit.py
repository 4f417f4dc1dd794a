"""Audit: read the live account and report drift from the guardrails the stack deployed.

Only resources tagged ``environment=<env>`` are audited, so other environments and hand-made resources in the
same account stay out of the report. Each rule is one function returning a :class:`Result` per resource:
PASS when compliant, FAIL on drift, NOT_CHECKED when the read was denied (never PASS).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from components.environment import Environment
from mlstack.live.aws import Aws, Denied, LiveError, aws_call, error_code
from mlstack.live.bootstrap import (
    KMS_ALGORITHMS,
    PUBLIC_ACCESS_FLAGS,
    denies_insecure_transport,
    policy_statements,
)
from mlstack.live.report import Report, Result, Rule, Status
from mlstack.spec import PlatformSpec

RULES = (
    Rule("s3-encryption", "Buckets encrypt new objects with SSE-KMS by default"),
    Rule("s3-versioning", "Buckets keep versions"),
    Rule("s3-public-access-block", "Buckets block public access with all four flags"),
    Rule("s3-policy", "Bucket policies deny requests without TLS and grant nothing to everyone"),
    Rule("ecr-immutable-tags", "Repositories refuse to overwrite tags"),
    Rule("ecr-scanning", "Images are scanned on push (repository setting or enhanced registry scanning)"),
    Rule("iam-boundary", "Roles carry the environment's permission boundary"),
    Rule("eks-endpoint", "The cluster endpoint stays private, or public only to the declared CIDRs"),
    Rule("eks-logging", "Control-plane logging of api, audit and authenticator is on"),
    Rule("kms-rotation", "Customer-managed keys rotate"),
)
ENV_TAG = "environment"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")

Check = Callable[[], Result]


def _guarded(rule: str, subject: str, check: Check) -> Result:
    """Run one rule on one resource; a denied read makes it NOT_CHECKED with the permission it lacked."""
    try:
        return check()
    except Denied as exc:
        return Result(
            rule, subject, Status.NOT_CHECKED, f"{exc.permission} denied", f"grant {exc.permission}"
        )


def _tags(pairs: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p[value] for p in pairs}


@dataclass(frozen=True)
class Audit:
    """The inputs of one audit run: the account's clients and the environment's spec."""

    aws: Aws
    spec: PlatformSpec

    @property
    def env(self) -> str:
        return self.spec.environment

    def run(self) -> Report:
        account = self.aws.account_id()
        if account != self.spec.account_id:
            raise LiveError(
                f"credentials are for account {account}, the stack file of {self.env} wants {self.spec.account_id}; "
                "switch profile (AWS_PROFILE=...) and run again"
            )
        results: list[Result] = []
        for discover in (self._buckets, self._repositories, self._roles, self._clusters, self._keys):
            results += discover()
        return Report(
            tool="audit",
            title=f"audit {self.env} (account {account}, {self.aws.region}): resources tagged {ENV_TAG}={self.env}",
            rules=RULES,
            results=tuple(results),
        )

    def _unlisted(self, rules: tuple[str, ...], exc: Denied, what: str) -> list[Result]:
        message = f"{exc.permission} denied, so {what} could not be listed"
        return [Result(r, what, Status.NOT_CHECKED, message, f"grant {exc.permission}") for r in rules]

    # --- discovery by tag --------------------------------------------------------------------------------

    def _tagged(self, resource_type: str) -> Iterator[str]:
        paginator = self.aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
        with aws_call("tag:GetResources"):
            for page in paginator.paginate(
                TagFilters=[{"Key": ENV_TAG, "Values": [self.env]}], ResourceTypeFilters=[resource_type]
            ):
                for mapping in page["ResourceTagMappingList"]:
                    yield mapping["ResourceARN"]

    # --- S3 ----------------------------------------------------------------------------------------------

    def _buckets(self) -> list[Result]:
        rules = ("s3-encryption", "s3-versioning", "s3-public-access-block", "s3-policy")
        try:
            buckets = sorted(arn.rsplit(":", 1)[-1] for arn in self._tagged("s3:bucket"))
        except Denied as exc:
            return self._unlisted(rules, exc, "buckets")
        s3 = self.aws.client("s3")
        results = []
        for bucket in buckets:
            results += [
                _guarded("s3-encryption", bucket, partial(_bucket_encryption, s3, bucket)),
                _guarded("s3-versioning", bucket, partial(_bucket_versioning, s3, bucket)),
                _guarded("s3-public-access-block", bucket, partial(_bucket_public_access, s3, bucket)),
                _guarded("s3-policy", bucket, partial(_bucket_policy, s3, bucket)),
            ]
        return results

    # --- ECR ---------------------------------------------------------------------------------------------

    def _repositories(self) -> list[Result]:
        rules = ("ecr-immutable-tags", "ecr-scanning")
        ecr = self.aws.client("ecr")
        try:
            with aws_call("ecr:DescribeRepositories"):
                repositories = [
                    repo
                    for page in ecr.get_paginator("describe_repositories").paginate()
                    for repo in page["repositories"]
                ]
        except Denied as exc:
            return self._unlisted(rules, exc, "repositories")
        results: list[Result] = []
        registry_scans: bool | Denied | None = None
        for repo in repositories:
            name = repo["repositoryName"]
            try:
                with aws_call("ecr:ListTagsForResource"):
                    tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
            except Denied as exc:
                results += [
                    Result(r, name, Status.NOT_CHECKED, f"{exc.permission} denied", f"grant {exc.permission}")
                    for r in rules
                ]
                continue
            if tags.get(ENV_TAG) != self.env:
                continue
            mutability = repo.get("imageTagMutability", "MUTABLE")
            if mutability.startswith("IMMUTABLE"):
                results.append(Result("ecr-immutable-tags", name, Status.PASS, mutability))
            else:
                results.append(
                    Result(
                        "ecr-immutable-tags",
                        name,
                        Status.FAIL,
                        "tags are mutable: a pushed tag can be overwritten",
                        f"aws ecr put-image-tag-mutability --repository-name {name} --image-tag-mutability IMMUTABLE",
                    )
                )
            if repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
                results.append(Result("ecr-scanning", name, Status.PASS, "scan on push"))
                continue
            if registry_scans is None:
                registry_scans = _registry_enhanced_scanning(ecr)
            if isinstance(registry_scans, Denied):
                results.append(
                    Result(
                        "ecr-scanning",
                        name,
                        Status.NOT_CHECKED,
                        f"scan on push is off and {registry_scans.permission} denied",
                        f"grant {registry_scans.permission}",
                    )
                )
            elif registry_scans:
                results.append(Result("ecr-scanning", name, Status.PASS, "enhanced registry scanning"))
            else:
                results.append(
                    Result(
                        "ecr-scanning",
                        name,
                        Status.FAIL,
                        "scan on push is off and the registry has no enhanced scanning",
                        f"aws ecr put-image-scanning-configuration --repository-name {name} "
                        "--image-scanning-configuration scanOnPush=true",
                    )
                )
        return results

    # --- IAM ---------------------------------------------------------------------------------------------

    def _roles(self) -> list[Result]:
        iam = self.aws.client("iam")
        env = Environment.from_spec(self.spec)
        # The name Guardrails gives the boundary (components/governance.py).
        boundary = env.arn("iam", f"policy/{env.resource_name('permission-boundary')}", regional=False)
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
                results.append(
                    Result(
                        "iam-boundary",
                        name,
                        Status.NOT_CHECKED,
                        f"{exc.permission} denied",
                        f"grant {exc.permission}",
                    )
                )
                continue
            if _tags(role.get("Tags", [])).get(ENV_TAG) != self.env:
                continue
            attached = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            if attached == boundary:
                results.append(Result("iam-boundary", name, Status.PASS, "boundary attached"))
            else:
                results.append(
                    Result(
                        "iam-boundary",
                        name,
                        Status.FAIL,
                        f"permission boundary is {attached or 'missing'}, not {boundary}",
                        f"aws iam put-role-permissions-boundary --role-name {name} --permissions-boundary {boundary}",
                    )
                )
        return results

    # --- EKS ---------------------------------------------------------------------------------------------

    def _clusters(self) -> list[Result]:
        rules = ("eks-endpoint", "eks-logging")
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
                results += [
                    Result(r, name, Status.NOT_CHECKED, f"{exc.permission} denied", f"grant {exc.permission}")
                    for r in rules
                ]
                continue
            if cluster.get("tags", {}).get(ENV_TAG) != self.env:
                continue
            results += [self._endpoint(name, cluster), _logging(name, cluster)]
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

    # --- KMS ---------------------------------------------------------------------------------------------

    def _keys(self) -> list[Result]:
        try:
            arns = sorted(self._tagged("kms:key"))
        except Denied as exc:
            return self._unlisted(("kms-rotation",), exc, "keys")
        kms = self.aws.client("kms")
        return [_guarded("kms-rotation", arn, partial(_key_rotation, kms, arn)) for arn in arns]


# --- one function per rule -------------------------------------------------------------------------------


def _read(call: Callable[[], dict[str, Any]], permission: str, missing: str) -> dict[str, Any] | None:
    try:
        with aws_call(permission):
            return call()
    except ClientError as exc:
        if error_code(exc) == missing:
            return None
        raise


def _bucket_encryption(s3: Any, bucket: str) -> Result:
    config = _read(
        lambda: s3.get_bucket_encryption(Bucket=bucket),
        "s3:GetEncryptionConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    rules = (config or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithm = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") if rules else None
    if algorithm in KMS_ALGORITHMS:
        return Result("s3-encryption", bucket, Status.PASS, algorithm or "")
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


def _registry_enhanced_scanning(ecr: Any) -> bool | Denied:
    try:
        with aws_call("ecr:GetRegistryScanningConfiguration"):
            config = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    except Denied as exc:
        return exc
    return config.get("scanType") == "ENHANCED" and bool(config.get("rules"))


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
