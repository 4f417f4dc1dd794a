"""Helpers for tests that read recorded plans."""

from __future__ import annotations

import copy
import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

from mlstack.plan.recorder import Plan, run_program
from mlstack.project import Project

ROOT = Path(__file__).resolve().parent.parent
PROJECT = Project(ROOT)
STACKS = PROJECT.stack_names()


@cache
def plan_of(stack: str) -> Plan:
    """The recorded plan of a shipped stack, computed once per test session."""
    config, spec = PROJECT.load(stack)
    return run_program(PROJECT.program, config, spec)


def policy_json(value: Any) -> dict[str, Any]:
    """A policy document from a recorded input: a JSON string in wire format."""
    return json.loads(value) if isinstance(value, str) else value


def plan_with_sections(stack: str, **sections: object) -> Plan:
    """The plan of a shipped stack with whole top-level spec sections replaced (computed once per variant)."""
    return _plan_with_sections(stack, json.dumps(sections, sort_keys=True))


@cache
def _plan_with_sections(stack: str, sections: str) -> Plan:
    from mlstack.spec.loader import SPEC_KEY, parse_spec

    config, _ = PROJECT.load(stack)
    values = copy.deepcopy(config.values)
    values[SPEC_KEY].update(json.loads(sections))
    changed = dataclasses.replace(config, values=values)
    return run_program(
        PROJECT.program, changed, parse_spec(values[SPEC_KEY], stack, config.values["aws:region"])
    )
