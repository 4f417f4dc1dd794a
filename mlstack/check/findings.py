"""What a check found: findings per stack, with waivers applied and each finding placed in the stack file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import EnforcementLevel

from mlstack.check.engine import Violation
from mlstack.check.waivers import Waiver
from mlstack.spec.loader import SPEC_KEY
from policies.framework import Rule

# Which stack-file section declares the resources of a component module (the URN's type chain) ...
_SECTION_OF_MODULE = {
    "governance": "budgets",
    "network": "network",
    "cluster": "cluster",
    "gpu": "gpu_pools",
    "storage": "storage",
    "registry": "registry",
    "teams": "teams",
    "orchestrator": "orchestrator",
    "vectordb": "vector_db",
    "inference": "inference",
}
# ... and which section a stack-level finding without a resource belongs to, by rule domain.
_SECTION_OF_DOMAIN = {
    "cost": "budgets",
    "gpu": "gpu_pools",
    "network": "network",
    "cluster": "cluster",
    "storage": "storage",
    "registry": "registry",
    "workloads": "teams",
    "data_services": "orchestrator",
}


@dataclass(frozen=True)
class Finding:
    """One violation, with its rule, where the stack file declares the resource, and its waiver if any."""

    stack: str
    source: str
    line: int
    rule: Rule
    violation: Violation
    waiver: Waiver | None

    @property
    def status(self) -> str:
        """``waived``, ``fail`` (mandatory) or ``warn`` (advisory)."""
        if self.waiver is not None:
            return "waived"
        return "fail" if self.violation.level is EnforcementLevel.MANDATORY else "warn"

    @property
    def resource_name(self) -> str:
        urn = self.violation.urn
        return urn.rsplit("::", 1)[-1] if urn else "(stack)"


@dataclass
class StackResult:
    stack: str
    source: str
    resources: int
    policies: int
    # Deploy-simulation checks run after the policies (0 when the simulation was skipped).
    simulation_checks: int = 0
    findings: list[Finding] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)


@dataclass
class CheckResult:
    pack: str
    stacks: list[StackResult]
    unused_waivers: list[Waiver] = field(default_factory=list)
    # Expired or soon-expiring waivers of the checked stacks (mlstack.check.waivers.waiver_notices).
    waiver_notices: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.stacks for f in s.findings]

    @property
    def failed(self) -> bool:
        """True when any mandatory violation is not waived: the check's exit code is then 1."""
        return any(f.status == "fail" for f in self.findings)


class StackFileLines:
    """Lines of a stack file that declare things: the spec's sections and every ``name:`` entry in them."""

    def __init__(self, path: Path):
        self.platform_line = 1
        self.sections: dict[str, int] = {}
        self.names: dict[str, list[tuple[str, int]]] = {}
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return
        config = _child(root, "config")
        platform = _child(config, SPEC_KEY) or _child(config, SPEC_KEY.split(":", 1)[1])
        if platform is None or not isinstance(platform, yaml.MappingNode):
            return
        self.platform_line = _key_line(config, platform)
        for key, value in platform.value:
            self.sections[key.value] = key.start_mark.line + 1
            self.names[key.value] = list(_names(value))

    def line_for(self, urn: str | None, rule: Rule) -> int:
        """The line declaring the resource: its entry's ``name:`` if one matches, else its section, else the spec."""
        if urn is None:
            section = _SECTION_OF_DOMAIN.get(rule.domain)
            return self.sections.get(section or "", self.platform_line)
        type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
        logical = f"-{urn.rsplit('::', 1)[-1]}-"
        modules = [part.split(":")[1] for part in type_chain.split("$") if part.startswith("mlstack:")]
        section = next((_SECTION_OF_MODULE[m] for m in reversed(modules) if m in _SECTION_OF_MODULE), None)
        candidates = self.names.get(section, []) if section else [n for ns in self.names.values() for n in ns]
        matching = [(name, line) for name, line in candidates if f"-{name}-" in logical]
        if matching:
            return max(matching, key=lambda pair: len(pair[0]))[1]
        if section and section in self.sections:
            return self.sections[section]
        return self.platform_line


def _child(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def _key_line(mapping: Any, value: Any) -> int:
    for k, v in mapping.value:
        if v is value:
            return int(k.start_mark.line) + 1
    return 1


def _names(node: Any) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == "name" and isinstance(v, yaml.ScalarNode):
                found.append((str(v.value), v.start_mark.line + 1))
            else:
                found += _names(v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _names(item)
    return found
