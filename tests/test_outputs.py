"""The platform stack's outputs: exactly the documented ones, of the documented types, in every shipped stack."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from mlstack.outputs import (
    LOCAL_ARGO_URL,
    OUTPUT_NAMES,
    STACK_OUTPUTS,
    grafana_addresses,
    in_cluster_metaflow_config,
    kubeconfig_command,
    laptop_metaflow_config,
    ui_addresses,
)
from mlstack.plan.recorder import Plan
from mlstack.spec.observability import GRAFANA_LOCAL_URL
from tests.plans import PROJECT, ROOT

_ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<type>[^|]+) \| (?P<description>.+) \|$")


def _documented() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "outputs.md").read_text()
    return [
        (m["name"], m["type"].strip(), m["description"].strip().replace("\\|", "|"))
        for m in map(_ROW.match, text.splitlines())
        if m
    ]


def test_plan_exports_exactly_the_declared_outputs(stack_plan: Plan) -> None:
    assert sorted(stack_plan.outputs) == sorted(OUTPUT_NAMES)


def test_every_output_has_its_declared_type(stack_plan: Plan) -> None:
    for output in STACK_OUTPUTS:
        output.validate(stack_plan.outputs[output.name])


def test_docs_list_every_output_with_its_type_and_purpose() -> None:
    assert _documented() == [(o.name, o.type, o.description) for o in STACK_OUTPUTS]


def test_a_wrong_type_is_caught() -> None:
    (bucket_names,) = [o for o in STACK_OUTPUTS if o.name == "bucket_names"]
    with pytest.raises(ValidationError):
        bucket_names.validate(["dev-datasets"])


def test_kubeconfig_and_cluster_outputs_agree(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    outputs = stack_plan.outputs
    assert outputs["cluster_name"] == f"{spec.environment}-eks"
    assert outputs["kubeconfig_command"] == kubeconfig_command(outputs["cluster_name"], spec.region)
    assert outputs["kubeconfig_command"] == (
        f"aws eks update-kubeconfig --name {spec.environment}-eks --region {spec.region}"
    )
    assert outputs["cluster_endpoint"].startswith("https://")
    assert outputs["cluster_arn"].endswith(f":cluster/{spec.environment}-eks")


def test_data_outputs_name_what_the_stack_creates(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    outputs = stack_plan.outputs
    assert sorted(outputs["bucket_names"]) == sorted(spec.storage.buckets)
    assert set(outputs["workload_role_arns"]) == {t.name for t in spec.teams}
    assert set(outputs["human_role_arns"]) == {t.name for t in spec.teams if t.human_access is not None}
    assert set(outputs["endpoint_urls"]) == {e.name for e in spec.inference.endpoints}
    assert all(url.startswith(outputs["registry_url"] + "/") for url in outputs["repository_urls"].values())


def test_metaflow_configs_give_each_place_a_url_that_works_there(stack_plan: Plan) -> None:
    laptop, inside = stack_plan.outputs["metaflow_config"], stack_plan.outputs["metaflow_config_in_cluster"]
    assert set(laptop) == set(inside)
    for team, config in laptop.items():
        assert config["METAFLOW_SERVICE_URL"].startswith("http://localhost:")
        assert ".svc.cluster.local" in config["METAFLOW_SERVICE_INTERNAL_URL"]
        assert config.get("METAFLOW_ARGO_WORKFLOWS_UI_URL", LOCAL_ARGO_URL) == LOCAL_ARGO_URL
        cluster = inside[team]
        assert cluster["METAFLOW_SERVICE_URL"] == cluster["METAFLOW_SERVICE_INTERNAL_URL"]
        assert "localhost" not in " ".join(cluster.values())


def test_config_transforms() -> None:
    config = {
        "METAFLOW_SERVICE_URL": "http://localhost:8080",
        "METAFLOW_SERVICE_INTERNAL_URL": "http://metaflow-metadata-search.metaflow.svc.cluster.local:8080",
        "METAFLOW_ARGO_WORKFLOWS_UI_URL": "http://argo-workflows-server.argo.svc.cluster.local:2746",
    }
    assert laptop_metaflow_config(config)["METAFLOW_ARGO_WORKFLOWS_UI_URL"] == "http://localhost:2746"
    assert (
        in_cluster_metaflow_config(config)["METAFLOW_SERVICE_URL"] == config["METAFLOW_SERVICE_INTERNAL_URL"]
    )
    assert laptop_metaflow_config({}) == {} and in_cluster_metaflow_config({}) == {}
    assert ui_addresses("", "argo") == {}
    assert ui_addresses("http://argo-workflows-server.argo.svc.cluster.local:2746", "argo")["argo"] == {
        "in_cluster": "http://argo-workflows-server.argo.svc.cluster.local:2746",
        "laptop": "http://localhost:2746",
        "port_forward": "kubectl -n argo port-forward svc/argo-workflows-server 2746:2746",
    }


def test_the_endpoint_guide_reads_an_existing_output() -> None:
    guide = (ROOT / "docs" / "guides" / "call-an-endpoint.md").read_text()
    assert "pulumi stack output endpoint_urls" in guide and "endpoint_urls" in OUTPUT_NAMES


def test_grafana_is_reached_through_a_port_forward_to_its_root_url(stack_plan: Plan) -> None:
    """The laptop URL is Grafana's root_url (its SSO redirect's origin) and does not clash with another UI's."""
    _, spec = PROJECT.load(stack_plan.stack)
    addresses = stack_plan.outputs["ui_addresses"]
    assert spec.metrics.runs_grafana
    assert addresses["grafana"] == {
        "in_cluster": "http://kube-prometheus-stack-grafana.monitoring.svc:80",
        "laptop": GRAFANA_LOCAL_URL,
        "port_forward": "kubectl -n monitoring port-forward pod/kube-prometheus-stack-grafana-0 3030:3000",
    }
    assert all(a["laptop"] != GRAFANA_LOCAL_URL for name, a in addresses.items() if name != "grafana")
    assert grafana_addresses("", "monitoring", "kube-prometheus-stack-grafana-0", 3000, 3030) == {}


def test_ui_addresses_name_every_team_metaflow_ui_where_it_is_on(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    addresses = stack_plan.outputs["ui_addresses"]
    expected = {f"metaflow-ui-{t.name}" for t in spec.teams} if spec.orchestrator.metaflow_ui else set()
    assert {name for name in addresses if name.startswith("metaflow-ui-")} == expected
    for name in expected:
        assert addresses[name]["laptop"] == "http://localhost:3000"
        assert addresses[name]["port_forward"].endswith(f"pod/{name}-0 3000:3000")

