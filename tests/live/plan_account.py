"""Build, in moto, the account a shipped stack's recorded plan describes: what `pulumi up` would leave behind.

Every resource the audit reads is created from the plan's own inputs (names, regions from the resource's
provider, the provider's default tags merged with the resource's tags), plus what ECR creates by itself after
the first pull or push: one repository per pull-through cache rule (from its creation template) and, with
registry replication, the replica of each repository in the destination region (from the replication template).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from mlstack.plan.recorder import Plan

EventHook = Callable[..., Any]


def _provider_region_and_tags(plan: Plan) -> dict[str, tuple[str, dict[str, str]]]:
    providers = {}
    for resource in plan.resources:
        if resource.type == "pulumi:providers:aws":
            inputs = resource.inputs
            tags = json.loads(inputs.get("defaultTags", "{}")).get("tags", {})
            providers[f"{resource.urn}::{resource.id}"] = (inputs["region"], tags)
    return providers


def build_account(plan: Plan, session: boto3.session.Session) -> dict[str, list[str]]:
    """Create the plan's audited resources in the moto account of ``session``; returns the cache prefixes
    per region, which the caller serves for DescribePullThroughCacheRules (moto does not implement it)."""
    providers = _provider_region_and_tags(plan)
    home = next(region for region, _ in providers.values())
    by_type: dict[str, list[Any]] = {}
    for resource in plan.resources:
        by_type.setdefault(resource.type, []).append(resource)

    def where(resource: Any) -> tuple[str, dict[str, str]]:
        region, tags = providers.get(resource.provider, (home, {}))
        return region, {**tags, **(resource.inputs.get("tags") or {})}

    def of(kind: str) -> list[Any]:
        return by_type.get(f"aws:{kind}", [])

    bucket_region: dict[str, str] = {}
    for bucket in of("s3/bucket:Bucket"):
        region, tags = where(bucket)
        name = bucket.inputs["bucket"]
        bucket_region[name] = region
        s3 = session.client("s3", region_name=region)
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **extra)
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )

    def s3_for(name: str) -> Any:
        return session.client("s3", region_name=bucket_region[name])

    for item in of("s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"],
                    **(
                        {"KMSMasterKeyID": rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]}
                        if rule["applyServerSideEncryptionByDefault"].get("kmsMasterKeyId")
                        else {}
                    ),
                },
                **({"BucketKeyEnabled": rule["bucketKeyEnabled"]} if "bucketKeyEnabled" in rule else {}),
            }
            for rule in item.inputs["rules"]
        ]
        s3_for(item.inputs["bucket"]).put_bucket_encryption(
            Bucket=item.inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
        )
    for item in of("s3/bucketVersioning:BucketVersioning"):
        s3_for(item.inputs["bucket"]).put_bucket_versioning(
            Bucket=item.inputs["bucket"],
            VersioningConfiguration={"Status": item.inputs["versioningConfiguration"]["status"]},
        )
    for item in of("s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        s3_for(item.inputs["bucket"]).put_public_access_block(
            Bucket=item.inputs["bucket"],
            PublicAccessBlockConfiguration={f: bool(item.inputs.get(f[0].lower() + f[1:])) for f in flags},
        )
    # moto checks the target's policy for the log-delivery grant but fails on a statement whose Principal is
    # the string "*"; the plan's policy minus those statements is put first, the whole policy afterwards.
    for item in of("s3/bucketPolicy:BucketPolicy"):
        document = json.loads(item.inputs["policy"])
        document["Statement"] = [st for st in document["Statement"] if isinstance(st.get("Principal"), dict)]
        if document["Statement"]:
            s3_for(item.inputs["bucket"]).put_bucket_policy(
                Bucket=item.inputs["bucket"], Policy=json.dumps(document)
            )
    for item in of("s3/bucketLogging:BucketLogging"):
        s3_for(item.inputs["bucket"]).put_bucket_logging(
            Bucket=item.inputs["bucket"],
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": item.inputs["targetBucket"],
                    "TargetPrefix": item.inputs.get("targetPrefix", ""),
                }
            },
        )

    for item in of("s3/bucketPolicy:BucketPolicy"):
        s3_for(item.inputs["bucket"]).put_bucket_policy(
            Bucket=item.inputs["bucket"], Policy=item.inputs["policy"]
        )
    for item in of("ecr/registryScanningConfiguration:RegistryScanningConfiguration"):
        region, _ = where(item)
        session.client("ecr", region_name=region).put_registry_scanning_configuration(
            scanType=item.inputs["scanType"],
            rules=[
                {
                    "scanFrequency": rule["scanFrequency"],
                    "repositoryFilters": [
                        {"filter": f["filter"], "filterType": f["filterType"]}
                        for f in rule["repositoryFilters"]
                    ],
                }
                for rule in item.inputs.get("rules", [])
            ],
        )

    def repository(region: str, name: str, mutability: str, scan_on_push: bool, tags: dict[str, str]) -> None:
        session.client("ecr", region_name=region).create_repository(
            repositoryName=name,
            imageTagMutability=mutability,
            imageScanningConfiguration={"scanOnPush": scan_on_push},
            tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    for item in of("ecr/repository:Repository"):
        region, tags = where(item)
        repository(
            region,
            item.inputs["name"],
            item.inputs.get("imageTagMutability", "MUTABLE"),
            bool((item.inputs.get("imageScanningConfiguration") or {}).get("scanOnPush")),
            tags,
        )
    templates = {
        (t.inputs["prefix"], applied): t
        for t in of("ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
        for applied in t.inputs["appliedFors"]
    }
    caches: dict[str, list[str]] = {}
    for item in of("ecr/pullThroughCacheRule:PullThroughCacheRule"):
        region, _ = where(item)
        prefix = item.inputs["ecrRepositoryPrefix"]
        caches.setdefault(region, []).append(prefix)
        template = templates[(prefix, "PULL_THROUGH_CACHE")]
        # What ECR creates from the template on the first pull through the cache.
        repository(
            region,
            f"{prefix}/library/busybox",
            template.inputs.get("imageTagMutability", "MUTABLE"),
            False,
            template.inputs.get("resourceTags") or {},
        )
    for item in of("ecr/replicationConfiguration:ReplicationConfiguration"):
        for rule in item.inputs["replicationConfiguration"]["rules"]:
            for destination in rule["destinations"]:
                template = templates.get(("ROOT", "REPLICATION")) or next(
                    t for (p, applied), t in templates.items() if applied == "REPLICATION"
                )
                for source in of("ecr/repository:Repository"):
                    name = source.inputs["name"]
                    if any(name.startswith(f["filter"]) for f in rule.get("repositoryFilters", [])):
                        repository(
                            destination["region"],
                            name,
                            template.inputs.get("imageTagMutability", "MUTABLE"),
                            False,
                            template.inputs.get("resourceTags") or {},
                        )

    iam = session.client("iam")
    for item in of("iam/policy:Policy"):
        iam.create_policy(PolicyName=item.inputs["name"], PolicyDocument=item.inputs["policy"])
    for item in of("iam/role:Role"):
        _, tags = where(item)
        extra = (
            {"PermissionsBoundary": item.inputs["permissionsBoundary"]}
            if item.inputs.get("permissionsBoundary")
            else {}
        )
        iam.create_role(
            RoleName=item.inputs["name"],
            Path=item.inputs.get("path", "/"),
            AssumeRolePolicyDocument=item.inputs["assumeRolePolicy"],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            **extra,
        )

    for item in of("eks/cluster:Cluster"):
        region, tags = where(item)
        vpc = item.inputs["vpcConfig"]
        encryption = item.inputs.get("encryptionConfig")
        session.client("eks", region_name=region).create_cluster(
            name=item.inputs["name"],
            roleArn=item.inputs["roleArn"],
            resourcesVpcConfig={
                "subnetIds": list(vpc.get("subnetIds", [])),
                "endpointPublicAccess": bool(vpc.get("endpointPublicAccess")),
                "endpointPrivateAccess": bool(vpc.get("endpointPrivateAccess")),
                **({"publicAccessCidrs": vpc["publicAccessCidrs"]} if vpc.get("publicAccessCidrs") else {}),
            },
            logging={
                "clusterLogging": [{"types": item.inputs.get("enabledClusterLogTypes", []), "enabled": True}]
            },
            encryptionConfig=[encryption] if encryption else [],
            tags=tags,
        )

    for item in of("ec2/launchTemplate:LaunchTemplate"):
        region, tags = where(item)
        metadata = item.inputs.get("metadataOptions") or {}
        session.client("ec2", region_name=region).create_launch_template(
            LaunchTemplateName=item.inputs["name"],
            LaunchTemplateData={
                "MetadataOptions": {
                    "HttpTokens": metadata.get("httpTokens", "optional"),
                    "HttpEndpoint": metadata.get("httpEndpoint", "enabled"),
                    "HttpPutResponseHopLimit": int(metadata.get("httpPutResponseHopLimit", 1)),
                }
            },
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )

    for item in of("budgets/budget:Budget"):
        session.client("budgets", region_name="us-east-1").create_budget(
            AccountId=session.client("sts", region_name=home).get_caller_identity()["Account"],
            Budget={
                "BudgetName": item.inputs["name"],
                "BudgetLimit": {"Amount": item.inputs["limitAmount"], "Unit": item.inputs["limitUnit"]},
                "TimeUnit": item.inputs["timeUnit"],
                "BudgetType": item.inputs["budgetType"],
            },
        )

    for item in of("kms/key:Key"):
        region, tags = where(item)
        kms = session.client("kms", region_name=region)
        key = kms.create_key(
            Description=item.inputs.get("description", ""),
            Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()],
        )["KeyMetadata"]
        if item.inputs.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=key["KeyId"])
    return caches


def serve_cache_rules(session: boto3.session.Session, caches: dict[str, list[str]]) -> None:
    """Answer ecr:DescribePullThroughCacheRules, which moto does not implement, from ``caches`` (region ->
    prefixes), through botocore's before-call event: a handler's response replaces the HTTP request."""

    def answer(model: Any, context: dict[str, Any], **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        region = context.get("client_region") or ""
        rules = [
            {"ecrRepositoryPrefix": p, "upstreamRegistryUrl": "upstream"} for p in caches.get(region, [])
        ]
        return AWSResponse("https://ecr", 200, {}, None), {"pullThroughCacheRules": rules}

    session.events.register("before-call.ecr.DescribePullThroughCacheRules", answer)
