"""Helm rendering: every release of the plan renders with the real helm against its pinned upstream chart."""

from __future__ import annotations

from pulumi_policy import Severity

from mlstack.simulate.framework import SimResult, World, sim_check
from mlstack.simulate.objects import renders


@sim_check(
    "MLS-SIM-HELM-001",
    title="Every Helm release renders offline with its recorded values",
    why=(
        "A release whose chart cannot be found at its pinned version, or whose values make the chart's "
        "templates fail (a required value missing, a wrong type), fails `pulumi up`; and a release that was "
        "not rendered cannot be checked for admission, capacity or network flows"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Fix the release's values so `helm template` succeeds, or add the chart package at the pinned version "
        "to the charts folder (shared/charts or MLSTACK_CHARTS_DIR)"
    ),
    subjects=("kubernetes:helm.sh/v3:Release",),
)
def release_renders(world: World) -> SimResult:
    for result in renders(world):
        if result.error:
            yield f"release '{result.release.name}': {result.error}", result.release.urn
