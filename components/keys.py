"""Customer-managed KMS keys, one per purpose, with rotation on and an explicit key policy per purpose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import policy_document
from components.options import child, stateful

KeyPurpose = Literal["data", "registry", "logs", "cluster", "alerts"]
KEY_PURPOSES: tuple[KeyPurpose, ...] = ("data", "registry", "logs", "cluster")

# Longest window AWS allows: a key scheduled for deletion by mistake can be recovered for a month.
HARDENED_DELETION_WINDOW_DAYS = 30
DEV_DELETION_WINDOW_DAYS = 7

# Services that use each key on behalf of principals in the account (kms:ViaService). The data key also
# serves the platform's databases (orchestrator metadata, vector store), which RDS encrypts, and the
# RDS-managed master-user secrets of those databases, which Secrets Manager encrypts with it: Secrets Manager
# calls GenerateDataKey and Decrypt on the caller's behalf (Secrets Manager user guide,
# security-encryption.html, "kms:ViaService ... secretsmanager.<Region>.amazonaws.com").
# The data key also encrypts the cluster's EBS volumes (the gp3 StorageClass's kmsKeyId, components/cluster.py):
# EC2 uses it on behalf of the EBS CSI driver's role, which creates the volumes (EBS user guide
# ebs-encryption-requirements.html, "Permissions for users": kms:CreateGrant with kms:GrantIsForAWSResource,
# Decrypt, DescribeKey, GenerateDataKeyWithoutPlainText, ReEncrypt).
_VIA_SERVICES: dict[KeyPurpose, tuple[str, ...]] = {
    "data": ("s3", "rds", "secretsmanager", "ec2"),
    "registry": ("ecr",),
    "cluster": ("eks",),
    "logs": (),
    # The alert topic's key (components.observability.Alerts, not one of EncryptionKeys' own): SNS encrypts and
    # decrypts messages on behalf of the publisher (Alertmanager's role).
    "alerts": ("sns",),
}

# Managing the key, but not using it: crypto operations go only through the services above.
_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
]
_USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


@dataclass(frozen=True)
class EncryptionKeysArgs:
    env: Environment


class EncryptionKeys(pulumi.ComponentResource):
    """One KMS key per purpose (data, registry, logs, cluster secrets), each with an alias
    ``alias/mlstack/<env>/<purpose>``. Rotation is always on. In staging and prod keys are protected, retained
    on delete and have the longest deletion window (30 days).

    Outputs: ``<purpose>_key_arn`` for each purpose.
    """

    data_key_arn: pulumi.Output[str]
    registry_key_arn: pulumi.Output[str]
    logs_key_arn: pulumi.Output[str]
    cluster_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:keys:EncryptionKeys", name, None, opts)
        env = args.env
        self.keys: dict[str, aws.kms.Key] = {
            purpose: create_key(self, f"{name}-{purpose}", env=env, purpose=purpose)
            for purpose in KEY_PURPOSES
        }
        self.data_key_arn = self.keys["data"].arn
        self.registry_key_arn = self.keys["registry"].arn
        self.logs_key_arn = self.keys["logs"].arn
        self.cluster_key_arn = self.keys["cluster"].arn
        self.register_outputs(
            {
                "data_key_arn": self.data_key_arn,
                "registry_key_arn": self.registry_key_arn,
                "logs_key_arn": self.logs_key_arn,
                "cluster_key_arn": self.cluster_key_arn,
            }
        )


def create_key(
    parent: pulumi.Resource,
    logical_name: str,
    *,
    env: Environment,
    purpose: KeyPurpose,
    region: str | None = None,
    alias_suffix: str = "",
    provider: aws.Provider | None = None,
) -> aws.kms.Key:
    """A rotating key for one purpose with its policy and alias, as a child of ``parent``.

    ``region`` and ``provider`` place the key outside the environment's region (the replica of the models
    bucket needs a key in its own region). The alias is
    ``alias/mlstack/<env>/<purpose><alias_suffix>``.
    """
    key = aws.kms.Key(
        logical_name,
        description=f"mlstack {env.name} {purpose}{alias_suffix} key",
        enable_key_rotation=True,
        deletion_window_in_days=(
            HARDENED_DELETION_WINDOW_DAYS if env.tier.hardened else DEV_DELETION_WINDOW_DAYS
        ),
        policy=policy_document(key_policy_statements(env, purpose, region or env.region)),
        opts=stateful(parent, env, provider=provider),
    )
    aws.kms.Alias(
        f"{logical_name}-alias",
        name=f"alias/mlstack/{env.name}/{purpose}{alias_suffix}",
        target_key_id=key.key_id,
        opts=child(parent, provider=provider),
    )
    return key


def key_policy_statements(env: Environment, purpose: KeyPurpose, region: str) -> list[dict[str, Any]]:
    """The key policy of a ``purpose`` key in ``region``.

    The account administers the key through IAM but uses it only through the purpose's services; no statement
    names the ``*`` principal. In a key policy ``"Resource": "*"`` means "this key".
    """
    root = f"arn:aws:iam::{env.account_id}:root"
    statements: list[dict[str, Any]] = [
        {
            # Without it IAM policies could not manage the key and it would become unmanageable.
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": _ADMIN_ACTIONS,
            "Resource": "*",
        }
    ]
    services = _VIA_SERVICES[purpose]
    if services:
        # S3, RDS, ECR and EKS use the key on behalf of the calling principal (never as a service principal),
        # and hand it to their back ends through grants that only AWS resources may hold.
        via = {
            "kms:ViaService": [f"{service}.{region}.amazonaws.com" for service in services],
            "kms:CallerAccount": env.account_id,
        }
        statements += [
            {
                "Sid": "UseOnlyThroughServices",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": _USE_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": via},
            },
            {
                "Sid": "GrantsOnlyForServices",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ]
        if purpose == "registry":
            # ECR retires the grants it made when it creates a repository from a template with its creation
            # role, as the ECR-managed key policy allows. kms:GrantIsForAWSResource does not apply to
            # RetireGrant, hence its own statement.
            statements.append(
                {
                    "Sid": "EcrRetiresItsGrants",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:RetireGrant",
                    "Resource": "*",
                    "Condition": {"StringEquals": via},
                }
            )
    if purpose == "logs":
        # CloudWatch Logs uses the key as itself, and only for log groups in this account and region.
        statements.append(
            {
                "Sid": "CloudWatchLogsInThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": _USE_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{env.account_id}:*"
                    }
                },
            }
        )
    if purpose == "alerts":
        # AWS Budgets publishes to the alert topic as itself: an SSE-KMS topic needs the publishing service to
        # generate data keys and decrypt with the topic's key (SNS developer guide, sns-key-management.html,
        # "Enable compatibility between event sources from AWS services and encrypted topics"), scoped to this
        # account's budgets (the aws:SourceAccount condition of budgets-sns-policy.html).
        statements.append(
            {
                "Sid": "BudgetsPublishesAlerts",
                "Effect": "Allow",
                "Principal": {"Service": "budgets.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
            }
        )
    return statements
