"""How a simulation check is written and run.

A check is a generator over a :class:`World` (one recorded plan and everything derived from it) that yields
``(message, urn)`` pairs: the message says what would fail at deploy time and why, the URN names the resource
of the plan to fix (``None`` for the stack). Each check is also a :class:`policies.framework.Rule` of kind
``simulation``, so its findings flow through the same waivers, report formats and exit codes as the policy
pack's. Simulation rules are not part of the CrossGuard pack: they need the rendered charts and the whole
plan, which only the offline gate has.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from mlstack.check.engine import Violation
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.spec import PlatformSpec
from mlstack.spec.base import Tier
from policies.framework import Rule

SimResult = Iterable[tuple[str, str | None]]
SimFunction = Callable[["World"], SimResult]

# Registered checks in declaration order; the catalog imports the domain modules that fill it.
_REGISTRY: list[tuple[Rule, SimFunction]] = []


def sim_check(
    rule_id: str,
    *,
    title: str,
    why: str,
    severity: Severity,
    remediation: str,
    subjects: Iterable[str] = (),
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> Callable[[SimFunction], Rule]:
    """Declare a simulation check. ``rule_id`` is ``MLS-SIM-<DOMAIN>-NNN``; ``subjects`` are the type tokens or
    kinds whose relations it checks (documentation only)."""

    def wrap(check: SimFunction) -> Rule:
        rule = Rule(
            id=rule_id,
            title=title,
            why=why,
            severity=severity,
            level=level,
            remediation=remediation,
            kind="simulation",
            subjects=tuple(subjects),
            domain=check.__module__.rsplit(".", 1)[-1],
        )
        if any(existing.id == rule_id for existing, _ in _REGISTRY):
            raise ValueError(f"simulation check id {rule_id} is declared twice")
        _REGISTRY.append((rule, check))
        return rule

    return wrap


def registered() -> list[tuple[Rule, SimFunction]]:
    """Every declared check with its function, in id order."""
    return sorted(_REGISTRY, key=lambda pair: pair[0].id)


@dataclass
class World:
    """One recorded plan and what the simulation derives from it, each derived view computed once.

    Domain modules add their derived views as functions memoised with :func:`derived`, so that two checks
    that need the rendered charts render them once.
    """

    plan: Plan
    spec: PlatformSpec
    project_root: Path
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tier(self) -> Tier:
        return self.spec.tier

    @property
    def stack(self) -> str:
        return self.plan.stack

    def resources(self, *types: str) -> list[RecordedResource]:
        """The plan's resources of the given type tokens (all custom resources when none are given)."""
        if not types:
            return [r for r in self.plan.resources if r.custom]
        wanted = set(types)
        return [r for r in self.plan.resources if r.type in wanted]

    def by_urn(self) -> dict[str, RecordedResource]:
        return self.cached("by_urn", lambda: {r.urn: r for r in self.plan.resources})

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def derived(fn: Callable[[World], Any]) -> Callable[[World], Any]:
    """Memoise a derived view of the world (rendered objects, evaluated policies) per world."""
    key = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(world: World) -> Any:
        return world.cached(key, lambda: fn(world))

    return wrapper


def run_checks(world: World, checks: Iterable[tuple[Rule, SimFunction]] | None = None) -> list[Violation]:
    """Every finding of ``checks`` (all registered checks by default) over ``world``, in check order."""
    violations: list[Violation] = []
    for rule, check in checks if checks is not None else registered():
        for message, urn in check(world):
            violations.append(Violation(rule.id, message, urn, rule.level))
    return violations


def unique(items: Iterable[tuple[str, str | None]]) -> Iterator[tuple[str, str | None]]:
    """Each ``(message, urn)`` once, in first-seen order (a pod template seen by two checks reports once)."""
    seen: set[tuple[str, str | None]] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item
