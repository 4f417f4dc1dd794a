"""SageMaker rules: hosted models isolated and inside the VPC, endpoint volumes and captured data under the
platform's key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, as_list, resource_rule

MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
# Families whose instances have NVMe instance storage, on which SageMaker refuses a KmsKeyId ("You can't
# request a KmsKeyId when using an instance type with local storage": SageMaker API reference,
# CreateEndpointConfig.KmsKeyId). The default lists only the families the SageMaker API reference names
# (ResourceConfig.VolumeSizeInGB: "ML instance families with the NVMe-type instance storage include ml.p4d,
# ml.g4dn, and ml.g5"); add others to the config after checking the EC2 instance-store table.
DEFAULT_LOCAL_STORAGE_FAMILIES = ["g4dn", "g5", "p4d"]


def _family(instance_type: Any) -> str:
    # "ml.g5.2xlarge" -> "g5"
    parts = str(instance_type or "").split(".")
    return parts[1] if len(parts) >= 3 else ""


@resource_rule(
    "MLS-SM-001",
    types=[MODEL],
    title="SageMaker models run network-isolated inside the VPC",
    why="Network isolation stops the serving container from calling out (a compromised model image cannot "
    "exfiltrate what it reads), and a VPC configuration keeps the model's S3 and ECR traffic on the VPC "
    "endpoints instead of SageMaker's shared network.",
    severity=Severity.HIGH,
    remediation="Set enable_network_isolation=True (endpoints[].network_isolation) and vpc_config with the "
    "private subnets and a security group.",
)
def model_isolated(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("enableNetworkIsolation") is not True:
        yield "enableNetworkIsolation is not true"
    vpc = args.props.get("vpcConfig") or {}
    if not as_list(vpc.get("subnets")) or not as_list(vpc.get("securityGroupIds")):
        yield "vpcConfig does not name subnets and security groups"


@resource_rule(
    "MLS-SM-002",
    types=[ENDPOINT_CONFIG],
    title="SageMaker endpoint volumes and captured data are encrypted with the platform's key",
    why="The endpoint's ML storage volume holds the model weights and the data capture holds every request "
    "and response: both belong under the data key. Instance types with local NVMe storage encrypt it in "
    "hardware and SageMaker refuses a key for them, so the rule asks for the key exactly where it is allowed.",
    severity=Severity.HIGH,
    remediation="Set kms_key_arn to the data key unless a variant's instance family has local storage (then "
    "leave it unset), and data_capture_config.kms_key_id whenever capture is on.",
    config={
        "localStorageFamilies": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_LOCAL_STORAGE_FAMILIES,
            "description": "Instance families with NVMe instance storage, for which SageMaker refuses kmsKeyArn.",
        }
    },
)
def endpoint_config_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    local = set(config.get("localStorageFamilies") or [])
    variants = [v for v in as_list(args.props.get("productionVariants")) if isinstance(v, Mapping)]
    with_local = sorted(
        {str(v.get("instanceType")) for v in variants if _family(v.get("instanceType")) in local}
    )
    key = args.props.get("kmsKeyArn")
    if with_local and key:
        yield f"kmsKeyArn is set but {with_local} have local storage: SageMaker refuses the endpoint config"
    if variants and not with_local and not key:
        yield "kmsKeyArn is not set: the endpoint's storage volume uses the AWS managed key"
    capture = args.props.get("dataCaptureConfig") or {}
    if capture and capture.get("enableCapture") is not False and not capture.get("kmsKeyId"):
        yield "data capture is on without dataCaptureConfig.kmsKeyId"
