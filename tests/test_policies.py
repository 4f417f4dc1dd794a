"""Every policy of the pack against real recorded plans: one compliant and one non-compliant case at least.

Cases live in CASES, keyed by policy id; test_every_policy_has_both_kinds_of_case fails for a policy
without them. Non-compliant cases mutate a real recorded resource (see tests/policy_cases.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.catalog import ALL_RULES, RULES_BY_ID
from tests.compute_policy_cases import COMPUTE_CASES
from tests.events_policy_cases import EVENTS_CASES
from tests.grafana_policy_cases import GRAFANA_CASES
from tests.policy_cases import (
    Case,
    bad,
    both,
    del_input,
    del_path,
    dropped,
    edit_json,
    edit_statements,
    ok,
    run_case,
    set_input,
    set_option,
    set_path,
    sibling_of,
    subjects_present,
)
from tests.volume_key_policy_cases import VOLUME_KEY_CASES

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
PROVIDER = "pulumi:providers:aws"
POLICY = "aws:iam/policy:Policy"
BUDGET = "aws:budgets/budget:Budget"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
S3_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPO = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPO_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
PULL_THROUGH = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
CREATION_TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
INGRESS_K8S = "kubernetes:networking.k8s.io/v1:Ingress"
QUOTA = "kubernetes:core/v1:ResourceQuota"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def _without_tag(tag: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["tags"].pop(tag)

    return edit


def _drop_statement(sid: str) -> Any:
    return lambda statements: [s for s in statements if s.get("Sid") != sid]


def _ceiling_allows_everything(statements: list[dict[str, Any]]) -> None:
    statements[0]["Action"] = "*"


def _ceiling_allows_not_action(statements: list[dict[str, Any]]) -> None:
    statements[0]["NotAction"] = statements[0].pop("Action")


def _open_key_policy(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "Anyone",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )


def _foreign_key_admin(statements: list[dict[str, Any]]) -> None:
    statements[0]["Principal"] = {"AWS": "arn:aws:iam::999988887777:root"}


def _conditioned_service_key_policy(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "AnyPrincipalOfTheAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "333344445555"}},
        }
    )


def _as_workload_policy(*, scoped: bool) -> Any:
    """The boundary document turned into an ordinary role policy: a copy-paste that keeps `s3:*` on '*'."""

    def apply(resource: Any) -> None:
        resource.inputs["name"] = "dev-trainer-data-access"
        if scoped:
            document = json.loads(resource.inputs["policy"])
            document["Statement"][0]["Resource"] = [
                "arn:aws:s3:::dev-datasets",
                "arn:aws:s3:::dev-datasets/*",
            ]
            resource.inputs["policy"] = json.dumps(document)

    return apply


def _silent_notifications(resource: Any) -> None:
    for notification in resource.inputs["notifications"]:
        notification.pop("subscriberEmailAddresses", None)
        # The platform's alert topic is a subscriber too (components.observability.Alerts).
        notification.pop("subscriberSnsTopicArns", None)


def _only_actual_notifications(resource: Any) -> None:
    resource.inputs["notifications"] = [
        n for n in resource.inputs["notifications"] if n["notificationType"] != "FORECASTED"
    ]


def _budget_for(environment: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["costFilters"] = [
            {"name": "TagKeyValue", "values": [f"user:environment${environment}"]}
        ]

    return apply


def _trust_anyone(statements: list[dict[str, Any]]) -> None:
    statements[0]["Principal"] = {"AWS": "*"}


def _pod_identity_without_condition(statements: list[dict[str, Any]]) -> None:
    statements[0].pop("Condition")


def _sse_s3(resource: Any) -> None:
    resource.inputs["rules"] = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]


def _allow_plain_http(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Sid") != "DenyInsecureTransport"]


def _public_read(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    )


# The shipped repository policies hold only Deny statements: each bad case adds the Allow it names.
def _public_pull(statements: list[dict[str, Any]]) -> None:
    statements.append({"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"})


def _foreign_pull(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "Foreign",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
            "Action": "ecr:BatchGetImage",
        }
    )


def _no_noncurrent_expiry(resource: Any) -> None:
    resource.inputs["rules"] = [r for r in resource.inputs["rules"] if "noncurrentVersionExpiration" not in r]


def _public_access_cidrs(cidrs: list[str], public: bool = True) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["vpcConfig"]["endpointPublicAccess"] = public
        resource.inputs["vpcConfig"]["publicAccessCidrs"] = cidrs

    return apply


def _log_types(*types: str) -> Any:
    return set_input("enabledClusterLogTypes", list(types))


def _one_subnet(resource: Any) -> None:
    resource.inputs["subnetIds"] = resource.inputs["subnetIds"][:1]


def _imds(tokens: str, hops: float) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["metadataOptions"].update({"httpTokens": tokens, "httpPutResponseHopLimit": hops})

    return apply


def _unencrypted_root(resource: Any) -> None:
    resource.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] = "false"


def _storage_parameter(key: str, value: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["parameters"][key] = value

    return apply


def _pool_spec(resource: Any) -> dict[str, Any]:
    return resource.inputs["spec"]["template"]["spec"]


def _untainted(resource: Any) -> None:
    _pool_spec(resource)["taints"] = []


def _unlimited(resource: Any) -> None:
    resource.inputs["spec"].pop("limits")


def _gpu_limit(value: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["spec"]["limits"]["nvidia.com/gpu"] = value

    return apply


def _any_instance(resource: Any) -> None:
    spec = _pool_spec(resource)
    spec["requirements"] = [r for r in spec["requirements"] if r["key"] != "node.kubernetes.io/instance-type"]


def _instance_types(*types: str) -> Any:
    def apply(resource: Any) -> None:
        for requirement in _pool_spec(resource)["requirements"]:
            if requirement["key"] == "node.kubernetes.io/instance-type":
                requirement["values"] = list(types)

    return apply


def _capacity(*values: str) -> Any:
    def apply(resource: Any) -> None:
        for requirement in _pool_spec(resource)["requirements"]:
            if requirement["key"] == "karpenter.sh/capacity-type":
                requirement["values"] = list(values)

    return apply


def _disruption(**changes: Any) -> Any:
    def apply(resource: Any) -> None:
        disruption = resource.inputs["spec"]["disruption"]
        for key, value in changes.items():
            if value is None:
                disruption.pop(key, None)
            else:
                disruption[key] = value

    return apply


def _node_class_ref(name: str) -> Any:
    def apply(resource: Any) -> None:
        _pool_spec(resource)["nodeClassRef"]["name"] = name

    return apply


def _node_class_metadata(**options: Any) -> Any:
    def apply(resource: Any) -> None:
        if not options:
            resource.inputs["spec"].pop("metadataOptions")
        else:
            resource.inputs["spec"]["metadataOptions"].update(options)

    return apply


def _node_class_volume(encrypted: Any) -> Any:
    def apply(resource: Any) -> None:
        if encrypted is None:
            resource.inputs["spec"].pop("blockDeviceMappings")
        else:
            resource.inputs["spec"]["blockDeviceMappings"][0]["ebs"]["encrypted"] = encrypted

    return apply


def _pod(resource: Any) -> dict[str, Any]:
    return resource.inputs["spec"]["template"]["spec"]


def _server(resource: Any) -> dict[str, Any]:
    return _pod(resource)["containers"][0]


def _image(image: str) -> Any:
    def apply(resource: Any) -> None:
        _server(resource)["image"] = image

    return apply


def _container_security(**changes: Any) -> Any:
    def apply(resource: Any) -> None:
        _server(resource)["securityContext"].update(changes)

    return apply


def _root_pod(resource: Any) -> None:
    for container in [*_pod(resource)["containers"], *_pod(resource).get("initContainers", [])]:
        container["securityContext"].pop("runAsNonRoot", None)
    _pod(resource)["securityContext"].pop("runAsNonRoot")


def _pod_field(key: str, value: Any) -> Any:
    def apply(resource: Any) -> None:
        _pod(resource)[key] = value

    return apply


def _no_memory_limit(resource: Any) -> None:
    _server(resource)["resources"]["limits"].pop("memory")


def _gpu_request(request: str, limit: str) -> Any:
    def apply(resource: Any) -> None:
        _server(resource)["resources"]["requests"]["nvidia.com/gpu"] = request
        _server(resource)["resources"]["limits"]["nvidia.com/gpu"] = limit

    return apply


def _service_type(kind: str, annotations: dict[str, str] | None = None) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["spec"]["type"] = kind
        if annotations is not None:
            resource.inputs["metadata"]["annotations"] = annotations

    return apply


def _quota_without(key: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["spec"]["hard"].pop(key)

    return apply


def _alb_scheme(scheme: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] = scheme

    return apply


CASES: dict[str, list[Case]] = {
    # environment
    "MLS-ENV-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no owner tag", PROVIDER, edit_json("defaultTags", _without_tag("owner"))),
        bad("prod", "no default tags", PROVIDER, del_input("defaultTags")),
    ],
    "MLS-ENV-002": [
        ok("dev"),
        ok("staging", "configured region", config={"MLS-ENV-002": {"allowedRegions": ["us-east-1"]}}),
        bad("dev", "unapproved region", PROVIDER, set_input("region", "ap-southeast-1")),
        Case(
            "prod",
            False,
            "region not in user config",
            config={"MLS-ENV-002": {"allowedRegions": ["eu-west-1"]}},
        ),
    ],
    "MLS-ENV-003": [
        ok("prod"),
        bad("prod", "dev account", PROVIDER, set_input("allowedAccountIds", '["111122223333"]')),
        bad("dev", "not pinned", PROVIDER, del_input("allowedAccountIds")),
    ],
    "MLS-ENV-004": [
        ok("dev"),
        bad("dev", "default provider", KEY, set_option(provider="")),
    ],
    "MLS-ENV-005": [
        ok("prod"),
        ok("dev", "extra tags", target_type=KEY, mutate=set_input("tags", {"purpose": "data"})),
        bad("prod", "relabelled cost", KEY, set_input("tags", {"cost-center": "someone-else"})),
    ],
    "MLS-ENV-006": [
        ok("prod"),
        ok("staging"),
        ok("dev", "dev may leave keys unprotected"),
        bad("prod", "unprotected key", KEY, set_option(protect=False), name="data"),
        bad("staging", "unprotected key", KEY, set_option(protect=False), name="registry"),
    ],
    # iam
    "MLS-IAM-003": [
        ok("dev"),
        bad("dev", "detachable", POLICY, edit_statements("policy", _drop_statement("BoundaryStaysAttached"))),
        bad(
            "prod",
            "unbounded roles",
            POLICY,
            edit_statements("policy", _drop_statement("NewRolesCarryTheBoundary")),
        ),
    ],
    "MLS-IAM-004": [
        ok("dev"),
        bad("dev", "action star", POLICY, edit_statements("policy", _ceiling_allows_everything)),
        bad("prod", "allow not action", POLICY, edit_statements("policy", _ceiling_allows_not_action)),
    ],
    "MLS-IAM-005": [
        ok("dev", "boundary is exempt"),
        ok("dev", "scoped copy", target_type=POLICY, mutate=_as_workload_policy(scoped=True)),
        bad("dev", "s3 star on star", POLICY, _as_workload_policy(scoped=False)),
    ],
    # keys
    "MLS-KMS-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no rotation", KEY, set_input("enableKeyRotation", False)),
        bad("prod", "rotation unset", KEY, del_input("enableKeyRotation"), name="logs"),
    ],
    "MLS-KMS-002": [
        ok("prod"),
        ok("dev", "dev may use 7 days"),
        bad("prod", "7 day window", KEY, set_input("deletionWindowInDays", 7.0)),
        bad("staging", "default window", KEY, del_input("deletionWindowInDays")),
    ],
    "MLS-KMS-003": [
        ok("dev"),
        ok(
            "prod",
            "star with condition",
            target_type=KEY,
            mutate=edit_statements("policy", _conditioned_service_key_policy),
        ),
        bad("dev", "anyone decrypts", KEY, edit_statements("policy", _open_key_policy)),
        bad("prod", "foreign admin", KEY, edit_statements("policy", _foreign_key_admin)),
    ],
    "MLS-KMS-004": [
        ok("dev"),
        dropped("dev", "data key alias removed", ALIAS, name="data"),
    ],
    # cost
    "MLS-COST-001": [
        ok("dev"),
        ok("prod"),
        dropped("dev", "no budget", BUDGET),
        bad("staging", "another environment's budget", BUDGET, _budget_for("prod")),
    ],
    "MLS-COST-002": [
        ok("dev"),
        bad("dev", "nobody notified", BUDGET, _silent_notifications),
        bad("prod", "no forecast", BUDGET, _only_actual_notifications),
    ],
    "MLS-COST-003": [
        ok("prod"),
        bad("prod", "budget above ceiling", BUDGET, set_input("limitAmount", "900000.00")),
        bad(
            "dev",
            "user ceiling",
            BUDGET,
            set_input("limitAmount", "600.00"),
            config={"MLS-COST-003": {"maxMonthlyBudgetUsd": {"dev": 550}}},
        ),
    ],
    # iam (roles)
    "MLS-IAM-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no boundary", ROLE, del_input("permissionsBoundary"), name="node-role"),
    ],
    "MLS-IAM-002": [
        ok("prod"),
        bad(
            "prod",
            "dev boundary",
            ROLE,
            set_input("permissionsBoundary", "arn:aws:iam::333344445555:policy/dev-permission-boundary"),
        ),
        dropped("dev", "boundary policy removed", POLICY),
    ],
    "MLS-IAM-006": [
        ok("dev"),
        # Not prod as shipped: its research role trusts a partner account (MFA), waived in policies/waivers.yaml.
        ok("staging"),
        bad(
            "dev", "trusts anyone", ROLE, edit_statements("assumeRolePolicy", _trust_anyone), name="node-role"
        ),
        bad(
            "staging",
            "pod identity any account",
            ROLE,
            edit_statements("assumeRolePolicy", _pod_identity_without_condition),
            name="ebs-csi",
        ),
    ],
    # storage
    "MLS-S3-001": [
        ok("dev"),
        ok("prod", "log bucket may use SSE-S3"),
        bad("dev", "SSE-S3 on datasets", SSE, _sse_s3, name="datasets"),
        dropped("prod", "models unencrypted", SSE, name="models-encryption"),
        dropped("prod", "SSE-S3 bucket that is not a log target", LOGGING),
    ],
    "MLS-S3-002": [
        ok("dev"),
        ok("prod"),
        bad("dev", "public policies allowed", PAB, set_input("blockPublicPolicy", False), name="models"),
        dropped("prod", "no block", PAB, name="datasets"),
    ],
    "MLS-S3-003": [
        ok("dev"),
        ok("prod"),
        bad(
            "dev", "plain http", BUCKET_POLICY, edit_statements("policy", _allow_plain_http), name="artifacts"
        ),
        dropped("staging", "no bucket policy", BUCKET_POLICY, name="datasets"),
    ],
    "MLS-S3-004": [
        ok("dev"),
        bad("dev", "suspended", VERSIONING, set_input("versioningConfiguration", {"status": "Suspended"})),
        dropped("prod", "no versioning", VERSIONING, name="models"),
    ],
    "MLS-S3-005": [
        ok("dev"),
        bad("dev", "acls enabled", OWNERSHIP, set_input("rule", {"objectOwnership": "ObjectWriter"})),
        dropped("prod", "no ownership controls", OWNERSHIP, name="artifacts"),
    ],
    "MLS-S3-006": [
        ok("dev"),
        ok("staging"),
        dropped("dev", "datasets not logged", LOGGING, name="datasets"),
    ],
    "MLS-S3-007": [
        ok("dev"),
        ok("prod"),
        bad("dev", "versions kept forever", S3_LIFECYCLE, _no_noncurrent_expiry, name="models"),
        dropped("staging", "no lifecycle", S3_LIFECYCLE, name="artifacts"),
    ],
    "MLS-S3-008": [
        ok("dev"),
        ok("prod"),
        bad("dev", "force destroy", BUCKET, set_input("forceDestroy", True), name="datasets"),
    ],
    "MLS-S3-009": [
        ok("dev"),
        ok("prod", "log delivery service principal"),
        bad("prod", "public read", BUCKET_POLICY, edit_statements("policy", _public_read), name="models"),
    ],
    # registry
    "MLS-ECR-001": [
        ok("dev"),
        bad("dev", "mutable", REPO, set_input("imageTagMutability", "MUTABLE")),
        bad("prod", "default mutability", REPO, del_input("imageTagMutability")),
    ],
    "MLS-ECR-002": [
        ok("prod"),
        bad("prod", "AES256", REPO, set_input("encryptionConfigurations", [{"encryptionType": "AES256"}])),
    ],
    "MLS-ECR-003": [
        ok("dev"),
        bad("dev", "no scan", REPO, set_input("imageScanningConfiguration", {"scanOnPush": False})),
    ],
    "MLS-ECR-004": [
        ok("dev"),
        dropped("prod", "no lifecycle", ECR_LIFECYCLE, name="base"),
    ],
    "MLS-ECR-005": [
        ok("prod"),
        ok("dev", "dev may force delete", target_type=REPO, mutate=set_input("forceDelete", True)),
        bad("prod", "force delete", REPO, set_input("forceDelete", True)),
    ],
    "MLS-ECR-006": [
        ok("prod"),
        bad("prod", "basic scanning", SCANNING, set_input("scanType", "BASIC")),
        dropped("prod", "no scanning configuration", SCANNING),
    ],
    "MLS-ECR-007": [
        ok("dev"),
        ok("prod"),
        bad("dev", "public pull", REPO_POLICY, edit_statements("policy", _public_pull)),
        bad("prod", "other account pulls", REPO_POLICY, edit_statements("policy", _foreign_pull)),
    ],
    "MLS-ECR-008": [
        ok("dev"),
        ok("prod"),
        bad(
            "dev", "unknown upstream", PULL_THROUGH, set_input("upstreamRegistryUrl", "registry.example.net")
        ),
        Case(
            "dev",
            False,
            "upstream not in user config",
            config={"MLS-ECR-008": {"allowedUpstreams": ["public.ecr.aws"]}},
        ),
    ],
    "MLS-ECR-009": [
        ok("dev"),
        ok("prod"),
        ok(
            "dev",
            "ROOT template covers the cache",
            target_type=CREATION_TEMPLATE,
            target_name="cache-quay",
            mutate=set_input("prefix", "ROOT"),
        ),
        dropped("dev", "no template", CREATION_TEMPLATE, name="cache-quay"),
        bad(
            "prod",
            "AES256 cache repositories",
            CREATION_TEMPLATE,
            set_input("encryptionConfigurations", [{"encryptionType": "AES256"}]),
            name="cache-k8s",
        ),
        bad("dev", "KMS without a custom role", CREATION_TEMPLATE, del_input("customRoleArn"), name="cache"),
        bad(
            "dev",
            "template only for replication",
            CREATION_TEMPLATE,
            set_input("appliedFors", ["REPLICATION"]),
            name="cache-ecr-public",
        ),
    ],
    "MLS-ECR-010": [
        ok("prod"),
        ok("dev", "no replication"),
        dropped("prod", "no replica template", CREATION_TEMPLATE, name="replica-template"),
        bad(
            "prod",
            "replica template in the home region",
            CREATION_TEMPLATE,
            set_input("region", "us-east-1"),
            name="replica-template",
        ),
        bad(
            "prod",
            "AES256 replicas",
            CREATION_TEMPLATE,
            set_input("encryptionConfigurations", [{"encryptionType": "AES256"}]),
            name="replica-template",
        ),
        bad("prod", "other prefix", CREATION_TEMPLATE, set_input("prefix", "base"), name="replica-template"),
    ],
    # network
    "MLS-NET-001": [
        ok("dev"),
        bad("dev", "rejects only", FLOW_LOG, set_input("trafficType", "REJECT")),
        dropped("prod", "no flow log", FLOW_LOG),
    ],
    "MLS-NET-002": [
        ok("dev"),
        bad(
            "dev",
            "default sg allows https",
            DEFAULT_SG,
            set_input("ingress", [{"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "self": True}]),
        ),
        dropped("prod", "default sg unmanaged", DEFAULT_SG),
    ],
    "MLS-NET-003": [
        ok("prod"),
        bad("prod", "https from anywhere", INGRESS, set_input("cidrIpv4", "0.0.0.0/0")),
    ],
    "MLS-NET-004": [
        ok("dev"),
        ok("prod"),
        bad("dev", "public ips", SUBNET, set_input("mapPublicIpOnLaunch", True), name="public"),
    ],
    "MLS-NET-005": [
        ok("staging"),
        ok("prod"),
        ok("dev", "dev may use one NAT gateway"),
        dropped("prod", "one zone lost its NAT", NAT, name="us-east-1b"),
        dropped("staging", "no private subnets", SUBNET, name="private"),
    ],
    "MLS-NET-006": [
        ok("dev"),
        ok("prod"),
        bad("dev", "unencrypted", LOG_GROUP, del_input("kmsKeyId")),
        bad("prod", "kept forever", LOG_GROUP, del_input("retentionInDays"), name="flow"),
    ],
    # cluster
    "MLS-EKS-001": [
        ok("dev"),
        bad("dev", "secrets in clear", CLUSTER, del_input("encryptionConfig")),
    ],
    "MLS-EKS-002": [
        ok("prod"),
        ok(
            "dev",
            "restricted public endpoint",
            target_type=CLUSTER,
            mutate=_public_access_cidrs(["203.0.113.0/24"]),
        ),
        bad("dev", "public to the internet", CLUSTER, _public_access_cidrs(["0.0.0.0/0"])),
        bad("prod", "public in prod", CLUSTER, _public_access_cidrs(["203.0.113.0/24"])),
    ],
    "MLS-EKS-003": [
        ok("dev"),
        bad("dev", "no audit log", CLUSTER, _log_types("api", "authenticator")),
    ],
    "MLS-EKS-004": [
        ok("dev"),
        bad(
            "dev",
            "aws-auth configmap",
            CLUSTER,
            set_input("accessConfig", {"authenticationMode": "API_AND_CONFIG_MAP"}),
        ),
    ],
    "MLS-EKS-005": [
        ok("dev", "dev needs no deletion protection"),
        ok(
            "prod",
            "deletion protection on",
            target_type=CLUSTER,
            mutate=set_input("deletionProtection", True),
        ),
        bad("staging", "no deletion protection", CLUSTER, set_input("deletionProtection", False)),
    ],
    "MLS-EKS-006": [
        ok("dev"),
        bad("dev", "old version", CLUSTER, set_input("version", "1.29")),
        bad("prod", "unpinned version", CLUSTER, del_input("version")),
    ],
    "MLS-EKS-007": [
        ok("dev"),
        bad("dev", "unpinned", ADDON, del_input("addonVersion"), name="coredns"),
    ],
    "MLS-EKS-008": [
        ok("prod"),
        ok("dev", "dev may run in one zone", target_type=NODE_GROUP, mutate=_one_subnet),
        bad("prod", "one zone", NODE_GROUP, _one_subnet),
    ],
    "MLS-EKS-009": [
        ok("prod"),
        ok("staging"),
        ok("dev", "dev may opt out to spot"),
        ok("prod", "capacity type unset", target_type=NODE_GROUP, mutate=del_input("capacityType")),
        bad("staging", "spot system nodes", NODE_GROUP, set_input("capacityType", "SPOT")),
        bad("prod", "spot system nodes", NODE_GROUP, set_input("capacityType", "SPOT")),
    ],
    "MLS-EC2-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "imdsv1", LAUNCH_TEMPLATE, _imds("optional", 1.0)),
        bad("prod", "two hops", LAUNCH_TEMPLATE, _imds("required", 2.0)),
    ],
    "MLS-EC2-002": [
        ok("dev"),
        bad("dev", "unencrypted root", LAUNCH_TEMPLATE, _unencrypted_root),
        bad("prod", "no mappings", LAUNCH_TEMPLATE, del_input("blockDeviceMappings")),
    ],
    # gpu pools
    "MLS-GPU-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no taint", NODE_POOL, _untainted, name="-gpu-"),
    ],
    "MLS-GPU-002": [
        ok("prod"),
        bad("prod", "no limit", NODE_POOL, _unlimited, name="training"),
        bad("dev", "zero limit", NODE_POOL, _gpu_limit("0"), name="-gpu-"),
    ],
    "MLS-GPU-003": [
        ok("dev"),
        bad("dev", "any instance type", NODE_POOL, _any_instance, name="-gpu-"),
    ],
    "MLS-GPU-004": [
        ok("prod"),
        ok("staging"),
        ok(
            "dev",
            "dev inference may be spot-only",
            target_type=NODE_POOL,
            target_name="-gpu-",
            mutate=_capacity("spot"),
        ),
        bad("prod", "spot-only serving", NODE_POOL, _capacity("spot"), name="serving"),
    ],
    "MLS-GPU-005": [
        ok("dev"),
        bad("dev", "never consolidates", NODE_POOL, _disruption(consolidateAfter="Never"), name="-gpu-"),
        bad(
            "prod",
            "no consolidation policy",
            NODE_POOL,
            _disruption(consolidationPolicy=None),
            name="notebooks",
        ),
    ],
    "MLS-GPU-006": [
        ok("prod"),
        bad("prod", "foreign node class", NODE_POOL, _node_class_ref("default"), name="serving"),
        dropped("dev", "node class removed", NODE_CLASS),
    ],
    "MLS-GPU-007": [
        ok("dev"),
        ok("dev", "karpenter default", target_type=NODE_CLASS, mutate=_node_class_metadata()),
        bad("dev", "imdsv1", NODE_CLASS, _node_class_metadata(httpTokens="optional")),
        bad("prod", "two hops", NODE_CLASS, _node_class_metadata(httpPutResponseHopLimit=2.0)),
    ],
    "MLS-GPU-008": [
        ok("prod"),
        bad("prod", "unencrypted", NODE_CLASS, _node_class_volume(False)),
        bad("dev", "ami default volumes", NODE_CLASS, _node_class_volume(None)),
    ],
    "MLS-COST-004": [
        ok("dev"),
        ok("staging"),
        ok("prod"),
        bad("dev", "h100 in dev", NODE_POOL, _instance_types("p5.48xlarge")),
        ok(
            "staging",
            "user config admits g4dn",
            target_type=NODE_POOL,
            mutate=_instance_types("g4dn.xlarge"),
            config={"MLS-COST-004": {"allowedGpuFamilies": {"staging": ["g4dn", "g5", "g6", "g6e"]}}},
        ),
        bad("staging", "g4dn not allowed by default", NODE_POOL, _instance_types("g4dn.xlarge")),
    ],
    "MLS-COST-005": [
        ok("prod"),
        ok("dev"),
        bad("prod", "ceiling exceeded", NODE_POOL, _gpu_limit("999"), name="training"),
        Case("dev", False, "user ceiling", config={"MLS-COST-005": {"maxGpus": {"dev": 2}}}),
    ],
    # kubernetes
    "MLS-K8S-001": [
        ok("dev"),
        bad("dev", "unencrypted class", STORAGE_CLASS, _storage_parameter("encrypted", "false")),
    ],
    "MLS-K8S-003": [
        ok("dev"),
        ok("prod"),
        bad("dev", "version range", HELM_RELEASE, set_input("version", "^1.0.0"), name="karpenter"),
        bad("prod", "unpinned", HELM_RELEASE, del_input("version"), name="device-plugin"),
        bad("dev", "no repository", HELM_RELEASE, del_input("repositoryOpts"), name="device-plugin"),
        bad(
            "dev",
            "OCI registry as a classic repository",
            HELM_RELEASE,
            set_input("repositoryOpts", {"repo": "oci://public.ecr.aws/karpenter"}),
            name="karpenter",
        ),
    ],
    "MLS-K8S-010": [
        ok("prod"),
        ok(
            "prod",
            "configured extra registry",
            target_type=DEPLOYMENT,
            mutate=_image("registry.example.com/ml/chat:1.0"),
            config={"MLS-K8S-010": {"extraRegistries": ["registry.example.com"]}},
        ),
        bad("prod", "docker hub image", DEPLOYMENT, _image("vllm/vllm-openai:v0.11.0"), name="chat"),
        bad(
            "prod",
            "another account's ecr",
            DEPLOYMENT,
            _image("999988887777.dkr.ecr.us-east-1.amazonaws.com/x:1"),
        ),
    ],
    "MLS-K8S-011": [
        ok("prod"),
        ok(
            "prod",
            "digest",
            target_type=DEPLOYMENT,
            mutate=_image("333344445555.dkr.ecr.us-east-1.amazonaws.com/prod/serving@sha256:" + "a" * 64),
        ),
        bad(
            "prod",
            "latest",
            DEPLOYMENT,
            _image("333344445555.dkr.ecr.us-east-1.amazonaws.com/prod/serving:latest"),
        ),
        bad(
            "prod",
            "untagged",
            DEPLOYMENT,
            _image("333344445555.dkr.ecr.us-east-1.amazonaws.com/prod/serving"),
        ),
    ],
    "MLS-K8S-012": [
        # The Metaflow migration runs as root by design and is waived (policies/waivers.yaml).
        ok("prod"),
        bad("prod", "root allowed", DEPLOYMENT, _root_pod),
        bad("prod", "uid 0", DEPLOYMENT, _container_security(runAsUser=0.0)),
    ],
    "MLS-K8S-013": [
        ok("prod"),
        bad("prod", "privileged", DEPLOYMENT, _container_security(privileged=True)),
        bad("prod", "escalation", DEPLOYMENT, _container_security(allowPrivilegeEscalation=True)),
    ],
    "MLS-K8S-014": [
        ok("prod"),
        bad("prod", "host network", DEPLOYMENT, _pod_field("hostNetwork", True)),
        bad("prod", "host pid", DEPLOYMENT, _pod_field("hostPID", True)),
    ],
    "MLS-K8S-015": [
        ok("prod"),
        bad("prod", "no memory limit", DEPLOYMENT, _no_memory_limit),
    ],
    "MLS-K8S-016": [
        ok("prod"),
        bad("prod", "no toleration", DEPLOYMENT, _pod_field("tolerations", []), name="chat"),
        bad("prod", "half a gpu", DEPLOYMENT, _gpu_request("0.5", "0.5"), name="chat"),
        bad("prod", "request below limit", DEPLOYMENT, _gpu_request("1", "2"), name="chat"),
    ],
    "MLS-K8S-017": [
        ok("prod"),
        ok(
            "prod",
            "internal nlb",
            target_type=SERVICE,
            mutate=_service_type(
                "LoadBalancer", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
            ),
        ),
        bad("prod", "public nlb", SERVICE, _service_type("LoadBalancer")),
        bad("prod", "internet-facing alb", INGRESS_K8S, _alb_scheme("internet-facing")),
    ],
    "MLS-K8S-020": [
        ok("dev"),
        ok("prod"),
        dropped("prod", "search has no quota", QUOTA, name="search"),
        bad("dev", "gpus unlimited", QUOTA, _quota_without("requests.nvidia.com/gpu")),
    ],
    "MLS-K8S-002": [
        ok("prod"),
        ok(
            "dev",
            "dev may delete volumes",
            target_type=STORAGE_CLASS,
            mutate=set_input("reclaimPolicy", "Delete"),
        ),
        bad("prod", "delete volumes", STORAGE_CLASS, set_input("reclaimPolicy", "Delete")),
    ],
}


def _tls_group(compliant: bool, value: str) -> Case:
    """The metadata database with a parameter group of the stack (added to the plan) where rds.force_ssl is
    ``value``."""

    def group(database: Any) -> Any:
        inputs = {
            "name": "metaflow-tls",
            "family": "postgres16",
            "parameters": [{"name": "rds.force_ssl", "value": value, "applyMethod": "pending-reboot"}],
        }
        return sibling_of(database, "aws:rds/parameterGroup:ParameterGroup", "prod-metaflow-tls", inputs)

    return Case(
        "prod",
        compliant,
        f"parameter group with rds.force_ssl {value}",
        target_type=DB,
        mutate=set_input("parameterGroupName", "metaflow-tls"),
        sibling=group,
    )


# ---------------------------------------------------------------------------------------------------------
# Data services, SageMaker, queues, tenancy and privilege escalation (issue 20).

DB = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
SM_MODEL = "aws:sagemaker/model:Model"
SM_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _instance_type(instance_type: str, *, key: bool) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["productionVariants"][0]["instanceType"] = instance_type
        if key:
            resource.inputs["kmsKeyArn"] = "arn:aws:kms:us-east-1:333344445555:key/data"
        else:
            resource.inputs.pop("kmsKeyArn", None)

    return apply


def _capture_without_key(resource: Any) -> None:
    resource.inputs["dataCaptureConfig"].pop("kmsKeyId")


def _psa(level: str | None) -> Any:
    def apply(resource: Any) -> None:
        labels = resource.inputs["metadata"]["labels"]
        if level is None:
            labels.pop("pod-security.kubernetes.io/enforce")
        else:
            labels["pod-security.kubernetes.io/enforce"] = level

    return apply


def _netpol_spec(**spec: Any) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["spec"] = {"podSelector": {}, **spec}

    return apply


def _passrole_and_run_instances(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "Escalate",
            "Effect": "Allow",
            "Action": ["iam:PassRole", "ec2:RunInstances"],
            "Resource": "*",
        }
    )


def _scoped_passrole(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Sid": "PassOwnRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::333344445555:role/prod-serving",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )


def _create_role_anywhere(statements: list[dict[str, Any]]) -> None:
    statements.append({"Sid": "MintRoles", "Effect": "Allow", "Action": "iam:CreateRole", "Resource": "*"})


def _anyone_sends(statements: list[dict[str, Any]]) -> None:
    statements[0]["Principal"] = "*"


RBAC_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"


def _rbac_rule(**changes: Any) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["rules"][0].update(changes)

    return apply


def _quota_gpus(value: str) -> Any:
    def apply(resource: Any) -> None:
        resource.inputs["spec"]["hard"]["requests.nvidia.com/gpu"] = value

    return apply


CASES.update(
    {
        "MLS-RDS-001": [
            ok("dev"),
            ok("prod"),
            bad("prod", "unencrypted", DB, set_input("storageEncrypted", False)),
            bad("dev", "aws/rds key", DB, del_input("kmsKeyId")),
        ],
        "MLS-RDS-002": [
            ok("prod"),
            bad("dev", "public", DB, set_input("publiclyAccessible", True)),
        ],
        "MLS-RDS-003": [
            ok("dev"),
            ok("prod"),
            bad("prod", "one day in prod", DB, set_input("backupRetentionPeriod", 1.0)),
            bad("staging", "default retention", DB, del_input("backupRetentionPeriod")),
        ],
        "MLS-RDS-004": [
            ok("prod"),
            ok("dev", "dev may skip the snapshot"),
            bad("prod", "no deletion protection", DB, set_input("deletionProtection", False)),
            bad("staging", "skips final snapshot", DB, set_input("skipFinalSnapshot", True)),
        ],
        "MLS-RDS-005": [
            ok("dev"),
            ok("prod"),
            bad("prod", "no iam auth", DB, set_input("iamDatabaseAuthenticationEnabled", False)),
            bad(
                "dev",
                "password in state",
                DB,
                both(set_input("password", "hunter2"), del_input("manageMasterUserPassword")),
            ),
            bad("dev", "secret under default key", DB, del_input("masterUserSecretKmsKeyId")),
        ],
        "MLS-RDS-006": [
            bad("dev", "default parameter group", DB, del_input("parameterGroupName")),
            _tls_group(True, "1"),
            _tls_group(False, "0"),
        ],
        "MLS-RDS-007": [
            ok("dev"),
            ok("prod"),
            bad("prod", "single-az prod", DB, set_input("multiAz", False)),
            dropped("staging", "no subnet group", SUBNET_GROUP),
        ],
        "MLS-SM-001": [
            ok("prod"),
            bad("prod", "not isolated", SM_MODEL, set_input("enableNetworkIsolation", False)),
            bad("prod", "outside the vpc", SM_MODEL, del_input("vpcConfig")),
        ],
        "MLS-SM-002": [
            ok("prod"),
            ok(
                "prod",
                "local nvme without key",
                target_type=SM_CONFIG,
                mutate=_instance_type("ml.g5.2xlarge", key=False),
            ),
            bad("prod", "key on local nvme", SM_CONFIG, _instance_type("ml.g5.2xlarge", key=True)),
            bad("prod", "ebs volume without key", SM_CONFIG, _instance_type("ml.m5.xlarge", key=False)),
            bad("prod", "capture without key", SM_CONFIG, _capture_without_key),
        ],
        "MLS-SQS-001": [
            ok("dev"),
            ok(
                "dev",
                "kms",
                target_type=QUEUE,
                mutate=both(del_input("sqsManagedSseEnabled"), set_input("kmsMasterKeyId", "alias/x")),
            ),
            bad("dev", "unencrypted", QUEUE, set_input("sqsManagedSseEnabled", False)),
        ],
        "MLS-SQS-002": [
            ok("prod"),
            bad("prod", "anyone sends", QUEUE_POLICY, edit_statements("policy", _anyone_sends)),
        ],
        "MLS-K8S-021": [
            ok("dev"),
            ok("prod"),
            bad(
                "prod",
                "default deny weakened",
                NETWORK_POLICY,
                _netpol_spec(policyTypes=["Ingress"]),
                name="default-deny",
            ),
            bad(
                "dev",
                "allow all ingress",
                NETWORK_POLICY,
                _netpol_spec(policyTypes=["Ingress"], ingress=[{}]),
                name="allow-dns",
            ),
            dropped("staging", "default deny removed", NETWORK_POLICY, name="default-deny"),
        ],
        "MLS-K8S-022": [
            ok("dev"),
            ok("prod"),
            ok(
                "dev",
                "restricted team",
                target_type=NAMESPACE,
                mutate=_psa("restricted"),
                target_name="teams",
            ),
            bad("prod", "privileged team", NAMESPACE, _psa("privileged"), name="teams"),
            bad("prod", "unlabelled platform namespace", NAMESPACE, _psa(None), name="vectordb"),
            Case(
                "prod",
                False,
                "baseline below a restricted tier minimum",
                config={"MLS-K8S-022": {"teamMinimumLevel": {"prod": "restricted"}}},
            ),
        ],
        "MLS-K8S-023": [
            ok("dev"),
            ok("prod"),
            bad("prod", "quota above the pools", QUOTA, _quota_gpus("10000")),
        ],
        "MLS-IAM-009": [
            ok("dev"),
            ok("prod"),
            bad(
                "prod",
                "administrator access",
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                set_input("policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
            ),
        ],
        "MLS-K8S-024": [
            ok("prod"),
            bad("prod", "wildcard verbs", RBAC_ROLE, _rbac_rule(verbs=["*"])),
            bad("dev", "bind", RBAC_ROLE, _rbac_rule(verbs=["bind"])),
        ],
        "MLS-IAM-007": [
            ok("dev"),
            ok("prod"),
            ok(
                "prod",
                "scoped passrole",
                target_type=ROLE_POLICY,
                mutate=edit_statements("policy", _scoped_passrole),
            ),
            bad(
                "prod",
                "passrole and runinstances",
                ROLE_POLICY,
                edit_statements("policy", _passrole_and_run_instances),
            ),
        ],
        "MLS-IAM-008": [
            ok("dev"),
            ok("prod"),
            bad("prod", "create any role", ROLE_POLICY, edit_statements("policy", _create_role_anywhere)),
            bad("dev", "pass any role", ROLE_POLICY, edit_statements("policy", _passrole_and_run_instances)),
        ],
    }
)

CASES.update(COMPUTE_CASES)
CASES.update(EVENTS_CASES)
CASES.update(VOLUME_KEY_CASES)
CASES.update(GRAFANA_CASES)


# In-VPC access: the CodeBuild deploy runner, the access host and their egress rules (policies/deploy.py).
_CB_PROJECT = "aws:codebuild/project:Project"
_CB_WEBHOOK = "aws:codebuild/webhook:Webhook"
_EC2_INSTANCE = "aws:ec2/instance:Instance"
_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def _privileged(resource: Any) -> None:
    resource.inputs["environment"]["privilegedMode"] = True


def _plain_credentials(resource: Any) -> None:
    resource.inputs["environment"]["environmentVariables"] = [
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "x", "type": "PLAINTEXT"}
    ]


def _secret_credentials(resource: Any) -> None:
    # A Secrets Manager reference is no clear-text credential.
    resource.inputs["environment"]["environmentVariables"] = [
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "deploy/key", "type": "SECRETS_MANAGER"}
    ]


def _pull_requests(resource: Any) -> None:
    resource.inputs["filterGroups"] = [
        {"filters": [{"type": "EVENT", "pattern": "PUSH, PULL_REQUEST_CREATED"}]},
    ]


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _read_everything(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        if statement.get("Sid") == "ReadOwnTeamLogs":
            statement["Resource"] = "*"


def _read_other_team(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        if statement.get("Sid") == "ReadOwnTeamLogs":
            statement["Resource"] = [
                str(r).replace("/teams/search", "/teams/recsys") for r in statement["Resource"]
            ]


CASES.update(
    {
        "MLS-CB-001": [
            ok("dev"),
            ok("prod"),
            bad("dev", "privileged", _CB_PROJECT, _privileged),
            bad("prod", "outside the vpc", _CB_PROJECT, del_input("vpcConfig")),
            bad(
                "staging",
                "no logs",
                _CB_PROJECT,
                set_input("logsConfig", {"cloudwatchLogs": {"status": "DISABLED"}}),
            ),
        ],
        "MLS-CB-002": [
            ok("dev"),
            ok(
                "dev", "credentials from secrets manager", target_type=_CB_PROJECT, mutate=_secret_credentials
            ),
            bad("dev", "aws managed key", _CB_PROJECT, del_input("encryptionKey")),
            bad("prod", "access key in clear", _CB_PROJECT, _plain_credentials),
        ],
        "MLS-CB-003": [
            ok("dev"),
            ok("prod"),
            bad("dev", "builds pull requests", _CB_WEBHOOK, _pull_requests),
            bad("prod", "every event", _CB_WEBHOOK, del_input("filterGroups")),
        ],
        "MLS-EC2-003": [
            ok("dev"),
            ok("prod"),
            bad("dev", "public address", _EC2_INSTANCE, set_input("associatePublicIpAddress", True)),
            bad("prod", "no template, imdsv1", _EC2_INSTANCE, del_input("launchTemplate")),
        ],
        "MLS-NET-007": [
            ok("dev"),
            ok("prod"),
            bad("dev", "all traffic", _EGRESS, set_input("ipProtocol", "-1")),
        ],
        "MLS-CB-004": [
            ok("dev"),
            ok("prod"),
            dropped("staging", "no runner in the vpc", _CB_PROJECT),
        ],
        "MLS-LOG-001": [
            ok("dev"),
            ok("prod"),
            bad("dev", "service key", LOG_GROUP, del_input("kmsKeyId"), name="logs-team"),
        ],
        "MLS-LOG-002": [
            ok("dev"),
            ok("prod"),
            bad("prod", "kept forever", LOG_GROUP, del_input("retentionInDays"), name="logs-nodes"),
            bad("dev", "zero days", LOG_GROUP, set_input("retentionInDays", 0.0), name="logs-platform"),
        ],
        "MLS-LOG-003": [
            ok("dev"),
            ok("prod"),
            bad(
                "dev",
                "reads every group",
                ROLE_POLICY,
                edit_statements("policy", _read_everything),
                name="logs-read",
            ),
            bad(
                "dev",
                "reads another team",
                ROLE_POLICY,
                edit_statements("policy", _read_other_team),
                name="logs-read-search",
            ),
        ],
    }
)


def _all_cases() -> list[Any]:
    return [
        pytest.param(policy_id, case, id=f"{policy_id}:{case.id}")
        for policy_id, cases in sorted(CASES.items())
        for case in cases
    ]


def test_every_policy_has_both_kinds_of_case() -> None:
    lacking = {
        rule.id: sorted({"compliant" if c.compliant else "non-compliant" for c in CASES.get(rule.id, [])})
        for rule in ALL_RULES
        if {c.compliant for c in CASES.get(rule.id, [])} != {True, False}
    }
    assert not lacking, f"policies without a compliant and a non-compliant case (have: ...): {lacking}"


def test_cases_name_only_policies_of_the_pack() -> None:
    assert set(CASES) <= set(RULES_BY_ID)


def test_every_non_compliant_case_mutates_a_recorded_resource() -> None:
    for policy_id, cases in CASES.items():
        for case in cases:
            if not case.compliant:
                assert case.target_type or case.config, f"{policy_id} {case.id} changes nothing in the plan"


@pytest.mark.parametrize(("policy_id", "case"), _all_cases())
def test_case(policy_id: str, case: Case) -> None:
    outcome = run_case(policy_id, case)
    assert subjects_present(policy_id, outcome.resources) or case.drop, (
        f"{case.stack} has no resource {RULES_BY_ID[policy_id].subjects}: the case would pass vacuously"
    )
    own = [v for v in outcome.violations if v.policy_id == policy_id]
    if case.compliant:
        assert not own, [v.message for v in own]
        return
    assert own, f"{policy_id} found nothing wrong after: {case.note}"
    rule = RULES_BY_ID[policy_id]
    if rule.kind == "resource" and outcome.target_urns:
        assert {v.urn for v in own} == set(outcome.target_urns), "the violation names another resource"


TOPIC = "aws:sns/topic:Topic"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS_SPEC = "values|prometheus|prometheusSpec"

CASES.update(
    {
        "MLS-SNS-001": [
            ok("dev"),
            ok("prod"),
            bad("dev", "unencrypted", TOPIC, del_input("kmsMasterKeyId"), name="alerts"),
            bad("prod", "aws managed key", TOPIC, set_input("kmsMasterKeyId", "alias/aws/sns"), name="alerts"),
        ],
        "MLS-OBS-001": [
            ok("dev"),
            ok("prod"),
            bad("dev", "no size bound", HELM_RELEASE, del_path(f"{PROMETHEUS_SPEC}|retentionSize"), name="kube-prometheus"),
            bad("prod", "no retention", HELM_RELEASE, del_path(f"{PROMETHEUS_SPEC}|retention"), name="kube-prometheus"),
        ],
        "MLS-OBS-002": [
            # Dev's emptyDir is its tier's choice.
            ok("dev"),
            ok("staging"),
            bad(
                "staging",
                "empty dir",
                HELM_RELEASE,
                set_path(f"{PROMETHEUS_SPEC}|storageSpec", {"emptyDir": {"sizeLimit": "5Gi"}}),
                name="kube-prometheus",
            ),
            bad(
                "prod",
                "claims deleted with the release",
                HELM_RELEASE,
                del_path(f"{PROMETHEUS_SPEC}|persistentVolumeClaimRetentionPolicy"),
                name="kube-prometheus",
            ),
        ],
    }
)



# Cases added to CASES below test_case's parametrisation (the CASES.update blocks above this line) were never
# collected by it: run them here, so every case in CASES runs once.
_COLLECTED_EARLY = {param.id for param in test_case.pytestmark[0].args[1]}


@pytest.mark.parametrize(("policy_id", "case"), [p for p in _all_cases() if p.id not in _COLLECTED_EARLY])
def test_case_added_after_the_parametrisation(policy_id: str, case: Case) -> None:
    test_case(policy_id, case)
