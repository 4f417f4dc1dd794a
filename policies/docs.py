"""Generate docs/policies.md from the pack: `python -m policies.docs` (tests fail when the file is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from mlstack.check.waivers import EXPIRY_WARNING_DAYS, MAX_WAIVER_DAYS
from policies.catalog import ALL_RULES, PACK_NAME, Rule
from policies.controls import FRAMEWORKS
from policies.coverage import UNCHECKED_TYPES

DOCS_PATH = Path("docs") / "policies.md"
_DOMAIN_TITLES = {
    "environment": "Environment and tiers",
    "iam": "IAM",
    "keys": "KMS keys",
    "cost": "Cost",
    "gpu": "GPU pools",
    "network": "Network",
    "cluster": "EKS cluster and nodes",
    "storage": "S3 storage",
    "registry": "ECR registry",
    "workloads": "Kubernetes",
    "data_services": "Data services",
    "sagemaker": "SageMaker",
    "messaging": "Queues and topics",
    "deploy": "Deploy runner and access host",
    "compute": "CPU pools and system nodes",
    "logs": "Logs",
    "events": "Argo Events",
    "observability": "Metrics stack",
}


def _config(rule: Rule) -> str:
    if not rule.config:
        return ""
    lines = ["", "Config (policy config file or `--config`):", ""]
    for name, schema in rule.config.items():
        lines.append(
            f"- `{name}` ({schema.get('type')}): {schema.get('description', '')} Default: `{schema.get('default')}`."
        )
    return "\n".join(lines) + "\n"


_WAIVERS_SECTION = [
    "## Waivers",
    "",
    "`policies/waivers.yaml` lists accepted violations: each entry names a policy id, a resource URN or glob,",
    "a stack name or glob, a reason, an owner (text; quote numbers) and an expiry date at most",
    f"{MAX_WAIVER_DAYS} days after the day it is checked. Both runs honour the same file with the same",
    "meaning (policy id, URN glob, stack glob, not yet expired); an expired waiver is never honoured.",
    "",
    "- `mlstack check` shows a waived violation as waived, with its reason, and passes.",
    "- The engine run (`pulumi preview --policy-pack policies`, and the GitOps workflows) suppresses a",
    "  waived violation: CrossGuard has no waived state, so the finding is not reported at all. The stack",
    "  is read from the violation's URN (`urn:pulumi:<stack>::...`); a stack policy's violation without a",
    "  URN belongs to the stack of the analysed resources (with none, to the stack the engine runs).",
    "- The pack reads and checks the file once, when it starts. A malformed file stops the pack with one",
    "  message naming the file, entry, field and fix; it never runs without it.",
    "- An expired waiver is not an error: from the day after its date it is no longer honoured, so the",
    "  violations it covered are reported again, in the stacks it names only (the engine's message names",
    "  the lapsed entry). A lapsed prod waiver never blocks a dev check or deploy.",
    "- `mlstack check` warns on stderr about each waiver of the checked stacks that has expired or expires",
    f"  within {EXPIRY_WARNING_DAYS} days: a warning line, not a failure.",
    "",
    "Because a waiver silences the engine, the waiver file is reviewed in pull requests like code: a",
    "change to it is a change to what a deployment is allowed to carry, and its reason must convince the",
    "reviewer.",
]


# Deploy-simulation domains (mlstack/simulate/<module>.py), in the order a deploy meets their failures.
_SIMULATION_TITLES = {
    "rendering": "Rendering",
    "schema": "Schema",
    "workloads": "Workloads",
    "ordering": "Ordering",
}


def _simulation_section() -> list[str]:
    """The deploy simulation's checks (``mlstack check`` runs them after the pack; docs/simulation.md)."""
    from mlstack.simulate.catalog import all_checks  # the simulation imports the pack: import it late

    rules = [rule for rule, _ in all_checks()]
    lines = [
        "",
        "## Deploy simulation",
        "",
        f"`mlstack check` runs {len(rules)} simulation checks after the pack, over the whole plan with every Helm",
        "release rendered ([Deploy simulation](simulation.md) says what they model and what they do not).",
        "Their findings are waived, reported and fail the check like the pack's. They do not run in",
        "`pulumi preview --policy-pack policies`: they need the rendered charts and the whole plan.",
        "",
        "| id | severity | level | check |",
        "| --- | --- | --- | --- |",
    ]
    for rule in rules:
        lines.append(
            f"| [{rule.id}](#{rule.id.lower()}) | {rule.severity.value} | {rule.level.value} | {rule.title} |"
        )
    domains = list(_SIMULATION_TITLES) + sorted({r.domain for r in rules} - set(_SIMULATION_TITLES))
    for domain in domains:
        in_domain = [r for r in rules if r.domain == domain]
        if not in_domain:
            continue
        lines += ["", f"### {_SIMULATION_TITLES.get(domain, domain.replace('_', ' ').title())} checks"]
        for rule in in_domain:
            subjects = ", ".join(f"`{s}`" for s in rule.subjects)
            lines += [
                "",
                f"#### {rule.id}",
                "",
                f"**{rule.title}.** Severity {rule.severity.value}, {rule.level.value}, simulation check"
                + (f" on {subjects}." if subjects else "."),
                "",
                f"Why: {rule.why}",
                "",
                f"Remediation: {rule.remediation}",
            ]
    return lines


