"""Waivers in the engine: the pack that ``pulumi preview --policy-pack policies`` runs honours
``policies/waivers.yaml`` with the same meaning as ``mlstack check``.

CrossGuard has no "waived" state, so a waived violation is simply not reported to the engine; ``mlstack check``
keeps showing it as waived. The waivers are applied only to the policies built here for the engine
(``policies/__main__.py``). Each :class:`~policies.framework.Rule` keeps its own unwaived policy, which the
offline engine (``mlstack/check/engine.py``) calls before ``mlstack check`` applies the waivers visibly: one
place per path, never both.

The file is read and checked once, when the pack starts, by the parser ``mlstack check`` uses. A broken file
stops the pack with the parser's message rather than letting it run without waivers. An expired waiver is not
broken: it stops being honoured, so the violation it covered reaches the engine again, in its own stack only,
with a note naming the lapsed entry; other stacks deploy as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlstack.check.waivers import Waiver, WaiverError, load_waivers
from policies.framework import Rule, build_policy

WAIVERS_PATH = Path(__file__).parent / "waivers.yaml"
# How the file is named in messages: the path a reviewer finds it at in the repository.
WAIVERS_SOURCE = "policies/waivers.yaml"

Clock = Callable[[], dt.date]


class PackWaiverError(SystemExit):
    """The pack cannot start because its waiver file is unusable; exits with the parser's message."""


def stack_of(urn: str | None) -> str | None:
    """The stack a URN belongs to: ``urn:pulumi:<stack>::<project>::...``."""
    if not urn or not urn.startswith("urn:pulumi:"):
        return None
    return urn[len("urn:pulumi:") :].split("::", 1)[0] or None


def pack_waivers(
    rules: Iterable[Rule], path: Path = WAIVERS_PATH, today: dt.date | None = None
) -> list[Waiver]:
    """The waivers the engine honours, checked against the pack's policy ids and today's date.

    Raises :class:`PackWaiverError` (a ``SystemExit`` carrying one message: file, entry, field, fix) when the
    file cannot be used, so the engine reports why the pack did not start instead of a traceback.
    """
    # The same file waives findings of the offline deploy simulation (mlstack check); the engine does not run
    # the simulation, so those entries are known ids here and simply never match a violation.
    from mlstack.simulate.catalog import sim_rules

    known = {rule.id for rule in rules} | set(sim_rules())
    try:
        return load_waivers(path, known, today or dt.date.today(), source=WAIVERS_SOURCE)
    except WaiverError as error:
        raise PackWaiverError(f"the policy pack cannot start: {error}") from None


def engine_policies(
    rules: Sequence[Rule], waivers: Sequence[Waiver] | None = None, clock: Clock = dt.date.today
) -> list[Policy]:
    """The pack's policies as the engine runs them: each rule's policy, with waived violations left out.

    ``waivers`` defaults to the pack's waiver file. ``clock`` gives the date each violation is judged on, so a
    waiver that expires while the pack is running stops being honoured.
    """
    if waivers is None:
        waivers = pack_waivers(rules)
    return [_waived(rule, list(waivers), clock) for rule in rules]


def _waived(rule: Rule, waivers: list[Waiver], clock: Clock) -> Policy:
    own = [w for w in waivers if w.policy == rule.id]
    if not own:
        return rule.policy
    policy = rule.policy

    def honoured(urn: str | None, stack: str) -> bool:
        today = clock()
        return any(w.honoured_on(today) and w.covers(rule.id, urn, stack) for w in own)

    def lapsed(message: str, urn: str | None, stack: str) -> str:
        """The violation's message, naming the expired waiver that used to cover it (if one did)."""
        gone = [w for w in own if w.covers(rule.id, urn, stack)]
        if not gone:
            return message
        waiver = gone[0]
        return (
            f"{message} (waiver entry {waiver.index} in {WAIVERS_SOURCE} expired on "
            f"{waiver.expires.isoformat()}: fix the violation, or renew the waiver with a reviewed reason)"
        )

    if isinstance(policy, ResourceValidationPolicy):

        def validate_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> Any:
            def report(message: str, urn: str | None = None) -> None:
                # The engine attributes a resource rule's violation to the resource analyzed.
                subject = urn or args.urn
                stack = stack_of(subject) or ""
                if not honoured(subject, stack):
                    report_violation(lapsed(message, subject, stack), urn)

            return policy.validate(args, report)

        return build_policy(rule, ResourceValidationPolicy, validate_resource)

    assert isinstance(policy, StackValidationPolicy)

    def validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> Any:
        stack = _stack_of_resources(args)

        def report(message: str, urn: str | None = None) -> None:
            subject_stack = stack_of(urn) or stack
            if not honoured(urn, subject_stack):
                report_violation(lapsed(message, urn, subject_stack), urn)

        return policy.validate(args, report)

    return build_policy(rule, StackValidationPolicy, validate_stack)


def _stack_of_resources(args: StackValidationArgs) -> str:
    """The stack a stack rule's violation without a URN is about: that of the stack's resources (every URN of
    one analysis names the same stack), else the stack the engine started the pack for."""
    for resource in args.resources:
        stack = stack_of(resource.urn)
        if stack:
            return stack
    return pulumi.get_stack() or ""
