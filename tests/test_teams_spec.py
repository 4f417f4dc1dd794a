"""Config-validation tier for the teams and budgets sections: each bad input names its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstack.spec.loader import SpecError, load_spec
from mlstack.spec.teams import TeamSpec
from tests.test_spec_validation import _mutated, _set, _write

BAD_TEAM_INPUTS = {
    "reserved kubernetes group": (
        _set("teams.0.kubernetes_group", "system:masters"),
        "teams.0.kubernetes_group",
        "reserves",
    ),
    "shared kubernetes group": (
        lambda spec, _c: [t.update(kubernetes_group="ml") for t in spec["teams"]],
        "teams (kubernetes_group)",
        "more than once",
    ),
    "human access nobody can use": (
        _set("teams.0.human_access", {"sso_permission_sets": []}),
        "teams.0.human_access",
        "sso_permission_sets or mfa_principals",
    ),
    "mfa principal is an account root": (
        _set("teams.0.human_access", {"mfa_principals": ["arn:aws:iam::444455556666:root"]}),
        "teams.0.human_access.mfa_principals",
        "every identity of an account",
    ),
    "mfa principal is a wildcard": (
        _set("teams.0.human_access", {"mfa_principals": ["arn:aws:iam::444455556666:role/*"]}),
        "teams.0.human_access.mfa_principals",
        "pattern",
    ),
    "mfa age too short": (
        _set(
            "teams.0.human_access",
            {"mfa_principals": ["arn:aws:iam::444455556666:role/x"], "max_mfa_age_seconds": 1},
        ),
        "teams.0.human_access.max_mfa_age_seconds",
        "greater than or equal to 900",
    ),
    "split does not add up": (
        _set("teams.0.gpu_quota_by_pool", {"gpu-dev": 1}),
        "teams.0",
        "adds up to 1 but gpu_quota is 2",
    ),
    "split on an unknown pool": (
        _set("teams.0.gpu_quota_by_pool", {"gpu-dev": 1, "tpu": 1}),
        "teams.0.gpu_quota_by_pool",
        "not declared pools",
    ),
    "teams oversubscribe a pool": (
        _set("teams.0.gpu_quota", 4),
        "teams",
        "more than its max_gpus",
    ),
    "negative borrowing limit": (
        _set("teams.0.gpu_borrowing_limit", -1),
        "teams.0.gpu_borrowing_limit",
        "greater than or equal",
    ),
    "zero cpu quota": (_set("teams.0.cpu_quota", 0), "teams.0.cpu_quota", "greater than or equal"),
    "bad team cost center": (_set("teams.0.cost_center", "a b"), "teams.0.cost_center", "pattern"),
    "team budget for an unknown team": (
        _set("budgets.team_limits_usd", {"ghosts": 10}),
        "budgets.team_limits_usd.ghosts",
        "not a declared team",
    ),
    "zero team budget": (
        _set("budgets.team_limits_usd", {"search": 0}),
        "budgets.team_limits_usd.search",
        "greater than 0",
    ),
    "too many budget thresholds": (
        _set("budgets.thresholds_percent", [10, 20, 30, 40, 50]),
        "budgets.thresholds_percent",
        "at most 4",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TEAM_INPUTS), ids=sorted(BAD_TEAM_INPUTS))
def test_bad_team_input_names_file_and_field(tmp_path: Path, case: str) -> None:
    mutate, field_path, fragment = BAD_TEAM_INPUTS[case]
    path = _write(tmp_path, _mutated(mutate))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert field_path in message, message
    assert fragment in message, message


def test_default_group_and_no_human_role() -> None:
    team = TeamSpec(name="vision", cost_center="cv-1", gpu_quota=0)
    assert team.group == "team-vision"
    assert team.human_access is None and team.gpu_borrowing_limit == 0


@pytest.mark.parametrize(
    ("quota", "pools", "expected"),
    [
        (24, {"training": 64, "serving": 32, "notebooks": 8}, {"training": 15, "serving": 7, "notebooks": 2}),
        (8, {"training": 16, "serving": 8}, {"training": 5, "serving": 3}),
        (3, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}),
        (0, {"a": 4}, {"a": 0}),
    ],
)
def test_default_split_is_proportional_and_exact(quota: int, pools: dict[str, int], expected: dict) -> None:
    team = TeamSpec(name="t", cost_center="c", gpu_quota=quota)
    shares = team.pool_quotas(pools)
    assert shares == expected
    assert sum(shares.values()) == quota


def test_declared_split_wins_and_fills_missing_pools_with_zero() -> None:
    team = TeamSpec(name="t", cost_center="c", gpu_quota=4, gpu_quota_by_pool={"a": 4})
    assert team.pool_quotas({"a": 8, "b": 8}) == {"a": 4, "b": 0}
