"""Queue rules: SQS queues encrypted at rest and their policies closed to anonymous principals."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from policies.framework import Severity, as_list, resource_rule, statements

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"


@resource_rule(
    "MLS-SQS-001",
    types=[QUEUE],
    title="Queues are encrypted at rest",
    why="Messages (interruption notices, job events) sit in the queue until read; SSE-KMS with the platform's "
    "key, or SQS-managed SSE where only AWS services write and a key policy grant would add nothing, keeps "
    "them encrypted.",
    severity=Severity.MEDIUM,
    remediation="Set kms_master_key_id to a platform key, or sqs_managed_sse_enabled=True.",
    controls={"aws-fsbp": ["SQS.1"]},
)
def queue_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not args.props.get("kmsMasterKeyId") and args.props.get("sqsManagedSseEnabled") is not True:
        yield "neither kmsMasterKeyId nor sqsManagedSseEnabled is set"


@resource_rule(
    "MLS-SQS-002",
    types=[QUEUE_POLICY],
    title="Queue policies allow no anonymous principal without a condition",
    why="A queue that anyone may send to or read from leaks messages and lets an outsider inject fake events "
    "(a forged interruption notice drains a GPU node).",
    severity=Severity.HIGH,
    remediation="Allow service principals (events.amazonaws.com, sqs.amazonaws.com) or named roles; scope any "
    "'*' principal with aws:SourceArn or aws:SourceAccount.",
)
def queue_policy_not_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for index, statement in enumerate(statements(args.props.get("policy"))):
        principal = statement.get("Principal")
        anonymous = principal == "*" or (
            isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))
        )
        if statement.get("Effect") == "Allow" and anonymous and not statement.get("Condition"):
            yield f"statement {statement.get('Sid', f'#{index}')} allows anyone"


TOPIC = "aws:sns/topic:Topic"


@resource_rule(
    "MLS-SNS-001",
    types=[TOPIC],
    title="Topics are encrypted with a customer-managed key",
    why="Alert and budget notifications name the platform's pods, namespaces and spend; SSE-KMS with a key the "
    "platform manages (its policy, rotation and audit) keeps them encrypted at rest. The AWS-managed "
    "alias/aws/sns key cannot be shared with AWS Budgets or limited by a key policy.",
    severity=Severity.MEDIUM,
    remediation="Set kms_master_key_id to a customer-managed key (components.observability.Alerts creates one "
    "with rotation on).",
    controls={"aws-fsbp": ["SNS.1"]},
)
def topic_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    key = args.props.get("kmsMasterKeyId")
    if not key:
        yield "kmsMasterKeyId is not set: the topic is not encrypted at rest"
    elif isinstance(key, str) and key.endswith("alias/aws/sns"):
        yield "kmsMasterKeyId is the AWS-managed alias/aws/sns key"
