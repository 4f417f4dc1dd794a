"""The engine's pack honours policies/waivers.yaml as `mlstack check` does: a covered violation is not
reported, an uncovered or expired one still is (in its own stack only), and a broken waiver file stops the pack.

The policies under test are the ones policies/__main__.py hands to the engine (policies.waiving), evaluated
with the offline engine's argument builders on the recorded prod plan.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstack.check.engine import evaluate
from mlstack.check.waivers import Waiver, load_waivers, parse_waivers
from mlstack.plan.recorder import RecordedResource
from mlstack.simulate.catalog import gate_rules_by_id
from policies.catalog import ALL_RULES, RULES_BY_ID
from policies.framework import Rule, Severity, stack_rule
from policies.waiving import WAIVERS_PATH, PackWaiverError, engine_policies, pack_waivers, stack_of
from tests.plans import PROJECT, plan_of

TODAY = dt.date.today()
RESEARCH_HUMAN = "prod-teams-research-human"
SEARCH_HUMAN = "prod-teams-search-human"


def _waiver(**fields: Any) -> Waiver:
    entry = {
        "policy": "MLS-IAM-006",
        "resource": f"urn:pulumi:prod::mlstack::*::{RESEARCH_HUMAN}",
        "stack": "prod",
        "reason": "partner researchers, MFA required",
        "owner": "research-2003",
        "expires": (TODAY + dt.timedelta(days=30)).isoformat(),
        **fields,
    }
    return parse_waivers({"waivers": [entry]}, RULES_BY_ID, TODAY, "test")[0]


def _engine_rules(rules: Sequence[Rule], waivers: Sequence[Waiver], today: dt.date = TODAY) -> list[Rule]:
    """The rules with the engine's (waived) policies in place of their own, for the offline evaluator."""
    built = []
    for rule, policy in zip(rules, engine_policies(rules, waivers, clock=lambda: today), strict=True):
        engine_rule = copy.copy(rule)
        object.__setattr__(engine_rule, "policy", policy)
        built.append(engine_rule)
    return built


def _violations(resources: Sequence[RecordedResource], rules: Sequence[Rule]) -> set[tuple[str, str]]:
    config, _ = PROJECT.load("prod")
    return {(v.policy_id, v.urn or "") for v in evaluate(resources, config.wire_config(), rules)}


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


@pytest.fixture(scope="module")
def prod_with_second_partner_trust() -> list[RecordedResource]:
    """Prod, with the search team's human role given the research role's partner trust: the same violation
    on a resource no waiver covers."""
    resources = [copy.deepcopy(r) for r in plan_of("prod").resources]
    research = next(r for r in resources if r.name == RESEARCH_HUMAN)
    search = next(r for r in resources if r.name == SEARCH_HUMAN)
    search.inputs["assumeRolePolicy"] = research.inputs["assumeRolePolicy"]
    return resources


def _iam_006(resources: Sequence[RecordedResource], waivers: Sequence[Waiver], today: dt.date) -> set[str]:
    rules = _engine_rules([RULES_BY_ID["MLS-IAM-006"]], waivers, today)
    return {_name(urn) for _, urn in _violations(resources, rules)}


def test_shipped_waiver_suppresses_exactly_the_waived_prod_violation(
    prod_with_second_partner_trust: list[RecordedResource],
) -> None:
    shipped = pack_waivers(ALL_RULES)
    # One IAM waiver, and the Metaflow migration's root container in each stack (components/orchestrator.py);
    # the deploy simulation's waivers are read but match no engine violation.
    assert [w.policy for w in shipped] == [
        "MLS-IAM-006",
        "MLS-K8S-012",
        "MLS-K8S-012",
        "MLS-K8S-012",
        # Chart pods: the log agent's root container in each stack, then one waiver per release for the GPU
        # agents and the image opt-outs, dev's NATS images, then OpenCost's ghcr.io images
        # (tests/test_simulate_workloads.py pins what each covers).
        *["MLS-SIM-WORKLOAD-001"] * 11,
        # External Secrets Operator's image opt-out (ghcr.io), then the metrics namespace the stack creates for a
        # synced Grafana client (components/observability.py).
        "MLS-SIM-WORKLOAD-001",
        "MLS-K8S-022",
    ]
    unwaived = _violations(prod_with_second_partner_trust, ALL_RULES)
    engine = _violations(prod_with_second_partner_trust, _engine_rules(ALL_RULES, shipped))
    migrations = {
        (p, u) for p, u in unwaived if p == "MLS-K8S-012" and _name(u).endswith("-metaflow-metadata")
    }
    assert migrations
    metrics_namespace = {(p, u) for p, u in unwaived if p == "MLS-K8S-022" and _name(u) == "prod-metrics-ns"}
    assert metrics_namespace
    assert (
        unwaived - engine
        == {next((p, u) for p, u in unwaived if p == "MLS-IAM-006" and _name(u) == RESEARCH_HUMAN)}
        | migrations
        | metrics_namespace
    )
    assert ("MLS-IAM-006", SEARCH_HUMAN) in {(p, _name(u)) for p, u in engine}


