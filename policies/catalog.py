"""Every rule of the pack, in id order; each carries the pulumi_policy object it is built into.

Rules are collected from the domain modules, so a new rule needs only its decorated function.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from policies.framework import Rule

__all__ = [
    "ALL_RULES",
    "PACK_ENFORCEMENT_LEVEL",
    "PACK_NAME",
    "RULES_BY_ID",
    "Rule",
    "pack_defaults",
]

PACK_NAME = "mlstack-guardrails"
PACK_ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY
DOMAINS = (
    "environment",
    "iam",
    "keys",
    "cost",
    "gpu",
    "network",
    "cluster",
    "storage",
    "registry",
    "workloads",
    "data_services",
    "sagemaker",
    "messaging",
    "deploy",
    "compute",
    "logs",
    "events",
    "observability",
)


def _collect() -> list[Rule]:
    rules: list[Rule] = []
    for domain in DOMAINS:
        module = importlib.import_module(f"policies.{domain}")
        rules += [
            value for value in vars(module).values() if isinstance(value, Rule) and value.domain == domain
        ]
    ids = [rule.id for rule in rules]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"policy ids must be unique; repeated: {duplicated}")
    return sorted(rules, key=lambda rule: rule.id)


ALL_RULES: list[Rule] = _collect()
RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in ALL_RULES}


def pack_defaults() -> dict[str, dict[str, Any]]:
    """The pack's configuration as the engine would see it with no config file: each schema default."""
    return {rule.id: rule.defaults() for rule in ALL_RULES if rule.defaults()}