def _frameworks_section() -> list[str]:
    lines = [
        "## Frameworks",
        "",
        "Each rule names the controls it serves. `mlstack check ENV --framework KEY` runs only the rules of one",
        "framework and lists which of its controls they cover; SARIF rule properties carry them as",
        "`framework:id` tags. CIS AWS Foundations and NIST SP 800-53 ids are never written by hand: they are the",
        '"Related requirements" AWS Security Hub lists for the rule\'s FSBP controls.',
        "",
        "| key | framework | source | controls covered |",
        "| --- | --- | --- | --- |",
    ]
    for key, framework in FRAMEWORKS.items():
        covered = sorted({c for rule in ALL_RULES for c in rule.controls.get(key, ())})
        lines.append(f"| `{key}` | {framework.name} | {framework.source} | {len(covered)} |")
    return lines


def _unchecked_section() -> list[str]:
    lines = [
        "## Resource types no rule checks",
        "",
        "Every resource type of the shipped and benchmark plans is checked by at least one rule that names it,",
        "except these, reviewed one by one (`policies/coverage.py`; a test fails when a new type is neither):",
        "",
        "| type | why no rule |",
        "| --- | --- |",
    ]
    lines += [f"| `{t}` | {reason} |" for t, reason in sorted(UNCHECKED_TYPES.items())]
    return lines


def render() -> str:
    """The whole reference page, deterministic for a given pack."""
    lines = [
        "# Policy reference",
        "",
        "<!-- Generated by `make docs` or `python -m policies.docs` from the policy pack. Do not edit by hand. -->",
        "",
        f"The `{PACK_NAME}` pack holds {len(ALL_RULES)} policies. They run in the engine with "
        "`pulumi preview --policy-pack policies` and offline with `mlstack check ENV` (or `--all`).",
        "A mandatory violation fails the check (exit code 1) unless `policies/waivers.yaml` waives it",
        "([Waivers](#waivers));",
        "advisory violations are reported only. Tier rules apply to staging and prod, read from the stack's",
        "`mlstack:platform` config (an unknown tier is treated as prod).",
        "",
        "| id | severity | level | kind | policy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in ALL_RULES:
        anchor = rule.id.lower()
        lines.append(
            f"| [{rule.id}](#{anchor}) | {rule.severity.value} | {rule.level.value} | {rule.kind} | {rule.title} |"
        )
    for domain, title in _DOMAIN_TITLES.items():
        rules = [r for r in ALL_RULES if r.domain == domain]
        if not rules:
            continue
        lines += ["", f"## {title}"]
        for rule in rules:
            subjects = ", ".join(f"`{s}`" for s in rule.subjects)
            lines += [
                "",
                f"### {rule.id}",
                "",
                f"**{rule.title}.** Severity {rule.severity.value}, {rule.level.value}, {rule.kind} policy on {subjects}.",
                "",
                f"Why: {rule.why}",
                "",
                f"Remediation: {rule.remediation}",
            ]
            if rule.controls:
                lines += [
                    "",
                    "Controls: "
                    + "; ".join(f"{FRAMEWORKS[f].name} {', '.join(ids)}" for f, ids in rule.controls.items())
                    + ".",
                ]
            if rule.mlstack_only:
                lines += ["", "mlstack only: skipped for programs without the `mlstack:platform` config."]
            config = _config(rule)
            if config:
                lines.append(config.rstrip("\n"))
    lines += _simulation_section()
    lines += ["", *_frameworks_section(), "", *_unchecked_section(), "", *_WAIVERS_SECTION]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    target = Path((argv or sys.argv[1:] or [str(DOCS_PATH)])[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target} ({len(ALL_RULES)} policies and the simulation checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
