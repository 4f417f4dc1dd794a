"""How a policy is written: one rule per function, with a stable id, a severity, a level and a remediation.

A rule is a plain generator. A resource rule receives the :class:`ResourceValidationArgs` CrossGuard passes
(``args.props`` holds the resource's inputs in wire format: camelCase keys, numbers as floats) and yields one
message per violation. A stack rule receives :class:`StackValidationArgs` and yields ``(message, urn)``.
Yielding nothing means compliant; a resource of another type is simply not applicable.

The decorators turn a rule into a :class:`Rule` that carries both the metadata (for docs, SARIF and the
offline runner) and the real ``pulumi_policy`` policy object that goes into the ``PolicyPack``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlstack.spec.base import Tier
from policies.controls import expand

__all__ = [
    "EnforcementLevel",
    "Rule",
    "Severity",
    "StackContext",
    "Tier",
    "as_list",
    "config_of",
    "json_value",
    "resource_rule",
    "stack_context",
    "stack_rule",
]

PLATFORM_CONFIG_KEY = "mlstack:platform"
# Where the config of a policy sits when nobody set it: the pack's defaults. The engine fills these in from
# the schema's "default" values too, but a rule must not depend on that to stay safe.
_HIDDEN_DEFAULTS = "__mlstack_defaults__"

ResourceCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[StackValidationArgs, Mapping[str, Any]], Iterable[tuple[str, str | None]]]


@dataclass(frozen=True)
class Rule:
    """One policy: its metadata and the ``pulumi_policy`` object the pack is built from."""

    id: str
    title: str
    why: str
    severity: Severity
    level: EnforcementLevel
    remediation: str
    kind: str  # "resource" or "stack"
    subjects: tuple[str, ...]
    domain: str
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Framework key (policies.controls.FRAMEWORKS) -> the ids of the controls this rule serves there.
    controls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # True when the rule depends on mlstack's own naming or environment spec (the mlstack:platform config):
    # it is skipped for any other Pulumi program, where it would only report mlstack's conventions.
    mlstack_only: bool = False
    policy: Policy = field(init=False, repr=False, compare=False)

    @property
    def description(self) -> str:
        return f"{self.title}. {self.why}"

    def control_tags(self) -> list[str]:
        """The rule's controls as ``framework:id`` tags (SARIF rule properties, engine policy tags)."""
        return [f"{framework}:{control}" for framework, ids in self.controls.items() for control in ids]

    def defaults(self) -> dict[str, Any]:
        """The configuration the pack ships: each config property's schema default."""
        return {name: schema["default"] for name, schema in self.config.items() if "default" in schema}


