"""The compliance frameworks the pack maps its rules to, and the controls of each that a rule may name.

A rule names its controls with ``controls={"aws-fsbp": [...], "cis-eks": [...]}``. The CIS AWS Foundations and
NIST SP 800-53 ids of a rule are not written by hand: they are the ones AWS Security Hub lists as the
"Related requirements" of the rule's AWS Foundational Security Best Practices (FSBP) controls, so every id
can be checked against one published source. Sources:

- FSBP, CIS AWS Foundations Benchmark v1.4.0 and NIST SP 800-53 Rev. 5: the AWS Security Hub user guide,
  awsdocs/aws-security-hub-user-guide @ 47bfe2f1 (June 2023, the repository's last content):
  doc_source/<service>-controls.md ("Related requirements") and doc_source/cis-aws-foundations-benchmark.md.
- CIS Amazon EKS Benchmark v1.8.0: aquasecurity/kube-bench @ a73ce378 : cfg/eks-1.8.0/{controlplane,node,
  policies,managedservices}.yaml (every recommendation id and title of the benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["FRAMEWORKS", "FSBP", "Control", "Framework", "expand"]


@dataclass(frozen=True)
class Control:
    """One FSBP control: its Security Hub title and the CIS AWS v1.4.0 and NIST 800-53 r5 ids AWS maps it to."""

    title: str
    cis_aws: tuple[str, ...] = ()
    nist: tuple[str, ...] = ()


@dataclass(frozen=True)
class Framework:
    """A framework a rule can serve: key (``--framework``), name, version, source and its known controls."""

    key: str
    name: str
    source: str
    controls: Mapping[str, str]  # control id -> title ("" where the source gives ids only)


# The FSBP controls the pack maps to, as Security Hub documents them
# (awsdocs/aws-security-hub-user-guide @ 47bfe2f1 : doc_source/<service>-controls.md).
FSBP: Mapping[str, Control] = {
    "KMS.1": Control(
        "IAM customer managed policies should not allow decryption actions on all KMS keys",
        cis_aws=(),
        nist=("AC-2", "AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-5", "AC-6", "AC-6(3)"),
    ),
    "KMS.2": Control(
        "IAM principals should not have IAM inline policies that allow decryption actions on all KMS keys",
        cis_aws=(),
        nist=("AC-2", "AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-5", "AC-6", "AC-6(3)"),
    ),
    "KMS.3": Control(
        "AWS KMS keys should not be deleted unintentionally", cis_aws=(), nist=("SC-12", "SC-12(2)")
    ),
    "KMS.4": Control(
        "AWS KMS key rotation should be enabled", cis_aws=("3.8",), nist=("SC-12", "SC-12(2)", "SC-28(3)")
    ),
    "IAM.1": Control(
        'IAM policies should not allow full "*" administrative privileges',
        cis_aws=("1.16",),
        nist=(
            "AC-2",
            "AC-2(1)",
            "AC-3",
            "AC-3(15)",
            "AC-3(7)",
            "AC-5",
            "AC-6",
            "AC-6(10)",
            "AC-6(2)",
            "AC-6(3)",
        ),
    ),
    "S3.2": Control(
        "S3 buckets should prohibit public read access",
        cis_aws=(),
        nist=(
            "AC-21",
            "AC-3",
            "AC-3(7)",
            "AC-4",
            "AC-4(21)",
            "AC-6",
            "SC-7",
            "SC-7(11)",
            "SC-7(16)",
            "SC-7(20)",
            "SC-7(21)",
            "SC-7(3)",
            "SC-7(4)",
            "SC-7(9)",
        ),
    ),
    "S3.3": Control(
        "S3 buckets should prohibit public write access",
        cis_aws=(),
        nist=(
            "AC-21",
            "AC-3",
            "AC-3(7)",
            "AC-4",
            "AC-4(21)",
            "AC-6",
            "SC-7",
            "SC-7(11)",
            "SC-7(16)",
            "SC-7(20)",
            "SC-7(21)",
            "SC-7(3)",
            "SC-7(4)",
            "SC-7(9)",
        ),
    ),
    "S3.4": Control(
        "S3 buckets should have server-side encryption enabled",
        cis_aws=("2.1.1",),
        nist=(
            "AU-9",
            "AU-9(2)",
            "AU-9(7)",
            "CA-9(1)",
            "CM-3(6)",
            "SC-13",
            "SC-28",
            "SC-28(1)",
            "SC-7(10)",
            "SI-7(6)",
        ),
    ),
    "S3.5": Control(
        "S3 buckets should require requests to use Secure Socket Layer",
        cis_aws=("2.1.2",),
        nist=(
            "AC-17(2)",
            "AC-4",
            "IA-5(1)",
            "SC-12(3)",
            "SC-13",
            "SC-23",
            "SC-23(3)",
            "SC-7(4)",
            "SC-8",
            "SC-8(1)",
            "SC-8(2)",
            "SI-7(6)",
        ),
    ),
    "S3.8": Control(
        "S3 Block Public Access setting should be enabled at the bucket-level",
        cis_aws=("2.1.5",),
        nist=(
            "AC-21",
            "AC-3",
            "AC-3(7)",
            "AC-4",
            "AC-4(21)",
            "AC-6",
            "SC-7",
            "SC-7(11)",
            "SC-7(16)",
            "SC-7(20)",
            "SC-7(21)",
            "SC-7(3)",
            "SC-7(4)",
            "SC-7(9)",
        ),
    ),
    "S3.9": Control(
        "S3 bucket server access logging should be enabled",
        cis_aws=(),
        nist=(
            "AC-2(4)",
            "AC-4(26)",
            "AC-6(9)",
            "AU-10",
            "AU-12",
            "AU-2",
            "AU-3",
            "AU-6(3)",
            "AU-6(4)",
            "CA-7",
            "SC-7(9)",
            "SI-3(8)",
            "SI-4(20)",
            "SI-7(8)",
        ),
    ),
    "S3.10": Control(
        "S3 buckets with versioning enabled should have lifecycle policies configured",
        cis_aws=(),
        nist=("CP-10", "CP-6(2)", "CP-9", "SC-5(2)", "SI-13(5)"),
    ),
    "S3.12": Control(
        "S3 access control lists (ACLs) should not be used to manage user access to buckets",
        cis_aws=(),
        nist=("AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-6"),
    ),
    "S3.14": Control(
        "S3 buckets should use versioning",
        cis_aws=(),
        nist=("AU-9(2)", "CP-10", "CP-6", "CP-6(1)", "CP-6(2)", "CP-9", "SC-5(2)", "SI-12", "SI-13(5)"),
    ),
    "ECR.1": Control(
        "ECR private repositories should have image scanning configured", cis_aws=(), nist=("RA-5",)
    ),
    "ECR.2": Control(
        "ECR private repositories should have tag immutability configured",
        cis_aws=(),
        nist=("CA-9(1)", "CM-2", "CM-8(1)"),
    ),
    "ECR.3": Control(
        "ECR repositories should have at least one lifecycle policy configured",
        cis_aws=(),
        nist=("CA-9(1)", "CM-2", "CM-2(2)"),
    ),
    # CodeBuild controls: awsdocs/aws-security-hub-user-guide @ bda5bf7d : doc_source/codebuild-controls.md (the
    # repository's newer snapshot; the pinned 47bfe2f1 was not available to read).
    "CodeBuild.2": Control(
        "CodeBuild project environment variables should not contain clear text credentials",
        cis_aws=(),
        nist=("IA-5(7)", "SA-3"),
    ),
    "CodeBuild.4": Control(
        "CodeBuild project environments should have a logging AWS Configuration",
        cis_aws=(),
        nist=(
            "AC-2(12)",
            "AC-2(4)",
            "AC-4(26)",
            "AC-6(9)",
            "AU-10",
            "AU-12",
            "AU-2",
            "AU-3",
            "AU-6(3)",
            "AU-6(4)",
            "AU-9(7)",
            "CA-7",
            "SC-7(9)",
            "SI-3(8)",
            "SI-4",
            "SI-4(20)",
            "SI-7(8)",
        ),
    ),
    "CodeBuild.5": Control(
        "CodeBuild project environments should not have privileged mode enabled",
        cis_aws=(),
        nist=("AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-5", "AC-6", "AC-6(10)", "AC-6(2)"),
    ),
    "EC2.2": Control(
        "The VPC default security group should not allow inbound and outbound traffic",
        cis_aws=("5.3",),
        nist=("AC-4", "AC-4(21)", "SC-7", "SC-7(11)", "SC-7(16)", "SC-7(21)", "SC-7(4)", "SC-7(5)"),
    ),
    "EC2.3": Control(
        "Attached Amazon EBS volumes should be encrypted at-rest",
        cis_aws=(),
        nist=("CA-9(1)", "CM-3(6)", "SC-13", "SC-28", "SC-28(1)", "SC-7(10)", "SI-7(6)"),
    ),
    "EC2.6": Control(
        "VPC flow logging should be enabled in all VPCs",
        cis_aws=("3.9",),
        nist=("AC-4(26)", "AU-12", "AU-2", "AU-3", "AU-6(3)", "AU-6(4)", "CA-7", "SI-7(8)"),
    ),
    "EC2.8": Control(
        "Amazon EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)",
        cis_aws=(),
        nist=("AC-3", "AC-3(15)", "AC-3(7)", "AC-6"),
    ),
    "EC2.15": Control(
        "Amazon EC2 subnets should not automatically assign public IP addresses",
        cis_aws=(),
        nist=(
            "AC-21",
            "AC-3",
            "AC-3(7)",
            "AC-4",
            "AC-4(21)",
            "AC-6",
            "SC-7",
            "SC-7(11)",
            "SC-7(16)",
            "SC-7(20)",
            "SC-7(21)",
            "SC-7(3)",
            "SC-7(4)",
            "SC-7(9)",
        ),
    ),
    "EC2.18": Control(
        "Security groups should only allow unrestricted incoming traffic for authorized ports",
        cis_aws=(),
        nist=("AC-4", "AC-4(21)", "SC-7", "SC-7(11)", "SC-7(16)", "SC-7(21)", "SC-7(4)", "SC-7(5)"),
    ),
    "EKS.2": Control(
        "EKS clusters should run on a supported Kubernetes version",
        cis_aws=(),
        nist=("CA-9(1)", "CM-2", "SI-2", "SI-2(2)", "SI-2(4)", "SI-2(5)"),
    ),
    "RDS.2": Control(
        "RDS DB Instances should prohibit public access, as determined by the PubliclyAccessible AWS Configuration",
        cis_aws=(),
        nist=("AC-4", "AC-4(21)", "SC-7", "SC-7(11)", "SC-7(16)", "SC-7(21)", "SC-7(4)", "SC-7(5)"),
    ),
    "RDS.3": Control(
        "RDS DB instances should have encryption at-rest enabled",
        cis_aws=("2.3.1",),
        nist=("CA-9(1)", "CM-3(6)", "SC-13", "SC-28", "SC-28(1)", "SC-7(10)", "SI-7(6)"),
    ),
    "RDS.7": Control(
        "RDS clusters should have deletion protection enabled", cis_aws=(), nist=("CM-3", "SC-5(2)")
    ),
    "RDS.8": Control(
        "RDS DB instances should have deletion protection enabled",
        cis_aws=(),
        nist=("CM-3", "SC-5(2)", "SI-13(5)"),
    ),
    "RDS.10": Control(
        "IAM authentication should be configured for RDS instances",
        cis_aws=(),
        nist=("AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-6"),
    ),
    "RDS.11": Control(
        "RDS instances should have automatic backups enabled",
        cis_aws=(),
        nist=("CP-10", "CP-6", "CP-6(1)", "CP-6(2)", "CP-9", "SC-5(2)", "SI-12", "SI-13(5)"),
    ),
    "RDS.12": Control(
        "IAM authentication should be configured for RDS clusters",
        cis_aws=(),
        nist=("AC-2(1)", "AC-3", "AC-3(15)", "AC-3(7)", "AC-6"),
    ),
    "SQS.1": Control(
        "Amazon SQS queues should be encrypted at rest",
        cis_aws=(),
        nist=("CA-9(1)", "CM-3(6)", "SC-13", "SC-28", "SC-28(1)", "SC-7(10)", "SI-7(6)"),
    ),
    "SNS.1": Control(
        "SNS topics should be encrypted at-rest using AWS KMS",
        cis_aws=(),
        nist=("CA-9(1)", "CM-3(6)", "SC-13", "SC-28", "SC-28(1)", "SC-7(10)", "SI-7(6)"),
    ),
    "SecretsManager.1": Control(
        "Secrets Manager secrets should have automatic rotation enabled",
        cis_aws=(),
        nist=("AC-2(1)", "AC-3(15)"),
    ),
    "CloudWatch.16": Control(
        "CloudWatch log groups should be retained for at least 1 year",
        cis_aws=(),
        nist=("AU-10", "AU-11", "AU-6(3)", "AU-6(4)", "CA-7", "SI-12"),
    ),
}

# CIS AWS Foundations Benchmark v1.4.0 titles of the ids above (cis-aws-foundations-benchmark.md, tables
# "Controls that exist in CIS AWS Foundations Benchmark v1.4.0, but not in v1.2.0" and "... in v1.2.0 and
# v1.4.0").
CIS_AWS_TITLES: Mapping[str, str] = {
    "1.16": 'Ensure IAM policies that allow full "*:*" administrative privileges are not attached',
    "2.1.1": "Ensure all S3 buckets employ encryption-at-rest",
    "2.1.2": "Ensure S3 bucket policy is set to deny HTTP requests",
    "2.1.5": "S3 Block Public Access setting should be enabled at the bucket level",
    "2.3.1": "Ensure that encryption is enabled for RDS Instances",
    "3.8": "Ensure rotation for customer-created KMS keys is enabled",
    "3.9": "Ensure VPC flow logging is enabled in all VPCs",
    "5.3": "Ensure the default security group of every VPC restricts all traffic",
}

# Every recommendation of the CIS Amazon EKS Benchmark v1.8.0
# (aquasecurity/kube-bench @ a73ce378 : cfg/eks-1.8.0/*.yaml, "(Automated)"/"(Manual)" suffixes dropped).
CIS_EKS: Mapping[str, str] = {
    "2.1.1": "Enable audit Logs",
    "2.1.2": "Ensure audit logs are collected and managed",
    "3.1.1": "Ensure that the kubeconfig file permissions are set to 644 or more restrictive",
    "3.1.2": "Ensure that the kubelet kubeconfig file ownership is set to root:root",
    "3.1.3": "Ensure that the kubelet configuration file has permissions set to 644 or more restrictive",
    "3.1.4": "Ensure that the kubelet configuration file ownership is set to root:root",
    "3.2.1": "Ensure that the Anonymous Auth is Not Enabled",
    "3.2.2": "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
    "3.2.3": "Ensure that a Client CA File is Configured",
    "3.2.4": "Ensure that the --read-only-port is disabled",
    "3.2.5": "Ensure that the --streaming-connection-idle-timeout argument is not set to 0",
    "3.2.6": "Ensure that the --make-iptables-util-chains argument is set to true",
    "3.2.7": "Ensure that the --eventRecordQPS argument is set to 0 or a level which ensures appropriate event capture",
    "3.2.8": "Ensure that the --rotate-certificates argument is not present or is set to true",
    "3.2.9": "Ensure that the RotateKubeletServerCertificate argument is set to true",
    "4.1.1": "Ensure that the cluster-admin role is only used where required",
    "4.1.2": "Minimize access to secrets",
    "4.1.3": "Minimize wildcard use in Roles and ClusterRoles",
    "4.1.4": "Minimize access to create pods",
    "4.1.5": "Ensure that default service accounts are not actively used.",
    "4.1.6": "Ensure that Service Account Tokens are only mounted where necessary",
    "4.1.7": "Cluster Access Manager API to streamline and enhance the management of access controls within EKS clusters",
    "4.1.8": "Limit use of the Bind, Impersonate and Escalate permissions in the Kubernetes cluster",
    "4.1.9": "Minimize access to create PersistentVolume objects",
    "4.1.10": "Minimize access to the proxy sub-resource of Node objects",
    "4.1.11": "Minimize access to webhook configuration objects",
    "4.1.12": "Minimize access to the service account token creation",
    "4.2.1": "Minimize the admission of privileged containers",
    "4.2.2": "Minimize the admission of containers wishing to share the host process ID namespace",
    "4.2.3": "Minimize the admission of containers wishing to share the host IPC namespace",
    "4.2.4": "Minimize the admission of containers wishing to share the host network namespace",
    "4.2.5": "Minimize the admission of containers with allowPrivilegeEscalation",
    "4.3.1": "Ensure CNI plugin supports network policies",
    "4.3.2": "Ensure that all Namespaces have Network Policies defined",
    "4.4.1": "Prefer using secrets as files over secrets as environment variables",
    "4.4.2": "Consider external secret storage",
    "4.5.1": "Create administrative boundaries between resources using namespaces",
    "4.5.2": "The default namespace should not be used",
    "5.1.1": "Ensure Image Vulnerability Scanning using Amazon ECR image scanning or a third party provider",
    "5.1.2": "Minimize user access to Amazon ECR",
    "5.1.3": "Minimize cluster access to read-only for Amazon ECR",
    "5.1.4": "Minimize Container Registries to only those approved",
    "5.2.1": "Prefer using dedicated Amazon EKS Service Accounts",
    "5.3.1": "Ensure Kubernetes Secrets are encrypted using Customer Master Keys (CMKs) managed in AWS KMS",
    "5.4.1": "Restrict Access to the Control Plane Endpoint",
    "5.4.2": "Ensure clusters are created with Private Endpoint Enabled and Public Access Disabled",
    "5.4.3": "Ensure clusters are created with Private Nodes",
    "5.4.4": "Ensure Network Policy is Enabled and set as appropriate",
    "5.4.5": "Encrypt traffic to HTTPS load balancers with TLS certificates",
    "5.5.1": "Manage Kubernetes RBAC users with AWS IAM Authenticator for Kubernetes or Upgrade to AWS CLI v1.16.156 or greater",
}

FRAMEWORKS: Mapping[str, Framework] = {
    "aws-fsbp": Framework(
        "aws-fsbp",
        "AWS Foundational Security Best Practices",
        "AWS Security Hub user guide (awsdocs/aws-security-hub-user-guide @ 47bfe2f1)",
        {control_id: control.title for control_id, control in FSBP.items()},
    ),
    "cis-aws": Framework(
        "cis-aws",
        "CIS AWS Foundations Benchmark v1.4.0",
        "Related requirements of the FSBP controls in the AWS Security Hub user guide",
        CIS_AWS_TITLES,
    ),
    "cis-eks": Framework(
        "cis-eks",
        "CIS Amazon EKS Benchmark v1.8.0",
        "aquasecurity/kube-bench @ a73ce378 : cfg/eks-1.8.0",
        CIS_EKS,
    ),
    "nist-800-53": Framework(
        "nist-800-53",
        "NIST SP 800-53 Rev. 5",
        "Related requirements of the FSBP controls in the AWS Security Hub user guide",
        {nist: "" for control in FSBP.values() for nist in control.nist},
    ),
}


def expand(controls: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """A rule's controls with the CIS AWS and NIST ids its FSBP controls map to, each framework sorted.

    Raises ValueError for an unknown framework or control id, and for CIS AWS or NIST ids given by hand.
    """
    given = {framework: tuple(ids) for framework, ids in controls.items()}
    unknown = sorted(set(given) - set(FRAMEWORKS))
    if unknown:
        raise ValueError(f"unknown frameworks {unknown}; known: {sorted(FRAMEWORKS)}")
    derived = sorted({"cis-aws", "nist-800-53"} & set(given))
    if derived:
        raise ValueError(f"{derived} ids come from the rule's aws-fsbp controls; do not list them by hand")
    for framework, ids in given.items():
        missing = [i for i in ids if i not in FRAMEWORKS[framework].controls]
        if missing:
            raise ValueError(f"{framework} has no controls {missing}")
    fsbp = given.get("aws-fsbp", ())
    merged = dict(given)
    cis = sorted({c for i in fsbp for c in FSBP[i].cis_aws}, key=_numeric)
    nist = sorted({n for i in fsbp for n in FSBP[i].nist})
    if cis:
        merged["cis-aws"] = tuple(cis)
    if nist:
        merged["nist-800-53"] = tuple(nist)
    return {framework: merged[framework] for framework in FRAMEWORKS if merged.get(framework)}


def _numeric(control_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in control_id.split("."))
