"""Helpers for tests that read recorded plans."""

from __future__ import annotations

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
