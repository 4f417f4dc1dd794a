"""Coverage of the pack: every resource type of every plan is checked by a rule that names it, or is listed in
policies/coverage.py with its reason; and every rule's framework mappings are known controls."""

from __future__ import annotations

from functools import cache

from benchmarks.bench import synthetic_config
from mlstack.plan.recorder import run_program
from policies.catalog import ALL_RULES
from policies.controls import FRAMEWORKS, FSBP, expand
from policies.coverage import UNCHECKED_TYPES
from tests.plans import PROJECT, STACKS, plan_of


@cache
def _planned_types() -> frozenset[str]:
    """The custom resource types of the shipped stacks and of a synthetic benchmark stack (components have no
    settings of their own)."""
    types = {r.type for stack in STACKS for r in plan_of(stack).resources if r.custom}
    config, spec = synthetic_config(PROJECT, 2)
    types |= {r.type for r in run_program(PROJECT.program, config, spec).resources if r.custom}
    return frozenset(types)


def _named_by_rules() -> set[str]:
    return {s for rule in ALL_RULES for s in rule.subjects if not s.endswith("*")}


def test_every_planned_type_is_checked_or_listed() -> None:
    unguarded = sorted(_planned_types() - _named_by_rules() - set(UNCHECKED_TYPES))
    assert not unguarded, (
        f"no rule names these types; add a rule or a reasoned entry in policies/coverage.py: {unguarded}"
    )


def test_unchecked_list_is_current() -> None:
    stale = sorted(set(UNCHECKED_TYPES) - _planned_types())
    assert not stale, f"policies/coverage.py lists types no plan has: {stale}"
    checked = sorted(set(UNCHECKED_TYPES) & _named_by_rules())
    assert not checked, f"policies/coverage.py lists types a rule checks: {checked}"
    assert all(len(reason) > 20 for reason in UNCHECKED_TYPES.values())


def test_control_ids_are_known_and_derived() -> None:
    for rule in ALL_RULES:
        for framework, ids in rule.controls.items():
            known = FRAMEWORKS[framework].controls
            assert set(ids) <= set(known), (rule.id, framework, sorted(set(ids) - set(known)))
        fsbp = rule.controls.get("aws-fsbp", ())
        assert rule.controls.get("cis-aws", ()) == tuple(
            sorted({c for i in fsbp for c in FSBP[i].cis_aws}, key=lambda c: tuple(map(int, c.split("."))))
        )


def test_cis_aws_and_nist_cannot_be_written_by_hand() -> None:
    for framework in ("cis-aws", "nist-800-53"):
        try:
            expand({framework: ["SC-28"]})
        except ValueError as exc:
            assert "aws-fsbp" in str(exc)
        else:
            raise AssertionError(f"{framework} ids given by hand were accepted")


def test_known_mappings_from_the_sources() -> None:
    # Spot checks against the sources cited in policies/controls.py.
    rds = expand({"aws-fsbp": ["RDS.3"]})
    assert rds["cis-aws"] == ("2.3.1",) and "SC-28" in rds["nist-800-53"]
    assert expand({"aws-fsbp": ["KMS.4"]})["cis-aws"] == ("3.8",)
    assert FRAMEWORKS["cis-eks"].controls["5.3.1"].startswith("Ensure Kubernetes Secrets are encrypted")
    assert (
        FRAMEWORKS["cis-eks"].controls["4.3.2"] == "Ensure that all Namespaces have Network Policies defined"
    )


def test_every_framework_has_rules() -> None:
    for key in FRAMEWORKS:
        assert any(rule.controls.get(key) for rule in ALL_RULES), key


def test_sarif_rules_carry_their_controls() -> None:
    from mlstack.check.formats import _sarif_rule
    from policies.catalog import RULES_BY_ID

    tags = _sarif_rule(RULES_BY_ID["MLS-EKS-001"])["properties"]["tags"]
    assert "cis-eks:5.3.1" in tags
    assert "cis-aws:2.3.1" in _sarif_rule(RULES_BY_ID["MLS-RDS-001"])["properties"]["tags"]


def test_check_runs_one_framework_and_reports_its_coverage() -> None:
    from typer.testing import CliRunner

    from mlstack.cli import app

    result = CliRunner().invoke(app, ["check", "dev", "--framework", "cis-eks"])
    assert result.exit_code == 0, result.output
    assert "CIS Amazon EKS Benchmark v1.8.0:" in result.output
    assert "5.3.1" in result.output and "MLS-EKS-001" in result.output
    covered = len({c for rule in ALL_RULES for c in rule.controls.get("cis-eks", ())})
    assert f"{covered} of {len(FRAMEWORKS['cis-eks'].controls)}" in result.output
    rules = sum(1 for rule in ALL_RULES if "cis-eks" in rule.controls)
    assert f"{rules} policies" in result.output
