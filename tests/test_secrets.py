"""External Secrets Operator (components/secrets.py): vendored CRDs, the operator's release and role, the SSO
clients' SecretStores and ExternalSecrets, their ordering before the apps, the spec, and the IAM simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.registry import PullThrough
from components.secrets import (
    CRDS_FILE,
    OPERATOR_IMAGE,
    OPERATOR_VERSION,
    SERVICE_ACCOUNT,
    operator_values,
    vendored_crds,
)
from mlstack.simulate.access import outcomes
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.iam import Decision
from mlstack.simulate.objects import chart_objects
from mlstack.simulate.ordering import waits
from mlstack.spec.loader import SpecError, load_spec
from mlstack.spec.secrets import ExternalSecretsSpec, sso_clients
from tests.plans import PROJECT, ROOT, plan_of, plan_with_sections, policy_json
from tests.simulation import findings, mutable_plan, resource, world_of

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STORE = "kubernetes:external-secrets.io/v1:SecretStore"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
ARGO_SSO = {
    "server_auth_mode": "sso",
    "sso": {"issuer": "https://idp.example.com", "redirect_url": "https://argo.example.com/oauth2/callback"},
}


def _named(plan, type_: str, name: str):
    (found,) = [r for r in plan.by_type(type_) if r.name == name]
    return found


def test_the_vendored_crds_are_upstreams_three_and_name_their_source():
    """The file is the generator's output: the header names the tag, and the three CRDs the operator serves with
    our flags (ExternalSecret, SecretStore, and GeneratorState, whose reconciler always starts) are there
    unedited, v1 served and stored."""
    header = CRDS_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert (
        "external-secrets/external-secrets @ helm-chart-2.9.0 (cc5bfbc2234a) : deploy/crds/bundle.yaml"
        in header
    )
    kinds = {crd["spec"]["names"]["kind"]: crd for crd in vendored_crds()}
    assert set(kinds) == {"ExternalSecret", "SecretStore", "GeneratorState"}
    for kind in ("ExternalSecret", "SecretStore"):
        served = {v["name"]: (v["served"], v["storage"]) for v in kinds[kind]["spec"]["versions"]}
        assert served["v1"] == (True, True)
        assert "conversion" not in kinds[kind]["spec"]  # nothing calls the webhook we do not run


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_plan_installs_the_vendored_crds_before_the_operator(stack: str) -> None:
    plan = plan_of(stack)
    crds = [r for r in plan.by_type(CRD) if r.name.startswith(f"{stack}-secrets-crd-")]
    assert sorted(r.inputs["metadata"]["name"] for r in crds) == sorted(
        crd["metadata"]["name"] for crd in vendored_crds()
    )
    release = _named(plan, RELEASE_TYPE, f"{stack}-secrets-operator")
    assert {r.urn for r in crds} <= set(release.dependencies)
    assert release.inputs["chart"] == "external-secrets" and release.inputs["version"] == OPERATOR_VERSION
    values = release.inputs["values"]
    assert values["installCRDs"] is False
    assert values["webhook"] == {"create": False} and values["certController"] == {"create": False}
    assert not any(
        values[f"process{kind}"]
        for kind in (
            "ClusterExternalSecret",
            "ClusterPushSecret",
            "ClusterStore",
            "PushSecret",
            "ClusterGenerator",
        )
    )
    rbac = values["rbac"]
    assert not (rbac["aggregateToView"] or rbac["aggregateToEdit"] or rbac["aggregateToAdmin"])
    assert values["nodeSelector"] and values["tolerations"]  # system nodes


def test_the_operator_role_reads_exactly_the_sso_secrets() -> None:
    plan = plan_of("staging")
    policy = policy_json(_named(plan, ROLE_POLICY, "staging-secrets-operator-read").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    prefix = "arn:aws:secretsmanager:us-east-1:222233334444:secret:mlstack/staging/sso/"
    assert statement["Resource"] == [f"{prefix}grafana-??????", f"{prefix}jupyterhub-??????"]


def test_a_customer_managed_key_is_usable_only_through_secrets_manager() -> None:
    key = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    plan = plan_with_sections("dev", external_secrets={"image_through_cache": False, "kms_key_arn": key})
    policy = policy_json(_named(plan, ROLE_POLICY, "dev-secrets-operator-read").inputs["policy"])
    decrypt = [s for s in policy["Statement"] if s["Action"] == "kms:Decrypt"]
    assert decrypt == [
        {
            "Sid": "DecryptTheSsoSecretsThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        }
    ]


@pytest.mark.parametrize(
    ("stack", "sections", "app", "component", "namespace", "secret", "secret_id"),
    [
        (
            "dev",
            {},
            "notebooks-release",
            "notebooks-sso",
            "jupyterhub",
            "jupyterhub-oidc",
            "mlstack/dev/sso/jupyterhub",
        ),
        (
            "staging",
            {},
            "metrics-kube-prometheus-stack",
            "metrics-grafana-sso",
            "monitoring",
            "grafana-sso",
            "mlstack/staging/sso/grafana",
        ),
        (
            "dev",
            {"orchestrator": ARGO_SSO},
            "orchestrator-argo",
            "orchestrator-argo-sso",
            "argo",
            "argo-server-sso",
            "mlstack/dev/sso/argo-server",
        ),
    ],
)
def test_each_app_release_waits_for_its_synced_client_secret(
    stack, sections, app, component, namespace, secret, secret_id
):
    """The first up works: the app's release waits for its ExternalSecret, which waits for its SecretStore, which
    waits for the operator (and so for the CRDs) and the app's namespace."""
    plan = plan_with_sections(stack, **sections) if sections else plan_of(stack)
    store = _named(plan, STORE, f"{stack}-{component}-store")
    external = _named(plan, EXTERNAL_SECRET, f"{stack}-{component}-secret")
    release = _named(plan, RELEASE_TYPE, f"{stack}-{app}")
    operator = _named(plan, RELEASE_TYPE, f"{stack}-secrets-operator")
    assert external.urn in release.dependencies
    assert store.urn in external.dependencies and operator.urn in store.dependencies
    assert store.inputs["metadata"]["namespace"] == namespace == external.inputs["metadata"]["namespace"]
    assert store.inputs["spec"] == {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1"}}}
    spec = external.inputs["spec"]
    assert spec["target"] == {"name": secret, "creationPolicy": "Owner"}
    assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": store.inputs["metadata"]["name"]}
    assert [(d["secretKey"], d["remoteRef"]["property"]) for d in spec["data"]] == [
        ("client-id", "client-id"),
        ("client-secret", "client-secret"),
    ]
    assert {d["remoteRef"]["key"] for d in spec["data"]} == {secret_id}


def test_the_simulation_orders_the_store_after_the_crds_and_flags_it_otherwise() -> None:
    plan = mutable_plan("dev")
    store = resource(plan, STORE, "notebooks-sso-store")
    operator = resource(plan, RELEASE_TYPE, "secrets-operator")
    world = world_of("dev", plan)
    assert waits(world, store.urn, operator.urn)
    assert findings(world, "MLS-SIM-ORDER-001") == []
    external = resource(plan, EXTERNAL_SECRET, "notebooks-sso-secret")
    store.dependencies = []
    found = findings(world_of("dev", plan), "MLS-SIM-ORDER-001")
    # The ExternalSecret waited for the CRDs only through its store.
    assert {f.urn for f in found} == {store.urn, external.urn} and len(found) == 2


def test_an_external_secret_field_the_vendored_crd_lacks_is_a_schema_finding() -> None:
    plan = mutable_plan("dev")
    external = resource(plan, EXTERNAL_SECRET, "notebooks-sso-secret")
    external.inputs["spec"]["target"]["creationPolicyy"] = "Owner"
    found = findings(world_of("dev", plan), "MLS-SIM-SCHEMA-001")
    assert [f.urn for f in found] == [external.urn] and "creationPolicyy" in found[0].message


def test_no_sso_client_no_operator() -> None:
    plan = plan_with_sections("dev", notebooks={"enabled": False})
    assert not [r for r in plan.resources if "-secrets-" in r.name]


def test_off_leaves_the_secrets_to_the_platform_team() -> None:
    plan = plan_with_sections("dev", external_secrets={"enabled": False})
    assert not plan.by_type(STORE) and not [r for r in plan.resources if r.name.startswith("dev-secrets")]


def test_the_image_goes_through_the_github_cache_unless_opted_out() -> None:
    through = PullThrough(host="111122223333.dkr.ecr.us-east-1.amazonaws.com", prefixes={"ghcr.io": "github"})
    cached = operator_values(ExternalSecretsSpec(), through)
    assert cached["image"]["repository"] == (
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/github/external-secrets/external-secrets"
    )
    assert operator_values(ExternalSecretsSpec(image_through_cache=False), None)["image"]["repository"] == (
        OPERATOR_IMAGE
    )


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_the_iam_catalogue_holds_the_required_and_forbidden_secret_calls(stack: str) -> None:
    found = [
        o
        for o in outcomes(world_of(stack))
        if o.call.principal.arn.endswith(f"role/{stack}-external-secrets")
    ]
    _, spec = PROJECT.load(stack)
    required = [o for o in found if o.call.expect_allowed]
    assert len(required) == len(sso_clients(spec))
    assert all(o.decision is Decision.ALLOW for o in required)
    refused = [o for o in found if not o.call.expect_allowed]
    assert refused and all(o.decision is not Decision.ALLOW for o in refused)
    assert any("ecr-pullthroughcache" in o.call.request.resource for o in refused)


def test_a_role_that_reads_every_secret_fails_the_simulation() -> None:
    plan = mutable_plan("dev")
    policy = resource(plan, ROLE_POLICY, "secrets-operator-read")
    policy.inputs["policy"] = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", '
        '"Resource": "*"}]}'
    )
    found = findings(world_of("dev", plan), "MLS-SIM-IAM-002")
    assert found and all("external-secrets" in f.message for f in found)


