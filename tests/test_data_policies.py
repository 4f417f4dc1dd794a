"""Least privilege: every policy document in every plan (shipped stacks and the grants program) is parsed;
no statement allows the '*' action, and no Allow statement on data actions names the '*' resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mlstack.plan.recorder import Plan
from tests.plans import STACKS, plan_of
from tests.programs import program_plan

# Actions that read, write or decrypt data (or images).
DATA_ACTION_PREFIXES = (
    "s3:Get",
    "s3:Put",
    "s3:Delete",
    "s3:List",
    "s3:Replicate",
    "s3:Abort",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncrypt",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
    "ecr:InitiateLayerUpload",
    "ecr:CompleteLayerUpload",
    "ecr:BatchImportUpstreamImage",
)


def _documents(plan: Plan) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for resource in plan.resources:
        for value in resource.inputs.values():
            if isinstance(value, str) and '"Statement"' in value:
                yield resource.urn, resource.type, json.loads(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _plans() -> list[Plan]:
    return [plan_of(stack) for stack in STACKS] + [program_plan(stack) for stack in STACKS]


@pytest.mark.parametrize("index", range(2 * len(STACKS)))
def test_no_wildcard_actions_or_data_resources(index: int) -> None:
    plan = _plans()[index]
    checked = 0
    for urn, type_, document in _documents(plan):
        # In a key policy '"Resource": "*"' means the key itself; the permission boundary is a ceiling
        # (services, not grants). Both are checked by their own tests.
        key_policy = type_ == "aws:kms/key:Key"
        boundary = urn.endswith("-permission-boundary")
        for statement in _as_list(document["Statement"]):
            actions = _as_list(statement.get("Action", []))
            assert "*" not in actions, (urn, statement)
            if statement["Effect"] != "Allow" or key_policy or boundary:
                continue
            checked += 1
            data = [a for a in actions if a.startswith(DATA_ACTION_PREFIXES)]
            if not data:
                continue
            assert not any("*" in a for a in data), (urn, statement)
            assert "*" not in _as_list(statement.get("Resource", [])), (urn, statement)
            assert "NotResource" not in statement and "NotAction" not in statement, (urn, statement)
    assert checked


def test_grant_program_has_grants_of_every_kind() -> None:
    # The check above is only meaningful if the grants program really produced each kind of grant.
    names = {
        p.inputs["name"].split("-search")[0]
        for p in program_plan("prod").by_type("aws:iam/rolePolicy:RolePolicy")
    }
    assert {"s3-datasets-read", "s3-artifacts-write", "s3-models-read", "ecr-pull", "ecr-push"} <= names
