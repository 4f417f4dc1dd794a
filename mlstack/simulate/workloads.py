"""The policy pack's Kubernetes resource rules, applied to what the charts render.

The pack judges the plan's own Kubernetes objects (``policies/workloads.py``: images through the platform's
ECR, pinned tags, non-root, no privilege escalation, no host namespaces, requests and limits, GPU tolerations;
storage classes; load balancers; Karpenter objects). A Helm release is one resource to the pack, so the
Deployments and DaemonSets inside a chart were never judged. Here every rendered chart object becomes a
synthetic resource of its own type token (``kubernetes:apps/v1:Deployment``...) and goes through the same
rules with :func:`mlstack.check.engine.evaluate`; a finding names the chart template and blames the Release.

Stack rules (a rule over the set of resources, e.g. team namespace quotas) are not re-run: they judge the
plan's own objects. Rules read the pack's default config here (``mlstack check --config`` is not passed to the
simulation), e.g. MLS-K8S-010's ``extraRegistries`` is empty.
"""

from __future__ import annotations

import json

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity

from mlstack.check.engine import Violation, evaluate
from mlstack.plan.recorder import RecordedResource
from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.objects import chart_objects
from policies.catalog import ALL_RULES
from policies.framework import PLATFORM_CONFIG_KEY, Rule, matches


def type_token(item: KubeObject) -> str:
    """The Pulumi type token pulumi-kubernetes gives an object of this apiVersion and kind
    (``v1`` Pod -> ``kubernetes:core/v1:Pod``, ``apps/v1`` Deployment -> ``kubernetes:apps/v1:Deployment``)."""
    api_version = item.api_version if "/" in item.api_version else f"core/{item.api_version}"
    return f"kubernetes:{api_version}:{item.kind}"


def kubernetes_resource_rules() -> list[Rule]:
    """The pack's resource rules on Kubernetes object types (not on Helm releases)."""
    return [
        rule
        for rule in ALL_RULES
        if isinstance(rule.policy, ResourceValidationPolicy)
        and any(
            s.startswith("kubernetes:") and not s.startswith("kubernetes:helm.sh/") for s in rule.subjects
        )
    ]


def _synthetic(item: KubeObject, index: int) -> RecordedResource:
    return RecordedResource(
        urn=f"{item.urn}#{index}",
        type=type_token(item),
        name=item.name,
        parent=item.urn,
        custom=True,
        id="",
        inputs=item.obj,
        dependencies=[],
        property_dependencies={},
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        ignore_changes=[],
        aliases=[],
        provider="",
    )


@derived
def chart_violations(world: World) -> list[tuple[Violation, KubeObject]]:
    """Every violation of the pack's Kubernetes resource rules by a chart object, with that object."""
    rules = kubernetes_resource_rules()
    objects: dict[str, KubeObject] = {}
    synthetic = []
    for index, item in enumerate(chart_objects(world)):
        token = type_token(item)
        if any(matches(token, rule.subjects) for rule in rules):
            resource = _synthetic(item, index)
            objects[resource.urn] = item
            synthetic.append(resource)
    if not synthetic:
        return []
    # The stack's platform config, as the engine passes it to the pack (rules read tier, account and region).
    wire_config = {PLATFORM_CONFIG_KEY: json.dumps(world.spec.model_dump(mode="json"), sort_keys=True)}
    return [(v, objects[v.urn]) for v in evaluate(synthetic, wire_config, rules) if v.urn in objects]


@sim_check(
    "MLS-SIM-WORKLOAD-001",
    title="Chart objects pass the pack's Kubernetes policies",
    why=(
        "A chart's pods run in the same cluster as ours: an image pulled from Docker Hub or quay.io bypasses "
        "the platform's scanned, cached ECR; a root or privilege-escalating container, or one without "
        "requests and a memory limit, breaks the same guarantees the pack enforces on our own objects"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Set the chart values that fix the named field (image.repository through the ECR pull-through cache "
        "prefix, securityContext, resources); the finding names the policy, the chart template and the release"
    ),
    subjects=("kubernetes:helm.sh/v3:Release",),
    # Mandatory: the chart values route images through the caches and set security contexts and resources;
    # what upstream makes unavoidable (NVIDIA images on nvcr.io, root for the GPU node agents) and the stacks'
    # named image opt-outs are waived per release in policies/waivers.yaml (docs/simulation.md, Workloads).
    level=EnforcementLevel.MANDATORY,
)
def chart_objects_pass_the_pack(world: World) -> SimResult:
    by_id = {rule.id: rule for rule in ALL_RULES}
    for violation, item in chart_violations(world):
        rule = by_id[violation.policy_id]
        yield (
            f"{violation.policy_id} ({rule.severity.value}) {rule.title}: {violation.message}; {item.label}",
            item.urn,
        )
