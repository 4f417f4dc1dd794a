"""Fixtures shared by every test: the recorded plans of the shipped stacks."""

from __future__ import annotations

import pytest

from mlstack.plan.recorder import Plan
from tests.plans import STACKS, plan_of


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    """The plan of every shipped stack (dev, staging, prod), keyed by stack name."""
    return {stack: plan_of(stack) for stack in STACKS}


@pytest.fixture(scope="session", params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    """Each shipped stack's plan in turn, for tests that must hold in every environment."""
    return plan_of(request.param)
