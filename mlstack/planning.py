"""Plans for the commands that read them (cost, graph): validate every stack first, then run each offline."""

from __future__ import annotations

from mlstack.plan.recorder import Plan, run_program
from mlstack.project import Project
from mlstack.spec import PlatformSpec


def plan_stacks(project: Project, stacks: list[str]) -> list[tuple[PlatformSpec, Plan]]:
    """Each stack's spec and recorded plan. Raises SpecError before running anything if one stack is bad."""
    loaded = [project.load(stack) for stack in stacks]
    return [(spec, run_program(project.program, config, spec)) for config, spec in loaded]
