"""Helpers for deploy-simulation tests: a world per shipped stack, a mutable copy of its plan, one check's findings.

A regression test takes a shipped plan, puts a reviewed defect back into a copy (``mutable_plan`` +
``resource``), and expects the check to flag it; the clean plan must stay clean.
"""

from __future__ import annotations

import copy
from datetime import date

from mlstack.check.engine import Violation
from mlstack.check.run import WAIVERS_FILE
from mlstack.check.waivers import Waiver, load_waivers
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate.catalog import all_checks, gate_rules_by_id
from mlstack.simulate.framework import World, run_checks
from tests.plans import PROJECT, plan_of


def world_of(stack: str, plan: Plan | None = None) -> World:
    """A fresh world (nothing derived yet) over ``plan``, or over the shipped stack's recorded plan."""
    _, spec = PROJECT.load(stack)
    return World(plan or plan_of(stack), spec, PROJECT.root)


def mutable_plan(stack: str) -> Plan:
    """A deep copy of a shipped stack's plan, to put a defect back into."""
    return copy.deepcopy(plan_of(stack))


def resource(plan: Plan, type_: str, name_contains: str = "") -> RecordedResource:
    """The one resource of ``type_`` whose logical name contains ``name_contains``."""
    matches = [r for r in plan.resources if r.type == type_ and name_contains in r.name]
    assert len(matches) == 1, (
        f"expected one {type_} named *{name_contains}*, found {[r.name for r in matches]}"
    )
    return matches[0]


def findings(world: World, *rule_ids: str) -> list[Violation]:
    """The findings of the named checks (every check when none are named) over ``world``."""
    checks = [(rule, fn) for rule, fn in all_checks() if not rule_ids or rule.id in rule_ids]
    assert not rule_ids or len(checks) == len(rule_ids), f"unknown check id among {rule_ids}"
    return run_checks(world, checks)


def shipped_waivers() -> list[Waiver]:
    """The project's waivers (policies/waivers.yaml), read and checked as `mlstack check` reads them."""
    return load_waivers(
        PROJECT.root / WAIVERS_FILE, gate_rules_by_id(), date.today(), source=str(WAIVERS_FILE)
    )


def unwaived(stack: str, violations: list[Violation]) -> list[Violation]:
    """The ``violations`` of ``stack`` that no shipped waiver covers (what `mlstack check` fails on). Only for
    findings over a shipped plan: a test that puts a defect back asserts on the raw findings."""
    waivers = shipped_waivers()
    return [v for v in violations if not any(w.covers(v.policy_id, v.urn, stack) for w in waivers)]
