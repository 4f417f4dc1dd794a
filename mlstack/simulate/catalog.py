"""Every simulation check, collected from the domain modules; a new check needs only its decorated function."""

from __future__ import annotations

import importlib
from functools import cache

from mlstack.simulate.framework import SimFunction, registered
from policies.catalog import ALL_RULES
from policies.framework import Rule

# The domain modules, in the order a deploy meets their failures.
MODULES = (
    "rendering",
    "schema",
    "workloads",
    "ordering",
    "admission",
    "capacity",
    "access",
    "clients",
    "network",
    "metrics",
)


@cache
def all_checks() -> tuple[tuple[Rule, SimFunction], ...]:
    """Every check with its function, in id order."""
    for module in MODULES:
        importlib.import_module(f"mlstack.simulate.{module}")
    return tuple(registered())


def sim_rules() -> dict[str, Rule]:
    """Simulation rules by id (for waivers and report formats)."""
    return {rule.id: rule for rule, _ in all_checks()}


@cache
def gate_rules() -> tuple[Rule, ...]:
    """Everything the offline gate checks: the policy pack's rules, then the simulation's."""
    return (*ALL_RULES, *(rule for rule, _ in all_checks()))


def gate_rules_by_id() -> dict[str, Rule]:
    return {rule.id: rule for rule in gate_rules()}