def test_expired_waiver_is_not_honoured(prod_with_second_partner_trust: list[RecordedResource]) -> None:
    waiver = _waiver(expires=(TODAY + dt.timedelta(days=1)).isoformat())
    assert _iam_006(prod_with_second_partner_trust, [waiver], TODAY + dt.timedelta(days=1)) == {SEARCH_HUMAN}
    # The pack outlives the expiry date: from the next day on, the violation is reported again.
    both = {RESEARCH_HUMAN, SEARCH_HUMAN}
    assert _iam_006(prod_with_second_partner_trust, [waiver], TODAY + dt.timedelta(days=2)) == both


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ({}, {SEARCH_HUMAN}),
        ({"stack": "staging"}, {RESEARCH_HUMAN, SEARCH_HUMAN}),
        ({"stack": "*"}, {SEARCH_HUMAN}),
        ({"resource": "urn:pulumi:staging::mlstack::*"}, {RESEARCH_HUMAN, SEARCH_HUMAN}),
        ({"resource": "urn:pulumi:prod::mlstack::*::prod-teams-*-human"}, set()),
        ({"policy": "MLS-IAM-005"}, {RESEARCH_HUMAN, SEARCH_HUMAN}),
    ],
)
def test_waiver_matches_policy_resource_and_stack(
    prod_with_second_partner_trust: list[RecordedResource], change: Mapping[str, str], reported: set[str]
) -> None:
    assert _iam_006(prod_with_second_partner_trust, [_waiver(**change)], TODAY) == reported


def test_stack_rule_violation_without_urn_takes_the_stack_of_the_resources() -> None:
    @stack_rule(
        "MLS-IAM-006",  # borrowed id: waivers name policies of the pack
        subjects=["aws:iam/role:Role"],
        title="test",
        why="test",
        severity=Severity.LOW,
        remediation="test",
    )
    def whole_stack(args: Any, config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
        yield "about the whole stack", None

    resources = plan_of("prod").resources
    prod_wide = {"resource": "*"}
    assert _violations(resources, _engine_rules([whole_stack], [_waiver(**prod_wide)])) == set()
    dev_only = _waiver(resource="*", stack="dev")
    assert _violations(resources, _engine_rules([whole_stack], [dev_only])) == {("MLS-IAM-006", "")}


def test_stack_of_reads_the_urn() -> None:
    assert stack_of("urn:pulumi:prod::mlstack::aws:iam/role:Role::r") == "prod"
    assert stack_of(None) is None and stack_of("not-a-urn") is None


def test_unwaived_rules_keep_their_own_policy() -> None:
    # mlstack check evaluates rule.policy and shows waivers itself: the engine's copies never replace it.
    policies = engine_policies(ALL_RULES, pack_waivers(ALL_RULES))
    changed = [rule.id for rule, policy in zip(ALL_RULES, policies, strict=True) if policy is not rule.policy]
    assert changed == ["MLS-IAM-006", "MLS-K8S-012", "MLS-K8S-022"]
    assert [p.name for p in policies] == [r.id for r in ALL_RULES]
    assert load_waivers(WAIVERS_PATH, gate_rules_by_id(), TODAY) == pack_waivers(ALL_RULES)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"waivers": [{"policy": "MLS-IAM-006"}]}, "entry 0, field 'reason': missing or empty"),
        ({"waiver": []}, "file, field 'waivers': expected a mapping with a 'waivers' list"),
        (
            {"waivers": [{"expires": "2020-13-01"}]},
            "entry 0, field 'expires': '2020-13-01' is not a date",
        ),
    ],
)
def test_broken_waiver_file_stops_the_pack(tmp_path: Path, document: object, words: str) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PackWaiverError) as info:
        pack_waivers(ALL_RULES, path)
    message = str(info.value.code)
    assert message.startswith("the policy pack cannot start: policies/waivers.yaml:")
    assert words in message and "fix:" in message


def test_an_expired_waiver_does_not_stop_the_pack_and_names_itself_where_it_lapsed(
    tmp_path: Path, prod_with_second_partner_trust: list[RecordedResource]
) -> None:
    # Issue 18: an expired waiver stopped the pack, so every stack's `pulumi up` failed on its date.
    path = tmp_path / "waivers.yaml"
    entry = {
        "policy": "MLS-IAM-006",
        "resource": f"urn:pulumi:prod::mlstack::*::{RESEARCH_HUMAN}",
        "stack": "prod",
        "reason": "partner researchers, MFA required",
        "owner": "research-2003",
        "expires": "2020-01-01",
    }
    path.write_text(yaml.safe_dump({"waivers": [entry]}))
    waivers = pack_waivers(ALL_RULES, path)
    assert [w.expires for w in waivers] == [dt.date(2020, 1, 1)]
    rules = _engine_rules([RULES_BY_ID["MLS-IAM-006"]], waivers)
    config, _ = PROJECT.load("prod")
    messages = {
        _name(v.urn or ""): v.message
        for v in evaluate(prod_with_second_partner_trust, config.wire_config(), rules)
    }
    assert set(messages) == {RESEARCH_HUMAN, SEARCH_HUMAN}
    assert "waiver entry 0 in policies/waivers.yaml expired on 2020-01-01" in messages[RESEARCH_HUMAN]
    assert "expired" not in messages[SEARCH_HUMAN]
