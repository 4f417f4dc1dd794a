"""Renderings of a check result: a rich table (default), JSON, SARIF 2.1.0, JUnit XML and PR-comment markdown."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlstack import __version__
from mlstack.check.findings import CheckResult, Finding, StackResult
from mlstack.console import ByWidth
from mlstack.report_formats import junit_document, markdown_cell, sarif_log
from mlstack.simulate.catalog import gate_rules
from policies.framework import EnforcementLevel, Rule

# GitHub code scanning ranks security alerts by this score (0-10).
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_STATUS_STYLE = {"fail": "bold red", "warn": "yellow", "waived": "dim"}
# GitHub comments hold 65536 characters; keep well under it with room for the header and summary.
MARKDOWN_MAX_ROWS = 60
MARKDOWN_MAX_MESSAGE = 160


def _message(finding: Finding) -> str:
    return finding.violation.message


def _level(rule: Rule) -> str:
    return rule.level.value


def render_table(result: CheckResult, console: Console) -> None:
    for stack in result.stacks:
        if stack.findings:
            console.print(ByWidth(partial(_wide_table, stack), partial(_narrow_table, stack)))
        verdict = "[bold red]FAIL[/]" if stack.count("fail") else "[green]PASS[/]"
        console.print(
            f"{verdict} {stack.stack}: {stack.count('fail')} mandatory, {stack.count('warn')} advisory, "
            f"{stack.count('waived')} waived ({stack.policies} policies, {stack.simulation_checks} simulation checks, "
            f"{stack.resources} resources)"
        )
    for waiver in result.unused_waivers:
        console.print(f"[yellow]note:[/] waiver entry {waiver.index} ({waiver.policy}) matched no violation")


def _title(stack: StackResult) -> str:
    return (
        f"{stack.stack}: {stack.policies} policies and {stack.simulation_checks} simulation checks "
        f"over {stack.resources} resources ({stack.source})"
    )


def _detail(finding: Finding) -> str:
    # Messages and names carry values from stack files (tags, regexes), shown literally, not as markup.
    detail = escape(_message(finding))
    if finding.waiver is not None:
        detail += f"\n[dim]waived until {finding.waiver.expires}: {escape(finding.waiver.reason)}[/]"
    return detail


def _status(finding: Finding) -> str:
    return f"[{_STATUS_STYLE[finding.status]}]{finding.status}[/]"


def _wide_table(stack: StackResult) -> Table:
    table = Table(title=_title(stack), title_justify="left", show_lines=False)
    for column in ("status", "policy", "severity", "resource", "violation"):
        table.add_column(column, overflow="fold")
    for finding in stack.findings:
        table.add_row(
            _status(finding),
            f"{finding.rule.id}\n[dim]{escape(finding.rule.title)}[/]",
            finding.rule.severity.value,
            escape(finding.resource_name),
            _detail(finding),
        )
    return table


def _narrow_table(stack: StackResult) -> Table:
    """One cell per finding, each field on its own line, so that names and ARNs keep their lines."""
    table = Table(title=_title(stack), title_justify="left", show_lines=True)
    table.add_column("status", no_wrap=True)
    table.add_column("policy, resource and violation", overflow="fold")
    for finding in stack.findings:
        table.add_row(
            _status(finding),
            f"{finding.rule.id} ({finding.rule.severity.value}) [dim]{escape(finding.rule.title)}[/]\n"
            f"[bold]{escape(finding.resource_name)}[/]\n{_detail(finding)}",
        )
    return table


def _finding_json(finding: Finding) -> dict[str, Any]:
    rule = finding.rule
    waiver = finding.waiver
    return {
        "policy": rule.id,
        "title": rule.title,
        "severity": rule.severity.value,
        "level": finding.violation.level.value,
        "status": finding.status,
        "urn": finding.violation.urn,
        "resource": finding.resource_name,
        "message": _message(finding),
        "remediation": rule.remediation,
        "location": {"file": finding.source, "line": finding.line},
        "waiver": None
        if waiver is None
        else {
            "index": waiver.index,
            "reason": waiver.reason,
            "owner": waiver.owner,
            "expires": waiver.expires.isoformat(),
        },
    }


def render_json(result: CheckResult) -> str:
    document = {
        "pack": result.pack,
        "passed": not result.failed,
        "stacks": [
            {
                "stack": s.stack,
                "source": s.source,
                "resources": s.resources,
                "policies": s.policies,
                "simulationChecks": s.simulation_checks,
                "counts": {k: s.count(k) for k in ("fail", "warn", "waived")},
                "findings": [_finding_json(f) for f in s.findings],
            }
            for s in result.stacks
        ],
        "unusedWaivers": [w.index for w in result.unused_waivers],
    }
    return json.dumps(document, indent=2) + "\n"


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.id.replace("-", ""),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {
            "text": f"{rule.why}\n\nRemediation: {rule.remediation}",
            "markdown": f"{rule.why}\n\n**Remediation:** {rule.remediation}",
        },
        "defaultConfiguration": {"level": "error" if rule.level is EnforcementLevel.MANDATORY else "warning"},
        "properties": {
            "tags": ["security", rule.domain, *getattr(rule, "control_tags", list)()],
            "security-severity": _SECURITY_SEVERITY[rule.severity.value],
            "precision": "high",
        },
    }


def render_sarif(result: CheckResult) -> str:
    index = {rule.id: i for i, rule in enumerate(gate_rules())}
    results = []
    for finding in result.findings:
        level = "error" if finding.violation.level is EnforcementLevel.MANDATORY else "warning"
        fingerprint = hashlib.sha256(
            f"{finding.rule.id}|{finding.violation.urn}|{finding.violation.message}".encode()
        ).hexdigest()
        entry: dict[str, Any] = {
            "ruleId": finding.rule.id,
            "ruleIndex": index[finding.rule.id],
            "level": level,
            "message": {"text": f"[{finding.stack}] {finding.resource_name}: {_message(finding)}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.source, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": finding.line},
                    },
                    "logicalLocations": [
                        {"fullyQualifiedName": finding.violation.urn or finding.stack, "kind": "resource"}
                    ],
                }
            ],
            "partialFingerprints": {"mlstackFinding/v1": fingerprint},
        }
        if finding.waiver is not None:
            entry["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"{finding.waiver.reason} (owner {finding.waiver.owner}, "
                    f"expires {finding.waiver.expires.isoformat()})",
                }
            ]
        results.append(entry)
    driver = {
        "name": "mlstack-check",
        "version": __version__,
        "informationUri": "https://github.com/mlstack/mlstack/blob/main/docs/policies.md",
        "rules": [_sarif_rule(rule) for rule in gate_rules()],
    }
    return sarif_log(
        driver,
        results,
        originalUriBaseIds={"%SRCROOT%": {"uri": "file:///"}},
        automationDetails={"id": f"mlstack-check/{'+'.join(s.stack for s in result.stacks)}/"},
    )


def render_junit(result: CheckResult) -> str:
    suites = ET.Element("testsuites", name="mlstack check")
    total = failures = skipped = 0
    for stack in result.stacks:
        by_rule: dict[str, list[Finding]] = {}
        for finding in stack.findings:
            by_rule.setdefault(finding.rule.id, []).append(finding)
        suite = ET.SubElement(suites, "testsuite", name=f"{result.pack}.{stack.stack}")
        suite_failures = suite_skipped = 0
        for rule in gate_rules():
            case = ET.SubElement(
                suite, "testcase", classname=f"{stack.stack}.{rule.domain}", name=f"{rule.id} {rule.title}"
            )
            findings = by_rule.get(rule.id, [])
            failing = [f for f in findings if f.status == "fail"]
            if failing:
                suite_failures += 1
                failure = ET.SubElement(
                    case, "failure", type=rule.severity.value, message=f"{len(failing)} violation(s)"
                )
                failure.text = (
                    "\n".join(f"{f.resource_name} ({f.source}:{f.line}): {_message(f)}" for f in failing)
                    + f"\nRemediation: {rule.remediation}"
                )
            elif findings and all(f.status == "waived" for f in findings):
                suite_skipped += 1
                ET.SubElement(
                    case,
                    "skipped",
                    message="waived: " + "; ".join(f.waiver.reason for f in findings if f.waiver),
                )
            others = [f for f in findings if f.status != "fail"]
            if others:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"{f.status}: {f.resource_name}: {_message(f)}" for f in others)
        suite.set("tests", str(len(gate_rules())))
        suite.set("failures", str(suite_failures))
        suite.set("skipped", str(suite_skipped))
        suite.set("errors", "0")
        total += len(gate_rules())
        failures += suite_failures
        skipped += suite_skipped
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("skipped", str(skipped))
    return junit_document(suites)


def _cell(text: str) -> str:
    return markdown_cell(text, MARKDOWN_MAX_MESSAGE)


def render_markdown(result: CheckResult) -> str:
    verdict = "❌ mandatory violations" if result.failed else "✅ no mandatory violation"
    lines = [
        f"### mlstack check: {verdict}",
        "",
        "| stack | resources | policies | mandatory | advisory | waived |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in result.stacks:
        lines.append(
            f"| {s.stack} | {s.resources} | {s.policies} | {s.count('fail')} | {s.count('warn')} | {s.count('waived')} |"
        )
    order = {"fail": 0, "warn": 1, "waived": 2}
    findings = sorted(result.findings, key=lambda f: (order[f.status], f.stack, f.rule.id))
    if findings:
        lines += [
            "",
            "| | stack | policy | resource | violation |",
            "| --- | --- | --- | --- | --- |",
        ]
        icon = {"fail": "❌", "warn": "⚠️", "waived": "💤"}
        for finding in findings[:MARKDOWN_MAX_ROWS]:
            note = f" (waived: {finding.waiver.reason})" if finding.waiver else ""
            lines.append(
                f"| {icon[finding.status]} | {finding.stack} | `{finding.rule.id}` {_cell(finding.rule.title)} "
                f"| `{finding.resource_name}` | {_cell(_message(finding) + note)} |"
            )
        if len(findings) > MARKDOWN_MAX_ROWS:
            lines.append(
                f"\n…and {len(findings) - MARKDOWN_MAX_ROWS} more; run `mlstack check --all` for the full list."
            )
    lines += ["", "<sub>Policies and remediation: docs/policies.md. Waivers: policies/waivers.yaml.</sub>"]
    return "\n".join(lines) + "\n"


TEXT_RENDERERS: dict[str, Callable[[CheckResult], str]] = {
    "json": render_json,
    "sarif": render_sarif,
    "junit": render_junit,
    "markdown": render_markdown,
}
