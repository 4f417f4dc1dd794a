"""The pack outside mlstack: a small independent Pulumi program (tests/outside) with insecure resources is
recorded like a stack and checked by every rule of the pack; each insecure setting is caught, and no rule that
depends on mlstack's own naming or spec reports anything."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, cast

from mlstack.check.engine import Violation, evaluate
from mlstack.plan.recorder import run_program
from mlstack.spec.loader import StackConfig
from policies.catalog import ALL_RULES, RULES_BY_ID

PROGRAM = Path(__file__).parent / "outside" / "__main__.py"


class _Account:
    """The two facts the recording monitor needs (mocked account and region): no mlstack spec exists."""

    account_id = "123456789012"
    region = "us-east-1"


@cache
def _violations() -> tuple[Violation, ...]:
    config = StackConfig(source="tests/outside", stack="outside", values={"aws:region": "us-east-1"})
    plan = run_program(PROGRAM, config, cast(Any, _Account()))
    return tuple(evaluate(plan.resources, config.wire_config(), ALL_RULES))


def _caught(policy_id: str, name: str) -> bool:
    return any(v.policy_id == policy_id and v.urn and v.urn.endswith(f"::{name}") for v in _violations())


def test_insecure_resources_are_caught() -> None:
    expected = [
        ("MLS-S3-008", "reports"),  # force_destroy
        ("MLS-S3-009", "reports-policy"),  # public read
        ("MLS-KMS-001", "reports-key"),  # no rotation
        ("MLS-NET-003", "open-ssh"),  # 0.0.0.0/0 ingress
        ("MLS-RDS-001", "orders-db"),  # unencrypted
        ("MLS-RDS-002", "orders-db"),  # public
        ("MLS-RDS-004", "orders-db"),  # no deletion protection (an unknown tier is treated as prod)
        ("MLS-RDS-005", "orders-db"),  # password in state, no IAM auth
        ("MLS-SQS-001", "jobs"),  # unencrypted queue
        ("MLS-IAM-007", "deployer"),  # PassRole + RunInstances on *
        ("MLS-IAM-008", "deployer"),  # unscoped PassRole
        ("MLS-K8S-011", "web"),  # :latest
        ("MLS-K8S-013", "web"),  # privileged
        ("MLS-K8S-014", "web"),  # hostNetwork
        ("MLS-K8S-022", "sandbox"),  # no Pod Security label
    ]
    missed = [pair for pair in expected if not _caught(*pair)]
    assert not missed, f"the pack missed: {missed}"


def test_mlstack_only_rules_stay_silent() -> None:
    noisy = sorted({v.policy_id for v in _violations() if RULES_BY_ID[v.policy_id].mlstack_only})
    assert not noisy, f"mlstack-only rules reported on a foreign program: {noisy}"
    assert any(rule.mlstack_only for rule in ALL_RULES)
