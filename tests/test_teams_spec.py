"""Config-validation tier for the teams section: defaults and the GPU split. Bad inputs are in
tests/test_spec_validation.py (BAD_INPUTS)."""

from __future__ import annotations

import pytest

from mlstack.spec.teams import TeamSpec


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
