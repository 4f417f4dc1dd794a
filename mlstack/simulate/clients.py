"""What the platform's S3 clients actually send, evaluated against the bucket policies, IAM and KMS.

Each client is modelled from its source at the pinned version:

- **Argo Workflows' S3 artifact driver** (argoproj/argo-workflows@v4.0.6 ``workflow/artifacts/s3/s3.go``
  ``buildServerSideEnc``): with ``encryptionOptions.enableEncryption`` and no ``kmsKeyId`` it passes
  ``encrypt.NewSSE()``, which minio-go v7.0.100 (``pkg/encrypt/server-side.go``) marshals as
  ``X-Amz-Server-Side-Encryption: AES256``; with a ``kmsKeyId`` it sends ``aws:kms`` and
  ``X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id``; without ``enableEncryption`` no header. ``insecure: false``
  means HTTPS.
- **Metaflow** (Netflix/metaflow 2.19.38 ``metaflow/plugins/datatools/s3/s3.py:1213-1214`` and ``s3op.py:351``):
  ``METAFLOW_S3_SERVER_SIDE_ENCRYPTION`` becomes boto3's ``ServerSideEncryption`` and nothing else; no
  ``SSEKMSKeyId`` is ever sent (the name appears nowhere in the package).
- **The AWS CLI** (``aws s3 cp|sync``): the SSE headers come only from ``--sse`` (``AES256`` when given without
  a value) and ``--sse-kms-key-id`` (AWS CLI command reference, ``aws s3 cp``); without them no header is sent
  and the bucket's default encryption applies.

Where the object lands: a PUT with ``aws:kms`` and no key id is encrypted with the AWS managed ``aws/s3`` key
(S3 API reference, PutObject ``x-amz-server-side-encryption-aws-kms-key-id``), with ``AES256`` under SSE-S3, and
without a header under the bucket default (S3 user guide, bucket-encryption.html).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from mlstack.simulate.access import s3_kms_context
from mlstack.simulate.framework import SimResult, World, derived, sim_check, unique
from mlstack.simulate.iam import Decision, Principal, Request, access

ARGO = "argoproj/argo-workflows@v4.0.6:workflow/artifacts/s3/s3.go buildServerSideEnc; minio-go@v7.0.100:pkg/encrypt/server-side.go"
METAFLOW = (
    "Netflix/metaflow@2.19.38:metaflow/plugins/datatools/s3/s3.py:1213-1214 (ServerSideEncryption only)"
)
AWS_CLI = "AWS CLI command reference, aws s3 cp/sync: --sse and --sse-kms-key-id (no flag: no header)"
AWS_MANAGED_S3_KEY = "the AWS managed key aws/s3"

_SSE = "s3:x-amz-server-side-encryption"
_SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"


@dataclass(frozen=True)
class ClientRequest:
    """One object request a client makes: who, what, with which headers, and which plan resource configures it."""

    client: str
    principal: Principal
    action: str  # s3:PutObject or s3:GetObject
    bucket_arn: str
    key: str
    sse: str | None  # the x-amz-server-side-encryption header, None when not sent
    sse_key: str | None  # the key-id header, None when not sent
    secure: bool
    configured_by: str | None  # URN to blame
    source: str

    def request(self) -> Request:
        ctx: dict[str, tuple[str, ...]] = {"aws:SecureTransport": ("true" if self.secure else "false",)}
        if self.action == "s3:PutObject":
            ctx[_SSE] = (self.sse,) if self.sse else ()
            ctx[_SSE_KEY] = (self.sse_key,) if self.sse_key else ()
        return Request(self.action, f"{self.bucket_arn}/{self.key}", ctx)

    def landing_key(self, default: tuple[str, str]) -> str:
        """The key (ARN, ``aws/s3`` or ``SSE-S3``) the object is encrypted with."""
        if self.sse == "aws:kms":
            return self.sse_key or AWS_MANAGED_S3_KEY
        if self.sse == "AES256":
            return "SSE-S3"
        algorithm, key = default
        if algorithm == "aws:kms":
            return key or AWS_MANAGED_S3_KEY
        return "SSE-S3"


def _pod_roles(world: World) -> dict[tuple[str, str], Principal]:
    """(namespace, service account) -> role, from the plan's Pod Identity associations."""
    acc = access(world)
    by_arn = {p.arn: p for p in acc.roles.values()}
    roles: dict[tuple[str, str], Principal] = {}
    for r in world.plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        role = by_arn.get(str(r.inputs.get("roleArn", "")))
        if role is not None:
            roles[(str(r.inputs.get("namespace", "")), str(r.inputs.get("serviceAccount", "")))] = role
    return roles


