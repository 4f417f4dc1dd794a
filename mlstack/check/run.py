"""The check as the CLI runs it: plan each stack, evaluate the pack with its config, apply the waivers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from mlstack.check.engine import evaluate
from mlstack.check.findings import CheckResult, Finding, StackFileLines, StackResult
from mlstack.check.waivers import Waiver, load_waivers, waiver_notices
from mlstack.plan.recorder import Plan, run_program
from mlstack.planning import plan_foundation
from mlstack.project import Project
from mlstack.simulate.catalog import all_checks, gate_rules_by_id
from mlstack.simulate.framework import World, run_checks
from mlstack.yaml_loading import safe_load_unique
from policies.catalog import ALL_RULES, PACK_NAME, RULES_BY_ID
from policies.framework import EnforcementLevel, Rule, matches

WAIVERS_FILE = Path("policies") / "waivers.yaml"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "array": (list,),
    "object": (dict,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}
_LEVELS = [level.value for level in EnforcementLevel]


class PolicyConfigError(Exception):
    """A policy config file that cannot be used; the message names the file, the key and the fix."""


def load_policy_config(path: Path) -> dict[str, dict[str, Any]]:
    """Read a config file in Pulumi's ``--policy-pack-config`` shape (JSON or YAML) and check it against the
    pack: known policy ids, known properties of the right JSON type, valid enforcement levels.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyConfigError(f"{path}: cannot read the policy config ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise PolicyConfigError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else safe_load_unique(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyConfigError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PolicyConfigError(
            f"{path}: expected a mapping of policy id to settings, like {{'MLS-ENV-002': ...}}"
        )
    problems: list[str] = []
    config: dict[str, dict[str, Any]] = {}
    for key, value in document.items():
        if key == "all":
            if value not in _LEVELS:
                problems.append(f"'all': '{value}' is not an enforcement level; use one of {_LEVELS}")
            else:
                config["all"] = value
            continue
        rule = RULES_BY_ID.get(str(key))
        if rule is None:
            problems.append(f"'{key}': not a policy of the pack (see docs/policies.md for the ids)")
            continue
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            problems.append(f"'{key}': expected a mapping of settings or an enforcement level")
            continue
        for name, setting in value.items():
            if name == "enforcementLevel":
                if setting not in _LEVELS:
                    problems.append(f"'{key}.enforcementLevel': '{setting}' is not one of {_LEVELS}")
                continue
            schema = rule.config.get(name)
            if schema is None:
                known = ", ".join(sorted(rule.config)) or "none"
                problems.append(f"'{key}.{name}': unknown setting; settings of {key}: {known}")
                continue
            expected = _JSON_TYPES.get(str(schema.get("type")), (object,))
            if not isinstance(setting, expected) or (isinstance(setting, bool) and bool not in expected):
                problems.append(
                    f"'{key}.{name}': expected a JSON {schema.get('type')}, got {type(setting).__name__}"
                )
        config[str(key)] = dict(value)
    if problems:
        raise PolicyConfigError(
            f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the policy config\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return config


def check_stacks(
    project: Project,
    stacks: Sequence[str],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    waivers: Sequence[Waiver] | None = None,
    today: dt.date | None = None,
    simulate: bool = True,
    framework: str | None = None,
) -> CheckResult:
    """Plan each stack afresh (a plan file in build/ may be stale), run every policy over it and, unless
    ``simulate`` is off, the deploy simulation (:mod:`mlstack.simulate`).

    With ``framework`` (a key of policies.controls.FRAMEWORKS) only the rules mapped to that framework run, and
    the deploy simulation (whose checks map to none) is skipped.
    """
    pack_rules = [r for r in ALL_RULES if framework is None or framework in r.controls]
    simulate = simulate and framework is None
    day = today or dt.date.today()
    if waivers is None:
        waivers = load_waivers(
            project.root / WAIVERS_FILE,
            gate_rules_by_id(),
            day,
            source=str(WAIVERS_FILE),
        )
    used: set[int] = set()
    results = []
    for stack in stacks:
        stack_config, spec = project.load(stack)
        plan = run_program(project.program, stack_config, spec)
        violations = evaluate(plan.resources, stack_config.wire_config(), pack_rules, config)
        if simulate:
            violations += run_checks(World(plan, spec, project.root), all_checks())
        # The account foundation (account/) is planned from the same stack file and checked by the same pack.
        foundation = plan_foundation(project, stack_config, spec)
        if foundation is not None:
            violations += evaluate(
                foundation.resources,
                stack_config.wire_config(),
                foundation_rules(pack_rules, foundation),
                config,
            )
        rules = gate_rules_by_id()
        lines = StackFileLines(project.stack_file(stack))
        result = StackResult(
            stack=stack,
            source=stack_config.source,
            resources=len(plan.resources) + (len(foundation.resources) if foundation is not None else 0),
            policies=len(pack_rules),
            simulation_checks=len(all_checks()) if simulate else 0,
        )
        for violation in violations:
            rule = rules[violation.policy_id]
            waiver = next(
                (w for w in waivers if w.honoured_on(day) and w.covers(rule.id, violation.urn, stack)), None
            )
            if waiver is not None:
                used.add(waiver.index)
            result.findings.append(
                Finding(
                    stack=stack,
                    source=stack_config.source,
                    line=lines.line_for(violation.urn, rule),
                    rule=rule,
                    violation=violation,
                    waiver=waiver,
                )
            )
        results.append(result)
    # A waiver for a stack that was not checked is not unused, only out of scope.
    selected = {r.id for r in pack_rules}
    unused = [
        w
        for w in waivers
        if w.index not in used
        and w.honoured_on(day)  # an expired one is reported by waiver_notices instead
        and any(fnmatchcase(s, w.stack) for s in stacks)
        and (framework is None or w.policy in selected)
    ]
    return CheckResult(
        pack=PACK_NAME,
        stacks=results,
        unused_waivers=unused,
        waiver_notices=waiver_notices(waivers, stacks, day),
    )


def foundation_rules(rules: Sequence[Rule], plan: Plan) -> list[Rule]:
    """The rules that apply to the account foundation: every resource rule, and the stack rules about types it
    holds (the boundary and its roles). A stack rule about the platform's budgets, subnets or cluster has no
    subject there and would only report that the foundation is not a platform."""
    types = {r.type for r in plan.resources}
    return [r for r in rules if r.kind == "resource" or any(matches(t, r.subjects) for t in types)]