def config_of(rule: Rule, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Configuration for one evaluation: the pack's defaults overlaid by what the engine or the user passed."""
    merged = rule.defaults()
    merged.update({k: v for k, v in (given or {}).items() if k != "enforcementLevel"})
    return merged


def matches(resource_type: str, subjects: Iterable[str]) -> bool:
    """Whether a type token is one of ``subjects`` (exact tokens, or prefixes ending in ``*``)."""
    return any(resource_type.startswith(s[:-1]) if s.endswith("*") else resource_type == s for s in subjects)


def _schema(config: Mapping[str, Mapping[str, Any]]) -> PolicyConfigSchema | None:
    if not config:
        return None
    return PolicyConfigSchema(properties={k: dict(v) for k, v in config.items()})


def _module_domain(fn: Callable[..., Any]) -> str:
    return fn.__module__.rsplit(".", 1)[-1]


def build_policy(rule: Rule, policy_type: type[Policy], validate: Callable[..., Any]) -> Policy:
    """The pulumi_policy object of ``rule`` (name = stable id, its metadata) that runs ``validate``."""
    return policy_type(  # type: ignore[call-arg]
        name=rule.id,
        description=rule.description,
        validate=validate,
        enforcement_level=rule.level,
        config_schema=_schema(rule.config),
        display_name=rule.title,
        severity=rule.severity,
        tags=[rule.domain, *rule.control_tags()],
        remediation_steps=rule.remediation,
    )


def _in_scope(rule: Rule) -> bool:
    """Whether ``rule`` applies to the program being checked: mlstack-only rules need the platform config."""
    return not rule.mlstack_only or is_mlstack_program()


def _attach_policy(rule: Rule, policy_type: type[Policy], validate: Callable[..., None]) -> Rule:
    """Build the pulumi_policy object of ``rule`` and keep it on the rule."""
    object.__setattr__(rule, "policy", build_policy(rule, policy_type, validate))
    return rule


def resource_rule(
    rule_id: str,
    *,
    types: Iterable[str],
    title: str,
    why: str,
    severity: Severity,
    remediation: str,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    controls: Mapping[str, Iterable[str]] | None = None,
    mlstack_only: bool = False,
) -> Callable[[ResourceCheck], Rule]:
    """Declare a rule checked on each resource of ``types`` as the engine registers it.

    ``types`` are Pulumi type tokens; a token ending in ``*`` matches by prefix (``aws:*`` is every AWS type).
    """
    metadata = {
        "title": title,
        "why": why,
        "severity": severity,
        "remediation": remediation,
        "level": level,
        "controls": expand(controls or {}),
        "mlstack_only": mlstack_only,
    }

    def wrap(check: ResourceCheck) -> Rule:
        rule = Rule(
            id=rule_id,
            kind="resource",
            subjects=tuple(types),
            domain=_module_domain(check),
            config=dict(config or {}),
            **metadata,  # type: ignore[arg-type]
        )

        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if not matches(args.resource_type, rule.subjects) or not _in_scope(rule):
                return
            for message in check(args, config_of(rule, args.get_config())):
                report_violation(message, None)

        validate.__name__ = check.__name__
        return _attach_policy(rule, ResourceValidationPolicy, validate)

    return wrap


def stack_rule(
    rule_id: str,
    *,
    subjects: Iterable[str],
    title: str,
    why: str,
    severity: Severity,
    remediation: str,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    controls: Mapping[str, Iterable[str]] | None = None,
    mlstack_only: bool = False,
) -> Callable[[StackCheck], Rule]:
    """Declare a rule over the whole stack; ``subjects`` names the types whose relations it checks."""
    metadata = {
        "title": title,
        "why": why,
        "severity": severity,
        "remediation": remediation,
        "level": level,
        "controls": expand(controls or {}),
        "mlstack_only": mlstack_only,
    }

    def wrap(check: StackCheck) -> Rule:
        rule = Rule(
            id=rule_id,
            kind="stack",
            subjects=tuple(subjects),
            domain=_module_domain(check),
            config=dict(config or {}),
            **metadata,  # type: ignore[arg-type]
        )

        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            if not _in_scope(rule):
                return
            for message, urn in check(args, config_of(rule, args.get_config())):
                report_violation(message, urn)

        validate.__name__ = check.__name__
        return _attach_policy(rule, StackValidationPolicy, validate)

    return wrap


# ---------------------------------------------------------------------------------------------------------
# What a rule may know about the stack beyond its resources.


@dataclass(frozen=True)
class StackContext:
    """The environment the engine is previewing, read from the stack config it hands to every analyzer.

    Unknown tier means the strictest tier: a pack that cannot tell where it runs fails closed.
    """

    tier: Tier
    environment: str
    account_id: str
    region: str
    platform: Mapping[str, Any]

    @property
    def hardened(self) -> bool:
        return self.tier.hardened


def is_mlstack_program() -> bool:
    """Whether the engine is checking an mlstack program: its stack config carries ``mlstack:platform``."""
    return pulumi.runtime.get_config(PLATFORM_CONFIG_KEY) is not None


def stack_context() -> StackContext:
    """The stack's ``mlstack:platform`` config, as the engine passes it to the policy pack (PULUMI_CONFIG)."""
    raw = pulumi.runtime.get_config(PLATFORM_CONFIG_KEY)
    platform: Mapping[str, Any] = {}
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        platform = parsed if isinstance(parsed, dict) else {}
    try:
        tier = Tier(str(platform.get("tier")))
    except ValueError:
        tier = Tier.PROD
    return StackContext(
        tier=tier,
        environment=str(platform.get("environment", "")),
        account_id=str(platform.get("account_id", "")),
        region=str(platform.get("region", "")),
        platform=platform,
    )


# ---------------------------------------------------------------------------------------------------------
# Reading wire-format values.


def json_value(value: Any) -> Any:
    """A value that the SDK may send as a JSON string (policies, provider objects) as plain data."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_list(value: Any) -> list[Any]:
    """IAM-style 'one or many': a single value becomes a one-element list, None an empty one.

    The engine's props are read-only proxies (``Sequence``/``Mapping``, not ``list``/``dict``), so the test is
    on the abstract types.
    """
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def plain(value: Any) -> Any:
    """A props value with the engine's proxies turned back into plain lists and dicts (for messages, JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM policy document given as a JSON string or a mapping."""
    parsed = json_value(document)
    if not isinstance(parsed, Mapping):
        return []
    return [s for s in as_list(parsed.get("Statement")) if isinstance(s, Mapping)]


def principals(statement: Mapping[str, Any]) -> list[str]:
    """Every principal a statement names, whatever its form ("*", {"AWS": [...]}, {"Service": ...})."""
    principal = statement.get("Principal")
    if isinstance(principal, Mapping):
        return [str(v) for value in principal.values() for v in as_list(value)]
    return [str(v) for v in as_list(principal)]


def resources_of(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    """The stack's resources of the given types, in the order the engine listed them."""
    return [r for r in args.resources if r.resource_type in types]


def depends_on(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """Whether ``resource``'s input ``prop`` was computed from ``target`` (the engine's property dependencies)."""
    return any(dep.urn == target.urn for dep in resource.property_dependencies.get(prop, []))


def region_of(resource: PolicyResource) -> str:
    """The AWS region a resource lives in: its own ``region`` input (pulumi-aws v7), else its provider's region,
    else the environment's."""
    provider_props = resource.provider.props if resource.provider is not None else {}
    return str(resource.props.get("region") or provider_props.get("region") or stack_context().region)


def label(resource: PolicyResource | ResourceValidationArgs) -> str:
    """How a resource is named in a message: its logical name and type."""
    return f"{resource.name} ({resource.resource_type})"


def iter_pairs(mapping: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(mapping, Mapping):
        yield from ((str(k), v) for k, v in mapping.items())