def _bucket_arns(world: World) -> dict[str, str]:
    return {
        str(r.inputs.get("bucket", "")): str((r.outputs or {}).get("arn", ""))
        for r in world.plan.by_type("aws:s3/bucket:Bucket")
    }


def _argo_requests(world: World) -> Iterator[ClientRequest | str]:
    buckets = _bucket_arns(world)
    roles = _pod_roles(world)
    teams = [t.name for t in getattr(world.spec, "teams", ())]
    for release in world.plan.by_type("kubernetes:helm.sh/v3:Release"):
        if str(release.inputs.get("chart", "")).rsplit("/", 1)[-1] != "argo-workflows":
            continue
        values: Mapping[str, Any] = release.inputs.get("values") or {}
        s3 = (values.get("artifactRepository") or {}).get("s3")
        if not s3:
            continue
        bucket = str(s3.get("bucket", ""))
        enc = s3.get("encryptionOptions") or {}
        enabled = bool(enc.get("enableEncryption"))
        kms_key = str(enc.get("kmsKeyId") or "") or None
        sse = ("aws:kms" if kms_key else "AES256") if enabled else None
        key_format = str(s3.get("keyFormat") or "{{workflow.namespace}}/{{workflow.name}}/{{pod.name}}")
        if bucket not in buckets:
            yield f"cannot evaluate the Argo artifact repository: bucket '{bucket}' is not a bucket of the plan"
            continue
        for team in teams:
            role = roles.get((team, "workflows"))
            if role is None:
                continue
            key = (
                key_format.replace("{{workflow.namespace}}", team)
                .replace("{{workflow.name}}", "wf")
                .replace("{{pod.name}}", "wf-step")
                + "/main.log"
            )
            for action in ("s3:PutObject", "s3:GetObject"):
                yield ClientRequest(
                    "Argo artifact driver",
                    role,
                    action,
                    buckets[bucket],
                    key,
                    sse if action == "s3:PutObject" else None,
                    kms_key if action == "s3:PutObject" else None,
                    not bool(s3.get("insecure")),
                    release.urn,
                    ARGO,
                )


def _metaflow_requests(world: World) -> Iterator[ClientRequest | str]:
    buckets = _bucket_arns(world)
    roles = _pod_roles(world)
    for component in world.plan.by_type("mlstack:orchestrator:Orchestrator"):
        configs = (component.outputs or {}).get("metaflow_config") or {}
        for team, config in sorted(configs.items()):
            root = str(config.get("METAFLOW_DATASTORE_SYSROOT_S3", ""))
            match = re.match(r"s3://([^/]+)/?(.*)", root)
            role = roles.get((team, str(config.get("METAFLOW_KUBERNETES_SERVICE_ACCOUNT", ""))))
            if not match or role is None:
                continue
            bucket, prefix = match.groups()
            if bucket not in buckets:
                yield f"cannot evaluate Metaflow of team {team}: bucket '{bucket}' is not a bucket of the plan"
                continue
            sse = config.get("METAFLOW_S3_SERVER_SIDE_ENCRYPTION") or None
            for action in ("s3:PutObject", "s3:GetObject"):
                yield ClientRequest(
                    f"Metaflow (team {team})",
                    role,
                    action,
                    buckets[bucket],
                    f"{prefix.rstrip('/')}/Flow/data/ab/abcdef",
                    str(sse) if sse and action == "s3:PutObject" else None,
                    None,
                    True,
                    component.urn,
                    METAFLOW,
                )


_CLI = re.compile(r"\baws\s+s3\s+(cp|sync)\s+(.*?)(?:$|[;&|\n])", re.DOTALL)


# `aws s3 cp|sync` options that take no value (AWS CLI command reference); every other option takes one, and
# `--sse` takes one only when it is an algorithm (its value is optional: alone it means AES256).
_CLI_SWITCHES = {
    "--recursive",
    "--only-show-errors",
    "--no-progress",
    "--quiet",
    "--dryrun",
    "--follow-symlinks",
    "--no-follow-symlinks",
    "--delete",
    "--exact-timestamps",
    "--size-only",
    "--no-guess-mime-type",
    "--force-glacier-transfer",
    "--ignore-glacier-warnings",
    "--no-overwrite",
}
_SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}


