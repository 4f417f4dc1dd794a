"""Stack-file messages from the 2026-11-30 usability review (issue 18): every problem at once, cross-field ones
included, and hints that say what to type (did-you-mean, quoting, a stray top-level key)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.spec.loader import LEFT_OUT, SPEC_KEY, SpecError, load_spec
from tests.plans import PROJECT

DEV = yaml.safe_load(PROJECT.stack_file("dev").read_text())


def _problems(tmp_path: Path, mutate: Any) -> dict[str, str]:
    document = copy.deepcopy(DEV)
    mutate(document["config"][SPEC_KEY], document["config"])
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return {p.path: p.render() for p in caught.value.problems}


def test_a_field_error_no_longer_hides_an_endpoint_naming_an_undeclared_pool(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _: dict[str, Any]) -> None:
        spec["gpu_pools"][0]["instance_types"] = ["g55", "g5"]
        spec["inference"]["endpoints"][0]["gpu_pool"] = "gpu-dv"

    problems = _problems(tmp_path, mutate)
    assert "did you mean g5?" in problems["gpu_pools.0.instance_types.0"]
    assert (
        "'gpu-dv' is not a declared pool; declared: ['gpu-dev']" in problems["inference.endpoints.0.gpu_pool"]
    )
    assert LEFT_OUT in problems["inference.endpoints.0.gpu_pool"]


def test_an_invalid_required_number_no_longer_hides_an_undeclared_team(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _: dict[str, Any]) -> None:
        spec["inference"]["endpoints"][0]["team"] = "serch"
        spec["gpu_pools"][0]["max_gpus"] = 0

    problems = _problems(tmp_path, mutate)
    assert "greater than or equal to 1" in problems["gpu_pools.0.max_gpus"]
    assert "'serch' is not a declared team" in problems["inference.endpoints.0.team"]
    # The stand-in max_gpus (1) must not produce rules about max_gpus: the teams' quotas fit the real pool.
    assert not any("max_gpus" in text for path, text in problems.items() if path != "gpu_pools.0.max_gpus")


def test_cross_field_rules_about_a_left_out_field_are_not_reported(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _: dict[str, Any]) -> None:
        spec["tier"] = "prod"
        spec["network"]["az_count"] = "two"  # left out, the default (1) would break the prod multi-AZ rule

    problems = _problems(tmp_path, mutate)
    assert "multi-AZ" not in "".join(problems.values())
    # The real cross-field problems of turning dev into prod are still found (Spot system nodes).
    assert LEFT_OUT in problems["cluster.system_nodes.capacity_type"]


def test_an_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _: dict[str, Any]) -> None:
        spec["cluster"]["kubernets_version"] = spec["cluster"].pop("kubernetes_version")

    problems = _problems(tmp_path, mutate)
    assert "fix: did you mean kubernetes_version? rename it" in problems["cluster.kubernets_version"]


def test_an_unquoted_version_gets_a_hint_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    text = PROJECT.stack_file("dev").read_text()
    path.write_text(text.replace('kubernetes_version: "1.34"', "kubernetes_version: 1.30"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert problem.path == "cluster.kubernetes_version" and "(got 1.3)" in problem.message
    assert 'put the value in quotes, e.g. kubernetes_version: "1.3"' in problem.hint
    assert '(1.30 becomes 1.3), so write "1.30"' in problem.hint


def test_a_misspelt_spec_key_is_named(tmp_path: Path) -> None:
    def mutate(_: dict[str, Any], config: dict[str, Any]) -> None:
        config["mlstack:platfrom"] = config.pop(SPEC_KEY)

    problems = _problems(tmp_path, mutate)
    assert "did you mean mlstack:platform? rename it" in problems["config.mlstack:platfrom"]
    assert f"config.{SPEC_KEY}" in problems  # still missing


def test_validate_lists_field_and_cross_field_problems_in_one_run(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text((PROJECT.root / "Pulumi.yaml").read_text())
    text = PROJECT.stack_file("dev").read_text()
    text = text.replace("instance_types: [g6, g5]", "instance_types: [g6, g55]").replace(
        "gpu_pool: gpu-dev", "gpu_pool: gpu-dv"
    )
    (root / "stacks" / "Pulumi.dev.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "dev", "--project-dir", str(root)])
    assert result.exit_code == 2
    assert "2 problems" in result.output and "g55" in result.output and "gpu-dv" in result.output
