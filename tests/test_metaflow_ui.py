"""The Metaflow UI per team: frontend next to the team's backend, reached only through the team's port-forwards."""

from __future__ import annotations

from typing import Any

from components.orchestrator import (
    LOCAL_UI_BACKEND_URL,
    LOCAL_UI_URL,
    UI_FRONTEND,
    UI_FRONTEND_PORT,
)
from mlstack.check.engine import evaluate
from mlstack.plan.recorder import Plan, RecordedResource
from policies.catalog import RULES_BY_ID
from tests.plans import PROJECT, plan_of
from tests.simulation import mutable_plan

STATEFULSET = "kubernetes:apps/v1:StatefulSet"


def _set(plan: Plan, name: str) -> RecordedResource:
    (found,) = [r for r in plan.by_type(STATEFULSET) if r.inputs["metadata"]["name"] == name]
    return found


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}


def test_each_team_gets_its_own_frontend_pointed_at_its_own_backend() -> None:
    plan = plan_of("prod")
    spec = PROJECT.load("prod")[1]
    assert spec.orchestrator.metaflow_ui
    host = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com"
    for team in spec.teams:
        frontend = _set(plan, f"{UI_FRONTEND}-{team.name}").inputs["spec"]
        pod = frontend["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == f"{host}/ecr-public/outerbounds/metaflow_ui:v1.3.3"
        assert _env(container) == {"PORT": str(UI_FRONTEND_PORT), "METAFLOW_SERVICE": LOCAL_UI_BACKEND_URL}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert {m["mountPath"] for m in container["volumeMounts"]} == {
            "/etc/nginx/conf.d",
            "/var/cache/nginx",
            "/run",
            "/tmp",
        }
        assert frontend["template"]["metadata"]["labels"]["mlstack.dev/team"] == team.name
        # The backend admits the browser's calls from the frontend's origin (and only that origin).
        backend = _set(plan, f"metaflow-ui-backend-{team.name}").inputs["spec"]["template"]["spec"]
        assert _env(backend["containers"][0])["ORIGIN_TO_ALLOW_CORS_FROM"] == LOCAL_UI_URL


def test_only_the_teams_group_may_port_forward_to_its_frontend() -> None:
    plan = plan_of("prod")
    spec = PROJECT.load("prod")[1]
    roles = {
        r.inputs["metadata"]["name"]: r for r in plan.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    }
    for team in spec.teams:
        rules = roles[f"metaflow-port-forward-{team.name}"].inputs["rules"]
        named = {n for rule in rules for n in rule["resourceNames"]}
        assert f"{UI_FRONTEND}-{team.name}-0" in named
        others = [t.name for t in spec.teams if t.name != team.name]
        assert not [n for n in named if any(n.endswith(f"-{o}-0") for o in others)]


def test_without_the_ui_there_is_no_frontend() -> None:
    plan = plan_of("dev")
    assert not PROJECT.load("dev")[1].orchestrator.metaflow_ui
    assert not [
        r for r in plan.by_type(STATEFULSET) if r.inputs["metadata"]["name"].startswith(f"{UI_FRONTEND}-")
    ]


def test_a_frontend_running_as_root_is_caught_by_the_pack() -> None:
    plan = mutable_plan("prod")
    frontend = _set(plan, f"{UI_FRONTEND}-search")
    config, _ = PROJECT.load("prod")
    clean = evaluate(plan.resources, config.wire_config(), [RULES_BY_ID["MLS-K8S-012"]])
    assert not [v for v in clean if v.urn == frontend.urn]
    pod = frontend.inputs["spec"]["template"]["spec"]
    del pod["securityContext"]
    pod["containers"][0]["securityContext"] = {}
    found = evaluate(plan.resources, config.wire_config(), [RULES_BY_ID["MLS-K8S-012"]])
    assert [v for v in found if v.urn == frontend.urn]