def _cli_arguments(words: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """Positional paths and options of an `aws s3 cp|sync` command line."""
    paths: list[str] = []
    flags: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            paths.append(word)
        elif "=" in word:
            name, value = word.split("=", 1)
            flags[name] = value
        elif word in _CLI_SWITCHES:
            flags[word] = None
        elif word == "--sse":
            following = words[i + 1] if i + 1 < len(words) else ""
            flags[word] = following if following in _SSE_ALGORITHMS else None
            i += 1 if following in _SSE_ALGORITHMS else 0
        else:
            flags[word] = words[i + 1] if i + 1 < len(words) else None
            i += 1
        i += 1
    return paths, flags


def _expand(text: str, env: Mapping[str, str]) -> str | None:
    """``$VAR`` / ``${VAR}`` from the container's literal env; None when one cannot be resolved."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1) or match.group(2)
        if name in env:
            return env[name]
        missing = True
        return match.group(0)

    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)
    return None if missing else out


def _cli_requests(world: World) -> Iterator[ClientRequest | str]:
    from mlstack.simulate.objects import containers, workloads

    buckets = _bucket_arns(world)
    roles = _pod_roles(world)
    for obj, pod in workloads(world):
        account = str(pod.get("serviceAccountName", "default"))
        role = roles.get((obj.namespace, account))
        for container in containers(pod):
            text = " ".join(
                str(x) for x in [*(container.get("command") or []), *(container.get("args") or [])]
            )
            env = {
                str(e.get("name")): str(e.get("value")) for e in container.get("env") or [] if "value" in e
            }
            for match in _CLI.finditer(text):
                try:
                    words = shlex.split(match.group(2))
                except ValueError:
                    words = match.group(2).split()
                paths, flags = _cli_arguments(words)
                where = f"{obj.label} container '{container.get('name')}'"
                if role is None:
                    yield f"cannot evaluate `aws s3 {match.group(1)}` in {where}: no Pod Identity role for {obj.namespace}/{account}"
                    continue
                for index, path in enumerate(paths[:2]):
                    if not path.startswith("s3://"):
                        continue
                    resolved = _expand(path, env)
                    if resolved is None:
                        yield f"cannot evaluate `aws s3 {match.group(1)}` in {where}: {path} depends on a value set at run time"
                        continue
                    bucket, _, key = resolved[5:].partition("/")
                    if bucket not in buckets:
                        continue
                    upload = index == 1
                    # `--sse` without a value means AES256 (aws s3 cp reference); no flag, no header.
                    sse = (flags["--sse"] or "AES256") if upload and "--sse" in flags else None
                    yield ClientRequest(
                        f"AWS CLI in {where}",
                        role,
                        "s3:PutObject" if upload else "s3:GetObject",
                        buckets[bucket],
                        (key.rstrip("/") + "/object") if key else "object",
                        sse,
                        flags.get("--sse-kms-key-id") if upload else None,
                        True,
                        obj.urn,
                        AWS_CLI,
                    )


@derived
def client_requests(world: World) -> list[ClientRequest | str]:
    """Every modelled client request of the plan; a string is something that cannot be evaluated."""
    return [*_argo_requests(world), *_metaflow_requests(world), *_cli_requests(world)]


_S3_KMS = {
    "s3:PutObject": "kms:GenerateDataKey",
    "s3:GetObject": "kms:Decrypt",
}


def _kms_request(world: World, request: ClientRequest, key: str) -> Request:
    acc = access(world)
    region = acc.key_regions.get(key, acc.region)
    return Request(_S3_KMS[request.action], key, s3_kms_context(region, acc.account, request.bucket_arn))


@sim_check(
    "MLS-SIM-CLIENT-001",
    title="What each S3 client sends is allowed by the bucket policy, IAM and the bucket's key",
    why=(
        "A bucket policy that denies the encryption headers a client actually sends, or a key the client's "
        "role cannot use through S3, fails every upload or download of that client at run time"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Configure the client to send what the bucket policy admits (for Argo: encryptionOptions.kmsKeyId, or "
        "no encryptionOptions so that the bucket default applies), or fix the policy the message names"
    ),
    subjects=("kubernetes:helm.sh/v3:Release", "aws:s3/bucketPolicy:BucketPolicy"),
)
def client_requests_allowed(world: World) -> SimResult:
    acc = access(world)
    findings: list[tuple[str, str | None]] = []
    for item in client_requests(world):
        if isinstance(item, str):
            continue
        verdict = acc.check(item.principal, item.request())
        headers = _headers(item)
        if verdict.decision in (Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY):
            findings.append(
                (
                    f"{item.client}: {item.action} s3://{item.bucket_arn.rsplit(':', 1)[-1]}/{item.key} as "
                    f"{item.principal.name}{headers} is {verdict.decision.value}: {verdict.reason}. "
                    f"Client behaviour: {item.source}",
                    item.configured_by,
                )
            )
            continue
        key = item.landing_key(acc.bucket_encryption.get(item.bucket_arn, ("", "")))
        if key in acc.key_arns and verdict.decision is Decision.ALLOW:
            kms = acc.check(item.principal, _kms_request(world, item, key))
            if kms.decision in (Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY):
                findings.append(
                    (
                        f"{item.client}: {item.action} on {item.bucket_arn}/{item.key} needs "
                        f"{_S3_KMS[item.action]} on {key} through S3, which is {kms.decision.value}: {kms.reason}",
                        kms.culprit.urn if kms.culprit and kms.culprit.urn else item.principal.urn,
                    )
                )
    yield from unique(findings)


@sim_check(
    "MLS-SIM-CLIENT-002",
    title="Objects a client uploads are encrypted with the bucket's customer-managed key",
    why=(
        "An upload with `x-amz-server-side-encryption: aws:kms` and no key id is encrypted with the AWS "
        "managed aws/s3 key, outside the data key's policy, audit and rotation; a bucket policy that only "
        "denies *other* key ids (`...IfExists`) lets it through"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Make the client send no SSE header (the bucket default applies the CMK) or the CMK's id, and make the "
        "bucket policy deny `aws:kms` uploads without a key id (a Null condition on "
        "s3:x-amz-server-side-encryption-aws-kms-key-id)"
    ),
    subjects=("mlstack:orchestrator:Orchestrator", "aws:s3/bucketPolicy:BucketPolicy"),
)
def client_objects_use_the_bucket_key(world: World) -> SimResult:
    acc = access(world)
    findings: list[tuple[str, str | None]] = []
    for item in client_requests(world):
        if isinstance(item, str) or item.action != "s3:PutObject":
            continue
        algorithm, bucket_key = acc.bucket_encryption.get(item.bucket_arn, ("", ""))
        if algorithm != "aws:kms" or not bucket_key:
            continue
        landing = item.landing_key((algorithm, bucket_key))
        if landing == bucket_key:
            continue
        verdict = acc.check(item.principal, item.request())
        if verdict.decision is not Decision.ALLOW:
            continue  # refused uploads are MLS-SIM-CLIENT-001's
        findings.append(
            (
                f"{item.client}: PutObject to {item.bucket_arn}/{item.key}{_headers(item)} is allowed by the "
                f"bucket policy and lands under {landing}, not the bucket's key {bucket_key}. "
                f"Client behaviour: {item.source}",
                item.configured_by,
            )
        )
    yield from unique(findings)


@sim_check(
    "MLS-SIM-CLIENT-003",
    title="Every modelled S3 client can be evaluated",
    why="A client whose bucket, role or key is only known at run time is reported, not read as working",
    severity=Severity.LOW,
    remediation="Give the client a literal bucket and a Pod Identity role, or extend mlstack/simulate/clients.py",
    level=EnforcementLevel.ADVISORY,
)
def clients_evaluable(world: World) -> SimResult:
    acc = access(world)
    findings: list[tuple[str, str | None]] = []
    for item in client_requests(world):
        if isinstance(item, str):
            findings.append((item, None))
            continue
        verdict = acc.check(item.principal, item.request())
        if verdict.decision is Decision.UNKNOWN:
            findings.append(
                (f"cannot evaluate {item.client} {item.action}: {verdict.reason}", item.configured_by)
            )
    yield from unique(findings)


def _headers(item: ClientRequest) -> str:
    if item.action != "s3:PutObject":
        return ""
    if item.sse is None:
        return " with no encryption header"
    return f" with x-amz-server-side-encryption: {item.sse}" + (
        f" and key id {item.sse_key}" if item.sse_key else " and no key id"
    )
