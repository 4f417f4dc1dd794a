"""Mock engine answers with realistic, unique and deterministic ids and ARNs.

A reference between resources (a role ARN inside a bucket policy, a subnet id in a node group) then stays
visible in the recorded inputs, and two runs of the same stack produce the same plan byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from pulumi.runtime import mocks

# EC2-style ids: a prefix and 17 hex digits.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/networkAcl:NetworkAcl": "acl",
    "aws:ec2/placementGroup:PlacementGroup": "pg",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}

# ARN templates by type. {name} is the physical name, {id} the mocked id.
_ARN = {
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{name}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{name}",
    "aws:iam/policy:Policy": "arn:aws:iam::{account}:policy/{name}",
    "aws:iam/instanceProfile:InstanceProfile": "arn:aws:iam::{account}:instance-profile/{name}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "arn:aws:iam::{account}:oidc-provider/{name}",
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{id}",
    "aws:kms/alias:Alias": "arn:aws:kms:{region}:{account}:{name}",
    "aws:eks/cluster:Cluster": "arn:aws:eks:{region}:{account}:cluster/{name}",
    "aws:eks/nodeGroup:NodeGroup": "arn:aws:eks:{region}:{account}:nodegroup/{name}/{id}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:rds/instance:Instance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws:rds/cluster:Cluster": "arn:aws:rds:{region}:{account}:cluster:{name}",
    "aws:rds/subnetGroup:SubnetGroup": "arn:aws:rds:{region}:{account}:subgrp:{name}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "aws:sagemaker/model:Model": "arn:aws:sagemaker:{region}:{account}:model/{name}",
    "aws:sagemaker/endpoint:Endpoint": "arn:aws:sagemaker:{region}:{account}:endpoint/{name}",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "arn:aws:sagemaker:{region}:{account}:endpoint-config/{name}"
    ),
    "aws:budgets/budget:Budget": "arn:aws:budgets::{account}:budget/{name}",
    "aws:ec2/launchTemplate:LaunchTemplate": "arn:aws:ec2:{region}:{account}:launch-template/{id}",
}

# Resources that live inside an EKS cluster: their id is the cluster name joined with these inputs.
_EKS_CHILD_ID_KEYS = {
    "aws:eks/addon:Addon": ("addonName",),
    "aws:eks/nodeGroup:NodeGroup": ("nodeGroupName",),
    "aws:eks/accessEntry:AccessEntry": ("principalArn",),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ("principalArn", "policyArn"),
}

# Input keys that hold a resource's physical name, by preference.
_NAME_KEYS = (
    "name",
    "bucket",
    "clusterName",
    "nodeGroupName",
    "identifier",
    "clusterIdentifier",
    "functionName",
)


class UnmockedInvoke(Exception):
    """The program called a data source the offline plan does not know. Add it to PlatformMocks.call."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class PlatformMocks(mocks.Mocks):
    """Answers resource registrations and invokes as AWS and Kubernetes would, for one account and region."""

    def __init__(self, account_id: str, region: str, stack: str):
        self.account_id = account_id
        self.region = region
        self.stack = stack

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        seed = _digest(self.stack, args.typ, args.name)
        for key in _NAME_KEYS:
            prefix = inputs.get(f"{key}Prefix")
            if key not in inputs and isinstance(prefix, str):
                # The provider completes a name prefix with a unique 26-character suffix and reports the name.
                inputs[key] = prefix + seed[:26]
                break
        physical = self._physical_name(args, inputs, seed)
        resource_id = self._id(args.typ, inputs, physical, seed)
        outputs: dict[str, Any] = {**inputs, **self._computed(args.typ, inputs, physical, resource_id, seed)}
        template = _ARN.get(args.typ)
        if template is None and args.typ.startswith("aws:"):
            module = args.typ.split(":")[1].split("/")[0]
            template = f"arn:aws:{module}:{{region}}:{{account}}:{args.typ.rsplit(':', 1)[-1].lower()}/{{id}}"
        if template is not None:
            outputs.setdefault(
                "arn",
                template.format(account=self.account_id, region=self.region, name=physical, id=resource_id),
            )
        return resource_id, outputs

    @staticmethod
    def _physical_name(args: mocks.MockResourceArgs, inputs: dict[str, Any], seed: str) -> str:
        for key in _NAME_KEYS:
            if isinstance(inputs.get(key), str):
                return str(inputs[key])
        metadata = inputs.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return str(metadata["name"])
        # Pulumi's auto-naming: the logical name plus a random suffix of 7 characters.
        return f"{args.name}-{seed[:7]}"

    def _id(self, typ: str, inputs: dict[str, Any], physical: str, seed: str) -> str:
        prefix = _ID_PREFIX.get(typ)
        if prefix:
            return f"{prefix}-{seed[:17]}"
        if typ == "aws:kms/key:Key":
            return str(uuid.UUID(seed[:32]))
        # EKS children are named inside their cluster; the provider's ids join the two as EKS does.
        eks_child_keys = _EKS_CHILD_ID_KEYS.get(typ)
        if eks_child_keys:
            return ":".join(
                [str(inputs.get("clusterName", "")), *(str(inputs.get(k, "")) for k in eks_child_keys)]
            )
        if typ == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            return f"a-{seed[:17]}"
        if typ.startswith("aws:s3/bucket") and typ != "aws:s3/bucket:Bucket":
            # AWS gives a bucket's settings (versioning, policy, ...) the bucket's name as id; the kind keeps
            # the mocked ids unique.
            return f"{physical},{typ.rsplit(':', 1)[-1]}"
        if typ == "aws:iam/rolePolicy:RolePolicy":
            # An inline policy's id is '<role>:<policy name>'; the same policy name recurs on many roles.
            return f"{inputs.get('role', '')}:{physical}"
        if typ.startswith("kubernetes:"):
            metadata = inputs.get("metadata") or {}
            namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
            return f"{namespace}/{physical}" if namespace else physical
        return physical

    def _computed(
        self, typ: str, inputs: dict[str, Any], physical: str, rid: str, seed: str
    ) -> dict[str, Any]:
        region, account = self.region, self.account_id
        if typ == "aws:s3/bucket:Bucket":
            return {
                "bucket": physical,
                "bucketDomainName": f"{physical}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{physical}.s3.{region}.amazonaws.com",
            }
        if typ == "aws:kms/key:Key":
            return {"keyId": rid}
        # The tls provider makes keys and certificates locally: stand-ins that name what they are, so tests can
        # follow which PEM reaches which Secret (pulumi-tls outputs private_key_pem, cert_pem, cert_request_pem).
        if typ == "tls:index/privateKey:PrivateKey":
            return {"privateKeyPem": f"mock-private-key-{seed[:32]}", "publicKeyPem": f"mock-public-key-{seed[:32]}"}
        if typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            return {"certPem": f"mock-cert-{seed[:32]}"}
        if typ == "tls:index/certRequest:CertRequest":
            return {"certRequestPem": f"mock-csr-{seed[:32]}"}
        if typ == "aws:iam/role:Role":
            return {"name": physical, "uniqueId": f"AROA{seed[:17].upper()}"}
        if typ == "aws:eks/cluster:Cluster":
            issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{seed[:32].upper()}"
            return {
                "name": physical,
                "endpoint": f"https://{seed[:32].upper()}.gr7.{region}.eks.amazonaws.com",
                "certificateAuthority": {"data": base64.b64encode(f"mock-ca-{seed[:16]}".encode()).decode()},
                "identities": [{"oidcs": [{"issuer": issuer}]}],
                "vpcConfig": {
                    **(inputs.get("vpcConfig") or {}),
                    "clusterSecurityGroupId": f"sg-{seed[17:34]}",
                },
                "platformVersion": "eks.1",
                "status": "ACTIVE",
            }
        if typ == "aws:ecr/repository:Repository":
            return {
                "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}",
                "registryId": account,
            }
        if typ == "aws:sqs/queue:Queue":
            return {"url": f"https://sqs.{region}.amazonaws.com/{account}/{physical}", "name": physical}
        if typ in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
            host = f"{physical}.{seed[:12]}.{region}.rds.amazonaws.com"
            secret = f"arn:aws:secretsmanager:{region}:{account}:secret:rds!{physical}-{seed[:6]}"
            return {
                "endpoint": f"{host}:5432",
                "address": host,
                "readerEndpoint": host.replace(physical, f"{physical}-ro", 1),
                "port": 5432,
                "masterUserSecrets": [{"secretArn": secret, "kmsKeyId": "", "secretStatus": "active"}],
            }
        if typ == "aws:ec2/natGateway:NatGateway":
            return {"publicIp": f"203.0.113.{int(seed[:2], 16) % 250 + 1}"}
        if typ.startswith("random:"):
            return {"result": f"mock-{seed[:32]}"}
        return {}

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        invoke = args.token
        if invoke == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:sts::{self.account_id}:assumed-role/deployer/mlstack",
                "userId": "AROAMOCKDEPLOYER:mlstack",
            }, None
        if invoke == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, None
        if invoke == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}, None
        raise UnmockedInvoke(
            f"the offline plan has no mock for the data source '{invoke}'; add it to PlatformMocks.call "
            "or pass the value in from the spec"
        )
