"""Compliant and non-compliant cases of the CPU pool rules (policies/compute.py), merged into
tests/test_policies.py CASES. Every stack ships the tier's default CPU pools, named cpu and cpu-arm."""

from __future__ import annotations

from typing import Any

from tests.policy_cases import Case, bad, ok, set_input

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def _template(resource: Any) -> dict[str, Any]:
    spec: dict[str, Any] = resource.inputs["spec"]["template"]["spec"]
    return spec


def _limits(**changes: Any) -> Any:
    def apply(resource: Any) -> None:
        limits = resource.inputs["spec"].setdefault("limits", {})
        for key, value in changes.items():
            if value is None:
                limits.pop(key, None)
            else:
                limits[key] = value

    return apply


def _disruption(**changes: Any) -> Any:
    def apply(resource: Any) -> None:
        disruption = resource.inputs["spec"]["disruption"]
        for key, value in changes.items():
            if value is None:
                disruption.pop(key, None)
            else:
                disruption[key] = value

    return apply


def _arch(*values: str) -> Any:
    def apply(resource: Any) -> None:
        requirements = _template(resource)["requirements"]
        requirements[:] = [r for r in requirements if r["key"] != "kubernetes.io/arch"]
        if values:
            requirements.append({"key": "kubernetes.io/arch", "operator": "In", "values": list(values)})

    return apply


def _untainted(resource: Any) -> None:
    _template(resource).pop("taints", None)


COMPUTE_CASES: dict[str, list[Case]] = {
    "MLS-CPU-001": [
        ok("dev"),
        ok("prod"),
        bad("dev", "no cpu limit", NODE_POOL, _limits(cpu=None), name="cpu-arm"),
        bad("prod", "no memory limit", NODE_POOL, _limits(memory=None), name="compute-cpu-nodepool"),
        bad("staging", "zero cpu", NODE_POOL, _limits(cpu="0"), name="compute-cpu-nodepool"),
    ],
    "MLS-CPU-002": [
        ok("dev"),
        ok("staging"),
        bad("dev", "never consolidates", NODE_POOL, _disruption(consolidateAfter="Never"), name="cpu-arm"),
        bad("prod", "no budget", NODE_POOL, _disruption(budgets=[]), name="compute-cpu-nodepool"),
        bad("staging", "no policy", NODE_POOL, _disruption(consolidationPolicy=None), name="cpu-arm"),
    ],
    "MLS-CPU-003": [
        ok("dev"),
        ok("prod"),
        bad("dev", "arm64 without taint", NODE_POOL, _untainted, name="cpu-arm"),
        bad("prod", "both arches", NODE_POOL, _arch("amd64", "arm64"), name="compute-cpu-nodepool"),
        bad("staging", "no arch requirement", NODE_POOL, _arch(), name="compute-cpu-nodepool"),
    ],
    "MLS-CPU-004": [
        ok("dev"),
        ok("prod"),
        bad("dev", "untainted system nodes", NODE_GROUP, set_input("taints", [])),
    ],
}
