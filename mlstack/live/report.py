"""Results of live checks and their output formats: table, json, sarif, junit and markdown.

The format names, the SARIF envelope, the JUnit document and markdown cells come from
mlstack/report_formats.py, shared with `mlstack check`, so a pipeline treats offline and live findings alike.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import partial
from typing import Literal
from xml.etree import ElementTree as ET

from rich.markup import escape
from rich.table import Table

from mlstack.console import ByWidth
from mlstack.failures import FINDINGS, INCOMPLETE, OK
from mlstack.report_formats import FORMATS, junit_document, markdown_cell, sarif_log

Format = Literal["table", "json", "sarif", "junit", "markdown"]


class Status(StrEnum):
    """Outcome of one check. NOT_CHECKED means the answer is unknown (usually a denied call), never a pass."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    WARN = "warn"
    FAIL = "fail"
    NOT_CHECKED = "not checked"


STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.NOT_CHECKED: "magenta"}


@dataclass(frozen=True)
class Rule:
    """A kind of check with a stable id, shown once in SARIF and docs."""

    id: str
    title: str


@dataclass(frozen=True)
class Result:
    """One check on one subject (a resource ARN, a pool, a quota code) and what to do about it."""

    rule: str
    subject: str
    status: Status
    message: str
    remediation: str = ""


@dataclass(frozen=True)
class Report:
    """The results of one command run, with the rules they refer to."""

    tool: str
    title: str
    rules: tuple[Rule, ...]
    results: tuple[Result, ...]

    def counts(self) -> Counter[Status]:
        return Counter(r.status for r in self.results)

    @property
    def failed(self) -> bool:
        return any(r.status is Status.FAIL for r in self.results)

    @property
    def incomplete(self) -> bool:
        return any(r.status is Status.NOT_CHECKED for r in self.results)

    def exit_code(self) -> int:
        """1 when a check failed, 3 when nothing failed but something could not be checked, else 0."""
        if self.failed:
            return FINDINGS
        return INCOMPLETE if self.incomplete else OK

    def summary(self) -> str:
        counts = self.counts()
        return ", ".join(f"{counts.get(s, 0)} {s}" for s in Status)


def table(report: Report, *, passed: bool = True) -> ByWidth:
    """The results as a rich table, stacked below NARROW_WIDTH columns; ``passed=False`` leaves passing rows
    out (audits of large accounts)."""
    return ByWidth(partial(_wide_table, report, passed), partial(_narrow_table, report, passed))


def _shown(report: Report, passed: bool) -> list[Result]:
    return [r for r in report.results if passed or r.status is not Status.PASS]


def _wide_table(report: Report, passed: bool) -> Table:
    grid = Table(title=report.title, title_justify="left", show_lines=False)
    for column in ("status", "check", "subject", "detail", "remediation"):
        grid.add_column(column, overflow="fold")
    for result in _shown(report, passed):
        grid.add_row(
            f"[{STYLE[result.status]}]{result.status}[/]",
            *(escape(text) for text in (result.rule, result.subject, result.message, result.remediation)),
        )
    grid.caption = report.summary()
    return grid


def _narrow_table(report: Report, passed: bool) -> Table:
    """One cell per result with its fields on their own lines: names, ARNs and commands keep their lines."""
    grid = Table(title=report.title, title_justify="left", show_lines=True)
    grid.add_column("status", no_wrap=True)
    grid.add_column("check, subject, detail and remediation", overflow="fold")
    for result in _shown(report, passed):
        lines = [f"{escape(result.rule)}: [bold]{escape(result.subject)}[/]", escape(result.message)]
        if result.remediation:
            lines.append(f"[dim]fix:[/] {escape(result.remediation)}")
        grid.add_row(f"[{STYLE[result.status]}]{result.status}[/]", "\n".join(lines))
    grid.caption = report.summary()
    return grid


def to_json(report: Report) -> str:
    document = {
        "tool": report.tool,
        "title": report.title,
        "summary": {str(s): report.counts().get(s, 0) for s in Status},
        "results": [{**asdict(r), "status": str(r.status)} for r in report.results],
    }
    return json.dumps(document, indent=2) + "\n"


_SARIF_LEVEL = {Status.FAIL: "error", Status.WARN: "warning"}


def to_sarif(report: Report) -> str:
    """SARIF 2.1.0: failures are errors, warnings warnings, unchecked items results of kind 'open'."""
    results = []
    for result in report.results:
        if result.status is Status.PASS:
            continue
        text = result.message + (f" Remediation: {result.remediation}" if result.remediation else "")
        entry: dict[str, object] = {
            "ruleId": result.rule,
            "message": {"text": text},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": result.subject}]}],
        }
        if result.status is Status.NOT_CHECKED:
            entry.update(kind="open", level="none")
        else:
            entry.update(kind="fail", level=_SARIF_LEVEL[result.status])
        results.append(entry)
    driver = {
        "name": f"mlstack {report.tool}",
        "informationUri": "https://github.com/mlstack/mlstack",
        "rules": [{"id": rule.id, "shortDescription": {"text": rule.title}} for rule in report.rules],
    }
    return sarif_log(driver, results)


def to_junit(report: Report) -> str:
    """JUnit XML: one test case per result; failures fail, unchecked items are skipped, warnings pass."""
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name=f"mlstack {report.tool}",
        tests=str(len(report.results)),
        failures=str(counts.get(Status.FAIL, 0)),
        skipped=str(counts.get(Status.NOT_CHECKED, 0)),
        errors="0",
    )
    for result in report.results:
        case = ET.SubElement(suite, "testcase", classname=result.rule, name=result.subject)
        detail = result.message + (f"\nRemediation: {result.remediation}" if result.remediation else "")
        if result.status is Status.FAIL:
            ET.SubElement(case, "failure", message=result.message).text = detail
        elif result.status is Status.NOT_CHECKED:
            ET.SubElement(case, "skipped", message=result.message)
        elif result.status is Status.WARN:
            ET.SubElement(case, "system-out").text = f"warning: {detail}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    return junit_document(suites)


def to_markdown(report: Report) -> str:
    """A markdown table of everything that did not pass, sized for a pull-request comment."""
    lines = [f"### {report.title}", "", report.summary(), ""]
    rows = [r for r in report.results if r.status is not Status.PASS]
    if not rows:
        lines.append("Every check passed.")
        return "\n".join(lines) + "\n"
    lines += ["| status | check | subject | detail | remediation |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.status} | {r.rule} | {markdown_cell(r.subject)} | {markdown_cell(r.message)} | {markdown_cell(r.remediation)} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


RENDERERS = {"json": to_json, "sarif": to_sarif, "junit": to_junit, "markdown": to_markdown}


def render(report: Report, fmt: str) -> str:
    """The report as text in one of the machine formats (everything but 'table')."""
    try:
        return RENDERERS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}") from None