def test_the_operator_service_account_is_the_associated_one() -> None:
    plan = plan_of("dev")
    association = _named(
        plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "dev-secrets-operator-identity"
    )
    assert association.inputs["namespace"] == "external-secrets"
    assert association.inputs["serviceAccount"] == SERVICE_ACCOUNT
    release = _named(plan, RELEASE_TYPE, "dev-secrets-operator")
    assert release.inputs["values"]["serviceAccount"] == {"create": True, "name": SERVICE_ACCOUNT}


def test_two_apps_sharing_one_secret_is_an_error_naming_the_field(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    anchor = "        userdata_url: https://idp.example.com/oauth2/v1/userinfo\n"
    assert text.count(anchor) == 1
    # Grafana's block in dev's metrics section: the SSO block goes right after `enabled: true`.
    grafana_anchor = "      grafana:\n        enabled: true\n"
    assert text.count(grafana_anchor) == 1
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        text.replace(anchor, anchor + "        client_secret_id: shared/sso\n").replace(
            grafana_anchor,
            grafana_anchor + "        sso:\n          auth_url: https://idp.example.com/a\n"
            "          token_url: https://idp.example.com/t\n          api_url: https://idp.example.com/u\n"
            "          admin_group: ml-platform-admins\n          client_secret_id: shared/sso\n",
        ),
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "metrics.grafana.sso.client_secret_id" in message and "'shared/sso'" in message


def test_a_secret_name_secrets_manager_refuses_is_an_error(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    anchor = "        userdata_url: https://idp.example.com/oauth2/v1/userinfo\n"
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        text.replace(anchor, anchor + "        client_secret_id: 'sso secret'\n"), encoding="utf-8"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "notebooks.sso.client_secret_id" in str(caught.value)


def test_without_a_github_cache_the_operator_needs_the_named_opt_out(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    path = tmp_path / "Pulumi.dev.yaml"
    opt_out = "    external_secrets:\n"
    assert opt_out in text
    path.write_text(
        text.replace(
            "      image_through_cache: false\n    platform_admins:", "    platform_admins:"
        ).replace(opt_out, ""),
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert (
        "registry.pull_through_caches" in message and "external_secrets.image_through_cache: false" in message
    )


def test_the_rendered_operator_is_one_non_root_controller_with_the_reconcilers_we_serve() -> None:
    """Rendered by real Helm from the pinned package: no webhook, no cert-controller, no CRDs, one Deployment
    whose arguments turn off every reconciler whose CRD is not installed."""
    world = world_of("dev")
    release = resource(world.plan, RELEASE_TYPE, "secrets-operator")
    objects = [o for o in chart_objects(world) if o.urn == release.urn]
    kinds = sorted({o.kind for o in objects})
    assert "ValidatingWebhookConfiguration" not in kinds and "CustomResourceDefinition" not in kinds
    (deployment,) = [o for o in objects if o.kind == "Deployment"]
    (container,) = deployment.obj["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{OPERATOR_IMAGE}:v{OPERATOR_VERSION}"
    assert {
        "--enable-cluster-store-reconciler=false",
        "--enable-cluster-external-secret-reconciler=false",
        "--enable-cluster-push-secret-reconciler=false",
        "--enable-push-secret-reconciler=false",
    } <= set(container["args"])
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    aggregated = [
        o.name
        for o in objects
        if o.kind == "ClusterRole"
        and any("aggregate-to" in k for k in (o.obj["metadata"].get("labels") or {}))
    ]
    assert aggregated == []
