"""Compliant and non-compliant cases for every policy, keyed by policy id.

A non-compliant case takes a real recorded plan and mutates one resource (or removes some), the way a bad
change to a component would; a compliant case is the shipped plan itself, or a real resource mutated into
another compliant shape. ``tests/test_policies.py`` runs them and fails for any policy without both kinds.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mlstack.check.engine import Violation, evaluate
from mlstack.plan.recorder import RecordedResource
from policies.catalog import ALL_RULES, RULES_BY_ID
from policies.framework import matches
from policies.waiving import pack_waivers
from tests.plans import PROJECT, plan_of

Mutation = Callable[[RecordedResource], None]


@dataclass(frozen=True)
class Case:
    """One case: the stack's plan, optionally changed, and whether the policy must pass on it."""

    stack: str
    compliant: bool
    note: str
    target_type: str | None = None
    target_name: str = ""
    mutate: Mutation | None = None
    drop: bool = False
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A resource to add next to the mutated target (built from it), for rules about relations.
    sibling: Callable[[RecordedResource], RecordedResource] | None = None

    @property
    def id(self) -> str:
        return f"{self.stack}-{'ok' if self.compliant else 'bad'}-{self.note}".replace(" ", "_")


def ok(stack: str, note: str = "shipped", **kwargs: Any) -> Case:
    """The policy passes on this stack (as shipped, or with a compliant mutation given in kwargs)."""
    return Case(stack=stack, compliant=True, note=note, **kwargs)


def bad(stack: str, note: str, target_type: str, mutate: Mutation, name: str = "", **kwargs: Any) -> Case:
    """The policy fails once the first resource of ``target_type`` (whose name contains ``name``) is mutated."""
    return Case(
        stack=stack,
        compliant=False,
        note=note,
        target_type=target_type,
        target_name=name,
        mutate=mutate,
        **kwargs,
    )


def dropped(stack: str, note: str, target_type: str, name: str = "") -> Case:
    """The policy fails once every resource of ``target_type`` (whose name contains ``name``) is removed."""
    return Case(stack=stack, compliant=False, note=note, target_type=target_type, target_name=name, drop=True)


@dataclass
class Outcome:
    violations: list[Violation]
    target_urns: list[str]
    resources: list[RecordedResource]


def run_case(policy_id: str, case: Case) -> Outcome:
    """Apply the case to a deep copy of the recorded plan and run one policy over it."""
    resources = [copy.deepcopy(r) for r in plan_of(case.stack).resources]
    targets: list[RecordedResource] = []
    if case.target_type is not None:
        targets = [r for r in resources if r.type == case.target_type and case.target_name in r.name]
        assert targets, f"{case.stack} plan has no {case.target_type} named *{case.target_name}*"
        if case.drop:
            resources = [r for r in resources if r not in targets]
        else:
            targets = targets[:1]
            assert case.mutate is not None
            case.mutate(targets[0])
            if case.sibling is not None:
                resources.append(case.sibling(targets[0]))
    config, _ = PROJECT.load(case.stack)
    violations = evaluate(resources, config.wire_config(), [RULES_BY_ID[policy_id]], case.config)
    # The shipped plan is judged with its waivers, as `mlstack check` does; a mutated target never is.
    target_urns = {t.urn for t in targets}
    waivers = pack_waivers(ALL_RULES)
    violations = [
        v
        for v in violations
        if v.urn in target_urns or not any(w.covers(v.policy_id, v.urn, case.stack) for w in waivers)
    ]
    return Outcome(violations, [t.urn for t in targets], resources)


def subjects_present(policy_id: str, resources: list[RecordedResource]) -> bool:
    rule = RULES_BY_ID[policy_id]
    return any(matches(r.type, rule.subjects) for r in resources)


# ---------------------------------------------------------------------------------------------------------
# Mutation helpers: small, named changes to wire-format inputs.


def set_input(key: str, value: Any) -> Mutation:
    """Set an input to a literal: it then comes from no other resource, so its property dependencies go too."""

    def apply(resource: RecordedResource) -> None:
        resource.inputs[key] = value
        resource.property_dependencies.pop(key, None)

    return apply


def del_input(key: str) -> Mutation:
    def apply(resource: RecordedResource) -> None:
        resource.inputs.pop(key, None)
        resource.property_dependencies.pop(key, None)

    return apply


def set_path(path: str, value: Any) -> Mutation:
    """Set a nested input, e.g. ``spec.limits.nvidia.com/gpu`` written as a list of keys joined by '|'."""

    def apply(resource: RecordedResource) -> None:
        keys = path.split("|")
        node = resource.inputs
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return apply


def del_path(path: str) -> Mutation:
    def apply(resource: RecordedResource) -> None:
        keys = path.split("|")
        node = resource.inputs
        for key in keys[:-1]:
            node = node[key]
        node.pop(keys[-1], None)

    return apply


def edit_json(key: str, edit: Callable[[Any], Any]) -> Mutation:
    """Change an input the SDK sends as a JSON string (policy documents, provider objects)."""

    def apply(resource: RecordedResource) -> None:
        document = json.loads(resource.inputs[key])
        resource.inputs[key] = json.dumps(edit(document) or document)

    return apply


def edit_statements(key: str, edit: Callable[[list[dict[str, Any]]], Any]) -> Mutation:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        edited = edit(document["Statement"])
        if edited is not None:
            document["Statement"] = edited
        return document

    return edit_json(key, change)


def set_option(**options: Any) -> Mutation:
    def apply(resource: RecordedResource) -> None:
        for name, value in options.items():
            setattr(resource, name, value)

    return apply


def both(*mutations: Mutation) -> Mutation:
    def apply(resource: RecordedResource) -> None:
        for mutation in mutations:
            mutation(resource)

    return apply


def sibling_of(resource: RecordedResource, type_: str, name: str, inputs: dict[str, Any]) -> RecordedResource:
    """A new resource of ``type_`` next to ``resource`` (same parent and provider), with ``inputs``."""
    urn = (
        resource.urn.rsplit("::", 2)[0] + f"::{resource.urn.split('::')[2].rsplit('$', 1)[0]}${type_}::{name}"
    )
    return replace(
        resource, urn=urn, type=type_, name=name, inputs=inputs, dependencies=[], property_dependencies={}
    )


def renamed(resource: RecordedResource, name: str) -> RecordedResource:
    return replace(resource, name=name)
