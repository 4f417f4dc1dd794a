"""Plans for the commands that read them (cost, graph): validate every stack first, then run each offline."""

from __future__ import annotations

from mlstack.plan.recorder import ACCOUNT_PROJECT, Plan, run_program
from mlstack.project import Project
from mlstack.spec import PlatformSpec
from mlstack.spec.loader import StackConfig


def plan_stacks(project: Project, stacks: list[str]) -> list[tuple[PlatformSpec, Plan]]:
    """Each stack's spec and recorded plan. Raises SpecError before running anything if one stack is bad."""
    loaded = [project.load(stack) for stack in stacks]
    return [(spec, run_program(project.program, config, spec)) for config, spec in loaded]


def plan_foundation(project: Project, config: StackConfig, spec: PlatformSpec) -> Plan | None:
    """The account foundation's plan for one stack (``account/``), or None when the stack file has no
    ``deployment`` section (the foundation then refuses to run) or the project ships no foundation."""
    if spec.deployment is None or not project.account_program.is_file():
        return None
    return run_program(project.account_program, config, spec, ACCOUNT_PROJECT)
