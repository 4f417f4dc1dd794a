"""Cost guardrails: a budget that someone hears about, GPU families per tier, and a GPU ceiling per environment."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    EnforcementLevel,
    Severity,
    as_list,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
)
from policies.gpu import NODE_POOL, gpu_limit, instance_families, is_gpu_pool

BUDGET = "aws:budgets/budget:Budget"

DEFAULT_GPU_FAMILIES = {
    "dev": ["g4dn", "g5", "g6"],
    "staging": ["g5", "g6", "g6e"],
    "prod": ["g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"],
}
DEFAULT_MAX_GPUS = {"dev": 8, "staging": 32, "prod": 256}
DEFAULT_MAX_MONTHLY_BUDGET = {"dev": 2000, "staging": 20000, "prod": 150000}


@stack_rule(
    "MLS-COST-001",
    subjects=[BUDGET],
    title="The environment has a monthly cost budget scoped to it",
    why="A budget filtered on the environment tag is the only alarm that fires when GPUs are left running; "
    "without the filter it measures the whole account.",
    severity=Severity.HIGH,
    mlstack_only=True,
    remediation="Keep the Guardrails budget: budget_type COST, time_unit MONTHLY, cost filter TagKeyValue "
    "user:environment$<env>.",
)
def budget_present(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    environment = stack_context().environment
    scope = f"user:environment${environment}"
    budgets = [
        b
        for b in resources_of(args, BUDGET)
        if b.props.get("budgetType") == "COST" and b.props.get("timeUnit") == "MONTHLY"
    ]
    if not budgets:
        yield "the stack has no monthly COST budget", None
        return
    scoped = [
        b
        for b in budgets
        for f in as_list(b.props.get("costFilters"))
        if isinstance(f, Mapping) and f.get("name") == "TagKeyValue" and scope in as_list(f.get("values"))
    ]
    if not scoped:
        yield f"no monthly budget filters on the tag {scope}", budgets[0].urn


@resource_rule(
    "MLS-COST-002",
    types=[BUDGET],
    title="Budgets notify someone, including on the forecast",
    why="A budget without subscribers is silent; a forecasted alert warns before the money is spent.",
    severity=Severity.MEDIUM,
    remediation="Set budgets.notify_emails or budgets.sns_topic_arn in the stack file; the Guardrails component "
    "adds a FORECASTED 100% notification.",
)
def budget_notifies(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    notifications = [n for n in as_list(args.props.get("notifications")) if isinstance(n, Mapping)]
    if not notifications:
        yield "the budget has no notifications"
        return
    silent = [
        i
        for i, n in enumerate(notifications)
        if not n.get("subscriberEmailAddresses") and not n.get("subscriberSnsTopicArns")
    ]
    if silent:
        yield f"notifications {silent} have no subscriber"
    if not any(n.get("notificationType") == "FORECASTED" for n in notifications):
        yield "no FORECASTED notification"


@resource_rule(
    "MLS-COST-003",
    types=[BUDGET],
    title="The monthly budget stays under the tier's ceiling",
    why="A budget far above what the tier should cost hides runaway spend; the ceiling per tier is the "
    "organisation's, set in the pack config.",
    severity=Severity.LOW,
    level=EnforcementLevel.ADVISORY,
    remediation="Lower budgets.monthly_limit_usd, or raise maxMonthlyBudgetUsd for the tier after FinOps review.",
    config={
        "maxMonthlyBudgetUsd": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "default": DEFAULT_MAX_MONTHLY_BUDGET,
            "description": "Highest monthly budget (USD) per tier.",
        }
    },
)
def budget_under_ceiling(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    tier = str(stack_context().tier)
    ceiling = (config.get("maxMonthlyBudgetUsd") or {}).get(tier)
    amount = float(args.props.get("limitAmount") or 0)
    if ceiling is not None and amount > float(ceiling):
        yield f"limit {amount:.2f} USD exceeds the {tier} ceiling of {float(ceiling):.2f} USD"


@resource_rule(
    "MLS-COST-004",
    types=[NODE_POOL],
    title="GPU pools use only the instance families allowed for the tier",
    why="An H100 node (p5) costs about 30x an L4 node (g6); dev and staging are limited to the families their "
    "workloads need.",
    severity=Severity.HIGH,
    remediation="Change gpu_pools[].instance_types in the stack file, or extend allowedGpuFamilies for the tier.",
    config={
        "allowedGpuFamilies": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": DEFAULT_GPU_FAMILIES,
            "description": "Instance families (g6, p5, ...) a GPU pool may use, per tier.",
        }
    },
)
def gpu_families_allowed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not is_gpu_pool(args.props):
        return
    tier = str(stack_context().tier)
    allowed = set((config.get("allowedGpuFamilies") or {}).get(tier, []))
    families = instance_families(args.props)
    if families is None:
        yield "the pool does not restrict instance families or types"
        return
    denied = sorted(f for f in families if f not in allowed)
    if denied:
        yield f"families {denied} are not allowed in the {tier} tier (allowed: {sorted(allowed)})"


@stack_rule(
    "MLS-COST-005",
    subjects=[NODE_POOL],
    title="Total GPUs across pools stay under the environment's ceiling",
    why="Each pool's limit caps one pool; the sum is what the environment can spend at once, and it must fit "
    "the tier's ceiling and the account's GPU quota.",
    severity=Severity.HIGH,
    remediation="Lower gpu_pools[].max_gpus, or raise maxGpus for the tier in the pack config.",
    config={
        "maxGpus": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "default": DEFAULT_MAX_GPUS,
            "description": "Highest total GPU limit over all pools of an environment, per tier.",
        }
    },
)
def gpu_ceiling(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    tier = str(stack_context().tier)
    ceiling = (config.get("maxGpus") or {}).get(tier)
    pools = [p for p in resources_of(args, NODE_POOL) if is_gpu_pool(p.props)]
    total = sum(gpu_limit(p.props) or 0 for p in pools)
    if ceiling is not None and total > int(ceiling):
        yield f"GPU pools may hold {total:g} GPUs, above the {tier} ceiling of {ceiling}", None
