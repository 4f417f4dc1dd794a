"""Customer-managed KMS keys, one per purpose, with rotation on and an explicit key policy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import policy_document
from components.options import stateful

KEY_PURPOSES = ("data", "registry", "logs", "cluster")


@dataclass(frozen=True)
class EncryptionKeysArgs:
    env: Environment


class EncryptionKeys(pulumi.ComponentResource):
    """One KMS key per purpose (data, registry, logs, cluster secrets). Rotation is always on.

    Outputs: ``<purpose>_key_arn`` for each purpose.
    """

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:keys:EncryptionKeys", name, None, opts)
        env = args.env
        self.keys: dict[str, aws.kms.Key] = {}
        for purpose in KEY_PURPOSES:
            key = aws.kms.Key(
                f"{name}-{purpose}",
                description=f"mlstack {env.name} {purpose} key",
                enable_key_rotation=True,
                deletion_window_in_days=30 if env.tier.hardened else 7,
                policy=policy_document(_key_policy_statements(env, purpose)),
                opts=stateful(self, env),
            )
            aws.kms.Alias(
                f"{name}-{purpose}-alias",
                name=f"alias/mlstack/{env.name}/{purpose}",
                target_key_id=key.key_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.keys[purpose] = key
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


def _key_policy_statements(env: Environment, purpose: str) -> list[dict[str, object]]:
    root = f"arn:aws:iam::{env.account_id}:root"
    statements: list[dict[str, object]] = [
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if purpose == "logs":
        # CloudWatch Logs encrypts log groups itself, only for log groups in this account and region.
        statements.append(
            {
                "Sid": "CloudWatchLogsInThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{env.region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{env.region}:{env.account_id}:*"
                    }
                },
            }
        )
    return statements
